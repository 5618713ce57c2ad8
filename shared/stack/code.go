package stack

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// Code gives each function's deployable zip: a `bootstrap` for linux/arm64
// at its root (runtime provided.al2023), by function name (its folder under
// functions/).
type Code interface {
	Zip(ctx context.Context, function string) ([]byte, error)
}

// FSCode reads <function>.zip from a file system: the zips embedded in a
// release build of the CLI, or a directory (os.DirFS) of zips built before.
type FSCode struct {
	FS fs.FS
	// Where describes the source in messages ("the CLI binary", a path).
	Where string
}

// Zip reads the function's zip.
func (c FSCode) Zip(_ context.Context, function string) ([]byte, error) {
	b, err := fs.ReadFile(c.FS, function+".zip")
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s holds no %s.zip: it was built without the %s function", c.Where, function, function)
	}
	if err != nil {
		return nil, fmt.Errorf("read %s.zip from %s: %w", function, c.Where, err)
	}
	return b, nil
}

// ModulePath is the Go module the functions are built from.
const ModulePath = "github.com/zeroae/zae-limiter-go"

// BuildCode builds each function from a checkout of the module with the Go
// toolchain, the way `make lambda` does: GOOS=linux GOARCH=arm64
// CGO_ENABLED=0 go build -tags lambda.norpc -trimpath -ldflags='-s -w'.
// The builds are reproducible, so an unchanged function gives the same zip
// (and the stack sees no change).
type BuildCode struct {
	// Root is the module root (the folder holding go.mod).
	Root string
	// Go is the go command; empty means "go" on PATH.
	Go string
}

// FindModuleRoot walks up from dir to the checkout of ModulePath.
func FindModuleRoot(dir string) (string, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	for d := dir; ; d = filepath.Dir(d) {
		b, err := os.ReadFile(filepath.Join(d, "go.mod"))
		if err == nil && modulePath(b) == ModulePath {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("%s is not inside a checkout of %s", dir, ModulePath)
		}
	}
}

func modulePath(gomod []byte) string {
	for _, line := range strings.Split(string(gomod), "\n") {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "module "); ok {
			return strings.Trim(strings.TrimSpace(rest), `"`)
		}
	}
	return ""
}

// Zip builds the function and zips its bootstrap.
func (c BuildCode) Zip(ctx context.Context, function string) ([]byte, error) {
	src := filepath.Join(c.Root, "functions", function)
	if _, err := os.Stat(filepath.Join(src, "main.go")); err != nil {
		return nil, fmt.Errorf("no function %s in %s: %w", function, c.Root, err)
	}
	goBin := c.Go
	if goBin == "" {
		var err error
		if goBin, err = exec.LookPath("go"); err != nil {
			return nil, fmt.Errorf("building the %s function needs the Go toolchain (go is not on PATH): %w", function, err)
		}
	}
	dir, err := os.MkdirTemp("", "zael-build-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	out := filepath.Join(dir, "bootstrap")
	cmd := exec.CommandContext(ctx, goBin, "build", "-tags", "lambda.norpc", "-trimpath", "-ldflags=-s -w",
		"-o", out, "./functions/"+function)
	cmd.Dir = c.Root
	cmd.Env = append(os.Environ(), "GOOS=linux", "GOARCH=arm64", "CGO_ENABLED=0", "GOFLAGS=")
	if b, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("build the %s function: %w\n%s", function, err, b)
	}
	bin, err := os.ReadFile(out)
	if err != nil {
		return nil, err
	}
	return ZipBootstrap(bin)
}

// zipTime is every entry's modification time, so that the same binary
// always gives the same zip (the zip format cannot store times before 1980).
var zipTime = time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC)

// ZipBootstrap zips bin as an executable `bootstrap` at the root,
// deterministically.
func ZipBootstrap(bin []byte) ([]byte, error) {
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	h := &zip.FileHeader{Name: "bootstrap", Method: zip.Deflate, Modified: zipTime}
	h.SetMode(0o755)
	w, err := zw.CreateHeader(h)
	if err != nil {
		return nil, err
	}
	if _, err := w.Write(bin); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}
