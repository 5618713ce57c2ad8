package client

import (
	"go/parser"
	"go/token"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const module = "github.com/zeroae/zae-limiter-go"

// allowedImport is the client's dependency rule (STYLE §4.2): the standard
// library, shared/wire, and the SDK's aws core, SigV4 signer and config
// loader (default credential chain). Never a service client, shared/store or
// shared/limiter.
func allowedImport(path string) bool {
	switch path {
	case module + "/shared/wire",
		"github.com/aws/aws-sdk-go-v2/aws",
		"github.com/aws/aws-sdk-go-v2/aws/signer/v4",
		"github.com/aws/aws-sdk-go-v2/config":
		return true
	}
	first, _, _ := strings.Cut(path, "/")
	return !strings.Contains(first, ".") // standard library
}

func TestImports_direct(t *testing.T) {
	files, err := filepath.Glob("*.go")
	require.NoError(t, err)
	checked := 0
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), name, nil, parser.ImportsOnly)
		require.NoError(t, err)
		for _, imp := range f.Imports {
			path, err := strconv.Unquote(imp.Path.Value)
			require.NoError(t, err)
			assert.True(t, allowedImport(path), "%s imports %s", name, path)
		}
		checked++
	}
	assert.Positive(t, checked)
}

func TestImports_transitive(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go command not found")
	}
	cmd := exec.Command(gobin, "list", "-deps", ".")
	out, err := cmd.Output()
	require.NoError(t, err, "go list: %s", out)
	for _, dep := range strings.Fields(string(out)) {
		switch {
		case strings.HasPrefix(dep, module+"/"):
			assert.Contains(t, []string{module + "/shared/wire", module + "/client"}, dep, "client depends on %s", dep)
		case strings.HasPrefix(dep, "github.com/aws/aws-sdk-go-v2/service/dynamodb"),
			strings.HasPrefix(dep, "github.com/aws/aws-sdk-go-v2/feature/dynamodb"),
			strings.HasPrefix(dep, "github.com/aws/aws-lambda-go"):
			t.Errorf("client depends on %s", dep)
		}
	}
}
