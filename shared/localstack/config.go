package localstack

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"time"

	"github.com/zeroae/zae-limiter-go/shared/ddblocal"
)

// DefaultPort is the one endpoint's port when none is asked for and it is
// free (DynamoDB Local's usual port, so the familiar
// --endpoint-url http://localhost:8000 keeps working).
const DefaultPort = 8000

// Config is what a stack runs with; `local up` writes it, the daemon reads it.
type Config struct {
	Name string `json:"name"`
	// Port of the one endpoint (0: DefaultPort when free, else any).
	Port int `json:"port"`
	// URLPort is the first Function URL's port (0: any free port).
	URLPort int `json:"url_port,omitempty"`
	// Template is the SAM template (its text).
	Template string `json:"template"`
	// TemplateFile names where it came from (for messages).
	TemplateFile string `json:"template_file"`
	// Parameters override the template's parameter defaults.
	Parameters map[string]string `json:"parameters,omitempty"`
	// FunctionsDir holds <name>/bootstrap for each function.
	FunctionsDir string `json:"functions_dir"`
	// URLAuth overrides every Function URL's AuthType (NONE or AWS_IAM);
	// "" means NONE, the local default.
	URLAuth string `json:"url_auth,omitempty"`
	// Instances is each function's number of execution environments.
	Instances int `json:"instances"`
	// Persist keeps DynamoDB's data on disk (and S3's) across `local down`.
	Persist bool `json:"persist,omitempty"`
	// Env adds variables to a function's environment ("*": every function);
	// Unset removes template variables.
	Env   map[string]map[string]string `json:"env,omitempty"`
	Unset map[string][]string          `json:"unset,omitempty"`
	// DynamoDBJarDir and S3Binary are the servers to run.
	DynamoDBJarDir string `json:"dynamodb_jar_dir"`
	S3Binary       string `json:"s3_binary"`
	// ScheduleEvery, when set, replaces every schedule's rate (tests, demos).
	ScheduleEvery time.Duration `json:"schedule_every,omitempty"`
}

var validName = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)

// StackDir is the directory of stack name: <ddblocal.StateDir()>/<name>.
func StackDir(name string) (string, error) {
	if !validName.MatchString(name) {
		return "", fmt.Errorf("invalid stack name %q: use letters, digits, '_', '-' and '.'", name)
	}
	base, err := ddblocal.StateDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(base, name), nil
}

// Paths of a stack's files.
type Paths struct{ Dir string }

func (p Paths) Config() string       { return filepath.Join(p.Dir, "config.json") }
func (p Paths) State() string        { return filepath.Join(p.Dir, "state.json") }
func (p Paths) UpLock() string       { return filepath.Join(p.Dir, "up.lock") }
func (p Paths) DaemonLock() string   { return filepath.Join(p.Dir, "daemon.lock") }
func (p Paths) DaemonLog() string    { return filepath.Join(p.Dir, "daemon.log") }
func (p Paths) DynamoDBLog() string  { return filepath.Join(p.Dir, "dynamodb.log") }
func (p Paths) DynamoDBData() string { return filepath.Join(p.Dir, "dynamodb") }
func (p Paths) S3Log() string        { return filepath.Join(p.Dir, "s3.log") }
func (p Paths) S3Data() string       { return filepath.Join(p.Dir, "s3") }
func (p Paths) FunctionLog(fn string) string {
	return filepath.Join(p.Dir, "functions", fn+".log")
}
func (p Paths) Destination(id string) string {
	return filepath.Join(p.Dir, "destinations", id+".jsonl")
}
func (p Paths) Checkpoint(fn, event string) string {
	return filepath.Join(p.Dir, "checkpoints", fn+"-"+event+".json")
}

// WriteConfig saves c in its stack's directory.
func WriteConfig(c Config) error {
	dir, err := StackDir(c.Name)
	if err != nil {
		return err
	}
	return writeJSON(Paths{dir}.Config(), c, 0o600)
}

// ReadConfig reads the config of stack name.
func ReadConfig(name string) (Config, error) {
	dir, err := StackDir(name)
	if err != nil {
		return Config{}, err
	}
	var c Config
	return c, readJSON(Paths{dir}.Config(), &c)
}

// writeJSON writes v to path atomically.
func writeJSON(path string, v any, perm os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return ddblocal.WriteJSONFile(path, v, perm)
}

// ErrNoStack is returned (wrapped) when a stack has no state.
var ErrNoStack = errors.New("no local stack")

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("%w (%s)", ErrNoStack, path)
	}
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	return nil
}
