package stack

import (
	"archive/zip"
	"bytes"
	"context"
	"debug/elf"
	"io"
	"os"
	"path/filepath"
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestBuildCode builds a real function the way deploy and lambda-export do
// from a checkout: a zip with one executable `bootstrap`, a static
// linux/arm64 binary, the same bytes every time (so an unchanged function
// never changes the stack).
func TestBuildCode(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("builds the acquire function: skipped with -short")
	}
	root, err := FindModuleRoot(".")
	require.NoError(t, err)
	code := BuildCode{Root: root}
	ctx := context.Background()
	z1, err := code.Zip(ctx, "acquire")
	require.NoError(t, err)
	z2, err := code.Zip(ctx, "acquire")
	require.NoError(t, err)
	assert.Equal(t, z1, z2, "reproducible: same source, same zip")
	assertBootstrapZip(t, z1)

	_, err = code.Zip(ctx, "no-such-function")
	assert.ErrorContains(t, err, "no function no-such-function")
}

// assertBootstrapZip checks a function zip: `bootstrap` alone at the root,
// executable, a static linux/arm64 ELF.
func assertBootstrapZip(t *testing.T, z []byte) {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(z), int64(len(z)))
	require.NoError(t, err)
	require.Len(t, zr.File, 1)
	f := zr.File[0]
	assert.Equal(t, "bootstrap", f.Name)
	assert.Equal(t, os.FileMode(0o755), f.Mode().Perm())
	rc, err := f.Open()
	require.NoError(t, err)
	bin, err := io.ReadAll(rc)
	require.NoError(t, err)
	e, err := elf.NewFile(bytes.NewReader(bin))
	require.NoError(t, err)
	assert.Equal(t, elf.EM_AARCH64, e.Machine)
	for _, p := range e.Progs {
		assert.NotEqual(t, elf.PT_INTERP, p.Type, "static (CGO_ENABLED=0)")
	}
}

func TestFindModuleRoot(t *testing.T) {
	root, err := FindModuleRoot(filepath.Join("..", "..", "functions", "acquire"))
	require.NoError(t, err)
	_, err = os.Stat(filepath.Join(root, "template.yaml"))
	assert.NoError(t, err)
	_, err = FindModuleRoot(t.TempDir())
	assert.ErrorContains(t, err, "is not inside a checkout of "+ModulePath)
}

func TestFSCode(t *testing.T) {
	c := FSCode{FS: fstest.MapFS{"acquire.zip": {Data: []byte("zip")}}, Where: "the CLI binary"}
	b, err := c.Zip(context.Background(), "acquire")
	require.NoError(t, err)
	assert.Equal(t, []byte("zip"), b)
	_, err = c.Zip(context.Background(), "aggregator")
	assert.EqualError(t, err, "the CLI binary holds no aggregator.zip: it was built without the aggregator function")
}
