//go:build unix

package main

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zeroae/zae-limiter-go/shared/ddblocal/ddbtest"
	"github.com/zeroae/zae-limiter-go/shared/lambdarun"
	"github.com/zeroae/zae-limiter-go/shared/limits"
	"github.com/zeroae/zae-limiter-go/shared/store"
)

// testFrozen: the real bootstrap, its DynamoDB hung (process stopped),
// answers an acquire within REQUEST_TIMEOUT, well inside the function's own
// timeout, instead of burning it: 503 where the namespace's on_unavailable
// is block, an unchecked (degraded) admit where it is allow.
func testFrozen(t *testing.T, s stack) {
	f := ddbtest.Freezable(t)
	ctx := context.Background()
	frozen := stack{bootstrap: s.bootstrap, endpoint: f.Endpoint, table: f.NewTable(t)}
	st := store.New(f.Client, store.Options{Table: frozen.table})
	_, err := st.RegisterNamespace(ctx, "default")
	require.NoError(t, err)
	ns, err := st.Namespace(ctx, "default")
	require.NoError(t, err)
	require.NoError(t, ns.SetResourceDefaults(ctx, "gpt-4", []limits.Limit{
		limits.PerMinute("rpm", 100, 0), limits.PerMinute("tpm", 100_000, 0),
	}))
	_, err = st.RegisterNamespace(ctx, "lenient")
	require.NoError(t, err)
	lenient, err := st.Namespace(ctx, "lenient")
	require.NoError(t, err)
	require.NoError(t, lenient.SetSystemDefaults(ctx, []limits.Limit{limits.PerMinute("rpm", 100, 0)}, limits.Allow))
	ev, err := os.ReadFile(filepath.Join(eventsDir, "admitted.json"))
	require.NoError(t, err)
	allowEv := inNamespace(t, ev, "lenient")
	r, _ := frozen.start(t, lambdarun.Options{Env: frozen.env("REQUEST_TIMEOUT=2s"), Timeout: 10 * time.Second})
	invoke := func(ev []byte) events.LambdaFunctionURLResponse {
		t.Helper()
		res, err := r.Invoke(ctx, ev)
		require.NoError(t, err)
		require.Nil(t, res.Err, "the function answers, it does not time out")
		var resp events.LambdaFunctionURLResponse
		require.NoError(t, json.Unmarshal(res.Payload, &resp))
		return resp
	}
	require.Equal(t, http.StatusOK, invoke(ev).StatusCode, "warm")
	warm := invoke(allowEv)
	require.Equal(t, http.StatusOK, warm.StatusCode, "warm: %s", warm.Body)
	require.NotContains(t, warm.Body, `"degraded"`, "checked while DynamoDB answers")
	f.Freeze()
	start := time.Now()
	resp := invoke(ev)
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, resp.Body)
	assert.Less(t, time.Since(start), 8*time.Second, "within REQUEST_TIMEOUT (2 s), not the function's 10 s")
	start = time.Now()
	resp = invoke(allowEv)
	assert.Equal(t, http.StatusOK, resp.StatusCode, resp.Body)
	assert.Contains(t, resp.Body, `"degraded":true`, "admitted unchecked, as on_unavailable allow says")
	assert.Less(t, time.Since(start), 8*time.Second, "within REQUEST_TIMEOUT (2 s), not the function's 10 s")
	f.Thaw()
}

// inNamespace is the Function URL event ev with its acquire body moved to
// namespace ns.
func inNamespace(t *testing.T, ev []byte, ns string) []byte {
	t.Helper()
	var req events.LambdaFunctionURLRequest
	require.NoError(t, json.Unmarshal(ev, &req))
	var body map[string]any
	require.NoError(t, json.Unmarshal([]byte(req.Body), &body))
	body["namespace"] = ns
	b, err := json.Marshal(body)
	require.NoError(t, err)
	req.Body = string(b)
	req.Headers["content-length"] = strconv.Itoa(len(b))
	out, err := json.Marshal(req)
	require.NoError(t, err)
	return out
}
