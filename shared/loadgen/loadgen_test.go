package loadgen

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRunCountsEveryOutcome(t *testing.T) {
	var n atomic.Int64
	op := Op{Name: "x", Do: func(context.Context) (bool, error) {
		switch n.Add(1) % 3 {
		case 0:
			return false, errors.New("boom")
		case 1:
			return true, nil
		}
		return false, nil
	}}
	var last Progress
	res := Run(context.Background(), Options{Concurrency: 4, Requests: 300, Progress: func(p Progress) { last = p }}, op)
	require.Len(t, res, 1)
	r := res[0]
	assert.Equal(t, int64(300), r.Acquires)
	assert.Equal(t, int64(100), r.Admitted)
	assert.Equal(t, int64(100), r.Rejected)
	assert.Equal(t, int64(100), r.Errors)
	assert.EqualError(t, r.FirstErr, "boom")
	assert.Equal(t, int64(300), last.Done)
}

func TestRunAlternatesOps(t *testing.T) {
	var a, b atomic.Int64
	res := Run(context.Background(), Options{Concurrency: 2, Requests: 50},
		Op{Name: "a", Do: func(context.Context) (bool, error) { a.Add(1); return true, nil }},
		Op{Name: "b", Do: func(context.Context) (bool, error) { b.Add(1); return true, nil }})
	assert.Equal(t, int64(50), a.Load())
	assert.Equal(t, int64(50), b.Load())
	assert.Equal(t, "b", res[1].Name)
}

func TestRunStopsAtDuration(t *testing.T) {
	// Five quick admits, then the op blocks until the run's deadline ends
	// it: Run returns, with the cut attempt counted as neither admitted nor
	// an error.
	var n atomic.Int64
	res := Run(context.Background(), Options{Concurrency: 1, Duration: 50 * time.Millisecond},
		Op{Name: "a", Do: func(ctx context.Context) (bool, error) {
			if n.Add(1) <= 5 {
				return true, nil
			}
			<-ctx.Done()
			return false, ctx.Err()
		}})
	assert.Equal(t, int64(5), res[0].Admitted)
	assert.Zero(t, res[0].Errors, "a deadline cut is not an error")
}

func TestPercentile(t *testing.T) {
	var ds []time.Duration
	for i := 1; i <= 100; i++ {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	assert.Equal(t, 50*time.Millisecond, Percentile(ds, 50))
	assert.Equal(t, 99*time.Millisecond, Percentile(ds, 99))
	assert.Equal(t, time.Duration(0), Percentile(nil, 50))
}
