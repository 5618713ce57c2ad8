package limiter_test

// Rulings of DECISIONS §3 that the engine implements.

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zeroae/zae-limiter-go/shared/limiter"
	"github.com/zeroae/zae-limiter-go/shared/limits"
	"github.com/zeroae/zae-limiter-go/shared/store"
)

// §3.2: a lease holds every limit of every bucket it touched, on the shard
// it wrote, even those the acquire did not consume; a lease rebuilt in
// another process (Resume) rolls back exactly the same.
func TestLeaseHoldsEveryLimit(t *testing.T) {
	e := newEnv(t, exact)
	ls := []limits.Limit{rpm(100), tpm(10_000)}
	lease, err := e.lim.Acquire(e.ctx, limiter.Request{EntityID: "u", Resource: "r", Consume: map[string]int64{"rpm": 1}, Limits: ls})
	require.NoError(t, err)
	require.NoError(t, lease.Adjust(e.ctx, map[string]int64{"tpm": 700}))
	assert.Equal(t, map[string]int64{"rpm": 1, "tpm": 700}, lease.Consumed())
	assert.Equal(t, int64(700_000), e.tc("u", "r", "tpm"))
	require.NoError(t, lease.Consume(e.ctx, map[string]int64{"tpm": 300}))

	// Another process resumes the lease from its entries and rolls back.
	other := e.newLimiter(exact)
	resumed := other.Resume(limiter.Request{EntityID: "u", Resource: "r"}, lease.Entries())
	assert.Equal(t, map[string]int64{"rpm": 1, "tpm": 1000}, resumed.Consumed())
	require.NoError(t, resumed.Rollback(e.ctx))
	assert.Equal(t, map[string]int64{"u/rpm": 100, "u/tpm": 10_000}, e.avail(e.lim, "u", "r", ls))
	assert.Equal(t, int64(0), e.tc("u", "r", "tpm"))
	assert.Equal(t, int64(0), e.tc("u", "r", "rpm"))

	// A name no bucket of the lease has is a validation error.
	assert.ErrorIs(t, lease.Adjust(e.ctx, map[string]int64{"rpd": 1}), limits.ErrInvalid)
}

// §3.3: only limits with a positive requested amount are checked. Debt on
// a limit not requested does not block; debt on a requested one does.
func TestOnlyRequestedLimitsAreChecked(t *testing.T) {
	e := newEnv(t, exact)
	ls := []limits.Limit{rpm(100), tpm(1000)}
	acq := func(consume map[string]int64) (*limiter.Lease, error) {
		return e.lim.Acquire(e.ctx, limiter.Request{EntityID: "u", Resource: "r", Consume: consume, Limits: ls})
	}
	lease, err := acq(map[string]int64{"rpm": 1, "tpm": 500})
	require.NoError(t, err)
	require.NoError(t, lease.Adjust(e.ctx, map[string]int64{"tpm": 2000})) // tpm -1500
	assert.Equal(t, map[string]int64{"u/rpm": 99, "u/tpm": -1500}, e.avail(e.lim, "u", "r", ls))

	_, err = acq(map[string]int64{"rpm": 1})
	assert.NoError(t, err, "debt on tpm does not block an rpm-only request")
	_, err = acq(map[string]int64{"rpm": 1, "tpm": 0})
	assert.NoError(t, err, "a zero amount is not a request")
	_, err = acq(map[string]int64{"rpm": 1, "tpm": 1})
	ex := exceeded(t, err)
	assert.Equal(t, []string{"u/tpm"}, names(ex.Violations()))
	assert.Equal(t, int64(-1500), ex.Violations()[0].Available)
	assert.Equal(t, 90060*time.Millisecond, ex.RetryAfter(), "1501 tokens at 1000/min")
	assert.Equal(t, map[string]int64{"u/rpm": 97, "u/tpm": -1500}, e.avail(e.lim, "u", "r", ls))
}

// §3.4: amounts are whole numbers >= 0 and every name must belong to one of
// the acquire's buckets (child or parent); each bucket takes only the names
// it has. Invalid input is never unavailability.
func TestConsumeValidation(t *testing.T) {
	e := newEnv(t, exact)
	_, err := e.ns.CreateEntity(e.ctx, store.Entity{ID: "child", ParentID: "parent", Cascade: true})
	require.NoError(t, err)
	require.NoError(t, e.ns.SetLimits(e.ctx, "child", "r", []limits.Limit{rpm(100)}))
	require.NoError(t, e.ns.SetLimits(e.ctx, "parent", "r", []limits.Limit{rpm(1000), tpm(10_000)}))
	acq := func(id string, consume map[string]int64) (*limiter.Lease, error) {
		return e.lim.Acquire(e.ctx, limiter.Request{EntityID: id, Resource: "r", Consume: consume, OnUnavailable: limits.Allow})
	}
	e.count.Reset()
	for _, bad := range []map[string]int64{
		{"rpm": -1},
		{"wcu": 1},
		{"rpm/x": 1},
		{"rpm": limits.MaxTokens + 1},
	} {
		_, err := acq("child", bad)
		assert.ErrorIs(t, err, limits.ErrInvalid, "%v", bad)
	}
	assert.Equal(t, int64(0), e.count.Count(""), "rejected before any call")

	_, err = acq("child", map[string]int64{"rpd": 1})
	var ve *limits.ValidationError
	require.ErrorAs(t, err, &ve)
	assert.Contains(t, ve.Error(), `"rpd"`)
	_, err = acq("loner", map[string]int64{"tpm": 1}) // no parent: tpm is nowhere
	assert.ErrorIs(t, err, limits.ErrInvalid)

	// tpm only exists on the parent: only the parent takes it.
	lease, err := acq("child", map[string]int64{"rpm": 1, "tpm": 100})
	require.NoError(t, err)
	assert.False(t, lease.Degraded())
	assert.Equal(t, map[string]int64{"child/rpm": 99, "parent/rpm": 999, "parent/tpm": 9900}, e.avail(e.lim, "child", "r", nil))
	// Adjusting through the lease reaches each bucket that has the name.
	require.NoError(t, lease.Adjust(e.ctx, map[string]int64{"rpm": 1, "tpm": 100}))
	assert.Equal(t, map[string]int64{"child/rpm": 98, "parent/rpm": 998, "parent/tpm": 9800}, e.avail(e.lim, "child", "r", nil))
	require.NoError(t, lease.Rollback(e.ctx))
	assert.Equal(t, map[string]int64{"child/rpm": 100, "parent/rpm": 1000, "parent/tpm": 10_000}, e.avail(e.lim, "child", "r", nil))

	// Bad ids and resources are validation errors too.
	_, err = acq("bad#id", map[string]int64{"rpm": 1})
	assert.ErrorIs(t, err, limits.ErrInvalid)
	_, err = e.lim.Acquire(e.ctx, limiter.Request{EntityID: "u", Resource: "/r", Consume: map[string]int64{"rpm": 1}})
	assert.ErrorIs(t, err, limits.ErrInvalid)
	_, err = e.lim.Acquire(e.ctx, limiter.Request{EntityID: "u", Resource: "r", Consume: map[string]int64{"rpm": 1}, Limits: []limits.Limit{}})
	assert.ErrorIs(t, err, limits.ErrInvalid)
}

// §3.8: Available and TimeUntilAvailable include the parent when the
// entity cascades.
func TestAvailableIncludesParent(t *testing.T) {
	e := newEnv(t, exact)
	_, err := e.ns.CreateEntity(e.ctx, store.Entity{ID: "child", ParentID: "parent", Cascade: true})
	require.NoError(t, err)
	require.NoError(t, e.ns.SetLimits(e.ctx, "parent", "r", []limits.Limit{rpm(10)}))
	require.NoError(t, e.ns.SetLimits(e.ctx, "child", "r", []limits.Limit{rpm(100)}))
	_, err = e.lim.Acquire(e.ctx, limiter.Request{EntityID: "parent", Resource: "r", Consume: map[string]int64{"rpm": 10}})
	require.NoError(t, err)
	sts, err := e.lim.Available(e.ctx, "child", "r", map[string]int64{"rpm": 5}, nil)
	require.NoError(t, err)
	assert.False(t, statusOf(t, sts, "child", "rpm").Exceeded)
	p := statusOf(t, sts, "parent", "rpm")
	assert.True(t, p.Exceeded)
	assert.Equal(t, 30*time.Second, p.RetryAfter)
	wait, err := e.lim.TimeUntilAvailable(e.ctx, "child", "r", map[string]int64{"rpm": 5}, nil)
	require.NoError(t, err)
	assert.InDelta(t, 30.0, wait, 0.001)
}

// Do commits when the work succeeds and returns a denial without running
// it.
func TestDoCommitsAndDenies(t *testing.T) {
	e := newEnv(t, exact)
	ls := []limits.Limit{rpm(10)}
	req := limiter.Request{EntityID: "u", Resource: "r", Consume: map[string]int64{"rpm": 6}, Limits: ls}
	ran := 0
	work := func(ctx context.Context, l *limiter.Lease) error {
		ran++
		return l.Adjust(ctx, map[string]int64{"rpm": -1})
	}
	require.NoError(t, e.lim.Do(e.ctx, req, work))
	assert.Equal(t, map[string]int64{"u/rpm": 5}, e.avail(e.lim, "u", "r", ls))
	err := e.lim.Do(e.ctx, req, work)
	var ex *limits.ExceededError
	assert.True(t, errors.As(err, &ex))
	assert.Equal(t, 1, ran)
}
