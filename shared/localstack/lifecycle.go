package localstack

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/zeroae/zae-limiter-go/shared/ddblocal"
	"github.com/zeroae/zae-limiter-go/shared/localstack/s3local"
	"github.com/zeroae/zae-limiter-go/shared/proc"
)

// DaemonMarker is in the daemon's command line (`zae-limiter local daemon`):
// a pid is signalled only when it still runs the daemon.
const DaemonMarker = "local daemon"

// ReadyFDEnv tells the daemon which file descriptor is its progress pipe.
const ReadyFDEnv = "ZAEL_LOCAL_READY_FD"

// UpOptions configure Up.
type UpOptions struct {
	Config Config
	// Command runs the daemon: the CLI's own executable and arguments.
	Command []string
	// Progress receives the daemon's progress lines.
	Progress io.Writer
	// Timeout bounds the wait until ready (default 2 minutes).
	Timeout time.Duration
}

// RunningError is returned by Up when the stack runs on another port.
type RunningError struct {
	Name  string
	State State
}

func (e *RunningError) Error() string {
	return fmt.Sprintf("the local stack %q is already running on port %d (pid %d); run `zae-limiter local down -n %s` first to use another port",
		e.Name, e.State.Port, e.State.DaemonPID, e.Name)
}

// Up makes sure the stack runs: a no-op (started false) when its daemon
// already runs (on the requested port, or none was requested), else it
// writes the config, starts the daemon detached and waits until it is ready.
func Up(ctx context.Context, o UpOptions) (State, bool, error) {
	dir, err := StackDir(o.Config.Name)
	if err != nil {
		return State{}, false, err
	}
	p := Paths{dir}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	if o.Timeout <= 0 {
		o.Timeout = 2 * time.Minute
	}
	lk, err := lock(p.UpLock(), true)
	if err != nil {
		return State{}, false, err
	}
	defer lk.Close()

	if st, err := ReadState(o.Config.Name); err == nil && DaemonAlive(st) {
		if o.Config.Port != 0 && o.Config.Port != st.Port {
			return State{}, false, &RunningError{Name: o.Config.Name, State: st}
		}
		if st.Phase == PhaseReady {
			return st, false, nil
		}
	}
	if err := WriteConfig(o.Config); err != nil {
		return State{}, false, err
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		return State{}, false, err
	}
	defer pr.Close()
	log, err := os.OpenFile(p.DaemonLog(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		pw.Close()
		return State{}, false, err
	}
	cmd := exec.Command(o.Command[0], o.Command[1:]...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.ExtraFiles = []*os.File{pw}
	cmd.Env = append(os.Environ(), ReadyFDEnv+"=3")
	cmd.SysProcAttr = proc.Detached()
	err = cmd.Start()
	pw.Close()
	log.Close()
	if err != nil {
		return State{}, false, fmt.Errorf("start the local stack's daemon: %w", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()

	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	timeout := time.After(o.Timeout)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				<-exited
				return State{}, false, fmt.Errorf("the local stack's daemon exited before it was ready; see %s:\n%s", p.DaemonLog(), tail(p.DaemonLog()))
			}
			switch {
			case strings.HasPrefix(l, ReadyLine):
				st, err := ReadState(o.Config.Name)
				return st, true, err
			case strings.HasPrefix(l, FailedLine):
				_, _ = Down(o.Config.Name) // nothing half-started stays behind
				return State{}, false, errors.New(strings.TrimPrefix(l, FailedLine))
			default:
				fmt.Fprintln(o.Progress, l)
			}
		case <-timeout:
			return State{}, false, fmt.Errorf("the local stack was not ready within %v; see %s (stop it with `zae-limiter local down -n %s`)",
				o.Timeout, p.DaemonLog(), o.Config.Name)
		case <-ctx.Done():
			return State{}, false, ctx.Err()
		}
	}
}

// DaemonAlive reports whether the state's daemon still runs.
func DaemonAlive(st State) bool {
	return st.DaemonPID > 0 && proc.Runs(st.DaemonPID, DaemonMarker)
}

// Stopped says what Down stopped.
type Stopped struct {
	Daemon, DynamoDB, S3 bool
	// Legacy is set when only an older `local up`'s DynamoDB Local was found.
	Legacy  bool
	Persist bool
}

// Any reports whether anything was running.
func (s Stopped) Any() bool { return s.Daemon || s.DynamoDB || s.S3 || s.Legacy }

// Down stops everything the stack's state names, whether its daemon is
// alive or crashed, and removes the stack's state and (unless it was
// started with Persist) its data. Logs stay for post-mortems.
func Down(name string) (Stopped, error) {
	var out Stopped
	dir, err := StackDir(name)
	if err != nil {
		return out, err
	}
	p := Paths{dir}
	// An older `local up` ran DynamoDB Local alone.
	if legacy, err := ddblocal.Down(name); err == nil && legacy {
		out.Legacy = true
	}
	st, err := ReadState(name)
	if errors.Is(err, ErrNoStack) {
		return out, nil
	}
	if err != nil {
		return out, err
	}
	out.Persist = st.Persist
	ddbUp := st.DynamoDB.PID != 0 && ddblocal.IsDynamoDBLocal(st.DynamoDB.PID)
	s3Up := st.S3.PID != 0 && s3local.IsVersity(st.S3.PID)
	out.DynamoDB, out.S3 = ddbUp, s3Up
	var errs []error
	if DaemonAlive(st) {
		// The daemon stops its functions and servers itself.
		if err := proc.Stop(st.DaemonPID, 20*time.Second); err != nil {
			errs = append(errs, fmt.Errorf("stop the daemon: %w", err))
		}
		out.Daemon = true
	}
	// What a crashed daemon left running.
	if ddbUp && ddblocal.IsDynamoDBLocal(st.DynamoDB.PID) {
		if err := ddblocal.Stop(st.DynamoDB.PID); err != nil {
			errs = append(errs, err)
		}
	}
	if s3Up && s3local.IsVersity(st.S3.PID) {
		if err := proc.Stop(st.S3.PID, 3*time.Second); err != nil {
			errs = append(errs, fmt.Errorf("stop the S3 server: %w", err))
		}
	}
	if len(errs) > 0 {
		return out, errors.Join(errs...)
	}
	remove := []string{p.State(), p.Config()}
	if !st.Persist {
		remove = append(remove, p.S3Data(), p.S3Data()+".meta", filepath.Join(dir, "checkpoints"), filepath.Join(dir, "destinations"))
	}
	for _, f := range remove {
		if err := os.RemoveAll(f); err != nil {
			return out, err
		}
	}
	return out, nil
}

// tail returns the last lines of a log file.
func tail(file string) string {
	b, err := os.ReadFile(file)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	s := strings.TrimSpace(string(b))
	if len(s) > 2048 {
		s = s[len(s)-2048:]
	}
	return s
}
