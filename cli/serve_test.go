package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zeroae/zae-limiter-go/shared/api"
	"github.com/zeroae/zae-limiter-go/shared/ddblocal/ddbtest"
	"github.com/zeroae/zae-limiter-go/shared/limits"
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
		{name: "defaults", want: serveOptions{Addr: "127.0.0.1:8080", LeaseTTL: api.DefaultLeaseTTL}},
		{name: "flags", args: []string{"--addr", ":0", "--token", "t", "--lease-key", key1, "--lease-key", key2, "--lease-ttl", "1h", "--log-level", "debug"},
			want: serveOptions{Addr: ":0", Token: "t", LeaseKeys: [][]byte{[]byte(key1), []byte(key2)}, LeaseTTL: time.Hour, LogLevel: -4}},
		{name: "env", env: map[string]string{leaseKeysEnv: key2 + ", " + key1 + ",", apiTokenEnv: "from-env"},
			want: serveOptions{Addr: "127.0.0.1:8080", Token: "from-env", LeaseKeys: [][]byte{[]byte(key2), []byte(key1)}, LeaseTTL: api.DefaultLeaseTTL}},
		{name: "flags win", args: []string{"--lease-key", key1, "--token", ""}, env: map[string]string{leaseKeysEnv: key2, apiTokenEnv: "x"},
			want: serveOptions{Addr: "127.0.0.1:8080", LeaseKeys: [][]byte{[]byte(key1)}, LeaseTTL: api.DefaultLeaseTTL}},
		{name: "short key", args: []string{"--lease-key", "short-secret"}, code: exitError, errWant: "lease-key"},
		{name: "short env key", env: map[string]string{leaseKeysEnv: "short-secret"}, code: exitError, errWant: "at least 16 bytes"},
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

	env, _, _ := testEnv(false)
	pr, pw := io.Pipe()
	env.Out = pw
	var logs bytes.Buffer
	env.Err = &logs
	sctx, stop := context.WithCancel(ctx)
	done := make(chan int, 1)
	go func() {
		done <- execute(sctx, newRootCmd(env), env, []string{"serve", "--addr", "127.0.0.1:0", "--token", "s3cret",
			"--lease-key", strings.Repeat("k", 32), "--endpoint-url", ddbtest.Endpoint(t), "-n", table})
		_ = pw.Close()
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	require.NoError(t, err, "the URL on stdout")
	url := strings.TrimSpace(line)
	assert.True(t, strings.HasPrefix(url, "http://127.0.0.1:"), url)

	call := func(method, path, token string, body any) (int, []byte) {
		t.Helper()
		var rd io.Reader
		if body != nil {
			b, err := json.Marshal(body)
			require.NoError(t, err)
			rd = bytes.NewReader(b)
		}
		req, err := http.NewRequest(method, url+path, rd)
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

	code, _ := call(http.MethodGet, wire.PathHealth, "", nil)
	assert.Equal(t, http.StatusOK, code)
	acq := wire.AcquireRequest{EntityID: "u", Resource: "gpt-4", Consume: map[string]int64{"rpm": 2}}
	code, body := call(http.MethodPost, wire.PathAcquire, "", acq)
	assert.Equal(t, http.StatusUnauthorized, code, "%s", body)
	code, body = call(http.MethodPost, wire.PathAcquire, "s3cret", acq)
	require.Equal(t, http.StatusOK, code, "%s", body)
	var resp wire.AcquireResponse
	require.NoError(t, json.Unmarshal(body, &resp))
	code, body = call(http.MethodPost, wire.PathAcquire, "s3cret", acq)
	assert.Equal(t, http.StatusTooManyRequests, code, "%s", body)
	code, body = call(http.MethodPost, wire.PathRelease, "s3cret", wire.ReleaseRequest{Lease: resp.Lease, Rollback: true})
	require.Equal(t, http.StatusOK, code, "%s", body)
	code, body = call(http.MethodPost, wire.PathAcquire, "s3cret", acq)
	assert.Equal(t, http.StatusOK, code, "rolled back: %s", body)
	code, _ = call(http.MethodPost, wire.PathRelease, "s3cret", wire.ReleaseRequest{Lease: resp.Lease})
	assert.Equal(t, http.StatusConflict, code)

	stop()
	select {
	case code := <-done:
		assert.Equal(t, exitOK, code, logs.String())
	case <-time.After(15 * time.Second):
		t.Fatal("serve did not stop")
	}
	assert.Contains(t, logs.String(), `"msg":"listening"`)
	assert.Contains(t, logs.String(), `"msg":"shutting down"`)
	for _, l := range lines(logs.String()) {
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
	dead := deadURL(t)

	env, _, _ := testEnv(false)
	pr, pw := io.Pipe()
	env.Out = pw
	var logs syncio.Buffer
	env.Err = &logs
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() {
		done <- execute(ctx, newRootCmd(env), env, []string{"serve", "--addr", "127.0.0.1:0", "--endpoint-url", dead})
		_ = pw.Close()
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	require.NoError(t, err, "the URL on stdout: %s", logs.String())
	url := strings.TrimSpace(line)

	body := `{"entity_id":"u","resource":"gpt-4","consume":{"rpm":1}}`
	resp, err := http.Post(url+wire.PathAcquire, "application/json", strings.NewReader(body))
	require.NoError(t, err)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, "%s", b)
	assert.Contains(t, string(b), `"error":"unavailable"`)

	stop()
	assert.Equal(t, exitOK, <-done, logs.String())
	assert.Contains(t, logs.String(), "DynamoDB does not answer")
}
