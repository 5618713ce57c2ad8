package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sync/errgroup"

	"github.com/zeroae/zae-limiter-go/shared/ddblocal/ddbtest"
	"github.com/zeroae/zae-limiter-go/shared/lambdarun"
	"github.com/zeroae/zae-limiter-go/shared/limits"
	"github.com/zeroae/zae-limiter-go/shared/mototest"
	"github.com/zeroae/zae-limiter-go/shared/store"
	"github.com/zeroae/zae-limiter-go/shared/syncio"
	"github.com/zeroae/zae-limiter-go/shared/wire"
)

func TestMain(m *testing.M) { ddbtest.Main(m) }

const eventsDir = "../../events/acquire"

// stack is the table and environment a bootstrap runs against.
type stack struct {
	bootstrap string // native build
	endpoint  string
	table     string
}

func (s stack) env(extra ...string) []string {
	return append([]string{
		"TABLE_NAME=" + s.table,
		"AWS_ENDPOINT_URL_DYNAMODB=" + s.endpoint,
		"AWS_ACCESS_KEY_ID=dummy",
		"AWS_SECRET_ACCESS_KEY=dummy",
		"AWS_LAMBDA_LOG_FORMAT=JSON",
		"AWS_LAMBDA_LOG_LEVEL=DEBUG",
		"LEASE_KEYS=" + key1,
	}, extra...)
}

// start runs the bootstrap under lambdarun; it is closed with the test.
func (s stack) start(t *testing.T, o lambdarun.Options) (*lambdarun.Runner, *syncio.Buffer) {
	t.Helper()
	out := &syncio.Buffer{}
	o.Binary, o.Output = s.bootstrap, out
	r, err := lambdarun.Start(context.Background(), o)
	t.Cleanup(func() {
		if r != nil {
			_ = r.Close()
		}
		if t.Failed() {
			t.Logf("function output:\n%s", out.String())
		}
	})
	require.NoError(t, err)
	return r, out
}

// TestBootstrap builds the real function (the deployable linux/arm64 one and
// a native one), runs the native one behind the Lambda Runtime API against
// DynamoDB Local and sends it every event in events/acquire.
func TestBootstrap(t *testing.T) {
	dir := t.TempDir()
	native := filepath.Join(dir, "native", "acquire", "bootstrap")
	arm64 := filepath.Join(dir, "arm64", "acquire", "bootstrap")
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	var g errgroup.Group
	g.Go(func() error { return lambdarun.Build(ctx, lambdarun.BuildOptions{Package: ".", Output: native}) })
	g.Go(func() error {
		return lambdarun.Build(ctx, lambdarun.BuildOptions{Package: ".", Output: arm64, GOOS: "linux", GOARCH: "arm64"})
	})
	require.NoError(t, g.Wait())
	for _, b := range []struct{ name, path string }{{"linux/arm64", arm64}, {runtime.GOOS + "/" + runtime.GOARCH, native}} {
		fi, err := os.Stat(b.path)
		require.NoError(t, err)
		t.Logf("stripped %s bootstrap: %d bytes (%.1f MiB)", b.name, fi.Size(), float64(fi.Size())/(1<<20))
	}

	s := stack{bootstrap: native, endpoint: ddbtest.Endpoint(t), table: ddbtest.NewTable(t)}
	st := store.New(ddbtest.Client(t), store.Options{Table: s.table})
	_, err := st.RegisterNamespace(ctx, "default")
	require.NoError(t, err)
	ns, err := st.Namespace(ctx, "default")
	require.NoError(t, err)
	require.NoError(t, ns.SetResourceDefaults(ctx, "gpt-4", []limits.Limit{
		limits.PerMinute("rpm", 100, 0), limits.PerMinute("tpm", 100_000, 0),
	}))

	t.Run("events", func(t *testing.T) { testEvents(t, s) })
	t.Run("cold init", func(t *testing.T) { testColdInit(t, s) })
	t.Run("init error", func(t *testing.T) { testInitError(t, s) })
	t.Run("tracing", func(t *testing.T) { testTracing(t, s) })
	t.Run("keys parameter", func(t *testing.T) { testKeysParameter(t, s) })
	t.Run("keys secret", func(t *testing.T) { testKeysSecret(t, s) })
	t.Run("config cache TTL", func(t *testing.T) { testConfigCacheTTL(t, s, ns) })
	t.Run("frozen DynamoDB", func(t *testing.T) { testFrozen(t, s) })
}

// testConfigCacheTTL: CONFIG_CACHE_TTL reaches the function's store. A
// limit change made elsewhere is seen at once by an instance with no cache
// (0), and not by one with the default 60 s cache that read the old one.
func testConfigCacheTTL(t *testing.T, s stack, ns *store.NS) {
	ctx := context.Background()
	require.NoError(t, ns.SetResourceDefaults(ctx, "claude", []limits.Limit{limits.PerMinute("rpm", 10, 0)}))
	ev, err := os.ReadFile(filepath.Join(eventsDir, "available.json"))
	require.NoError(t, err)
	ev = bytes.ReplaceAll(ev, []byte("gpt-4"), []byte("claude"))
	capacity := func(r *lambdarun.Runner) float64 {
		t.Helper()
		res, err := r.Invoke(ctx, ev)
		require.NoError(t, err)
		require.Nil(t, res.Err)
		var resp events.LambdaFunctionURLResponse
		require.NoError(t, json.Unmarshal(res.Payload, &resp))
		require.Equal(t, http.StatusOK, resp.StatusCode, resp.Body)
		var body wire.AvailableResponse
		require.NoError(t, json.Unmarshal([]byte(resp.Body), &body))
		require.Len(t, body.Limits, 1, resp.Body)
		return float64(body.Limits[0].Capacity)
	}
	cached, _ := s.start(t, lambdarun.Options{Env: s.env()})
	uncached, _ := s.start(t, lambdarun.Options{Env: s.env("CONFIG_CACHE_TTL=0")})
	assert.Equal(t, 10.0, capacity(cached))
	assert.Equal(t, 10.0, capacity(uncached))
	require.NoError(t, ns.SetResourceDefaults(ctx, "claude", []limits.Limit{limits.PerMinute("rpm", 20, 0)}))
	assert.Equal(t, 10.0, capacity(cached), "the default cache keeps the limits it read for 60 s")
	assert.Equal(t, 20.0, capacity(uncached), "CONFIG_CACHE_TTL=0 reads them on every request")
}

// expectation checks one event's response; lease is the token of the
// admitted acquire that filled the event's {{LEASE}}, if any.
type expectation func(t *testing.T, resp events.LambdaFunctionURLResponse, body map[string]any, lease string)

var expectations = map[string]expectation{
	"admitted.json": func(t *testing.T, resp events.LambdaFunctionURLResponse, body map[string]any, _ string) {
		assert.Equal(t, http.StatusOK, resp.StatusCode)
		assert.NotEmpty(t, body["lease"])
		assert.Equal(t, "user-1", body["entity_id"])
		assert.Equal(t, "gpt-4", body["resource"])
		assert.Equal(t, map[string]any{"rpm": 1.0, "tpm": 500.0}, body["consumed"])
		assert.Len(t, body["limits"], 2)
		assert.Equal(t, "100", header(resp, wire.HeaderLimit), "the tightest limit is rpm")
	},
	"limited.json": func(t *testing.T, resp events.LambdaFunctionURLResponse, body map[string]any, _ string) {
		assert.Equal(t, http.StatusTooManyRequests, resp.StatusCode)
		assert.Equal(t, wire.CodeRateLimited, body["error"])
		assert.Greater(t, body["retry_after_seconds"], 0.0)
		require.Len(t, body["violations"], 1)
		assert.Equal(t, "rpm", body["violations"].([]any)[0].(map[string]any)["limit"])
		ra, err := strconv.Atoi(header(resp, wire.HeaderRetryAfter))
		assert.NoError(t, err, "Retry-After is whole seconds")
		assert.GreaterOrEqual(t, ra, 1)
		assert.Equal(t, false, body["retryable"], "10 never fits a capacity of 5")
		assert.Contains(t, body["message"], "can never be admitted at the current limits")
	},
	"wrong-content-type.json": func(t *testing.T, resp events.LambdaFunctionURLResponse, body map[string]any, _ string) {
		assert.Equal(t, http.StatusUnsupportedMediaType, resp.StatusCode)
		assert.Equal(t, wire.CodeUnsupportedType, body["error"])
		assert.Contains(t, body["message"], "Content-Type: application/json")
	},
	"bad-request.json": func(t *testing.T, resp events.LambdaFunctionURLResponse, body map[string]any, _ string) {
		assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
		assert.Equal(t, wire.CodeInvalidRequest, body["error"])
		assert.Contains(t, body["message"], `unknown field "consum"`)
	},
	"adjust.json": func(t *testing.T, resp events.LambdaFunctionURLResponse, body map[string]any, lease string) {
		assert.Equal(t, http.StatusOK, resp.StatusCode)
		assert.Equal(t, lease, body["lease"], "adjust answers with the same token")
		assert.Equal(t, map[string]any{"rpm": 1.0, "tpm": 1200.0}, body["consumed"])
	},
	"release.json": func(t *testing.T, resp events.LambdaFunctionURLResponse, body map[string]any, lease string) {
		assert.Equal(t, http.StatusOK, resp.StatusCode)
		assert.Equal(t, lease, body["lease"])
		assert.Equal(t, true, body["rolled_back"])
	},
	"available.json": func(t *testing.T, resp events.LambdaFunctionURLResponse, body map[string]any, _ string) {
		assert.Equal(t, http.StatusOK, resp.StatusCode)
		ls, _ := body["limits"].([]any)
		require.Len(t, ls, 2, "the resource defaults set by the test")
		for _, l := range ls {
			assert.Equal(t, "user-1", l.(map[string]any)["entity_id"])
		}
	},
	"healthz.json": func(t *testing.T, resp events.LambdaFunctionURLResponse, body map[string]any, _ string) {
		assert.Equal(t, http.StatusOK, resp.StatusCode)
		assert.Equal(t, "ok", body["status"])
	},
}

// header reads a response header whatever the case of its name.
func header(resp events.LambdaFunctionURLResponse, name string) string {
	for k, v := range resp.Headers {
		if strings.EqualFold(k, name) {
			return v
		}
	}
	return ""
}

func testEvents(t *testing.T, s stack) {
	r, out := s.start(t, lambdarun.Options{Env: s.env()})
	t.Logf("cold init (process start to first /next): %v", r.Init())

	files, err := filepath.Glob(filepath.Join(eventsDir, "*.json"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	admitted, err := os.ReadFile(filepath.Join(eventsDir, "admitted.json"))
	require.NoError(t, err)

	var requestIDs []string
	invoke := func(t *testing.T, payload []byte) (events.LambdaFunctionURLResponse, map[string]any, lambdarun.Result) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		res, err := r.Invoke(ctx, payload)
		require.NoError(t, err)
		require.Nil(t, res.Err, "function error; payload %s", res.Payload)
		requestIDs = append(requestIDs, res.RequestID)
		var resp events.LambdaFunctionURLResponse
		require.NoError(t, json.Unmarshal(res.Payload, &resp))
		require.False(t, resp.IsBase64Encoded)
		assert.Equal(t, "application/json", header(resp, "Content-Type"))
		var body map[string]any
		require.NoError(t, json.Unmarshal([]byte(resp.Body), &body), "body %q", resp.Body)
		return resp, body, res
	}

	for _, file := range files {
		name := filepath.Base(file)
		t.Run(name, func(t *testing.T) {
			ev, err := os.ReadFile(file)
			require.NoError(t, err)
			var parsed events.LambdaFunctionURLRequest
			require.NoError(t, json.Unmarshal(ev, &parsed), "a Function URL event")
			assert.Equal(t, "2.0", parsed.Version)
			assert.NotEmpty(t, parsed.RequestContext.HTTP.Method)

			lease := ""
			if len(lambdarun.Placeholders(ev)) > 0 {
				_, body, res := invoke(t, admitted)
				lease, _ = body["lease"].(string)
				ev, err = lambdarun.FillPlaceholders(ev, res.Payload)
				require.NoError(t, err)
			}
			resp, body, res := invoke(t, ev)
			t.Logf("%s: status %d in %v", name, resp.StatusCode, res.Duration)
			check, ok := expectations[name]
			if !ok {
				t.Logf("%s: no expectations listed in bootstrap_test.go; only checking it is answered", name)
				assert.Less(t, resp.StatusCode, 500)
				return
			}
			check(t, resp, body, lease)
		})
	}

	// Logs are JSON lines carrying the invocation's request id, and nothing
	// complains about X-Ray when tracing is off.
	logs := out.String()
	assert.NotContains(t, logs, "X-Ray")
	seen := map[string]bool{}
	sc := bufio.NewScanner(strings.NewReader(logs))
	for sc.Scan() {
		var rec map[string]any
		if json.Unmarshal(sc.Bytes(), &rec) != nil {
			continue
		}
		if id, ok := rec["requestId"].(string); ok {
			seen[id] = true
		}
	}
	found := 0
	for _, id := range requestIDs {
		if seen[id] {
			found++
		}
	}
	assert.Positive(t, found, "JSON log records with the Lambda request id; output:\n%s", logs)
}

// testColdInit measures the init of a few fresh processes (the first run in
// a test process also pays for the OS page cache; the median is the number
// to quote).
func testColdInit(t *testing.T, s stack) {
	const runs = 5
	var inits []time.Duration
	for range runs {
		r, err := lambdarun.Start(context.Background(), lambdarun.Options{Binary: s.bootstrap, Env: s.env(), Output: &syncio.Buffer{}})
		require.NoError(t, err)
		inits = append(inits, r.Init())
		require.NoError(t, r.Close())
	}
	slices.Sort(inits)
	t.Logf("cold init over %d starts: min %v, median %v, max %v", runs, inits[0], inits[runs/2], inits[runs-1])
}

func testInitError(t *testing.T, s stack) {
	tests := []struct {
		name string
		env  []string
		want string
	}{
		{"no table", []string{"AWS_LAMBDA_LOG_FORMAT=JSON", "LEASE_KEYS=" + key1}, "TABLE_NAME is required"},
		{"no keys", []string{"TABLE_NAME=" + s.table}, "LEASE_KEYS (or LEASE_KEYS_PARAMETER, or LEASE_KEYS_SECRET) is required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := &syncio.Buffer{}
			_, err := lambdarun.Start(context.Background(), lambdarun.Options{Binary: s.bootstrap, Env: tt.env, Output: out})
			var ie *lambdarun.InitError
			require.True(t, errors.As(err, &ie), "got %v", err)
			assert.ErrorContains(t, ie.Exit, "exit status 1")
			assert.Contains(t, out.String(), tt.want)
		})
	}
}

// testTracing turns X-Ray on with a UDP listener standing in for the
// daemon: each DynamoDB call must arrive as a subsegment.
func testTracing(t *testing.T, s stack) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	defer pc.Close()
	r, out := s.start(t, lambdarun.Options{Tracing: true, Env: s.env(
		"AWS_XRAY_TRACING_ENABLED=true",
		"AWS_XRAY_DAEMON_ADDRESS="+pc.LocalAddr().String(),
		"AWS_XRAY_CONTEXT_MISSING=LOG_ERROR",
	)})
	ev, err := os.ReadFile(filepath.Join(eventsDir, "admitted.json"))
	require.NoError(t, err)
	res, err := r.Invoke(context.Background(), ev)
	require.NoError(t, err)
	require.Nil(t, res.Err)
	root := strings.TrimPrefix(strings.Split(res.TraceHeader, ";")[0], "Root=")

	buf := make([]byte, 64<<10)
	deadline := time.Now().Add(5 * time.Second)
	for {
		require.NoError(t, pc.SetReadDeadline(deadline))
		n, _, err := pc.ReadFrom(buf)
		require.NoError(t, err, "no DynamoDB subsegment reached the daemon address")
		seg := string(buf[:n])
		if strings.Contains(seg, `"name":"DynamoDB"`) {
			assert.Contains(t, seg, root, "the subsegment belongs to the invocation's trace")
			assert.Contains(t, seg, `"namespace":"aws"`)
			break
		}
	}
	assert.NotContains(t, out.String(), "context missing")
}

// testKeysParameter reads the lease keys from SSM, served by moto_server
// (on the machine image; skipped where it is missing).
func testKeysParameter(t *testing.T, s stack) {
	endpoint := mototest.Start(t, "LEASE_KEYS_PARAMETER")
	client := ssm.NewFromConfig(mototest.Config(endpoint))
	_, err := client.PutParameter(context.Background(), &ssm.PutParameterInput{
		Name: aws.String("/limiter/lease-keys"), Value: aws.String(key2 + "," + key1), Type: ssmtypes.ParameterTypeSecureString,
	})
	require.NoError(t, err)
	testKeySource(t, s, "AWS_ENDPOINT_URL_SSM="+endpoint, "LEASE_KEYS_PARAMETER", "/limiter/lease-keys", "/limiter/missing")
}

// testKeysSecret reads the lease keys from Secrets Manager (the secret the
// stack creates), served by moto_server.
func testKeysSecret(t *testing.T, s stack) {
	endpoint := mototest.Start(t, "LEASE_KEYS_SECRET")
	client := secretsmanager.NewFromConfig(mototest.Config(endpoint))
	out, err := client.CreateSecret(context.Background(), &secretsmanager.CreateSecretInput{
		Name: aws.String("limiter-lease-keys"), SecretString: aws.String(key2 + "," + key1),
	})
	require.NoError(t, err)
	testKeySource(t, s, "AWS_ENDPOINT_URL_SECRETS_MANAGER="+endpoint, "LEASE_KEYS_SECRET", *out.ARN, "limiter-missing")
}

// testKeySource runs the function with its keys in source (the variable
// name) at id: an acquire is admitted; a missing id fails the init, naming
// the variable.
func testKeySource(t *testing.T, s stack, endpointVar, source, id, missing string) {
	env := s.env(endpointVar)
	for i, kv := range env {
		if strings.HasPrefix(kv, "LEASE_KEYS=") {
			env[i] = source + "=" + id
		}
	}
	r, _ := s.start(t, lambdarun.Options{Env: env})
	ev, err := os.ReadFile(filepath.Join(eventsDir, "admitted.json"))
	require.NoError(t, err)
	res, err := r.Invoke(context.Background(), ev)
	require.NoError(t, err)
	require.Nil(t, res.Err)
	var resp events.LambdaFunctionURLResponse
	require.NoError(t, json.Unmarshal(res.Payload, &resp))
	assert.Equal(t, http.StatusOK, resp.StatusCode, resp.Body)

	for i, kv := range env {
		if strings.HasPrefix(kv, source+"=") {
			env[i] = source + "=" + missing
		}
	}
	out := &syncio.Buffer{}
	_, err = lambdarun.Start(context.Background(), lambdarun.Options{Binary: s.bootstrap, Env: env, Output: out})
	var ie *lambdarun.InitError
	require.True(t, errors.As(err, &ie), "got %v", err)
	assert.Contains(t, out.String(), source+`=\"`+missing+`\"`)
}
