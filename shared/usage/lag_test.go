package usage_test

import (
	"context"
	"fmt"
	"os"
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/zeroae/zae-limiter-go/shared/awsenv"
	"github.com/zeroae/zae-limiter-go/shared/limiter"
	"github.com/zeroae/zae-limiter-go/shared/store"
	"github.com/zeroae/zae-limiter-go/shared/usage"
	"github.com/zeroae/zae-limiter-go/shared/usage/usagetest"
)

// BenchmarkStreamLag measures acquire-to-snapshot on a running stack (the
// local stack: `zae-limiter local up`): each round acquires once for a
// probe entity of its own, then polls the probe's hourly snapshots every
// 10 ms until they count the acquire. The lag runs from the acquire's
// return (its write is done) to the first read that shows it; it holds the
// stream's delivery, the mapping's batching window, the function and one
// read. Set ZAEL_LAG_ENDPOINT (the stack's endpoint) and ZAEL_LAG_TABLE
// (default "limiter"); other load (zae-limiter bench) may run beside it.
func BenchmarkStreamLag(b *testing.B) {
	ep := os.Getenv("ZAEL_LAG_ENDPOINT")
	if ep == "" {
		b.Skip("set ZAEL_LAG_ENDPOINT to a running stack's endpoint (zae-limiter local up)")
	}
	table := os.Getenv("ZAEL_LAG_TABLE")
	if table == "" {
		table = "limiter"
	}
	ctx := context.Background()
	cfg, err := awsenv.Load(ctx, awsenv.Options{EndpointURL: ep})
	require.NoError(b, err)
	db := awsenv.NewDynamoDB(cfg)
	ns, err := store.New(db, store.Options{Table: table}).Namespace(ctx, "default")
	require.NoError(b, err)
	lim := limiter.New(db, ns, limiter.Options{Table: table, Namespace: ns.ID})
	probe := fmt.Sprintf("lag-probe-%d", time.Now().UnixNano())

	var lags []time.Duration
	b.ResetTimer()
	for i := range b.N {
		_, err := lim.Acquire(ctx, limiter.Request{EntityID: probe, Resource: "lag", Consume: map[string]int64{"rpm": 1},
			Limits: usagetest.Limits})
		require.NoError(b, err)
		done := time.Now()
		for {
			snaps, err := usage.List(ctx, db, table, usage.Filter{Namespace: ns.ID, EntityID: probe, Resource: "lag",
				Windows: []usage.Window{usage.Hourly}})
			require.NoError(b, err)
			var events int64
			for _, s := range snaps {
				events += s.Events
			}
			if events > int64(i) {
				break
			}
			require.Less(b, time.Since(done), 2*time.Minute, "the acquire never showed in the snapshots")
			time.Sleep(10 * time.Millisecond)
		}
		lags = append(lags, time.Since(done))
	}
	sort.Slice(lags, func(i, j int) bool { return lags[i] < lags[j] })
	pct := func(p float64) float64 { return float64(lags[int(p*float64(len(lags)-1))].Milliseconds()) }
	b.ReportMetric(pct(0.5), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(float64(lags[len(lags)-1].Milliseconds()), "max-ms")
}
