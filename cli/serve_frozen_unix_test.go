//go:build unix

package cli

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zeroae/zae-limiter-go/shared/ddblocal/ddbtest"
	"github.com/zeroae/zae-limiter-go/shared/limits"
	"github.com/zeroae/zae-limiter-go/shared/store"
	"github.com/zeroae/zae-limiter-go/shared/wire"
)

// Against a DynamoDB that hangs (its process stopped), serve answers every
// acquire within --timeout: 503 under block, an unchecked 200 under allow;
// and the CLI's acquire exits 1 instead of hanging.
func TestFrozenDynamoDBServeAndCLIAnswer(t *testing.T) {
	f := ddbtest.Freezable(t)
	ctx := context.Background()
	table := f.NewTable(t)
	st := store.New(f.Client, store.Options{Table: table})
	for _, name := range []string{"default", "lenient"} {
		_, err := st.RegisterNamespace(ctx, name)
		require.NoError(t, err)
	}
	require.NoError(t, ns(t, st, "default").SetSystemDefaults(ctx, []limits.Limit{limits.PerMinute("rpm", 100, 0)}, limits.Block))
	require.NoError(t, ns(t, st, "lenient").SetSystemDefaults(ctx, []limits.Limit{limits.PerMinute("rpm", 100, 0)}, limits.Allow))

	srv := startServe(t, "--endpoint-url", f.Endpoint, "-n", table, "--timeout", "2s")
	acq := func(namespace, entity string) (int, []byte) {
		return srv.call(t, http.MethodPost, wire.PathAcquire, "", wire.AcquireRequest{Namespace: namespace, EntityID: entity, Resource: "r", Consume: map[string]int64{"rpm": 1}})
	}
	for _, n := range []string{"default", "lenient"} { // warm: namespaces, policies and limits cached
		code, b := acq(n, "warm")
		require.Equal(t, http.StatusOK, code, "%s", b)
	}

	f.Freeze()
	start := time.Now()
	code, b := acq("default", "u")
	assert.Equal(t, http.StatusServiceUnavailable, code, "%s", b)
	code, b = acq("lenient", "u")
	assert.Equal(t, http.StatusOK, code, "%s", b)
	assert.Contains(t, string(b), `"degraded":true`)
	assert.Less(t, time.Since(start), 10*time.Second, "two requests within their 2 s budgets")

	start = time.Now()
	r := zl(t, table, "--endpoint-url", f.Endpoint, "acquire", "u", "r", "-c", "rpm=1")
	assert.Equal(t, exitError, r.code, r.errOut)
	assert.Less(t, time.Since(start), 15*time.Second, "the CLI within its budget")
	f.Thaw()
	assert.Equal(t, exitOK, srv.stop(t), srv.logs.String())
}
