// Package s3local finds, installs and runs versitygw, the S3-compatible
// server of the local stack (a real SigV4-checking S3 API over a directory).
//
// The binary is looked up in the project's tools/bin (where `make tools`
// puts it) and then in the user's cache, where Install builds the pinned
// version with `go install` when it is missing. Its posix backend keeps
// object metadata in extended attributes; where the data directory's file
// system has none, a sidecar directory holds it instead.
//
// Local-only tooling: no Lambda imports it.
package s3local

import (
	"context"
	"debug/buildinfo"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"github.com/zeroae/zae-limiter-go/shared/ddblocal"
	"github.com/zeroae/zae-limiter-go/shared/proc"
)

// The pinned server. `make tools` installs the same version.
const (
	Module  = "github.com/versity/versitygw"
	Package = Module + "/cmd/versitygw"
	Version = "v1.8.0"
	Binary  = "versitygw"
)

// ErrNotFound is returned (wrapped) by Find when no pinned binary exists.
var ErrNotFound = errors.New("versitygw " + Version + " not found")

// ErrNoGo is returned by Install when the go command is not on PATH.
var ErrNoGo = errors.New("the go command is required to install versitygw " + Version +
	" (go install " + Package + "@" + Version + ")")

// Find returns the path of the pinned versitygw: tools/bin of the project
// holding startDir ("" means the working directory), else the cache.
func Find(startDir string) (string, error) {
	var searched []string
	if root, ok := ddblocal.ProjectRoot(startDir); ok {
		p := filepath.Join(root, "tools", "bin", Binary)
		if isPinned(p) {
			return p, nil
		}
		searched = append(searched, p)
	}
	if dir, err := CacheDir(); err == nil {
		p := filepath.Join(dir, Binary)
		if isPinned(p) {
			return p, nil
		}
		searched = append(searched, p)
	}
	return "", fmt.Errorf("%w (searched %q)", ErrNotFound, searched)
}

// isPinned reports whether path is a versitygw built from the pinned version.
func isPinned(path string) bool {
	bi, err := buildinfo.ReadFile(path)
	return err == nil && bi.Main.Path == Module && bi.Main.Version == Version
}

// CacheDir is where Install puts the binary: $XDG_CACHE_HOME/zae-limiter/
// versitygw/<version>, else the OS user cache directory.
func CacheDir() (string, error) {
	ddb, err := ddblocal.CacheDir() // <cache>/zae-limiter/ddb
	if err != nil {
		return "", err
	}
	return filepath.Join(filepath.Dir(ddb), "versitygw", Version), nil
}

// Install builds the pinned versitygw into the cache with `go install`
// (a minute or two on two cores the first time), writing the go command's
// output to w, and returns its path.
func Install(ctx context.Context, w io.Writer) (string, error) {
	if w == nil {
		w = io.Discard
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		return "", ErrNoGo
	}
	dir, err := CacheDir()
	if err != nil {
		return "", err
	}
	spec := Package + "@" + Version
	fmt.Fprintf(w, "Installing versitygw (go install %s) into %s; this takes a minute or two the first time\n", spec, dir)
	cmd := exec.CommandContext(ctx, goBin, "install", "-trimpath", spec)
	cmd.Env = append(os.Environ(), "GOBIN="+dir, "CGO_ENABLED=0", "GOFLAGS=")
	cmd.Dir = os.TempDir() // outside any module: go install pkg@version ignores the current one anyway
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go install %s: %w", spec, err)
	}
	p := filepath.Join(dir, Binary)
	if !isPinned(p) {
		return "", fmt.Errorf("%w: go install succeeded but %s is not %s", ErrNotFound, p, spec)
	}
	return p, nil
}

// FindOrInstall finds the pinned binary, installing it when missing.
func FindOrInstall(ctx context.Context, startDir string, w io.Writer) (string, error) {
	p, err := Find(startDir)
	if errors.Is(err, ErrNotFound) {
		return Install(ctx, w)
	}
	return p, err
}

// Options configure Start.
type Options struct {
	Binary string // required
	// Dir holds the buckets (created when missing).
	Dir string
	// Port on 127.0.0.1; 0 picks a free one.
	Port int
	// AccessKey and SecretKey are the root credentials every request must
	// be signed with.
	AccessKey, SecretKey string
	// LogFile receives the server's output (required).
	LogFile string
	// KillWithParent ties the server's life to this process (Linux; tests).
	KillWithParent bool
}

// Process is a running versitygw.
type Process struct {
	PID      int
	Port     int
	Endpoint string
	done     chan struct{}
}

// Start runs versitygw on 127.0.0.1 in its own session (it outlives this
// process unless KillWithParent) and returns once it answers.
func Start(ctx context.Context, o Options) (*Process, error) {
	if o.Binary == "" || o.LogFile == "" || o.AccessKey == "" || o.SecretKey == "" {
		return nil, errors.New("s3local: Binary, LogFile, AccessKey and SecretKey are required")
	}
	if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("s3local: data directory: %w", err)
	}
	port := o.Port
	if port == 0 {
		var err error
		if port, err = freePort(); err != nil {
			return nil, err
		}
	}
	args := []string{"--port", "127.0.0.1:" + strconv.Itoa(port), "--quiet", "posix"}
	if !xattrSupported(o.Dir) {
		side := o.Dir + ".meta"
		if err := os.MkdirAll(side, 0o700); err != nil {
			return nil, fmt.Errorf("s3local: sidecar directory: %w", err)
		}
		args = append(args, "--sidecar", side)
	}
	args = append(args, o.Dir)
	if err := os.MkdirAll(filepath.Dir(o.LogFile), 0o755); err != nil {
		return nil, err
	}
	log, err := os.OpenFile(o.LogFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("s3local: log: %w", err)
	}
	defer log.Close()
	cmd := exec.Command(o.Binary, args...)
	cmd.Env = append(os.Environ(), "ROOT_ACCESS_KEY="+o.AccessKey, "ROOT_SECRET_KEY="+o.SecretKey)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = sysProcAttr(o.KillWithParent)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("s3local: start %s: %w", o.Binary, err)
	}
	p := &Process{PID: cmd.Process.Pid, Port: port, Endpoint: "http://127.0.0.1:" + strconv.Itoa(port), done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.done) }()
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	for {
		if Ping(ctx, p.Endpoint) == nil {
			return p, nil
		}
		select {
		case <-p.done:
			return nil, fmt.Errorf("s3local: versitygw exited during start-up (log: %s)", o.LogFile)
		case <-ctx.Done():
			_ = p.Stop()
			return nil, fmt.Errorf("s3local: versitygw did not answer on %s: %w (log: %s)", p.Endpoint, ctx.Err(), o.LogFile)
		case <-time.After(25 * time.Millisecond):
		}
	}
}

// Stop ends the server and waits for it.
func (p *Process) Stop() error {
	err := proc.Stop(p.PID, 3*time.Second)
	select {
	case <-p.done:
	case <-time.After(3 * time.Second):
	}
	return err
}

// Exited is closed once the process has exited (only for one this process
// started).
func (p *Process) Exited() <-chan struct{} { return p.done }

// Ping reports whether an S3 server answers at endpoint: any HTTP answer
// (an unsigned request gets 403) will do.
func Ping(ctx context.Context, endpoint string) error {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, endpoint+"/", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.Body.Close()
}

// IsVersity reports whether pid is alive and runs versitygw.
func IsVersity(pid int) bool { return proc.Runs(pid, Binary) }

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
