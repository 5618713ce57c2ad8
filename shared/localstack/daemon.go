package localstack

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/zeroae/zae-limiter-go/shared/ddblocal"
	"github.com/zeroae/zae-limiter-go/shared/localstack/fnurl"
	"github.com/zeroae/zae-limiter-go/shared/localstack/invokeapi"
	"github.com/zeroae/zae-limiter-go/shared/localstack/router"
	"github.com/zeroae/zae-limiter-go/shared/localstack/s3local"
	"github.com/zeroae/zae-limiter-go/shared/localstack/samtpl"
	"github.com/zeroae/zae-limiter-go/shared/localstack/schedule"
	"github.com/zeroae/zae-limiter-go/shared/localstack/streams"
	"github.com/zeroae/zae-limiter-go/shared/proc"
)

// ReadyLine starts the daemon's last line on its progress pipe when it is
// ready; FailedLine when it gave up.
const (
	ReadyLine  = "READY "
	FailedLine = "FAILED "
)

// RunOptions configure the daemon.
type RunOptions struct {
	// Seed runs after the tables exist (and again after DynamoDB Local was
	// restarted), with the one endpoint: the product's own records.
	Seed func(ctx context.Context, endpoint string) error
	// Progress receives progress lines and finally ReadyLine or FailedLine.
	Progress io.Writer
	// Log is the daemon's own log (default: discard).
	Log *slog.Logger
	// SuperviseEvery is how often the servers are checked (default 500 ms).
	SuperviseEvery time.Duration
}

// daemon is a running stack.
type daemon struct {
	cfg   Config
	o     RunOptions
	paths Paths
	stack *samtpl.Stack
	log   *slog.Logger

	mu     sync.Mutex
	saveMu sync.Mutex // one writer of state.json at a time, newest snapshot last
	st     State
	ddbEP  string // current DynamoDB Local endpoint ("" while down)
	s3EP   string
	ddbP   *ddblocal.Process // started by this daemon (nil when adopted)
	s3P    *s3local.Process

	fns      map[string]*function // by folder name
	byName   map[string]*function // by FunctionName
	mappings []mappingStatus
	rules    []ruleStatus
	warnings []string
	servers  []*http.Server
	api      *invokeapi.API
	wg       sync.WaitGroup // the goroutines of runCtx
}

type mappingStatus struct {
	fn, event string
	m         *streams.Mapping
	dest      string
}

type ruleStatus struct {
	fn, event, expr string
	r               *schedule.Rule
}

// Run runs the stack named by the config until ctx ends, then stops it.
func Run(ctx context.Context, cfg Config, o RunOptions) (err error) {
	dir, err := StackDir(cfg.Name)
	if err != nil {
		return err
	}
	p := Paths{dir}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.SuperviseEvery <= 0 {
		o.SuperviseEvery = 500 * time.Millisecond
	}
	lk, err := lock(p.DaemonLock(), false)
	if errors.Is(err, errLocked) {
		return fmt.Errorf("a daemon already runs the local stack %q", cfg.Name)
	}
	if err != nil {
		return err
	}
	defer lk.Close()

	d := &daemon{cfg: cfg, o: o, paths: p, log: o.Log, fns: map[string]*function{}, byName: map[string]*function{}}
	defer func() {
		if err != nil {
			d.setPhase(PhaseFailed, err.Error())
			fmt.Fprintf(o.Progress, "%s%s\n", FailedLine, err)
		}
	}()
	tpl, err := samtpl.Parse([]byte(cfg.Template))
	if err != nil {
		return err
	}
	if d.stack, err = tpl.Load(samtpl.Options{StackName: cfg.Name, Parameters: cfg.Parameters}); err != nil {
		return fmt.Errorf("%s: %w", cfg.TemplateFile, err)
	}
	d.warnings = append(d.warnings, d.stack.Warnings...)

	prev, _ := ReadState(cfg.Name) // servers a crashed daemon left running are adopted
	d.st = State{Name: cfg.Name, Phase: PhaseStarting, DaemonPID: os.Getpid(), StartedAt: time.Now().UTC().Truncate(time.Second),
		DynamoDB: prev.DynamoDB, S3: prev.S3, S3Keys: prev.S3Keys, Persist: cfg.Persist, Port: prev.Port, URLs: prev.URLs}
	if d.st.S3Keys.AccessKey == "" {
		d.st.S3Keys.AccessKey, d.st.S3Keys.SecretKey = "zael"+randomHex(8), randomHex(32)
	}
	if err := d.save(); err != nil {
		return err
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer d.shutdown()
	defer d.wg.Wait()
	defer cancel()

	// The two servers start side by side (a JVM's start-up dominates).
	s3Err := make(chan error, 1)
	go func() { s3Err <- d.startS3(ctx) }()
	ddbErr := d.startDynamoDB(ctx)
	if err := errors.Join(ddbErr, <-s3Err); err != nil {
		return err
	}
	if err := d.listen(); err != nil {
		return err
	}
	if err := d.createTables(ctx); err != nil {
		return err
	}
	if err := d.createBuckets(ctx); err != nil {
		return err
	}
	if err := d.startFunctions(runCtx); err != nil {
		return err
	}
	if err := d.startTriggers(runCtx); err != nil {
		return err
	}
	if err := d.startURLs(); err != nil {
		return err
	}
	d.goRun(func() { d.supervise(runCtx) })
	d.setPhase(PhaseReady, "")
	fmt.Fprintf(o.Progress, "%s%s\n", ReadyLine, d.st.Endpoint)
	<-ctx.Done()
	d.setPhase(PhaseStopping, "")
	return nil
}

func (d *daemon) warn(msg string) {
	d.mu.Lock()
	d.warnings = append(d.warnings, msg)
	d.mu.Unlock()
	d.progress("Note: %s", msg)
}

// goRun runs f in a goroutine Run waits for.
func (d *daemon) goRun(f func()) {
	d.wg.Add(1)
	go func() { defer d.wg.Done(); f() }()
}

func (d *daemon) save() error {
	d.saveMu.Lock()
	defer d.saveMu.Unlock()
	d.mu.Lock()
	st := d.st
	d.mu.Unlock()
	return writeJSON(d.paths.State(), st, 0o600)
}

func (d *daemon) setPhase(phase, msg string) {
	d.mu.Lock()
	d.st.Phase, d.st.Error = phase, msg
	d.mu.Unlock()
	_ = d.save()
}

func (d *daemon) progress(format string, a ...any) {
	fmt.Fprintf(d.o.Progress, format+"\n", a...)
	d.log.Info(fmt.Sprintf(format, a...))
}

// startDynamoDB adopts the DynamoDB Local a previous daemon left running,
// or starts one (on its previous port when it had one).
func (d *daemon) startDynamoDB(ctx context.Context) error {
	prev := d.st.DynamoDB
	if prev.PID != 0 && ddblocal.IsDynamoDBLocal(prev.PID) && ddblocal.Ping(ctx, prev.Endpoint) == nil {
		d.progress("Adopted the running DynamoDB Local (pid %d) on port %d; its data is kept", prev.PID, prev.Port)
		d.mu.Lock()
		d.ddbEP = prev.Endpoint
		d.mu.Unlock()
		return nil
	}
	o := ddblocal.Options{JarDir: d.cfg.DynamoDBJarDir, SharedDB: true, LogFile: d.paths.DynamoDBLog(), Port: reusablePort(prev.Port)}
	if d.cfg.Persist {
		o.DBPath = d.paths.DynamoDBData()
		if err := os.MkdirAll(o.DBPath, 0o700); err != nil {
			return err
		}
	}
	p, err := ddblocal.Start(ctx, o)
	if err != nil && o.Port != 0 {
		o.Port = 0
		p, err = ddblocal.Start(ctx, o)
	}
	if err != nil {
		return fmt.Errorf("start DynamoDB Local: %w", err)
	}
	d.mu.Lock()
	d.ddbP, d.ddbEP = p, p.Endpoint
	d.st.DynamoDB = Server{PID: p.PID, Port: p.Port, Endpoint: p.Endpoint, LogFile: p.LogFile}
	d.mu.Unlock()
	d.progress("Started DynamoDB Local (pid %d) on port %d", p.PID, p.Port)
	return d.save()
}

// reusablePort returns port when it is free on every interface, else 0.
func reusablePort(port int) int {
	if port == 0 {
		return 0
	}
	l, err := net.Listen("tcp", ":"+strconv.Itoa(port))
	if err != nil {
		return 0
	}
	l.Close()
	return port
}

func (d *daemon) startS3(ctx context.Context) error {
	prev := d.st.S3
	if prev.PID != 0 && s3local.IsVersity(prev.PID) && s3local.Ping(ctx, prev.Endpoint) == nil {
		d.progress("Adopted the running S3 server (pid %d) on port %d", prev.PID, prev.Port)
		d.mu.Lock()
		d.s3EP = prev.Endpoint
		d.mu.Unlock()
		return nil
	}
	p, err := s3local.Start(ctx, s3local.Options{
		Binary: d.cfg.S3Binary, Dir: d.paths.S3Data(), Port: reusablePort(prev.Port), LogFile: d.paths.S3Log(),
		AccessKey: d.st.S3Keys.AccessKey, SecretKey: d.st.S3Keys.SecretKey,
	})
	if err != nil {
		return fmt.Errorf("start the S3 server: %w", err)
	}
	d.mu.Lock()
	d.s3P, d.s3EP = p, p.Endpoint
	d.st.S3 = Server{PID: p.PID, Port: p.Port, Endpoint: p.Endpoint, LogFile: d.paths.S3Log()}
	d.mu.Unlock()
	d.progress("Started the S3 server (versitygw, pid %d) on port %d", p.PID, p.Port)
	return d.save()
}

func (d *daemon) dynamoEndpoint() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.ddbEP
}

func (d *daemon) s3Endpoint() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.s3EP
}

// listen starts the one endpoint on 127.0.0.1.
func (d *daemon) listen() error {
	port := d.cfg.Port
	if port == 0 {
		port = d.st.Port // the port users exported last time
	}
	if port == 0 {
		port = DefaultPort
	}
	ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil && d.cfg.Port == 0 {
		d.progress("Port %d is in use; using a free port", port)
		ln, err = net.Listen("tcp", "127.0.0.1:0")
	}
	if err != nil {
		return fmt.Errorf("listen on 127.0.0.1:%d for the endpoint: %w", port, err)
	}
	endpoint := "http://127.0.0.1:" + strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	if err := d.prepareFunctions(endpoint); err != nil {
		ln.Close()
		return err
	}
	d.api = invokeapi.New(invokeapi.Options{
		Lookup: func(name string) (invokeapi.Function, bool) {
			f, ok := d.byName[name]
			return f, ok
		},
		List: func() []invokeapi.Function {
			var out []invokeapi.Function
			for _, f := range d.sortedFunctions() {
				out = append(out, f)
			}
			return out
		},
		Log: d.log,
	})
	rt := router.New(router.Options{
		DynamoDB: d.dynamoEndpoint, S3: d.s3Endpoint, Lambda: d.api, Control: http.HandlerFunc(d.control),
		S3Credentials: aws.Credentials{AccessKeyID: d.st.S3Keys.AccessKey, SecretAccessKey: d.st.S3Keys.SecretKey},
		Log:           d.log,
	})
	d.serve(ln, rt)
	d.mu.Lock()
	d.st.Port, d.st.Endpoint = ln.Addr().(*net.TCPAddr).Port, endpoint
	d.mu.Unlock()
	d.progress("The one endpoint listens on %s", d.st.Endpoint)
	return d.save()
}

func (d *daemon) serve(ln net.Listener, h http.Handler) {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	d.servers = append(d.servers, srv)
	go func() { _ = srv.Serve(ln) }()
}

// awsConfig is an SDK configuration for the stack's servers through the
// one endpoint.
func (d *daemon) awsConfig() aws.Config {
	return aws.Config{
		Region:       samtpl.Region,
		Credentials:  credentials.NewStaticCredentialsProvider(dummyKey, dummyKey, ""),
		BaseEndpoint: aws.String(d.st.Endpoint),
	}
}

// tableProps are the CloudFormation table properties that are also
// CreateTable's.
var tableProps = []string{"TableName", "AttributeDefinitions", "KeySchema", "GlobalSecondaryIndexes",
	"LocalSecondaryIndexes", "BillingMode", "ProvisionedThroughput", "StreamSpecification"}

// createTables creates the template's tables (idempotent), enables their
// TTL, then runs the seed.
func (d *daemon) createTables(ctx context.Context) error {
	db := dynamodb.NewFromConfig(d.awsConfig(), func(o *dynamodb.Options) { o.DisableValidateResponseChecksum = true })
	for _, t := range d.stack.Tables {
		props := map[string]any{}
		for _, k := range tableProps {
			if v, ok := t.Properties[k]; ok {
				props[k] = v
			}
		}
		props["TableName"] = t.Name
		if ss, ok := props["StreamSpecification"].(map[string]any); ok {
			ss["StreamEnabled"] = true
		}
		if _, ok := props["BillingMode"]; !ok {
			props["BillingMode"] = "PAY_PER_REQUEST"
		}
		b, _ := json.Marshal(props)
		var in dynamodb.CreateTableInput
		if err := json.Unmarshal(b, &in); err != nil {
			return fmt.Errorf("table %s: %w", t.LogicalID, err)
		}
		_, err := db.CreateTable(ctx, &in)
		var inUse *types.ResourceInUseException
		switch {
		case errors.As(err, &inUse):
		case err != nil:
			return fmt.Errorf("create table %s: %w", t.Name, err)
		default:
			d.progress("Created table %s", t.Name)
		}
		if ttl, ok := t.Properties["TimeToLiveSpecification"].(map[string]any); ok && ttl["Enabled"] == true {
			attr, _ := ttl["AttributeName"].(string)
			_, err := db.UpdateTimeToLive(ctx, &dynamodb.UpdateTimeToLiveInput{TableName: aws.String(t.Name),
				TimeToLiveSpecification: &types.TimeToLiveSpecification{AttributeName: aws.String(attr), Enabled: aws.Bool(true)}})
			if err != nil && !isTTLAlreadyOn(err) {
				return fmt.Errorf("enable TTL on %s: %w", t.Name, err)
			}
		}
	}
	if d.o.Seed != nil {
		if err := d.o.Seed(ctx, d.st.Endpoint); err != nil {
			return fmt.Errorf("seed the tables: %w", err)
		}
	}
	return nil
}

func isTTLAlreadyOn(err error) bool {
	var ve interface{ ErrorMessage() string }
	return errors.As(err, &ve) && (ve.ErrorMessage() == "TimeToLive is already enabled")
}

func (d *daemon) createBuckets(ctx context.Context) error {
	c := s3.NewFromConfig(d.awsConfig(), func(o *s3.Options) { o.UsePathStyle = true })
	for _, b := range d.stack.Buckets {
		_, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(b.Name)})
		var owned *s3types.BucketAlreadyOwnedByYou
		var exists *s3types.BucketAlreadyExists
		switch {
		case errors.As(err, &owned), errors.As(err, &exists):
		case err != nil:
			return fmt.Errorf("create bucket %s: %w", b.Name, err)
		default:
			d.progress("Created bucket %s", b.Name)
		}
	}
	return nil
}

// prepareFunctions creates the template's functions, not yet started; the
// maps are fixed from then on (the endpoint reads them concurrently).
func (d *daemon) prepareFunctions(endpoint string) error {
	inst := max(d.cfg.Instances, 1)
	for _, spec := range d.stack.Functions {
		log, _, err := openLog(d.paths.FunctionLog(spec.Name))
		if err != nil {
			return err
		}
		f := &function{
			spec: spec, binary: filepath.Join(d.cfg.FunctionsDir, spec.Name, "bootstrap"),
			env: environ(spec, d.cfg, endpoint), log: log, logFile: d.paths.FunctionLog(spec.Name), inst: inst,
		}
		d.fns[spec.Name], d.byName[spec.FunctionName] = f, f
	}
	return nil
}

func (d *daemon) startFunctions(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, f := range d.sortedFunctions() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			if err := f.start(ctx); err != nil {
				d.progress("Function %s is not running: %v", f.spec.Name, err)
				return
			}
			d.progress("Function %s (%s) runs: %d instance(s), ready in %v", f.spec.Name, f.spec.FunctionName, f.inst,
				time.Since(start).Round(time.Millisecond))
		}()
	}
	wg.Wait()
	for _, f := range d.fns {
		d.goRun(func() { f.supervise(ctx) })
	}
	return nil
}

func (d *daemon) tableName(logicalID string) string {
	for _, t := range d.stack.Tables {
		if t.LogicalID == logicalID {
			return t.Name
		}
	}
	return ""
}

func (d *daemon) startTriggers(ctx context.Context) error {
	for _, f := range d.sortedFunctions() {
		spec := f.spec
		for _, ev := range spec.Streams {
			if !ev.Enabled {
				d.warn(fmt.Sprintf("function %s: stream event %s is disabled", spec.Name, ev.Name))
				continue
			}
			dest := ""
			if ev.OnFailure != nil {
				id := ev.OnFailure.LogicalID
				if id == "" {
					id = spec.Name + "-" + ev.Name + "-on-failure"
				}
				dest = d.paths.Destination(id)
			}
			m, err := streams.New(streams.Options{
				Config: streams.Config{
					BatchSize: ev.BatchSize, MaxBatchingWindow: ev.MaxBatchingWindow, Filters: ev.Filters, Bisect: ev.Bisect,
					MaxRetryAttempts: ev.MaxRetryAttempts, MaxRecordAge: ev.MaxRecordAge,
					ReportBatchItemFailures: ev.ReportBatchItemFailures, StartingPosition: ev.StartingPosition,
				},
				Table: d.tableName(ev.Table), Endpoint: d.dynamoEndpoint, Function: f, FunctionARN: spec.ARN,
				OnFailure: destinationWriter(dest), CheckpointFile: d.paths.Checkpoint(spec.Name, ev.Name), Log: d.log,
			})
			if err != nil {
				return fmt.Errorf("function %s: stream event %s: %w", spec.Name, ev.Name, err)
			}
			d.mu.Lock()
			d.mappings = append(d.mappings, mappingStatus{fn: spec.Name, event: ev.Name, m: m, dest: dest})
			d.mu.Unlock()
			d.goRun(func() { m.Run(ctx) })
			d.progress("Function %s reads the stream of table %s (event %s)", spec.Name, d.tableName(ev.Table), ev.Name)
		}
		for _, ev := range spec.Schedules {
			every, err := schedule.ParseRate(ev.Expression)
			if err != nil {
				d.warn(fmt.Sprintf("function %s: schedule %s: %v", spec.Name, ev.Name, err))
				continue
			}
			if !ev.Enabled {
				continue
			}
			if d.cfg.ScheduleEvery > 0 {
				every = d.cfg.ScheduleEvery
			}
			r, err := schedule.New(schedule.Options{
				RuleName: d.cfg.Name + "-" + spec.LogicalID + ev.Name, Every: every, Input: ev.Input,
				Function: f, FunctionName: spec.FunctionName, Log: d.log,
			})
			if err != nil {
				return err
			}
			d.mu.Lock()
			d.rules = append(d.rules, ruleStatus{fn: spec.Name, event: ev.Name, expr: ev.Expression, r: r})
			d.mu.Unlock()
			d.goRun(func() { r.Run(ctx) })
			d.progress("Function %s runs every %v (schedule %s: %s)", spec.Name, every, ev.Name, ev.Expression)
		}
	}
	return nil
}

// destinationWriter appends failures to a JSON Lines file, the local
// stand-in for the on-failure queue.
func destinationWriter(file string) func(context.Context, streams.Failure) error {
	if file == "" {
		return nil
	}
	var mu sync.Mutex
	return func(_ context.Context, f streams.Failure) error {
		b, err := json.Marshal(f)
		if err != nil {
			return err
		}
		mu.Lock()
		defer mu.Unlock()
		if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
			return err
		}
		out, err := os.OpenFile(file, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return err
		}
		_, err = out.Write(append(b, '\n'))
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		return err
	}
}

// startURLs serves each function that has a Function URL on its own port.
func (d *daemon) startURLs() error {
	first := true
	for _, f := range d.sortedFunctions() {
		if f.spec.URL == nil {
			continue
		}
		port := 0
		if first && d.cfg.URLPort != 0 {
			port = d.cfg.URLPort
		} else if u := d.st.URLs[f.spec.Name]; u != "" {
			port = reusableURLPort(u)
		}
		first = false
		ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err != nil {
			return fmt.Errorf("function %s: listen for its Function URL: %w", f.spec.Name, err)
		}
		auth := d.cfg.URLAuth
		if auth == "" {
			auth = fnurl.AuthNone
		}
		d.serve(ln, fnurl.New(fnurl.Options{
			Function: f, AuthType: auth, AccountID: samtpl.AccountID, URLID: f.spec.Name,
			Secret: func(ak string) (string, bool) { return dummyKey, ak == dummyKey },
		}))
		url := "http://127.0.0.1:" + strconv.Itoa(ln.Addr().(*net.TCPAddr).Port) + "/"
		d.mu.Lock()
		if d.st.URLs == nil {
			d.st.URLs = map[string]string{}
		}
		d.st.URLs[f.spec.Name] = url
		d.mu.Unlock()
		d.progress("Function %s has its Function URL at %s (AuthType %s)", f.spec.Name, url, auth)
	}
	return d.save()
}

func reusableURLPort(url string) int {
	_, p, err := net.SplitHostPort(trimURL(url))
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(p)
	l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(n))
	if err != nil {
		return 0
	}
	l.Close()
	return n
}

func trimURL(u string) string {
	for _, p := range []string{"http://", "https://"} {
		if len(u) > len(p) && u[:len(p)] == p {
			u = u[len(p):]
		}
	}
	for i := 0; i < len(u); i++ {
		if u[i] == '/' {
			return u[:i]
		}
	}
	return u
}

func (d *daemon) sortedFunctions() []*function {
	var out []*function
	for _, spec := range d.stack.Functions {
		if f := d.fns[spec.Name]; f != nil {
			out = append(out, f)
		}
	}
	return out
}

// supervise restarts DynamoDB Local or the S3 server when they die or stop
// answering, re-creating what the template declares.
func (d *daemon) supervise(ctx context.Context) {
	ddbFails, s3Fails := 0, 0
	tick := time.NewTicker(d.o.SuperviseEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		d.mu.Lock()
		ddb, s3st := d.st.DynamoDB, d.st.S3
		d.mu.Unlock()
		if !proc.Alive(ddb.PID) || ddblocal.Ping(ctx, ddb.Endpoint) != nil {
			ddbFails++
		} else {
			ddbFails = 0
		}
		if ddbFails >= 3 || (ddbFails > 0 && !proc.Alive(ddb.PID)) {
			d.restartDynamoDB(ctx)
			ddbFails = 0
		}
		if !proc.Alive(s3st.PID) {
			s3Fails++
		} else {
			s3Fails = 0
		}
		if s3Fails > 0 {
			d.log.Warn("the S3 server is gone; starting it again", "pid", s3st.PID)
			if err := d.startS3(ctx); err == nil {
				_ = d.createBuckets(ctx)
			}
			s3Fails = 0
		}
	}
}

func (d *daemon) restartDynamoDB(ctx context.Context) {
	d.mu.Lock()
	old := d.st.DynamoDB
	d.ddbEP = ""
	d.mu.Unlock()
	d.log.Warn("DynamoDB Local is gone or hung; starting it again (in-memory data is lost)", "pid", old.PID)
	if ddblocal.IsDynamoDBLocal(old.PID) {
		_ = ddblocal.Stop(old.PID)
	}
	if err := d.startDynamoDB(ctx); err != nil {
		d.log.Error("restarting DynamoDB Local failed", "error", err.Error())
		return
	}
	if err := d.createTables(ctx); err != nil {
		d.log.Error("re-creating the tables failed", "error", err.Error())
	}
}

// shutdown stops everything the stack runs.
func (d *daemon) shutdown() {
	for _, s := range d.servers {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_ = s.Shutdown(ctx)
		cancel()
	}
	var wg sync.WaitGroup
	for _, f := range d.fns {
		wg.Add(1)
		go func() { defer wg.Done(); f.close() }()
	}
	wg.Wait()
	d.mu.Lock()
	ddb, s3st := d.st.DynamoDB, d.st.S3
	d.mu.Unlock()
	if ddb.PID != 0 && ddblocal.IsDynamoDBLocal(ddb.PID) {
		_ = ddblocal.Stop(ddb.PID)
	}
	if s3st.PID != 0 && s3local.IsVersity(s3st.PID) {
		_ = proc.Stop(s3st.PID, 3*time.Second)
	}
}

func randomHex(n int) string {
	b := make([]byte, n/2)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
