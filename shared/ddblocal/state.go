package ddblocal

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"time"
)

// DefaultName is the stack name used when none is given.
const DefaultName = "limiter"

// DefaultPort is the port `local up` uses when none is requested and it is
// free (DynamoDB Local's own default). When it is taken a free port is used.
const DefaultPort = 8000

// ErrNoState is returned (wrapped) by ReadState when no state file exists.
var ErrNoState = errors.New("no local stack state")

// State is what `local up` records about the DynamoDB Local it started.
type State struct {
	PID       int       `json:"pid"`
	Port      int       `json:"port"`
	Endpoint  string    `json:"endpoint"`
	StartedAt time.Time `json:"started_at"`
	JarDir    string    `json:"jar_dir"`
	LogFile   string    `json:"log_file,omitempty"`
}

// A stack name doubles as a file name and a DynamoDB table name.
var validName = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,254}$`)

func checkName(name string) error {
	if !validName.MatchString(name) {
		return fmt.Errorf("invalid stack name %q: use letters, digits, '_', '-' and '.'", name)
	}
	return nil
}

// StateDir holds the state files: $XDG_STATE_HOME/zae-limiter/local, else
// ~/.local/state/zae-limiter/local.
func StateDir() (string, error) {
	base := os.Getenv("XDG_STATE_HOME")
	if !filepath.IsAbs(base) {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("find the state directory: %w", err)
		}
		base = filepath.Join(home, ".local", "state")
	}
	return filepath.Join(base, "zae-limiter", "local"), nil
}

// StatePath is the state file of the stack name.
func StatePath(name string) (string, error) {
	return statePath(name, ".json")
}

func statePath(name, ext string) (string, error) {
	if err := checkName(name); err != nil {
		return "", err
	}
	dir, err := StateDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, name+ext), nil
}

// ReadState reads the state file of name; the error wraps ErrNoState when
// there is none.
func ReadState(name string) (State, error) {
	path, err := StatePath(name)
	if err != nil {
		return State{}, err
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return State{}, fmt.Errorf("%w for %q (%s)", ErrNoState, name, path)
	}
	if err != nil {
		return State{}, err
	}
	var s State
	if err := json.Unmarshal(b, &s); err != nil {
		return State{}, fmt.Errorf("read %s: %w", path, err)
	}
	return s, nil
}

// WriteState writes the state file of name atomically.
func WriteState(name string, s State) error {
	path, err := StatePath(name)
	if err != nil {
		return err
	}
	return WriteJSONFile(path, s, 0o644)
}

// WriteJSONFile writes v as indented JSON to path atomically (a temporary
// file renamed over it), creating the directory when missing.
func WriteJSONFile(path string, v any, perm os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	_, err = tmp.Write(append(b, '\n'))
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp.Name(), perm)
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// RemoveState removes the state file of name; a missing file is no error.
func RemoveState(name string) error {
	path, err := StatePath(name)
	if err != nil {
		return err
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// AliveTimeout is how long Alive keeps asking a live process before it
// calls it hung: a JVM on a busy machine can take seconds to answer, and a
// stack wrongly called hung would be restarted (its data lost).
var AliveTimeout = 15 * time.Second

// Alive reports whether the state's process is alive and its endpoint
// answers. While the process is DynamoDB Local it asks again, up to
// AliveTimeout, before calling it hung.
func Alive(s State) bool {
	if s.Endpoint == "" || !pidAlive(s.PID) {
		return false
	}
	if ping(context.Background(), s.Endpoint, 3*time.Second) == nil {
		return true
	}
	if !isDynamoDBLocal(s.PID) {
		return false
	}
	deadline := time.Now().Add(AliveTimeout)
	for time.Now().Before(deadline) && pidAlive(s.PID) {
		time.Sleep(200 * time.Millisecond)
		if ping(context.Background(), s.Endpoint, 3*time.Second) == nil {
			return true
		}
	}
	return false
}

// UpOptions configure Up.
type UpOptions struct {
	// Name of the stack; "" means DefaultName.
	Name string
	// Port requested; 0 means "any": an instance already running is kept,
	// else DefaultPort when free, else a free port.
	Port int
	// StartDir is where FindJar starts looking for the project; "" means the
	// working directory.
	StartDir string
	// CacheDir overrides CacheDir() for finding and installing the jar.
	CacheDir string
	// Out receives progress messages (nil discards them).
	Out io.Writer
}

// RunningError is returned by Up when the stack's DynamoDB Local already runs
// on a port other than the requested one.
type RunningError struct {
	Name  string
	State State
}

func (e *RunningError) Error() string {
	return fmt.Sprintf("DynamoDB Local for %q is already running on port %d (pid %d); "+
		"run `zae-limiter local down -n %s` first to use another port",
		e.Name, e.State.Port, e.State.PID, e.Name)
}

// Up makes sure the DynamoDB Local of stack opts.Name runs, with -sharedDb so
// that every credential and region sees the same data. When it already runs
// on the requested port (or no port is requested) it returns that one with
// started=false; on another port it fails with *RunningError. Otherwise it
// finds the jar (installing it into the cache when missing), starts DynamoDB
// Local so that it outlives this process, and records it in the state file.
func Up(ctx context.Context, opts UpOptions) (State, bool, error) {
	name := opts.Name
	if name == "" {
		name = DefaultName
	}
	if err := checkName(name); err != nil {
		return State{}, false, err
	}
	out := opts.Out
	if out == nil {
		out = io.Discard
	}

	if st, err := ReadState(name); err == nil {
		if Alive(st) {
			if opts.Port == 0 || opts.Port == st.Port {
				return st, false, nil
			}
			return State{}, false, &RunningError{Name: name, State: st}
		}
		// Stale: the process died or hangs. Never signal a pid that is no
		// longer DynamoDB Local, and never stop one without saying so.
		if pidAlive(st.PID) && isDynamoDBLocal(st.PID) {
			fmt.Fprintf(out, "DynamoDB Local (pid %d) on port %d did not answer for %v: stopping it and starting afresh.\n",
				st.PID, st.Port, AliveTimeout)
			_ = Stop(st.PID)
			// Its port is released when the last process of its group
			// exits, which may trail the leader.
			for deadline := time.Now().Add(5 * time.Second); checkPortFree(st.Port) != nil && time.Now().Before(deadline); {
				time.Sleep(50 * time.Millisecond)
			}
		}
		if err := RemoveState(name); err != nil {
			return State{}, false, err
		}
	} else if !errors.Is(err, ErrNoState) {
		return State{}, false, err
	}

	jarDir, err := findJar(opts.StartDir, opts.CacheDir)
	if errors.Is(err, ErrJarNotFound) {
		fmt.Fprintln(out, "DynamoDB Local is not installed here.")
		jarDir, err = Install(ctx, opts.CacheDir, out)
	}
	if err != nil {
		return State{}, false, err
	}

	port := opts.Port
	if port == 0 {
		port = DefaultPort
		if checkPortFree(port) != nil {
			if port, err = FreePort(); err != nil {
				return State{}, false, err
			}
			fmt.Fprintf(out, "Port %d is in use; using port %d.\n", DefaultPort, port)
		}
	}
	logFile, err := statePath(name, ".log")
	if err != nil {
		return State{}, false, err
	}
	p, err := Start(ctx, Options{JarDir: jarDir, Port: port, SharedDB: true, LogFile: logFile})
	if err != nil {
		return State{}, false, err
	}
	st := State{
		PID:       p.PID,
		Port:      p.Port,
		Endpoint:  p.Endpoint,
		StartedAt: time.Now().UTC().Truncate(time.Second),
		JarDir:    jarDir,
		LogFile:   p.LogFile,
	}
	if err := WriteState(name, st); err != nil {
		_ = p.Stop()
		return State{}, false, err
	}
	return st, true, nil
}

// Down stops the DynamoDB Local named by the state file of name and removes
// the file. stopped is false when nothing was running.
func Down(name string) (bool, error) {
	if name == "" {
		name = DefaultName
	}
	st, err := ReadState(name)
	if errors.Is(err, ErrNoState) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	stopped := false
	if pidAlive(st.PID) && isDynamoDBLocal(st.PID) {
		if err := Stop(st.PID); err != nil {
			return false, err
		}
		stopped = true
	}
	return stopped, RemoveState(name)
}

// Status returns the recorded state of name and whether it is running. With
// no state file it returns a zero State and false.
func Status(name string) (State, bool, error) {
	if name == "" {
		name = DefaultName
	}
	st, err := ReadState(name)
	if errors.Is(err, ErrNoState) {
		return State{}, false, nil
	}
	if err != nil {
		return State{}, false, err
	}
	return st, Alive(st), nil
}
