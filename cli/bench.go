package cli

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/spf13/cobra"

	"github.com/zeroae/zae-limiter-go/client"
	"github.com/zeroae/zae-limiter-go/shared/awsenv"
	"github.com/zeroae/zae-limiter-go/shared/dynamo"
	"github.com/zeroae/zae-limiter-go/shared/limiter"
	"github.com/zeroae/zae-limiter-go/shared/limits"
	"github.com/zeroae/zae-limiter-go/shared/loadgen"
	"github.com/zeroae/zae-limiter-go/shared/schema"
	"github.com/zeroae/zae-limiter-go/shared/shard"
	"github.com/zeroae/zae-limiter-go/shared/store"
)

type benchOptions struct {
	env         *Env
	EntityID    string
	Resource    string
	Cascade     bool
	Concurrency int
	Requests    int
	Duration    time.Duration
	Consume     map[string]int64
	Limits      []limits.Limit
	Baseline    bool
	Direct      bool
	Warmup      int
	URL         string
	Token       string
	SigV4       bool
	NoSetup     bool
	NoCache     bool
	Output      outputFormat
}

// benchLimits are set up when -l is not given: high enough that nothing is
// rejected, so the run measures the admitted path.
var benchLimits = []limits.Limit{
	limits.PerMinute("rpm", 100_000_000, 0),
	limits.PerMinute("tpm", 100_000_000, 0),
}

func newCmdBench(env *Env, runF func(*benchOptions) error) *cobra.Command {
	opts := &benchOptions{env: env}
	var consume, specs []string
	cmd := &cobra.Command{
		Use:   "bench [--entity ID] [--resource RES] [--cascade] --concurrency N (--requests N | --duration D)",
		Short: "Load-test acquire on the in-process limiter and report latency and DynamoDB cost",
		Long: `Run acquires from concurrent workers against one bucket and report admitted and rejected
counts, p50/p99 latency, throughput and the DynamoDB requests each acquire cost (counted on the wire).
Unless -l is given it first sets limits on the entity high enough that nothing is rejected; with
--cascade it makes the entity a cascading child of "<entity>-parent". With --baseline every worker
alternates the acquire with the same conditional UpdateItem issued directly on an item of the same
shape, and with a plain ADD on a bare item, so the three are measured under the same conditions.`,
		Example: `  zae-limiter bench --concurrency 16 --requests 5000 -o json
  zae-limiter bench --entity key-1 --resource gpt-4 --cascade --concurrency 8 --duration 20s
  zae-limiter bench --concurrency 1 --requests 3000 --baseline`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := validateTarget(opts.EntityID, opts.Resource); err != nil {
				return err
			}
			if opts.Concurrency < 1 {
				return usageErrorf("--concurrency must be at least 1")
			}
			if opts.Requests < 0 {
				return usageErrorf("--requests must be at least 1")
			}
			if opts.Duration < 0 {
				return usageErrorf("--duration must be positive")
			}
			if (opts.Requests > 0) == (opts.Duration > 0) {
				return usageErrorf("give exactly one of --requests and --duration")
			}
			var err error
			if opts.Consume, err = parseAmounts(consume); err != nil {
				return err
			}
			if len(opts.Consume) == 0 {
				opts.Consume = map[string]int64{"rpm": 1}
			}
			if opts.Limits, err = parseOptionalLimits(specs); err != nil {
				return err
			}
			if opts.Direct {
				opts.Baseline = true
			}
			if opts.Baseline && opts.URL != "" {
				return usageErrorf("--baseline measures DynamoDB directly and does not combine with --url")
			}
			if opts.Token == "" {
				opts.Token = env.Getenv("ZAEL_API_TOKEN")
			}
			if runF != nil {
				return runF(opts)
			}
			if opts.URL != "" {
				return benchURLRun(cmd.Context(), opts)
			}
			return benchRun(cmd.Context(), opts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.EntityID, "entity", "bench-entity", "entity `ID` to acquire for (e.g. --entity key-1)")
	f.StringVar(&opts.Resource, "resource", "bench", "`RESOURCE` to acquire on (e.g. --resource gpt-4)")
	f.BoolVar(&opts.Cascade, "cascade", false, "make the entity a cascading child of <entity>-parent (e.g. --cascade)")
	f.IntVarP(&opts.Concurrency, "concurrency", "C", 1, "number of concurrent workers `N` (e.g. --concurrency 16)")
	f.IntVar(&opts.Requests, "requests", 0, "stop after `N` acquires in total (e.g. --requests 3000)")
	f.DurationVar(&opts.Duration, "duration", 0, "stop after `D` (e.g. --duration 20s)")
	f.BoolVar(&opts.Baseline, "baseline", false, "alternate each acquire with a direct UpdateItem of the same shape and one on a bare item (e.g. --baseline)")
	f.IntVar(&opts.Warmup, "warmup", 0, "run `N` untimed rounds first, e.g. to let a fresh DynamoDB Local's JVM compile its hot paths (e.g. --warmup 1000)")
	f.BoolVar(&opts.Direct, "baseline-only", false, "run only the two direct UpdateItem baselines, for their throughput alone (e.g. --baseline-only)")
	f.StringVar(&opts.URL, "url", "", "drive the acquire API at `URL` through the Go client instead of the in-process limiter (e.g. --url http://127.0.0.1:8080)")
	f.StringVar(&opts.Token, "token", "", "bearer `TOKEN` for --url (e.g. --token s3cret; env ZAEL_API_TOKEN)")
	f.BoolVar(&opts.SigV4, "sigv4", false, "sign --url requests with SigV4 for an AWS_IAM Function URL, default credential chain (e.g. --url https://abc.lambda-url.us-east-1.on.aws --sigv4)")
	f.BoolVar(&opts.NoCache, "no-denial-cache", false, "write every denial to DynamoDB, to measure what the denial cache saves (e.g. -l rpm:10/day --requests 2000 --no-denial-cache)")
	f.BoolVar(&opts.NoSetup, "no-setup", false, "do not create entities or set limits first, when the API's table is out of reach (e.g. --url URL --no-setup)")
	addConsumeFlag(cmd, &consume, "per acquire (default rpm=1)")
	addLimitFlag(cmd, &specs)
	f.Lookup("limit").Usage = "`LIMIT` to set on the entity instead of the high defaults, repeatable (e.g. -l rpm:1000)"
	addOutputFlag(cmd, &opts.Output)
	return cmd
}

type benchReport struct {
	Acquires       int64            `json:"acquires"`
	Admitted       int64            `json:"admitted"`
	Rejected       int64            `json:"rejected"`
	Errors         int64            `json:"errors"`
	P50ms          float64          `json:"p50_ms"`
	P99ms          float64          `json:"p99_ms"`
	PerSecond      float64          `json:"acquires_per_second"`
	RequestsPerAcq *float64         `json:"ddb_requests_per_acquire,omitempty"`
	Requests       map[string]int64 `json:"ddb_requests,omitempty"`
	URL            string           `json:"url,omitempty"`
	Concurrency    int              `json:"concurrency"`
	Cascade        bool             `json:"cascade"`
	ElapsedSeconds float64          `json:"elapsed_seconds"`
	Baselines      []baselineReport `json:"baselines,omitempty"`
	FirstError     string           `json:"first_error,omitempty"`
}

type baselineReport struct {
	Name      string  `json:"name"`
	P50ms     float64 `json:"p50_ms"`
	P99ms     float64 `json:"p99_ms"`
	PerSecond float64 `json:"per_second"`
}

func benchRun(ctx context.Context, opts *benchOptions) error {
	env := opts.env
	ns, err := env.writeNS(ctx)
	if err != nil {
		return err
	}
	if err := benchSetup(ctx, env, ns, opts); err != nil {
		return env.tableErr(err)
	}
	cfg, err := env.AWSConfig(ctx)
	if err != nil {
		return err
	}
	// A client of its own whose every request is counted, for the limiter
	// and its config lookups alike.
	counter := &dynamo.Counter{}
	db := awsenv.NewDynamoDB(cfg, func(o *dynamodb.Options) { o.APIOptions = append(o.APIOptions, counter.Install) })
	cst := store.New(db, store.Options{Table: env.Name})
	cns, err := cst.Namespace(ctx, env.Namespace)
	if err != nil {
		return env.tableErr(err)
	}
	lim := limiter.New(db, cns, limiter.Options{Table: env.Name, Namespace: ns.ID, NoDenialCache: opts.NoCache})
	req := limiter.Request{EntityID: opts.EntityID, Resource: opts.Resource, Consume: opts.Consume, Limits: opts.Limits}
	acquire := loadgen.Op{Name: "acquire", Do: func(ctx context.Context) (bool, error) {
		lease, err := lim.Acquire(ctx, req)
		var ex *limits.ExceededError
		if errors.As(err, &ex) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		return true, lease.Commit(ctx)
	}}
	// Warm up: create the bucket and fill the caches, then count from zero.
	// The warm-up's tokens are given back: the run sees the whole limit.
	lease, err := lim.Acquire(ctx, req)
	var ex *limits.ExceededError
	switch {
	case err == nil:
		err = lease.Rollback(ctx)
	case errors.As(err, &ex):
		err = nil
	}
	if err != nil {
		return env.tableErr(err)
	}
	ops := []loadgen.Op{acquire}
	if opts.Baseline {
		base, err := benchBaselines(ctx, env, ns.ID, opts)
		if err != nil {
			return err
		}
		ops = append(ops, base...)
		if opts.Direct {
			ops = base
		}
	}
	if opts.Warmup > 0 {
		loadgen.Run(ctx, loadgen.Options{Concurrency: opts.Concurrency, Requests: opts.Warmup}, ops...)
	}
	counter.Reset()
	results := loadgen.Run(ctx, loadgen.Options{
		Concurrency: opts.Concurrency, Requests: opts.Requests, Duration: opts.Duration,
		Progress:      progressLine(env),
		ProgressEvery: progressEvery(env),
	}, ops...)
	if isTerminal(env.Err) {
		fmt.Fprintln(env.Err)
	}
	return writeBenchReport(env, opts, results, counter)
}

// benchURLRun drives the acquire API through the Go client. An HTTP lease
// that is never released costs no write, so each acquire is measured alone.
func benchURLRun(ctx context.Context, opts *benchOptions) error {
	env := opts.env
	if !opts.NoSetup {
		ns, err := env.writeNS(ctx)
		if err != nil {
			return err
		}
		if err := benchSetup(ctx, env, ns, opts); err != nil {
			return env.tableErr(err)
		}
	}
	copts := []client.Option{client.WithNamespace(env.Namespace), client.WithRetry(0, 0)}
	switch {
	case opts.SigV4:
		copts = append(copts, client.WithDefaultCredentials())
	case opts.Token != "":
		copts = append(copts, client.WithBearerToken(opts.Token))
	}
	c, err := client.New(opts.URL, copts...)
	if err != nil {
		return err
	}
	req := client.Request{EntityID: opts.EntityID, Resource: opts.Resource, Consume: opts.Consume}
	acquire := loadgen.Op{Name: "acquire", Do: func(ctx context.Context) (bool, error) {
		_, err := c.Acquire(ctx, req)
		if errors.Is(err, client.ErrRateLimited) {
			return false, nil
		}
		return err == nil, err
	}}
	// A first acquire checks the URL and the token; its tokens are given
	// back, as the in-process bench's warm-up's are: the run sees the
	// whole limit.
	switch lease, err := c.Acquire(ctx, req); {
	case err == nil:
		if err := lease.Rollback(ctx); err != nil {
			return err
		}
	case !errors.Is(err, client.ErrRateLimited):
		return err
	}
	results := loadgen.Run(ctx, loadgen.Options{
		Concurrency: opts.Concurrency, Requests: opts.Requests, Duration: opts.Duration,
		Progress: progressLine(env), ProgressEvery: progressEvery(env),
	}, acquire)
	if isTerminal(env.Err) {
		fmt.Fprintln(env.Err)
	}
	return writeBenchReport(env, opts, results, nil)
}

// writeBenchReport prints the results; counter is nil over HTTP (the
// DynamoDB requests happen in the server).
func writeBenchReport(env *Env, opts *benchOptions, results []loadgen.Result, counter *dynamo.Counter) error {
	r := results[0]
	rep := benchReport{
		Acquires: r.Acquires, Admitted: r.Admitted, Rejected: r.Rejected, Errors: r.Errors,
		P50ms: ms(r.P50), P99ms: ms(r.P99), PerSecond: round2(r.PerSecond),
		Concurrency: opts.Concurrency, Cascade: opts.Cascade, URL: opts.URL,
		ElapsedSeconds: round2(r.Elapsed.Seconds()),
	}
	if counter != nil && r.Acquires > 0 && !opts.Direct {
		rep.Requests = counter.Snapshot()
		per := math.Round(float64(counter.Count(""))/float64(r.Acquires)*1000) / 1000
		rep.RequestsPerAcq = &per
	}
	if r.FirstErr != nil {
		rep.FirstError = oneLine(r.FirstErr)
	}
	for _, b := range results[1:] {
		rep.Baselines = append(rep.Baselines, baselineReport{Name: b.Name, P50ms: ms(b.P50), P99ms: ms(b.P99), PerSecond: round2(b.PerSecond)})
	}
	if opts.Output.json() {
		return writeJSON(env.Out, rep)
	}
	t := newTable(env.Out, "METRIC", "VALUE")
	t.row("acquires", thousands(rep.Acquires))
	t.row("admitted", thousands(rep.Admitted))
	t.row("rejected", thousands(rep.Rejected))
	t.row("errors", thousands(rep.Errors))
	t.row("p50", fmt.Sprintf("%.2f ms", rep.P50ms))
	t.row("p99", fmt.Sprintf("%.2f ms", rep.P99ms))
	t.row("acquires/s", fmt.Sprintf("%.0f", rep.PerSecond))
	if rep.RequestsPerAcq != nil {
		t.row("DynamoDB requests/acquire", fmt.Sprintf("%.3f", *rep.RequestsPerAcq))
	}
	for _, b := range rep.Baselines {
		t.row(b.Name+" p50 / p99", fmt.Sprintf("%.2f / %.2f ms", b.P50ms, b.P99ms))
	}
	if rep.FirstError != "" {
		t.row("first error", rep.FirstError)
	}
	return t.flush()
}

// benchSetup creates the entities and limits the run needs.
func benchSetup(ctx context.Context, env *Env, ns *store.NS, opts *benchOptions) error {
	ls := opts.Limits
	if ls == nil {
		ls = benchLimits
	}
	ids := []string{opts.EntityID}
	if opts.Cascade {
		parent := opts.EntityID + "-parent"
		ids = append(ids, parent)
		if _, err := ns.CreateEntity(ctx, store.Entity{ID: parent}); err != nil && !errors.Is(err, limits.ErrExists) {
			return err
		}
		e, err := ns.CreateEntity(ctx, store.Entity{ID: opts.EntityID, ParentID: parent, Cascade: true})
		if errors.Is(err, limits.ErrExists) {
			if e, err = ns.GetEntity(ctx, opts.EntityID); err == nil && (!e.Cascade || e.ParentID != parent) {
				return fmt.Errorf("entity %q exists without cascading to %q: pick another --entity", opts.EntityID, parent)
			}
		}
		if err != nil {
			return err
		}
	}
	for _, id := range ids {
		if err := ns.SetLimits(ctx, id, opts.Resource, ls); err != nil {
			return err
		}
	}
	env.progress("Bench: %s on %s/%s (%s), %s", formatAmounts(opts.Consume), opts.EntityID, opts.Resource,
		strings.Join(limitSpecs(ls), " "), workers(opts.Concurrency))
	return nil
}

func workers(n int) string {
	if n == 1 {
		return "1 worker"
	}
	return strconv.Itoa(n) + " workers"
}

func limitSpecs(ls []limits.Limit) []string {
	out := make([]string, len(ls))
	for i, l := range ls {
		out[i] = l.String()
	}
	return out
}

// benchBaselines returns two direct UpdateItem ops on items of their own:
// one a copy of the bucket's shard 0 written with the same kind of
// conditional ADD an acquire sends, one a bare item with a single counter.
func benchBaselines(ctx context.Context, env *Env, nsID string, opts *benchOptions) ([]loadgen.Op, error) {
	db, err := env.DynamoDB(ctx)
	if err != nil {
		return nil, err
	}
	table := aws.String(env.Name)
	out, err := db.GetItem(ctx, &dynamodb.GetItemInput{TableName: table, Key: map[string]types.AttributeValue{
		schema.PK: dynamo.S(schema.BucketPK(nsID, opts.EntityID, opts.Resource, 0)), schema.SK: dynamo.S(schema.SKState)}})
	if err != nil || len(out.Item) == 0 {
		return nil, fmt.Errorf("read the bench bucket for the baseline: %v", err)
	}
	shape := out.Item
	shapeKey := map[string]types.AttributeValue{schema.PK: dynamo.S(nsID + "/BENCH#shape"), schema.SK: dynamo.S(schema.SKState)}
	bareKey := map[string]types.AttributeValue{schema.PK: dynamo.S(nsID + "/BENCH#bare"), schema.SK: dynamo.S(schema.SKState)}
	shape[schema.PK], shape[schema.SK] = shapeKey[schema.PK], shapeKey[schema.SK]
	delete(shape, schema.GSI3PK)
	delete(shape, schema.GSI4PK)
	if _, err := db.PutItem(ctx, &dynamodb.PutItemInput{TableName: table, Item: shape}); err != nil {
		return nil, err
	}
	bare := map[string]types.AttributeValue{schema.PK: bareKey[schema.PK], schema.SK: bareKey[schema.SK], "n": dynamo.N(0)}
	if _, err := db.PutItem(ctx, &dynamodb.PutItemInput{TableName: table, Item: bare}); err != nil {
		return nil, err
	}
	var names []string
	for name := range opts.Consume {
		names = append(names, name)
	}
	names = append(names, shard.Budget)
	shapeOp := func(ctx context.Context) (bool, error) {
		// The busy form of an acquire's write (shard.PlanTake), with
		// bounds that always hold: the same work for DynamoDB, no limiter.
		u := &dynamo.Update{}
		u.If("$ = ?", schema.AttrParams, shape[schema.AttrParams])
		for _, name := range names {
			w := schema.BucketAttr(name, schema.SuffixVirtualTime)
			u.If("$ > ? AND $ <= ?", w, int64(math.MinInt64/2), w, int64(math.MaxInt64/2))
			u.Add(w, int64(1000))
			if name != shard.Budget {
				u.Add(schema.BucketAttr(name, schema.SuffixConsumed), int64(1000))
			}
		}
		u.Set(schema.TTL, time.Now().Unix()+3600)
		_, err := db.UpdateItem(ctx, u.Input(env.Name, shapeKey))
		return err == nil, err
	}
	bareOp := func(ctx context.Context) (bool, error) {
		_, err := db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
			TableName: table, Key: bareKey,
			UpdateExpression:          aws.String("ADD #n :one"),
			ExpressionAttributeNames:  map[string]string{"#n": "n"},
			ExpressionAttributeValues: map[string]types.AttributeValue{":one": dynamo.N(1)},
		})
		return err == nil, err
	}
	return []loadgen.Op{{Name: "direct_update_same_shape", Do: shapeOp}, {Name: "direct_update_bare_item", Do: bareOp}}, nil
}

// progressLine redraws one status line on a terminal and prints a line per
// tick otherwise (logs, CI).
func progressLine(env *Env) func(loadgen.Progress) {
	tty := isTerminal(env.Err)
	return func(p loadgen.Progress) {
		rate := float64(p.Done) / math.Max(p.Elapsed.Seconds(), 1e-9)
		line := fmt.Sprintf("%8d acquires  %8d admitted  %6d rejected  %7.0f/s  %5.1fs", p.Done, p.Admitted, p.Rejected, rate, p.Elapsed.Seconds())
		if tty {
			fmt.Fprint(env.Err, "\r"+line)
		} else {
			fmt.Fprintln(env.Err, line)
		}
	}
}

func progressEvery(env *Env) time.Duration {
	if isTerminal(env.Err) {
		return 500 * time.Millisecond
	}
	return 5 * time.Second
}

func ms(d time.Duration) float64 { return math.Round(float64(d)/float64(time.Millisecond)*1000) / 1000 }

func round2(f float64) float64 { return math.Round(f*100) / 100 }
