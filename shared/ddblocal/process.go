package ddblocal

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/zeroae/zae-limiter-go/shared/proc"
)

// ErrNoJava is returned by Start when no Java runtime is found.
var ErrNoJava = errors.New("java is required to run DynamoDB Local; install a JRE " +
	"(e.g. apt-get install default-jre-headless) or run `make tools`")

// ErrPortInUse is returned (wrapped) by Start when the requested port is taken.
var ErrPortInUse = errors.New("port in use")

// DefaultStartTimeout bounds the wait for a started DynamoDB Local to answer.
const DefaultStartTimeout = 30 * time.Second

// Options configure Start. Zero values are the documented defaults.
type Options struct {
	// JarDir is the directory holding DynamoDBLocal.jar (see FindJar). Required.
	JarDir string
	// Port to listen on; 0 picks a free port. DynamoDB Local has no bind
	// address option and listens on every interface; talk to it through
	// 127.0.0.1 only.
	Port int
	// SharedDB makes every access key and region see the same data
	// (-sharedDb). Without it each (key, region) pair has its own database.
	SharedDB bool
	// DBPath keeps the data in that directory; "" keeps it in memory.
	DBPath string
	// LogFile receives DynamoDB Local's output; "" uses a temporary file,
	// removed as soon as the process runs (it keeps writing to it) so that
	// nothing is left behind however the test process ends.
	LogFile string
	// KillWithParent asks the OS to kill DynamoDB Local when this process
	// dies, even by a panic or signal (Linux only; elsewhere it is a no-op).
	// Leave it off for a server that must outlive its starter.
	KillWithParent bool
	// StartTimeout bounds the wait until it answers; 0 means DefaultStartTimeout.
	StartTimeout time.Duration
	// Java is the java executable; "" looks up java on PATH, then $JAVA_HOME/bin.
	Java string
}

// Process is a running DynamoDB Local.
type Process struct {
	PID      int
	Port     int
	Endpoint string // http://127.0.0.1:PORT
	LogFile  string // "" when the log is a temporary file (already unlinked)

	done    chan struct{} // closed once the process has exited and been reaped
	tempLog *os.File      // the temporary log, already unlinked where the OS allows
}

// Start runs DynamoDB Local in its own process group and returns once it
// answers a ListTables call. The process is not tied to ctx, which bounds the
// wait only: it runs until Stop (or Process.Stop). An early exit of java is
// reported with the tail of its log.
func Start(ctx context.Context, o Options) (*Process, error) {
	if o.JarDir == "" {
		return nil, errors.New("ddblocal: Options.JarDir is required")
	}
	if _, err := os.Stat(filepath.Join(o.JarDir, JarName)); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrJarNotFound, err)
	}
	java, err := findJava(o.Java)
	if err != nil {
		return nil, err
	}
	timeout := o.StartTimeout
	if timeout <= 0 {
		timeout = DefaultStartTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	// With a picked port another process may take it between the check and
	// java's bind; then try again with a new one.
	for attempt := 1; ; attempt++ {
		port := o.Port
		if port == 0 {
			if port, err = FreePort(); err != nil {
				return nil, err
			}
		} else if err := checkPortFree(port); err != nil {
			return nil, err
		}
		p, err := start(ctx, java, o, port)
		if err == nil || o.Port != 0 || attempt == 3 || !errors.Is(err, errBind) {
			return p, err
		}
	}
}

var errBind = errors.New("DynamoDB Local could not bind its port")

func start(ctx context.Context, java string, o Options, port int) (*Process, error) {
	logFile, tempLog := o.LogFile, false
	var log *os.File
	var err error
	if logFile == "" {
		log, err = os.CreateTemp("", "ddblocal-*.log") // read-write: we read the tail through it
		tempLog = true
	} else {
		if err = os.MkdirAll(filepath.Dir(logFile), 0o755); err == nil {
			log, err = os.OpenFile(logFile, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("open DynamoDB Local log: %w", err)
	}
	logFile = log.Name()
	if !tempLog {
		defer log.Close() // the child keeps its own descriptor
	}

	args := []string{"-Xmx512m", "-Djava.library.path=./DynamoDBLocal_lib", "-jar", JarName}
	if o.DBPath == "" {
		args = append(args, "-inMemory")
	} else {
		args = append(args, "-dbPath", o.DBPath)
	}
	args = append(args, "-port", strconv.Itoa(port), "-disableTelemetry")
	if o.SharedDB {
		args = append(args, "-sharedDb")
	}
	cmd := exec.Command(java, args...)
	cmd.Dir = o.JarDir
	cmd.Stdout = log
	cmd.Stderr = log
	cmd.SysProcAttr = sysProcAttr(o.KillWithParent)

	p := &Process{
		Port:     port,
		Endpoint: "http://127.0.0.1:" + strconv.Itoa(port),
		LogFile:  logFile,
		done:     make(chan struct{}),
	}
	if tempLog {
		p.tempLog = log
	}
	started := make(chan error, 1)
	go func() {
		if o.KillWithParent {
			// The parent-death signal follows the OS thread that forked the
			// child, so that thread must live as long as the child: this
			// goroutine keeps it locked until the child has exited.
			runtime.LockOSThread()
		}
		err := cmd.Start()
		started <- err
		if err != nil {
			return
		}
		_ = cmd.Wait()
		close(p.done)
	}()
	if err := <-started; err != nil {
		p.removeTempLog()
		return nil, fmt.Errorf("start DynamoDB Local: %w", err)
	}
	p.PID = cmd.Process.Pid
	if tempLog && runtime.GOOS != "windows" {
		// Both descriptors stay usable after the name is gone.
		if os.Remove(logFile) == nil {
			p.LogFile = ""
		}
	}

	if err := p.waitReady(ctx); err != nil {
		_ = p.Stop()
		if !tempLog {
			return nil, fmt.Errorf("%w (log: %s)", err, logFile)
		}
		return nil, err
	}
	return p, nil
}

// waitReady polls until the server answers, java exits or ctx ends.
func (p *Process) waitReady(ctx context.Context) error {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-p.done:
			tail := p.logTail()
			if strings.Contains(tail, "BindException") || strings.Contains(tail, "Address already in use") {
				return fmt.Errorf("%w %d: %s", errBind, p.Port, tail)
			}
			return fmt.Errorf("DynamoDB Local exited during start-up:\n%s", tail)
		case <-ctx.Done():
			return fmt.Errorf("DynamoDB Local did not answer on %s in time (%v); log tail:\n%s",
				p.Endpoint, ctx.Err(), p.logTail())
		case <-tick.C:
			if Ping(ctx, p.Endpoint) == nil {
				return nil
			}
		}
	}
}

// Stop stops the process and its group, waits until it has exited and
// removes a temporary log file.
func (p *Process) Stop() error {
	err := Stop(p.PID)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		if err == nil {
			err = fmt.Errorf("DynamoDB Local (pid %d) did not exit", p.PID)
		}
	}
	p.removeTempLog()
	return err
}

func (p *Process) removeTempLog() {
	if p.tempLog == nil {
		return
	}
	p.tempLog.Close()
	if p.LogFile != "" {
		os.Remove(p.LogFile)
	}
	p.tempLog = nil
}

func (p *Process) logTail() string {
	if p.tempLog != nil {
		return readTail(p.tempLog)
	}
	f, err := os.Open(p.LogFile)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	defer f.Close()
	return readTail(f)
}

// Exited is closed once the process has exited.
func (p *Process) Exited() <-chan struct{} { return p.done }

// Stop ends the process group led by pid: SIGTERM, then SIGKILL when it is
// still there after a short wait. A pid that is already gone is not an error.
func Stop(pid int) error {
	if err := proc.Stop(pid, 5*time.Second); err != nil {
		return fmt.Errorf("DynamoDB Local: %w", err)
	}
	return nil
}

// Ping sends one ListTables call to endpoint and reports whether DynamoDB
// (Local) answered it. It needs no SDK and no credentials: DynamoDB Local
// does not check signatures.
func Ping(ctx context.Context, endpoint string) error {
	return ping(ctx, endpoint, time.Second)
}

// ping is Ping waiting at most timeout for the answer.
func ping(ctx context.Context, endpoint string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint+"/", strings.NewReader(`{"Limit":1}`))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.0")
	req.Header.Set("X-Amz-Target", "DynamoDB_20120810.ListTables")
	req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=dummy/20200101/us-east-1/dynamodb/aws4_request, "+
		"SignedHeaders=host, Signature=0")
	resp, err := pingClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK || !bytes.Contains(body, []byte("TableNames")) {
		return fmt.Errorf("%s answered ListTables with %s", endpoint, resp.Status)
	}
	return nil
}

var pingClient = &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}

// FreePort returns a TCP port that is free on every interface right now.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", ":0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// checkPortFree fails when port is taken on any interface, as DynamoDB Local
// binds them all. Without this a server already on the port would answer the
// readiness probe for ours.
func checkPortFree(port int) error {
	l, err := net.Listen("tcp", ":"+strconv.Itoa(port))
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return fmt.Errorf("port %d is taken by another program (%w): pick another with --port, or omit it for a free one", port, ErrPortInUse)
		}
		return fmt.Errorf("%w: cannot listen on port %d: %v", ErrPortInUse, port, err)
	}
	return l.Close()
}

func findJava(java string) (string, error) {
	if java != "" {
		p, err := exec.LookPath(java)
		if err != nil {
			return "", fmt.Errorf("%w (%v)", ErrNoJava, err)
		}
		return p, nil
	}
	if p, err := exec.LookPath("java"); err == nil {
		return p, nil
	}
	if home := os.Getenv("JAVA_HOME"); home != "" {
		if p, err := exec.LookPath(filepath.Join(home, "bin", "java")); err == nil {
			return p, nil
		}
	}
	return "", ErrNoJava
}

// readTail returns the last 2 KiB of a log.
func readTail(f *os.File) string {
	const tailSize = 2048
	fi, err := f.Stat()
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	off := max(fi.Size()-tailSize, 0)
	b, _ := io.ReadAll(io.NewSectionReader(f, off, fi.Size()-off))
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "(empty log)"
	}
	return s
}
