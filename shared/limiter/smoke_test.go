package limiter_test

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zeroae/zae-limiter-go/shared/limiter"
	"github.com/zeroae/zae-limiter-go/shared/limits"
)

func TestBasicExhaustion(t *testing.T) {
	e := newEnv(t, limiter.Options{})
	req := limiter.Request{EntityID: "user-1", Resource: "gpt-4", Consume: map[string]int64{"rpm": 10},
		Limits: []limits.Limit{limits.PerMinute("rpm", 10, 0)}}
	lease, err := e.lim.Acquire(e.ctx, req)
	require.NoError(t, err)
	require.NoError(t, lease.Commit(e.ctx))

	req.Consume = map[string]int64{"rpm": 1}
	_, err = e.lim.Acquire(e.ctx, req)
	var ex *limits.ExceededError
	require.True(t, errors.As(err, &ex), "want a denial, got %v", err)
	v := ex.Violations()
	require.Len(t, v, 1)
	assert.Equal(t, int64(0), v[0].Available)
	assert.InDelta(t, 6.0, ex.RetryAfter().Seconds(), 0.02)
	assert.Equal(t, "6", ex.RetryAfterHeader())

	e.clock.Advance(ex.RetryAfter())
	_, err = e.lim.Acquire(e.ctx, req)
	require.NoError(t, err)
}

func TestOneRequestPerAcquire(t *testing.T) {
	e := newEnv(t, limiter.Options{})
	req := limiter.Request{EntityID: "user-1", Resource: "gpt-4", Consume: map[string]int64{"rpm": 1, "tpm": 100},
		Limits: []limits.Limit{limits.PerMinute("rpm", 1_000_000, 0), limits.PerMinute("tpm", 100_000_000, 0)}}
	_, err := e.lim.Acquire(e.ctx, req) // creates the bucket
	require.NoError(t, err)
	e.count.Reset()
	for i := 0; i < 200; i++ {
		e.clock.Advance(3 * time.Millisecond)
		_, err := e.lim.Acquire(e.ctx, req)
		require.NoError(t, err)
	}
	assert.Equal(t, int64(200), e.count.Count(""), "requests: %v", e.count.Snapshot())
	assert.Equal(t, int64(200), e.count.Count("UpdateItem"))
}
