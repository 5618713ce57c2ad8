package limiter_test

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/stretchr/testify/require"

	"github.com/zeroae/zae-limiter-go/shared/clocktest"
	"github.com/zeroae/zae-limiter-go/shared/ddblocal/ddbtest"
	"github.com/zeroae/zae-limiter-go/shared/dynamo"
	"github.com/zeroae/zae-limiter-go/shared/limiter"
	"github.com/zeroae/zae-limiter-go/shared/store"
)

func TestMain(m *testing.M) { ddbtest.Main(m) }

// newClock returns a settable test clock at the tests' usual instant.
func newClock() *clocktest.Clock {
	return clocktest.New(time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC))
}

// env is a fresh table with the default namespace, its store handle, and a
// limiter whose DynamoDB requests are counted.
type env struct {
	t     *testing.T
	ctx   context.Context
	table string
	db    *dynamodb.Client
	count *dynamo.Counter
	store *store.Store
	ns    *store.NS
	clock *clocktest.Clock
	lim   *limiter.Limiter
}

func newEnv(t *testing.T, o limiter.Options) *env {
	t.Helper()
	e := &env{t: t, ctx: context.Background(), table: ddbtest.NewTable(t), count: &dynamo.Counter{}, clock: newClock()}
	cfg := ddbtest.Config(t)
	e.db = dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) {
		o.BaseEndpoint = cfg.BaseEndpoint
		o.DisableValidateResponseChecksum = true
		o.APIOptions = append(o.APIOptions, e.count.Install)
	})
	e.store = store.New(e.db, store.Options{Table: e.table, Now: e.clock.Now})
	_, err := e.store.RegisterNamespace(e.ctx, "default")
	require.NoError(t, err)
	e.ns, err = e.store.Namespace(e.ctx, "default")
	require.NoError(t, err)
	e.lim = e.newLimiter(o)
	return e
}

// testTimeout replaces the 5 s budget of a call in tests that do not test
// it: a loaded machine (or DynamoDB Local under a contention test) may be
// slower than any production deadline, and a test must not depend on it.
const testTimeout = time.Minute

// newLimiter builds another limiter (another "process") on the same table.
func (e *env) newLimiter(o limiter.Options) *limiter.Limiter {
	o.Table, o.Namespace = e.table, e.ns.ID
	if o.Timeout == 0 {
		o.Timeout = testTimeout
	}
	if o.Now == nil {
		o.Now = e.clock.Now
	}
	return limiter.New(e.db, e.ns, o)
}
