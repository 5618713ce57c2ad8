//go:build unix

package main

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
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
// answers an acquire within REQUEST_TIMEOUT with 503, well inside the
// function's own timeout, instead of burning it.
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
	ev, err := os.ReadFile(filepath.Join(eventsDir, "admitted.json"))
	require.NoError(t, err)
	r, _ := frozen.start(t, lambdarun.Options{Env: frozen.env("REQUEST_TIMEOUT=2s"), Timeout: 10 * time.Second})
	invoke := func() events.LambdaFunctionURLResponse {
		t.Helper()
		res, err := r.Invoke(ctx, ev)
		require.NoError(t, err)
		require.Nil(t, res.Err, "the function answers, it does not time out")
		var resp events.LambdaFunctionURLResponse
		require.NoError(t, json.Unmarshal(res.Payload, &resp))
		return resp
	}
	require.Equal(t, http.StatusOK, invoke().StatusCode, "warm")
	f.Freeze()
	start := time.Now()
	resp := invoke()
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, resp.Body)
	assert.Less(t, time.Since(start), 8*time.Second, "within REQUEST_TIMEOUT (2 s), not the function's 10 s")
	f.Thaw()
}
