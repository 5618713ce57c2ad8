package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zeroae/zae-limiter-go/shared/api"
	"github.com/zeroae/zae-limiter-go/shared/ddblocal/ddbtest"
	"github.com/zeroae/zae-limiter-go/shared/limiter"
	"github.com/zeroae/zae-limiter-go/shared/limits"
	"github.com/zeroae/zae-limiter-go/shared/store"
	"github.com/zeroae/zae-limiter-go/shared/syncio"
	"github.com/zeroae/zae-limiter-go/shared/wire"
)

func TestNewCmdServe(t *testing.T) {
	key1, key2 := strings.Repeat("k", 16), strings.Repeat("z", 32)
	for _, tc := range []struct {
		name    string
		args    []string
		env     map[string]string
		code    int
		want    serveOptions
		errWant string
	}{
		{name: "defaults", want: serveOptions{Addr: "127.0.0.1:8080", LeaseTTL: api.DefaultLeaseTTL, ConfigCacheTTL: store.DefaultCacheTTL, Timeout: limiter.DefaultTimeout}},
		{name: "flags", args: []string{"--addr", ":0", "--token", "t", "--lease-key", key1, "--lease-key", key2, "--lease-ttl", "1h", "--log-level", "debug"},
			want: serveOptions{Addr: ":0", Token: "t", LeaseKeys: [][]byte{[]byte(key1), []byte(key2)}, LeaseTTL: time.Hour, LogLevel: -4, ConfigCacheTTL: store.DefaultCacheTTL, Timeout: limiter.DefaultTimeout}},
		{name: "no config cache", args: []string{"--config-cache-ttl", "0"},
			want: serveOptions{Addr: "127.0.0.1:8080", LeaseTTL: api.DefaultLeaseTTL, Timeout: limiter.DefaultTimeout}},
		{name: "short config cache", args: []string{"--config-cache-ttl", "5s"},
			want: serveOptions{Addr: "127.0.0.1:8080", LeaseTTL: api.DefaultLeaseTTL, ConfigCacheTTL: 5 * time.Second, Timeout: limiter.DefaultTimeout}},
		{name: "negative config cache", args: []string{"--config-cache-ttl", "-1s"}, code: exitError, errWant: `invalid config-cache-ttl "-1s"`},
		{name: "long config cache", args: []string{"--config-cache-ttl", "2h"}, code: exitError, errWant: `invalid config-cache-ttl "2h0m0s": must be between 0 (no cache) and 1h`},
		{name: "env", env: map[string]string{leaseKeysEnv: key2 + ", " + key1 + ",", apiTokenEnv: "from-env"},
			want: serveOptions{Addr: "127.0.0.1:8080", Token: "from-env", LeaseKeys: [][]byte{[]byte(key2), []byte(key1)}, LeaseTTL: api.DefaultLeaseTTL, ConfigCacheTTL: store.DefaultCacheTTL, Timeout: limiter.DefaultTimeout}},
		{name: "flags win", args: []string{"--lease-key", key1, "--token", ""}, env: map[string]string{leaseKeysEnv: key2, apiTokenEnv: "x"},
			want: serveOptions{Addr: "127.0.0.1:8080", LeaseKeys: [][]byte{[]byte(key1)}, LeaseTTL: api.DefaultLeaseTTL, ConfigCacheTTL: store.DefaultCacheTTL, Timeout: limiter.DefaultTimeout}},
		{name: "short key", args: []string{"--lease-key", "short-secret"}, code: exitError, errWant: "lease-key"},
		{name: "short env key", env: map[string]string{leaseKeysEnv: "short-secret"}, code: exitError, errWant: "at least 16 bytes"},
		{name: "timeout", args: []string{"--timeout", "2s"},
			want: serveOptions{Addr: "127.0.0.1:8080", LeaseTTL: api.DefaultLeaseTTL, ConfigCacheTTL: store.DefaultCacheTTL, Timeout: 2 * time.Second}},
		{name: "tiny timeout", args: []string{"--timeout", "1ms"}, code: exitError, errWant: `invalid timeout "1ms": must be between 100ms and 1m`},
		{name: "bad addr", args: []string{"--addr", "localhost"}, code: exitError, errWant: `invalid addr "localhost"`},
		{name: "zero ttl", args: []string{"--lease-ttl", "0s"}, code: exitError, errWant: "lease-ttl"},
		{name: "bad ttl", args: []string{"--lease-ttl", "soon"}, code: exitUsage, errWant: "lease-ttl"},
		{name: "bad level", args: []string{"--log-level", "loud"}, code: exitUsage, errWant: "log-level"},
		{name: "argument", args: []string{"x"}, code: exitUsage, errWant: "unexpected argument"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got *serveOptions
			env, _, errw := testEnv(false)
			env.Getenv = func(k string) string { return tc.env[k] }
			root := newRootCmd(env)
			for _, c := range root.Commands() {
				if c.Name() == "serve" {
					root.RemoveCommand(c)
				}
			}
			root.AddCommand(newCmdServe(env, func(o *serveOptions) error { got = o; return nil }))
			code := execute(context.Background(), root, env, append([]string{"serve"}, tc.args...))
			require.Equal(t, tc.code, code, errw.String())
			if tc.code != exitOK {
				assert.Contains(t, errw.String(), tc.errWant)
				assert.NotContains(t, errw.String(), "short-secret", "a key is never echoed")
				return
			}
			require.NotNil(t, got)
			got.env = nil
			assert.Equal(t, tc.want, *got)
		})
	}
}

// serve end to end: a real listener on a free port, the same handler as the
// Lambda, bearer auth, a lease's life, and a clean stop on cancel.
func TestServe(t *testing.T) {
	table, st := freshTable(t)
	ctx := context.Background()
	_, err := st.RegisterNamespace(ctx, "default")
	require.NoError(t, err)
	require.NoError(t, ns(t, st, "default").SetSystemDefaults(ctx, []limits.Limit{limits.PerMinute("rpm", 2, 0)}, ""))

	srv := startServe(t, "--token", "s3cret", "--lease-key", strings.Repeat("k", 32), "--endpoint-url", ddbtest.Endpoint(t), "-n", table)
	assert.True(t, strings.HasPrefix(srv.url, "http://127.0.0.1:"), srv.url)
	code, _ := srv.call(t, http.MethodGet, wire.PathHealth, "", nil)
	assert.Equal(t, http.StatusOK, code)
	acq := wire.AcquireRequest{EntityID: "u", Resource: "gpt-4", Consume: map[string]int64{"rpm": 2}}
	code, body := srv.call(t, http.MethodPost, wire.PathAcquire, "", acq)
	assert.Equal(t, http.StatusUnauthorized, code, "%s", body)
	code, body = srv.call(t, http.MethodPost, wire.PathAcquire, "s3cret", acq)
	require.Equal(t, http.StatusOK, code, "%s", body)
	var resp wire.AcquireResponse
	require.NoError(t, json.Unmarshal(body, &resp))
	code, body = srv.call(t, http.MethodPost, wire.PathAcquire, "s3cret", acq)
	assert.Equal(t, http.StatusTooManyRequests, code, "%s", body)
	code, body = srv.call(t, http.MethodPost, wire.PathRelease, "s3cret", wire.ReleaseRequest{Lease: resp.Lease, Rollback: true})
	require.Equal(t, http.StatusOK, code, "%s", body)
	code, body = srv.call(t, http.MethodPost, wire.PathAcquire, "s3cret", acq)
	assert.Equal(t, http.StatusOK, code, "rolled back: %s", body)
	code, _ = srv.call(t, http.MethodPost, wire.PathRelease, "s3cret", wire.ReleaseRequest{Lease: resp.Lease})
	assert.Equal(t, http.StatusConflict, code)

	assert.Equal(t, exitOK, srv.stop(t), srv.logs.String())
	assert.Contains(t, srv.logs.String(), `"msg":"listening"`)
	assert.Contains(t, srv.logs.String(), `"msg":"shutting down"`)
	for _, l := range lines(srv.logs.String()) {
		assert.True(t, json.Valid([]byte(l)), "JSON logs: %s", l)
	}
}

func TestServeMissingTable(t *testing.T) {
	r := zl(t, "no-such-table", "serve", "--addr", "127.0.0.1:0")
	assert.Equal(t, exitError, r.code)
	assert.Contains(t, r.errOut, `table "no-such-table" not found`)
	assert.Empty(t, r.out)
}

// With DynamoDB out of reach at start-up, serve starts anyway and answers
// 503 unavailable (as the Lambda would), rather than refusing to start.
func TestServeWithoutDynamoDB(t *testing.T) {
	srv := startServe(t, "--endpoint-url", deadURL(t))
	code, b := srv.call(t, http.MethodPost, wire.PathAcquire, "", wire.AcquireRequest{EntityID: "u", Resource: "gpt-4", Consume: map[string]int64{"rpm": 1}})
	assert.Equal(t, http.StatusServiceUnavailable, code, "%s", b)
	assert.Contains(t, string(b), `"error":"unavailable"`)
	assert.Equal(t, exitOK, srv.stop(t), srv.logs.String())
	assert.Contains(t, srv.logs.String(), "DynamoDB does not answer")
}

// --config-cache-ttl is how long serve keeps the limits it read: with the
// default a change made elsewhere is not seen at once (the cache answers),
// with 0 the very next acquire sees it.
func TestServeConfigCacheTTL(t *testing.T) {
	table, st := freshTable(t)
	ctx := context.Background()
	_, err := st.RegisterNamespace(ctx, "default")
	require.NoError(t, err)
	defaults := ns(t, st, "default")
	require.NoError(t, defaults.SetSystemDefaults(ctx, []limits.Limit{limits.PerMinute("rpm", 2, 0)}, ""))

	capacity := func(srv served, entity string) int64 {
		t.Helper()
		code, b := srv.call(t, http.MethodPost, wire.PathAcquire, "", wire.AcquireRequest{EntityID: entity, Resource: "gpt-4", Consume: map[string]int64{"rpm": 1}})
		require.Equal(t, http.StatusOK, code, "%s", b)
		var resp wire.AcquireResponse
		require.NoError(t, json.Unmarshal(b, &resp))
		require.Len(t, resp.Limits, 1)
		return resp.Limits[0].Capacity
	}
	cached := startServe(t, "--endpoint-url", ddbtest.Endpoint(t), "-n", table)
	uncached := startServe(t, "--endpoint-url", ddbtest.Endpoint(t), "-n", table, "--config-cache-ttl", "0")
	assert.Equal(t, int64(2), capacity(cached, "u1"))
	assert.Equal(t, int64(2), capacity(uncached, "u2"))

	// Another process (this test's store) raises the limit.
	require.NoError(t, defaults.SetSystemDefaults(ctx, []limits.Limit{limits.PerMinute("rpm", 50, 0)}, ""))
	assert.Equal(t, int64(2), capacity(cached, "u1"), "within the default 60 s the cached limits apply")
	assert.Equal(t, int64(50), capacity(uncached, "u2"), "without a cache the change applies at once")
	assert.Contains(t, uncached.logs.String(), `"config_cache_ttl":"0s"`)
}

// served is a `zae-limiter serve --addr 127.0.0.1:0` running in this
// process; it is stopped when the test ends, if not before.
type served struct {
	url  string
	logs *syncio.Buffer
	stop func(t *testing.T) int // cancel, then the exit code
}

func startServe(t *testing.T, args ...string) served {
	t.Helper()
	env, _, _ := testEnv(false)
	pr, pw := io.Pipe()
	env.Out = pw
	logs := &syncio.Buffer{}
	env.Err = logs
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() {
		done <- execute(ctx, newRootCmd(env), env, append([]string{"serve", "--addr", "127.0.0.1:0"}, args...))
		_ = pw.Close()
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	require.NoError(t, err, "the URL on stdout: %s", logs.String())
	var once sync.Once
	code := -1
	stop := func(t *testing.T) int {
		once.Do(func() {
			cancel()
			select {
			case code = <-done:
			case <-time.After(15 * time.Second):
				t.Error("serve did not stop")
			}
		})
		return code
	}
	t.Cleanup(func() { stop(t) })
	return served{url: strings.TrimSpace(line), logs: logs, stop: stop}
}

// call sends one request (a JSON body when body is not nil) and returns the
// status and the body.
func (s served) call(t *testing.T, method, path, token string, body any) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		require.NoError(t, err)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, s.url+path, rd)
	require.NoError(t, err)
	if body != nil {
		req.Header.Set("Content-Type", wire.ContentType)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, b
}
