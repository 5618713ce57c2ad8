// Package ddbtest gives integration tests of any package a DynamoDB to talk
// to and a fresh table per test.
//
// A package opts in from its TestMain:
//
//	func TestMain(m *testing.M) { ddbtest.Main(m) }
//
// and a test calls NewTable(t) (and Client(t)). When AWS_ENDPOINT_URL_DYNAMODB
// is set that endpoint is used; otherwise the first test that asks starts one
// fresh DynamoDB Local (in memory, -sharedDb, free port) for the whole test
// process, and Main stops it after the tests. Should the process die early
// (a panic, a test timeout, a signal) the OS kills it too on Linux.
//
// When no DynamoDB can be had (no java, no jar) the test is skipped, unless
// ZAEL_REQUIRE_DYNAMODB=1 is set (as .ci/run does): then it fails, naming
// what is missing.
package ddbtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/zeroae/zae-limiter-go/shared/ddblocal"
	"github.com/zeroae/zae-limiter-go/shared/schema"
)

// RequireEnv names the variable that turns "no DynamoDB" skips into failures.
const RequireEnv = "ZAEL_REQUIRE_DYNAMODB"

// EndpointEnv names the variable that points the tests at a running DynamoDB.
const EndpointEnv = "AWS_ENDPOINT_URL_DYNAMODB"

// Region is the region of the test clients (the data is shared across
// regions anyway: DynamoDB Local runs with -sharedDb).
const Region = "us-east-1"

const startTimeout = 60 * time.Second // generous: go test may compile in parallel

var state struct {
	sync.Mutex
	mainCalled bool
	tried      bool
	endpoint   string
	skip       string // why no backend is available (skip or fail)
	err        error  // a backend should be there but failed
	proc       *ddblocal.Process
	client     *dynamodb.Client
}

// Main runs the tests of a package and stops the DynamoDB Local started for
// them. Call it from TestMain; it exits the process with m.Run's code.
func Main(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	state.Lock()
	state.mainCalled = true
	state.Unlock()
	defer shutdown()
	return m.Run()
}

func shutdown() {
	state.Lock()
	defer state.Unlock()
	if state.proc != nil {
		if err := state.proc.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "ddbtest: stopping DynamoDB Local: %v\n", err)
		}
		state.proc = nil
	}
}

// Endpoint returns the DynamoDB endpoint of this test process, starting
// DynamoDB Local on first use. It skips or fails t when none is available.
func Endpoint(t testing.TB) string {
	t.Helper()
	state.Lock()
	defer state.Unlock()
	if !state.mainCalled {
		t.Fatalf("ddbtest: call ddbtest.Main(m) from the package's TestMain")
	}
	if !state.tried {
		state.tried = true
		state.endpoint, state.proc, state.skip, state.err = acquire()
	}
	switch {
	case state.err != nil:
		t.Fatalf("ddbtest: %v", state.err)
	case state.skip != "":
		unavailable(t, state.skip)
	}
	return state.endpoint
}

func acquire() (endpoint string, p *ddblocal.Process, skip string, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	if ep := os.Getenv(EndpointEnv); ep != "" {
		if err := ddblocal.Ping(ctx, ep); err != nil {
			return "", nil, "", fmt.Errorf("%s=%s does not answer: %v", EndpointEnv, ep, err)
		}
		return ep, nil, "", nil
	}
	jarDir, err := ddblocal.FindJar("")
	if err != nil {
		return "", nil, fmt.Sprintf("%v; run `make tools` or set %s", err, EndpointEnv), nil
	}
	p, err = ddblocal.Start(ctx, ddblocal.Options{
		JarDir:         jarDir,
		SharedDB:       true,
		KillWithParent: true,
		StartTimeout:   startTimeout,
	})
	if errors.Is(err, ddblocal.ErrNoJava) {
		return "", nil, err.Error(), nil
	}
	if err != nil {
		return "", nil, "", err
	}
	return p.Endpoint, p, "", nil
}

// unavailable skips t, or fails it when RequireEnv is set.
func unavailable(t testing.TB, reason string) {
	t.Helper()
	if required() {
		t.Fatalf("ddbtest: DynamoDB is required (%s is set) but unavailable: %s", RequireEnv, reason)
	}
	t.Skipf("ddbtest: no DynamoDB (set %s=1 to fail instead): %s", RequireEnv, reason)
}

func required() bool {
	v, err := strconv.ParseBool(os.Getenv(RequireEnv))
	return err == nil && v
}

// Config returns an SDK configuration for the test DynamoDB: its endpoint
// as BaseEndpoint, dummy static credentials and region us-east-1. It reads
// nothing from the environment or the user's AWS files.
func Config(t testing.TB) aws.Config {
	t.Helper()
	ep := Endpoint(t)
	return aws.Config{
		Region:       Region,
		Credentials:  aws.NewCredentialsCache(credentials.NewStaticCredentialsProvider("dummy", "dummy", "")),
		BaseEndpoint: aws.String(ep),
	}
}

// Client returns a DynamoDB client for the test DynamoDB (shared by the
// tests of the process), with response checksum validation off because
// DynamoDB Local omits it on errors.
func Client(t testing.TB) *dynamodb.Client {
	t.Helper()
	cfg := Config(t)
	state.Lock()
	defer state.Unlock()
	if state.client == nil {
		state.client = dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) {
			o.BaseEndpoint = cfg.BaseEndpoint
			o.DisableValidateResponseChecksum = true
		})
	}
	return state.client
}

// NewTable creates a table with the product's schema (schema.CreateTableInput
// and TTL on) named after the test, and deletes it when the test ends.
func NewTable(t testing.TB) string {
	t.Helper()
	return newTable(t, Client(t))
}

func newTable(t testing.TB, c *dynamodb.Client) string {
	t.Helper()
	name := TableName(t.Name(), randomSuffix(t))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := c.CreateTable(ctx, schema.CreateTableInput(name)); err != nil {
		t.Fatalf("ddbtest: create table %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := c.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: aws.String(name)}); err != nil {
			t.Errorf("ddbtest: delete table %s: %v", name, err)
		}
	})
	w := dynamodb.NewTableExistsWaiter(c, func(o *dynamodb.TableExistsWaiterOptions) {
		o.MinDelay = 50 * time.Millisecond
		o.MaxDelay = time.Second
	})
	if err := w.Wait(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(name)}, 20*time.Second); err != nil {
		t.Fatalf("ddbtest: table %s not active: %v", name, err)
	}
	if _, err := c.UpdateTimeToLive(ctx, schema.TTLInput(name)); err != nil {
		t.Fatalf("ddbtest: enable TTL on %s: %v", name, err)
	}
	return name
}

// maxTableName is DynamoDB's limit on table names.
const maxTableName = 255

// TableName builds "t<sanitised test name>-<suffix>": characters a table
// name cannot hold become '_', and the test name is cut so the whole fits in
// 255 characters.
func TableName(testName, suffix string) string {
	b := []byte(testName)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.') {
			b[i] = '_'
		}
	}
	if room := maxTableName - len("t-") - len(suffix); len(b) > room {
		b = b[:max(room, 0)]
	}
	return "t" + string(b) + "-" + suffix
}

func randomSuffix(t testing.TB) string {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatalf("ddbtest: random: %v", err)
	}
	return hex.EncodeToString(b[:])
}
