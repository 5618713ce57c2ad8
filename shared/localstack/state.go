package localstack

import (
	"time"
)

// State is what the daemon records about a running stack. It is written
// after every change, so that Down finds every process even after a crash.
type State struct {
	Name string `json:"name"`
	// Phase is starting, ready, stopping or failed (Error says why).
	Phase     string    `json:"phase"`
	Error     string    `json:"error,omitempty"`
	DaemonPID int       `json:"daemon_pid"`
	Endpoint  string    `json:"endpoint,omitempty"`
	Port      int       `json:"port,omitempty"`
	StartedAt time.Time `json:"started_at"`
	// URLs of the functions with a Function URL, by function name.
	URLs map[string]string `json:"urls,omitempty"`
	// Servers run outside the daemon (DynamoDB Local, the S3 server).
	DynamoDB Server `json:"dynamodb"`
	S3       Server `json:"s3"`
	// S3Keys are the S3 server's root keys (the router signs with them).
	S3Keys struct {
		AccessKey string `json:"access_key"`
		SecretKey string `json:"secret_key"`
	} `json:"s3_keys"`
	Persist bool `json:"persist,omitempty"`
}

// Server is a process of the stack.
type Server struct {
	PID      int    `json:"pid,omitempty"`
	Port     int    `json:"port,omitempty"`
	Endpoint string `json:"endpoint,omitempty"`
	LogFile  string `json:"log_file,omitempty"`
}

// Phases.
const (
	PhaseStarting = "starting"
	PhaseReady    = "ready"
	PhaseStopping = "stopping"
	PhaseFailed   = "failed"
)

// ReadState reads the state of stack name (wrapping ErrNoStack when none).
func ReadState(name string) (State, error) {
	dir, err := StackDir(name)
	if err != nil {
		return State{}, err
	}
	var s State
	return s, readJSON(Paths{dir}.State(), &s)
}
