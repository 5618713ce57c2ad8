package streams

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zeroae/zae-limiter-go/shared/ddblocal/ddbtest"
	"github.com/zeroae/zae-limiter-go/shared/lambdarun"
)

var build struct {
	once sync.Once
	bin  string
	err  error
}

// streamfn builds the test function once per test process.
func streamfn(t *testing.T) string {
	t.Helper()
	build.once.Do(func() {
		dir, err := os.MkdirTemp("", "streamfn-")
		if err != nil {
			build.err = err
			return
		}
		build.bin = filepath.Join(dir, "streamfn", "bootstrap")
		build.err = lambdarun.Build(context.Background(), lambdarun.BuildOptions{
			Package: "./testdata/functions/streamfn", Output: build.bin, Dir: "..",
		})
	})
	require.NoError(t, build.err)
	return build.bin
}

type fixture struct {
	t      *testing.T
	table  string
	db     *dynamodb.Client
	sink   string
	runner *lambdarun.Runner
	failed []Failure
	mu     sync.Mutex
}

func newFixture(t *testing.T, instances int) *fixture {
	t.Helper()
	f := &fixture{t: t, table: ddbtest.NewTable(t), db: ddbtest.Client(t)}
	dir := t.TempDir()
	f.sink = filepath.Join(dir, "sink.jsonl")
	r, err := lambdarun.Start(context.Background(), lambdarun.Options{
		Binary: streamfn(t), Instances: instances, Timeout: 10 * time.Second,
		Env:    []string{"SINK=" + f.sink, "STATE_DIR=" + dir},
		Output: testWriter{t},
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = r.Close() })
	f.runner = r
	return f
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) { w.t.Logf("fn: %s", p); return len(p), nil }

// run starts a mapping for the fixture's function until the test ends.
func (f *fixture) run(c Config, mod ...func(*Options)) *Mapping {
	f.t.Helper()
	o := Options{
		Config: c, Table: f.table, Endpoint: func() string { return ddbtest.Endpoint(f.t) },
		Function: f.runner, FunctionARN: "arn:aws:lambda:us-east-1:123456789012:function:streamfn",
		OnFailure: func(_ context.Context, fl Failure) error {
			f.mu.Lock()
			f.failed = append(f.failed, fl)
			f.mu.Unlock()
			return nil
		},
		PollInterval: 20 * time.Millisecond, RetryBackoff: 10 * time.Millisecond,
	}
	for _, m := range mod {
		m(&o)
	}
	m, err := New(o)
	require.NoError(f.t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { m.Run(ctx); close(done) }()
	f.t.Cleanup(func() { cancel(); <-done })
	return m
}

func (f *fixture) put(key string, attrs map[string]types.AttributeValue) {
	f.t.Helper()
	item := map[string]types.AttributeValue{
		"PK": &types.AttributeValueMemberS{Value: key}, "SK": &types.AttributeValueMemberS{Value: "#BUCKET#" + key},
	}
	for k, v := range attrs {
		item[k] = v
	}
	_, err := f.db.PutItem(context.Background(), &dynamodb.PutItemInput{TableName: aws.String(f.table), Item: item})
	require.NoError(f.t, err)
}

func n(i int) types.AttributeValue { return &types.AttributeValueMemberN{Value: strconv.Itoa(i)} }

type sinkLine struct {
	PID     int `json:"pid"`
	Records []struct {
		Key          string `json:"key"`
		EventName    string `json:"event_name"`
		UserIdentity *struct {
			Type        string `json:"type"`
			PrincipalID string `json:"principalId"`
		} `json:"user_identity"`
		Source string `json:"source_arn"`
	} `json:"records"`
	Result string `json:"result"`
}

func (f *fixture) lines() []sinkLine {
	file, err := os.Open(f.sink)
	if err != nil {
		return nil
	}
	defer file.Close()
	var out []sinkLine
	sc := bufio.NewScanner(file)
	for sc.Scan() {
		var l sinkLine
		if json.Unmarshal(sc.Bytes(), &l) == nil {
			out = append(out, l)
		}
	}
	return out
}

// batches lists each invocation's keys and result, e.g. "k1,k2:ok".
func (f *fixture) batches() []string {
	var out []string
	for _, l := range f.lines() {
		s := ""
		for i, r := range l.Records {
			if i > 0 {
				s += ","
			}
			s += r.Key
		}
		out = append(out, s+":"+l.Result)
	}
	return out
}

// waitFor polls cond until it holds (or fails the test after a while).
func (f *fixture) waitFor(what string, cond func() bool) {
	f.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			f.t.Fatalf("timed out waiting for %s; batches so far: %v", what, f.batches())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (f *fixture) failures() []Failure {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.failed)
}

func TestBatchSizeSplitsWhatIsWaiting(t *testing.T) {
	f := newFixture(t, 1)
	for i := 1; i <= 7; i++ {
		f.put(fmt.Sprintf("k%d", i), nil)
	}
	f.run(Config{BatchSize: 3})
	f.waitFor("7 records", func() bool { return len(f.batches()) == 3 })
	assert.Equal(t, []string{"k1,k2,k3:ok", "k4,k5,k6:ok", "k7:ok"}, f.batches())
	l := f.lines()[0]
	assert.Equal(t, "INSERT", l.Records[0].EventName)
	assert.Contains(t, l.Records[0].Source, "/stream/", "eventSourceARN is the stream's")
}

func TestBatchingWindowGathersRecords(t *testing.T) {
	f := newFixture(t, 1)
	m := f.run(Config{BatchSize: 100, MaxBatchingWindow: 1500 * time.Millisecond})
	start := time.Now()
	f.put("a", nil)
	f.put("b", nil)
	f.put("c", nil)
	f.waitFor("a batch", func() bool { return len(f.batches()) == 1 })
	assert.GreaterOrEqual(t, time.Since(start), 1500*time.Millisecond, "held for the window")
	assert.Equal(t, []string{"a,b,c:ok"}, f.batches())
	assert.Equal(t, 3, m.Stats().Records)
}

func TestFilterDropsRecordsBeforeBatching(t *testing.T) {
	f := newFixture(t, 1)
	f.put("b1", nil)
	_, err := f.db.PutItem(context.Background(), &dynamodb.PutItemInput{TableName: aws.String(f.table), Item: map[string]types.AttributeValue{
		"PK": &types.AttributeValueMemberS{Value: "c1"}, "SK": &types.AttributeValueMemberS{Value: "#CONFIG"}}})
	require.NoError(t, err)
	f.put("b2", nil)
	m := f.run(Config{BatchSize: 10, Filters: []string{`{"dynamodb":{"NewImage":{"SK":{"S":[{"prefix":"#BUCKET"}]}}}}`}})
	f.waitFor("the bucket records", func() bool { return m.Stats().Records == 2 })
	assert.Equal(t, []string{"b1,b2:ok"}, f.batches())
	assert.Equal(t, 1, m.Stats().Filtered)
}

func TestBisectIsolatesAPoisonRecord(t *testing.T) {
	f := newFixture(t, 1)
	for _, k := range []string{"p1", "p2", "p3", "p4"} {
		var a map[string]types.AttributeValue
		if k == "p3" {
			a = map[string]types.AttributeValue{"poison": n(1)}
		}
		f.put(k, a)
	}
	f.put("p5", nil)
	m := f.run(Config{BatchSize: 4, Bisect: true, MaxRetryAttempts: 1})
	f.waitFor("p5 after the poison", func() bool { return m.Stats().Records == 4 })
	assert.Equal(t, []string{
		"p1,p2,p3,p4:error", // bisect
		"p1,p2:ok",
		"p3,p4:error", // bisect
		"p3:error",    // one retry allowed
		"p3:error",    // exhausted: to the destination
		"p4:ok",
		"p5:ok",
	}, f.batches())
	fl := f.failures()
	require.Len(t, fl, 1)
	assert.Equal(t, "RetryAttemptsExhausted", fl[0].RequestContext.Condition)
	assert.Equal(t, 1, fl[0].BatchInfo.BatchSize)
	assert.Equal(t, "Unhandled", fl[0].ResponseContext.FunctionError)
	assert.Contains(t, fl[0].Error, "poison record p3")
	require.Len(t, fl[0].Records, 1)
}

func TestPartialBatchFailureRetriesFromTheFailedRecord(t *testing.T) {
	f := newFixture(t, 1)
	f.put("r1", nil)
	f.put("r2", map[string]types.AttributeValue{"partial_times": n(1)})
	f.put("r3", nil)
	m := f.run(Config{BatchSize: 10, ReportBatchItemFailures: true, MaxRetryAttempts: -1})
	f.waitFor("all three", func() bool { return m.Stats().Records == 3 })
	assert.Equal(t, []string{"r1,r2,r3:partial", "r2,r3:ok"}, f.batches())
	assert.Equal(t, 1, m.Stats().Retries)
	assert.Empty(t, f.failures())
}

func TestRetriesThenOnFailureDestination(t *testing.T) {
	f := newFixture(t, 1)
	f.put("x1", map[string]types.AttributeValue{"fail_times": n(1)})
	f.put("x2", map[string]types.AttributeValue{"poison": n(1)})
	m := f.run(Config{BatchSize: 10, MaxRetryAttempts: 2})
	f.waitFor("the destination", func() bool { return len(f.failures()) == 1 })
	f.put("x3", nil)
	f.waitFor("x3 after the failed batch", func() bool { return m.Stats().Records == 1 })
	assert.Equal(t, []string{"x1,x2:error", "x1,x2:error", "x1,x2:error", "x3:ok"}, f.batches())
	fl := f.failures()[0]
	assert.Equal(t, 2, fl.BatchInfo.BatchSize)
	assert.Equal(t, 3, fl.RequestContext.ApproximateInvokeCount)
	assert.NotEmpty(t, fl.BatchInfo.StartSequenceNumber)
}

func TestRecordAgeExceeded(t *testing.T) {
	f := newFixture(t, 1)
	f.put("old", nil)
	f.run(Config{BatchSize: 10, MaxRecordAge: time.Minute}, func(o *Options) {
		o.Now = func() time.Time { return time.Now().Add(time.Hour) }
	})
	f.waitFor("the destination", func() bool { return len(f.failures()) == 1 })
	assert.Equal(t, "RecordAgeExceeded", f.failures()[0].RequestContext.Condition)
	assert.Empty(t, f.batches(), "an expired record is never delivered")
}

func TestTTLDeletionArrivesAsServiceRemove(t *testing.T) {
	f := newFixture(t, 1)
	// A table of its own without indexes: DynamoDB Local's TTL sweeper did
	// not expire items of the product's table (four GSIs) in our runs.
	f.table = plainTable(t, f.db)
	f.put("ttl", map[string]types.AttributeValue{"ttl": n(int(time.Now().Add(-24 * time.Hour).Unix()))})
	f.run(Config{BatchSize: 10, MaxRetryAttempts: -1, Filters: []string{`{"eventName":["REMOVE"]}`}})
	f.waitFor("the TTL deletion", func() bool { return len(f.lines()) > 0 })
	l := f.lines()[0]
	require.Len(t, l.Records, 1)
	assert.Equal(t, "REMOVE", l.Records[0].EventName)
	require.NotNil(t, l.Records[0].UserIdentity)
	assert.Equal(t, "Service", l.Records[0].UserIdentity.Type)
	assert.Equal(t, "dynamodb.amazonaws.com", l.Records[0].UserIdentity.PrincipalID)
}

func TestDecodeMapsDynamoDBLocalsTTLRecord(t *testing.T) {
	m := &Mapping{}
	r, err := m.decode([]byte(`{"eventName":"UNKNOWN_TO_SDK_VERSION","dynamodb":{"SequenceNumber":"7","ApproximateCreationDateTime":1700000000.5,"OldImage":{"PK":{"S":"a"}}}}`), "arn:s")
	require.NoError(t, err)
	assert.Equal(t, "REMOVE", r.raw["eventName"])
	assert.Equal(t, map[string]any{"type": "Service", "principalId": "dynamodb.amazonaws.com"}, r.raw["userIdentity"])
	assert.Equal(t, "arn:s", r.raw["eventSourceARN"])
	assert.Equal(t, time.Unix(1700000000, 5e8), r.created)
	r, err = m.decode([]byte(`{"eventName":"REMOVE","dynamodb":{"SequenceNumber":"8"}}`), "arn:s")
	require.NoError(t, err)
	assert.NotContains(t, r.raw, "userIdentity", "a user's delete has none")
}

// plainTable creates a PK/SK table with a stream and TTL on "ttl".
func plainTable(t *testing.T, db *dynamodb.Client) string {
	t.Helper()
	ctx := context.Background()
	name := ddbtest.TableName(t.Name(), strconv.FormatInt(time.Now().UnixNano(), 36))
	_, err := db.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName: aws.String(name), BillingMode: types.BillingModePayPerRequest,
		AttributeDefinitions: []types.AttributeDefinition{
			{AttributeName: aws.String("PK"), AttributeType: types.ScalarAttributeTypeS},
			{AttributeName: aws.String("SK"), AttributeType: types.ScalarAttributeTypeS}},
		KeySchema: []types.KeySchemaElement{
			{AttributeName: aws.String("PK"), KeyType: types.KeyTypeHash},
			{AttributeName: aws.String("SK"), KeyType: types.KeyTypeRange}},
		StreamSpecification: &types.StreamSpecification{StreamEnabled: aws.Bool(true), StreamViewType: types.StreamViewTypeNewAndOldImages},
	})
	require.NoError(t, err)
	t.Cleanup(func() {
		_, _ = db.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: aws.String(name)})
	})
	_, err = db.UpdateTimeToLive(ctx, &dynamodb.UpdateTimeToLiveInput{TableName: aws.String(name),
		TimeToLiveSpecification: &types.TimeToLiveSpecification{AttributeName: aws.String("ttl"), Enabled: aws.Bool(true)}})
	require.NoError(t, err)
	return name
}

// Killing the function's process again and again while records arrive
// loses none: every batch a crash interrupted is delivered again.
func TestKilledFunctionLosesNoRecord(t *testing.T) {
	f := newFixture(t, 1)
	f.run(Config{BatchSize: 5, ReportBatchItemFailures: true, MaxRetryAttempts: -1})
	const total = 120
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range total {
			f.put(fmt.Sprintf("load-%03d", i), nil)
		}
	}()
	killed := map[int]bool{}
	for len(killed) < 4 {
		ls := f.lines()
		if len(ls) > 0 {
			if pid := ls[len(ls)-1].PID; !killed[pid] {
				killed[pid] = true
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		time.Sleep(15 * time.Millisecond)
	}
	<-done
	f.waitFor("every record", func() bool {
		seen := map[string]bool{}
		for _, l := range f.lines() {
			for _, r := range l.Records {
				seen[r.Key] = true
			}
		}
		return len(seen) == total
	})
	assert.GreaterOrEqual(t, f.runner.Restarts(), 3, "the runner restarted the killed processes")
}
