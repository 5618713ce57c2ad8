package lambdarun_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zeroae/zae-limiter-go/shared/lambdarun"
)

// bootstrap is the test function (testdata/fn), built once by TestMain.
var bootstrap string

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "lambdarun-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	bootstrap = filepath.Join(dir, "fn", "bootstrap")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := lambdarun.Build(ctx, lambdarun.BuildOptions{Package: "./testdata/fn", Output: bootstrap}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}

// testWriter sends the functions' output to the test log.
type testWriter struct {
	t  testing.TB
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.b.Write(p)
	return len(p), nil
}

func (w *testWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

func start(t *testing.T, o lambdarun.Options) (*lambdarun.Runner, *testWriter) {
	t.Helper()
	out := &testWriter{t: t}
	o.Binary = bootstrap
	o.Output = out
	r, err := lambdarun.Start(context.Background(), o)
	require.NoError(t, err)
	t.Cleanup(func() {
		require.NoError(t, r.Close())
		if t.Failed() {
			t.Logf("function output:\n%s", out.String())
		}
	})
	return r, out
}

type fnResponse struct {
	Echo       any    `json:"echo"`
	PID        int    `json:"pid"`
	RequestID  string `json:"request_id"`
	ARN        string `json:"arn"`
	DeadlineMS int64  `json:"deadline_ms"`
	Env        string `json:"env"`
	Trace      string `json:"trace"`
}

func invoke(t *testing.T, r *lambdarun.Runner, payload string) (lambdarun.Result, fnResponse) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := r.Invoke(ctx, []byte(payload))
	require.NoError(t, err)
	var resp fnResponse
	if res.Err == nil {
		require.NoError(t, json.Unmarshal(res.Payload, &resp), "payload %s", res.Payload)
	}
	return res, resp
}

func TestEcho(t *testing.T) {
	r, _ := start(t, lambdarun.Options{Env: []string{"GREETING=hello"}, Timeout: 5 * time.Second})
	assert.Equal(t, "fn", r.FunctionName())
	assert.Greater(t, r.Init(), time.Duration(0))
	t.Logf("cold init %v", r.Init())

	res, resp := invoke(t, r, `{"echo":{"a":[1,2]}}`)
	require.Nil(t, res.Err)
	assert.Equal(t, map[string]any{"a": []any{1.0, 2.0}}, resp.Echo)
	assert.Equal(t, res.RequestID, resp.RequestID)
	assert.Len(t, res.RequestID, 36)
	assert.Equal(t, "arn:aws:lambda:us-east-1:123456789012:function:fn", resp.ARN)
	assert.InDelta(t, 5000, resp.DeadlineMS, 1000)
	assert.Equal(t, res.TraceHeader, resp.Trace)
	assert.Contains(t, res.TraceHeader, "Sampled=0")
	assert.Greater(t, res.Duration, time.Duration(0))

	for name, want := range map[string]string{
		"GREETING":                        "hello",
		"AWS_LAMBDA_FUNCTION_NAME":        "fn",
		"AWS_LAMBDA_FUNCTION_VERSION":     "$LATEST",
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
		"AWS_REGION":                      "us-east-1",
		"LAMBDA_TASK_ROOT":                filepath.Dir(bootstrap),
		"HOME":                            "", // not inherited
	} {
		_, resp := invoke(t, r, `{"env":"`+name+`"}`)
		assert.Equal(t, want, resp.Env, name)
	}
}

func TestOptionsOverrideAndInherit(t *testing.T) {
	t.Setenv("LAMBDARUN_TEST_INHERITED", "yes")
	r, _ := start(t, lambdarun.Options{
		InheritEnv: true, FunctionName: "other", Region: "eu-west-1", MemoryMB: 512, Tracing: true,
		Env: []string{"AWS_REGION=ap-south-1"},
	})
	for name, want := range map[string]string{
		"LAMBDARUN_TEST_INHERITED":        "yes",
		"AWS_LAMBDA_FUNCTION_NAME":        "other",
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
		"AWS_DEFAULT_REGION":              "eu-west-1",
		"AWS_REGION":                      "ap-south-1",
	} {
		_, resp := invoke(t, r, `{"env":"`+name+`"}`)
		assert.Equal(t, want, resp.Env, name)
	}
	res, resp := invoke(t, r, `{}`)
	assert.Contains(t, res.TraceHeader, "Sampled=1")
	assert.Equal(t, res.TraceHeader, resp.Trace)
	assert.Contains(t, resp.ARN, ":eu-west-1:")
}

func TestFunctionError(t *testing.T) {
	r, _ := start(t, lambdarun.Options{})
	res, _ := invoke(t, r, `{"error":"boom"}`)
	require.NotNil(t, res.Err)
	assert.Equal(t, "errorString", res.Err.Type)
	assert.Equal(t, "boom", res.Err.Message)
	assert.JSONEq(t, `{"errorType":"errorString","errorMessage":"boom"}`, string(res.Payload))

	// The environment stays warm.
	res2, _ := invoke(t, r, `{}`)
	assert.Nil(t, res2.Err)
	assert.Zero(t, r.Restarts())
}

func TestPanicAndExitRestart(t *testing.T) {
	tests := []struct {
		name, payload, errType string
	}{
		{"panic", `{"panic":"kaboom"}`, "string"},
		{"exit", `{"exit":2}`, "Runtime.ExitError"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, out := start(t, lambdarun.Options{})
			_, before := invoke(t, r, `{}`)
			res, _ := invoke(t, r, tt.payload)
			require.NotNil(t, res.Err)
			assert.Equal(t, tt.errType, res.Err.Type)

			_, after := invoke(t, r, `{}`)
			assert.NotEqual(t, before.PID, after.PID, "a new process serves after the crash")
			assert.Equal(t, 1, r.Restarts())
			assert.Contains(t, out.String(), "starting a new one")
		})
	}
}

func TestTimeout(t *testing.T) {
	r, _ := start(t, lambdarun.Options{Timeout: 300 * time.Millisecond})
	_, before := invoke(t, r, `{}`)
	t0 := time.Now()
	res, _ := invoke(t, r, `{"hang":true}`)
	require.NotNil(t, res.Err)
	assert.Equal(t, "Sandbox.Timedout", res.Err.Type)
	assert.Contains(t, res.Err.Message, "Task timed out after 0.30 seconds")
	assert.Less(t, time.Since(t0), 5*time.Second)

	_, after := invoke(t, r, `{}`)
	assert.NotEqual(t, before.PID, after.PID)
}

func TestConcurrentInstances(t *testing.T) {
	r, _ := start(t, lambdarun.Options{Instances: 3})
	require.Len(t, r.Inits(), 3)
	for i, d := range r.Inits() {
		assert.Greater(t, d, time.Duration(0), "instance %d", i)
	}

	const n, sleep = 9, 300 * time.Millisecond
	var (
		wg        sync.WaitGroup
		mu        sync.Mutex
		pids      = map[int]int{}
		instances = map[int]bool{}
	)
	t0 := time.Now()
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := r.Invoke(context.Background(), []byte(fmt.Sprintf(`{"sleep_ms":%d}`, sleep.Milliseconds())))
			if !assert.NoError(t, err) || !assert.Nil(t, res.Err) {
				return
			}
			var resp fnResponse
			assert.NoError(t, json.Unmarshal(res.Payload, &resp))
			assert.GreaterOrEqual(t, res.Duration, sleep)
			mu.Lock()
			pids[resp.PID]++
			instances[res.Instance] = true
			mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed := time.Since(t0)
	t.Logf("%d invocations of %v on 3 instances took %v", n, sleep, elapsed)
	assert.Len(t, pids, 3, "every instance served")
	assert.Len(t, instances, 3)
	assert.Less(t, elapsed, time.Duration(n)*sleep*2/3, "ran in parallel")
	assert.GreaterOrEqual(t, elapsed, 3*sleep, "at most 3 at a time")
}

func TestInitErrors(t *testing.T) {
	tests := []struct {
		name  string
		mode  string
		check func(t *testing.T, ie *lambdarun.InitError)
	}{
		{"posted", "post", func(t *testing.T, ie *lambdarun.InitError) {
			require.NotNil(t, ie.Err)
			assert.Equal(t, "Config.Invalid", ie.Err.Type)
			assert.Equal(t, "TABLE_NAME is required", ie.Err.Message)
		}},
		{"exit", "exit", func(t *testing.T, ie *lambdarun.InitError) {
			assert.Nil(t, ie.Err)
			assert.ErrorContains(t, ie.Exit, "exit status 3")
		}},
		{"hang", "hang", func(t *testing.T, ie *lambdarun.InitError) {
			assert.True(t, ie.TimedOut)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := &testWriter{t: t}
			t0 := time.Now()
			r, err := lambdarun.Start(context.Background(), lambdarun.Options{
				Binary: bootstrap, Env: []string{"FN_INIT=" + tt.mode}, Instances: 2,
				InitTimeout: 500 * time.Millisecond, Output: out,
			})
			assert.Nil(t, r)
			var ie *lambdarun.InitError
			require.True(t, errors.As(err, &ie), "got %v", err)
			t.Logf("%v (after %v)", err, time.Since(t0))
			tt.check(t, ie)
			assert.Less(t, time.Since(t0), 5*time.Second)
		})
	}
}

func TestStartErrors(t *testing.T) {
	tests := []struct {
		name string
		o    lambdarun.Options
		want string
	}{
		{"no binary", lambdarun.Options{}, "Binary is required"},
		{"missing binary", lambdarun.Options{Binary: "/nonexistent/bootstrap"}, "no such file"},
		{"directory", lambdarun.Options{Binary: os.TempDir()}, "not an executable"},
		{"bad env", lambdarun.Options{Binary: bootstrap, Env: []string{"NOVALUE"}}, "KEY=VALUE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := lambdarun.Start(context.Background(), tt.o)
			assert.ErrorContains(t, err, tt.want)
		})
	}
}

func TestInvokeAfterCloseAndCancel(t *testing.T) {
	r, err := lambdarun.Start(context.Background(), lambdarun.Options{Binary: bootstrap, Output: &testWriter{t: t}})
	require.NoError(t, err)

	// The only instance is busy: a second invocation ends with its
	// context, whether it was still queued or had the instance first (both
	// take 500 ms, so the order of the two does not matter).
	busy := make(chan struct{})
	go func() {
		defer close(busy)
		_, _ = r.Invoke(context.Background(), []byte(`{"sleep_ms":500}`))
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err = r.Invoke(ctx, []byte(`{"sleep_ms":500}`))
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	<-busy

	require.NoError(t, r.Close())
	require.NoError(t, r.Close())
	_, err = r.Invoke(context.Background(), []byte(`{}`))
	assert.ErrorIs(t, err, lambdarun.ErrClosed)

	_, err = r.Invoke(context.Background(), make([]byte, lambdarun.MaxPayload+1))
	assert.ErrorContains(t, err, "exceeds")
}

func TestFillPlaceholders(t *testing.T) {
	urlResp := `{"statusCode":200,"headers":{},"body":"{\"lease\":\"v1.abc-DEF_1\",\"n\":7,\"o\":{}}","isBase64Encoded":false}`
	tests := []struct {
		name, event, prev, want, err string
	}{
		{name: "no placeholder", event: `{"a":1}`, want: `{"a":1}`},
		{
			name:  "from a Function URL body",
			event: `{"body":"{\"lease\":\"{{LEASE}}\",\"again\":\"{{LEASE}}\"}"}`, prev: urlResp,
			want: `{"body":"{\"lease\":\"v1.abc-DEF_1\",\"again\":\"v1.abc-DEF_1\"}"}`,
		},
		{name: "number", event: `{"n":{{N}}}`, prev: urlResp, want: `{"n":7}`},
		{
			name:  "base64 body",
			event: `"{{LEASE}}"`, prev: `{"statusCode":200,"body":"eyJsZWFzZSI6IngifQ==","isBase64Encoded":true}`,
			want: `"x"`,
		},
		{name: "plain payload", event: `{{ID}}`, prev: `{"id":"abc"}`, want: `abc`},
		{name: "missing field", event: `{{OTHER}}`, prev: urlResp, err: `no field "other"`},
		{name: "object field", event: `{{O}}`, prev: urlResp, err: "not a string or number"},
		{name: "needs escaping", event: `{{ID}}`, prev: `{"id":"a\"b"}`, err: "escaping"},
		{name: "no previous", event: `{{ID}}`, err: "no previous response"},
		{name: "previous not JSON", event: `{{ID}}`, prev: `nope`, err: "not a JSON object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := lambdarun.FillPlaceholders([]byte(tt.event), []byte(tt.prev))
			if tt.err != "" {
				assert.ErrorContains(t, err, tt.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, string(got))
			assert.False(t, strings.Contains(string(got), "{{"))
		})
	}
	assert.Equal(t, []string{"LEASE", "N"}, lambdarun.Placeholders([]byte(`{{LEASE}} {{N}} {{LEASE}}`)))
}
