package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go/logging"
	"golang.org/x/term"

	"github.com/zeroae/zae-limiter-go/shared/awsenv"
	"github.com/zeroae/zae-limiter-go/shared/limits"
	"github.com/zeroae/zae-limiter-go/shared/stack"
	"github.com/zeroae/zae-limiter-go/shared/store"
)

// Defaults of the global flags.
const (
	defaultName      = "limiter"
	defaultNamespace = "default"
	unknownPrincipal = "unknown"
	principalEnv     = "ZAEL_PRINCIPAL"
)

// Env is what every command needs: the IO streams, the global flags and lazy
// constructors of the AWS config, the DynamoDB client and the store. Nothing
// touches AWS until a command asks for it.
type Env struct {
	In  io.Reader
	Out io.Writer // results
	Err io.Writer // progress, hints and errors

	// IsTerminal reports whether In is an interactive terminal (prompts are
	// allowed only then).
	IsTerminal func() bool
	Getenv     func(string) string

	// Global flags.
	Name        string
	Region      string
	EndpointURL string
	Namespace   string
	Principal   string

	// CacheTTL is the store's Options.CacheTTL (0: its default); serve
	// sets it from --config-cache-ttl before the store is built.
	CacheTTL time.Duration

	// Code, when set, is where deploy and lambda-export take the functions'
	// zips from (tests); see functionCode. PollInterval, when set, is how
	// often stack commands ask CloudFormation (tests).
	Code         stack.Code
	PollInterval time.Duration

	cfg   *aws.Config
	db    *dynamodb.Client
	s3    *s3.Client
	store *store.Store
	notes []string // printed on stderr after a command that succeeds
}

func newEnv(in io.Reader, out, errw io.Writer, getenv func(string) string) *Env {
	return &Env{
		In: in, Out: out, Err: errw,
		IsTerminal: func() bool { return isTerminal(in) },
		Getenv:     getenv,
	}
}

// isTerminal reports whether r (a reader or writer) is an interactive
// terminal (not /dev/null, a pipe or a file).
func isTerminal(r any) bool {
	f, ok := r.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// AWSConfig loads the SDK config once, with the endpoint and dummy-credential
// rules of awsenv.
func (e *Env) AWSConfig(ctx context.Context) (aws.Config, error) {
	if e.cfg == nil {
		cfg, err := awsenv.Load(ctx, awsenv.Options{Region: e.Region, EndpointURL: e.EndpointURL, Logger: logging.Nop{}})
		if err != nil {
			return aws.Config{}, err
		}
		e.cfg = &cfg
	}
	return *e.cfg, nil
}

// DynamoDB returns the DynamoDB client, built once.
// credentials resolves the AWS credentials once (they are cached after), so
// that a machine without any fails as a setup error before any budget runs.
func (e *Env) credentials(ctx context.Context) error {
	cfg, err := e.AWSConfig(ctx)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := cfg.Credentials.Retrieve(ctx); err != nil {
		return fmt.Errorf("no usable AWS credentials (configure a profile or AWS_ACCESS_KEY_ID, or pass --endpoint-url for a local DynamoDB): %w", err)
	}
	return nil
}

func (e *Env) DynamoDB(ctx context.Context) (*dynamodb.Client, error) {
	if e.db == nil {
		cfg, err := e.AWSConfig(ctx)
		if err != nil {
			return nil, err
		}
		e.db = awsenv.NewDynamoDB(cfg)
	}
	return e.db, nil
}

// Store returns the admin store of the table named by --name.
func (e *Env) Store(ctx context.Context) (*store.Store, error) {
	if e.store != nil {
		return e.store, nil
	}
	if err := validateTableName(e.Name); err != nil {
		return nil, err
	}
	db, err := e.DynamoDB(ctx)
	if err != nil {
		return nil, err
	}
	e.store = store.New(db, store.Options{Table: e.Name, PrincipalFunc: e.principal, CacheTTL: e.CacheTTL})
	return e.store, nil
}

var tableNameRe = regexp.MustCompile(`^[A-Za-z0-9_.-]{3,255}$`)

// validateTableName checks --name as a DynamoDB table name. The stricter
// CloudFormation stack-name rules are deploy's business: data commands also
// work on tables created by other means.
func validateTableName(n string) error {
	if !tableNameRe.MatchString(n) {
		return limits.Invalid("name", n, "must be 3 to 255 letters, digits, '_', '-' or '.'")
	}
	return nil
}

// principal resolves the audit principal: --principal, ZAEL_PRINCIPAL, the
// caller's ARN on real AWS (never with a custom endpoint), else "unknown".
func (e *Env) principal(ctx context.Context) (string, error) {
	if e.Principal != "" {
		return e.Principal, nil
	}
	if p := e.Getenv(principalEnv); p != "" {
		return p, nil
	}
	cfg, err := e.AWSConfig(ctx)
	if err != nil || awsenv.IsLocal(cfg) {
		return unknownPrincipal, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := sts.NewFromConfig(cfg).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil || out.Arn == nil {
		return unknownPrincipal, nil
	}
	return *out.Arn, nil
}

// endpoint describes where the table lives, for messages.
func (e *Env) endpoint() string {
	if e.cfg != nil {
		if ep := awsenv.DynamoDBEndpoint(*e.cfg); ep != "" {
			return ep
		}
		if e.cfg.Region != "" {
			return "AWS region " + e.cfg.Region
		}
	}
	if e.EndpointURL != "" {
		return e.EndpointURL
	}
	return "AWS"
}

// tableErr turns a missing table into one clear line.
func (e *Env) tableErr(err error) error {
	var rnf *types.ResourceNotFoundException
	if errors.As(err, &rnf) {
		return fmt.Errorf("table %q not found at %s: run 'zae-limiter local up' or 'zae-limiter deploy'", e.Name, e.endpoint())
	}
	return err
}

// readNS opens the --namespace for a read. A namespace never registered is
// an empty namespace (ns == nil, nil error): reads print an empty result and
// register nothing. A bad name is an error naming it.
func (e *Env) readNS(ctx context.Context) (*store.NS, error) {
	st, err := e.Store(ctx)
	if err != nil {
		return nil, err
	}
	ns, err := st.Namespace(ctx, e.Namespace)
	switch {
	case err == nil:
		return ns, nil
	case errors.Is(err, limits.ErrNotFound):
		if err := limits.ValidateNamespaceName(e.Namespace); err != nil {
			return nil, err
		}
		if e.Namespace != defaultNamespace {
			// A typo in -N would otherwise read as an empty namespace.
			e.note(fmt.Sprintf("namespace %q is not registered", e.Namespace))
		}
		return nil, nil
	}
	return nil, e.tableErr(err)
}

// writeNS opens the --namespace for a write, registering it on first use
// (as the reference's data commands do) and saying so on stderr, so a typo
// in -N is seen at once.
func (e *Env) writeNS(ctx context.Context) (*store.NS, error) {
	st, err := e.Store(ctx)
	if err != nil {
		return nil, err
	}
	// A bad principal fails every write; check it before registering.
	if _, err := st.Principal(ctx); err != nil {
		return nil, err
	}
	ns, err := st.Namespace(ctx, e.Namespace)
	if errors.Is(err, limits.ErrNotFound) {
		if err := limits.ValidateNamespaceName(e.Namespace); err != nil {
			return nil, err
		}
		reg, rerr := st.RegisterNamespace(ctx, e.Namespace)
		switch {
		case rerr == nil && e.Namespace != defaultNamespace:
			e.progress("Registered namespace %q (id %s)", e.Namespace, reg.ID)
		case rerr != nil && !errors.Is(rerr, limits.ErrExists):
			return nil, e.tableErr(rerr)
		}
		ns, err = st.Namespace(ctx, e.Namespace)
	}
	if err != nil {
		return nil, e.tableErr(err)
	}
	return ns, nil
}

// requireYes is the parse-time check of destructive commands: without --yes
// they need a terminal to ask on.
func (e *Env) requireYes(yes bool) error {
	if !yes && !e.IsTerminal() {
		return usageErrorf("--yes is required when not running interactively")
	}
	return nil
}

// confirm asks a y/N question on the terminal unless yes is set.
func (e *Env) confirm(yes bool, question string) error {
	if yes {
		return nil
	}
	if !e.IsTerminal() {
		return usageErrorf("--yes is required when not running interactively")
	}
	fmt.Fprintf(e.Err, "%s [y/N]: ", question)
	line, _ := bufio.NewReader(e.In).ReadString('\n')
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "y", "yes":
		return nil
	}
	return errCancelled
}

// nsDeletion is what a delete command on the --namespace handle gives
// Env.deleteInNS.
type nsDeletion struct {
	yes      bool   // --yes: do not ask
	question string // the confirmation question
	noNS     string // the line when the namespace does not exist: nothing to delete
	notFound string // the line when del finds nothing to delete
	del      func(*store.NS) error
}

// deleteInNS is the flow of the delete commands on the --namespace handle:
// open it for a read, confirm, delete. Nothing to delete is not an error: it
// prints noNS or notFound on stderr and reports false. When it reports true
// the caller prints its success line.
func (e *Env) deleteInNS(ctx context.Context, d nsDeletion) (deleted bool, err error) {
	ns, err := e.readNS(ctx)
	if err != nil {
		return false, err
	}
	if ns == nil {
		e.progress("%s", d.noNS)
		return false, nil
	}
	if err := e.confirm(d.yes, d.question); err != nil {
		return false, err
	}
	err = d.del(ns)
	if errors.Is(err, limits.ErrNotFound) {
		e.progress("%s", d.notFound)
		return false, nil
	}
	if err != nil {
		return false, e.tableErr(err)
	}
	return true, nil
}

// note keeps a line for stderr after a command that succeeds (a failing
// one prints its one error line only).
func (e *Env) note(line string) { e.notes = append(e.notes, line) }

// progress prints a progress or success line on stderr.
func (e *Env) progress(format string, a ...any) {
	fmt.Fprintf(e.Err, format+"\n", a...)
}
