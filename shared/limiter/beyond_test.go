package limiter_test

// Calendar quotas (ADR-029), reset and grant (ADR-030), shadow limits
// (ADR-031) and blocked entities (ADR-032), against DynamoDB Local.

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zeroae/zae-limiter-go/shared/limiter"
	"github.com/zeroae/zae-limiter-go/shared/limits"
	"github.com/zeroae/zae-limiter-go/shared/schema"
	"github.com/zeroae/zae-limiter-go/shared/store"
)

func utc(y int, m time.Month, d, h, mi, s, ms int) time.Time {
	return time.Date(y, m, d, h, mi, s, ms*int(time.Millisecond), time.UTC)
}

// A calendar quota is full again at the boundary and not a millisecond
// before; the denial's wait and the status name that boundary; debt is
// carried; one request per acquire. Across month ends of 28, 29 (2028, a
// leap year), 30 and 31 days, the end of a week (Sunday to Monday) and of
// a day.
func TestCalendarQuota(t *testing.T) {
	for _, tc := range []struct {
		name     string
		limit    limits.Limit
		at, next time.Time
	}{
		{"february", limits.PerCalendar("q", 100, limits.CalendarMonth), utc(2027, 2, 27, 10, 0, 0, 0), utc(2027, 3, 1, 0, 0, 0, 0)},
		{"leap february", limits.PerCalendar("q", 100, limits.CalendarMonth), utc(2028, 2, 28, 10, 0, 0, 0), utc(2028, 3, 1, 0, 0, 0, 0)},
		{"april", limits.PerCalendar("q", 100, limits.CalendarMonth), utc(2026, 4, 30, 23, 0, 0, 0), utc(2026, 5, 1, 0, 0, 0, 0)},
		{"december", limits.PerCalendar("q", 100, limits.CalendarMonth), utc(2026, 12, 1, 0, 0, 0, 0), utc(2027, 1, 1, 0, 0, 0, 0)},
		{"sunday", limits.PerCalendar("q", 100, limits.CalendarWeek), utc(2026, 11, 29, 22, 30, 0, 0), utc(2026, 11, 30, 0, 0, 0, 0)},
		{"day", limits.PerCalendar("q", 100, limits.CalendarDay), utc(2026, 11, 26, 12, 0, 0, 0), utc(2026, 11, 27, 0, 0, 0, 0)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, limiter.Options{})
			e.clock.Set(tc.at)
			require.NoError(t, e.ns.SetLimits(e.ctx, "u", "r", []limits.Limit{tc.limit}))
			req := func(n int64) limiter.Request {
				return limiter.Request{EntityID: "u", Resource: "r", Consume: map[string]int64{"q": n}}
			}
			lease, err := e.lim.Acquire(e.ctx, req(60))
			require.NoError(t, err)
			assert.Equal(t, tc.next, lease.Statuses()[0].ResetAt, "the status names the boundary")
			e.count.Reset()
			_, err = e.lim.Acquire(e.ctx, req(40))
			require.NoError(t, err)
			assert.Equal(t, map[string]int64{"UpdateItem": 1}, e.count.Snapshot(), "one request per acquire")

			_, err = e.lim.Acquire(e.ctx, req(1))
			ex := exceeded(t, err)
			assert.Equal(t, tc.next.Sub(tc.at), ex.RetryAfter(), "the wait is to the boundary")
			sts, err := e.lim.Available(e.ctx, "u", "r", map[string]int64{"q": 100}, nil)
			require.NoError(t, err)
			assert.Equal(t, int64(0), sts[0].Available)
			assert.Equal(t, tc.next, sts[0].ResetAt)
			assert.Equal(t, tc.next.Sub(tc.at), sts[0].RetryAfter)

			e.clock.Set(tc.next.Add(-time.Millisecond))
			_, err = e.lim.Acquire(e.ctx, req(1))
			assert.Equal(t, time.Millisecond, exceeded(t, err).RetryAfter(), "not a millisecond early")
			// 30 tokens of debt at the boundary are carried into the next
			// period.
			require.NoError(t, lease.Adjust(e.ctx, map[string]int64{"q": 30}))

			e.clock.Set(tc.next)
			assert.Equal(t, map[string]int64{"u/q": 70}, e.avail(e.lim, "u", "r", nil))
			_, err = e.lim.Acquire(e.ctx, req(71))
			exceeded(t, err)
			_, err = e.lim.Acquire(e.ctx, req(70))
			require.NoError(t, err)
		})
	}
}

// Changing a limit between calendar and continuous carries the tokens held,
// never more, both ways (ADR-004's carry on the step clock).
func TestCalendarContinuousCarry(t *testing.T) {
	e := newEnv(t, limiter.Options{})
	e.clock.Set(utc(2026, 6, 15, 12, 0, 0, 0))
	cont := []limits.Limit{limits.PerDay("q", 100, 0)}
	cal := []limits.Limit{limits.PerCalendar("q", 100, limits.CalendarDay)}
	acq := func(ls []limits.Limit, n int64) error {
		_, err := e.lim.Acquire(e.ctx, limiter.Request{EntityID: "u", Resource: "r", Consume: map[string]int64{"q": n}, Limits: ls})
		return err
	}
	require.NoError(t, acq(cont, 80))
	require.NoError(t, acq(cal, 20), "20 carried into the calendar day")
	exceeded(t, acq(cal, 1))
	exceeded(t, acq(cont, 1)) // and back: nothing minted
	// The denial wrote the continuous limit back: by midnight it refilled
	// 50 (half a day), which the calendar day carries, no more.
	e.clock.Set(utc(2026, 6, 16, 0, 0, 0, 0))
	exceeded(t, acq(cal, 51))
	require.NoError(t, acq(cal, 50))
	e.clock.Set(utc(2026, 6, 17, 0, 0, 0, 0))
	require.NoError(t, acq(cal, 100), "full at the next midnight")
}

func shadowOf(l limits.Limit) limits.Limit { l.Shadow = true; return l }

// A shadow limit never denies: its would-be denials are reported in the
// lease's statuses, counted on the item and in Stats, and it takes only
// what it would have admitted; one write per acquire.
func TestShadowLimit(t *testing.T) {
	e := newEnv(t, limiter.Options{})
	require.NoError(t, e.ns.SetLimits(e.ctx, "u", "r", []limits.Limit{limits.PerMinute("rpm", 100, 0), shadowOf(limits.PerMinute("new", 5, 0))}))
	req := limiter.Request{EntityID: "u", Resource: "r", Consume: map[string]int64{"rpm": 1, "new": 2}}
	var leases []*limiter.Lease
	for i := range 4 {
		e.count.Reset()
		lease, err := e.lim.Acquire(e.ctx, req)
		require.NoError(t, err, "acquire %d: a shadow limit never denies", i)
		if i > 0 {
			assert.Equal(t, map[string]int64{"UpdateItem": 1}, e.count.Snapshot())
		}
		st := statusOf(t, lease.Statuses(), "u", "new")
		assert.Equal(t, i >= 2, st.Exceeded, "acquire %d: 2+2 fit in 5, the third 2 would not", i)
		if st.Exceeded {
			assert.Positive(t, st.RetryAfter)
			assert.Equal(t, []limits.Status{st}, limits.ShadowViolations(lease.Statuses()))
			assert.NotContains(t, lease.Consumed(), "new", "not taken")
		}
		leases = append(leases, lease)
	}
	assert.Equal(t, int64(2), e.lim.Stats().ShadowDenials)
	it := e.item("u", "r", 0)
	assert.Equal(t, int64(2), e.num(it, schema.BucketAttr("new", schema.SuffixShadow)))
	assert.Equal(t, int64(4*milliPerToken), e.tc("u", "r", "new"))
	assert.Equal(t, int64(4*milliPerToken), e.tc("u", "r", "rpm"))
	// A rollback returns only what was taken.
	require.NoError(t, leases[3].Rollback(e.ctx))
	require.NoError(t, leases[1].Rollback(e.ctx))
	assert.Equal(t, map[string]int64{"u/rpm": 98, "u/new": 3}, e.avail(e.lim, "u", "r", nil))

	// Made enforcing, it denies.
	require.NoError(t, e.ns.SetLimits(e.ctx, "u", "r", []limits.Limit{limits.PerMinute("rpm", 100, 0), limits.PerMinute("new", 5, 0)}))
	_, err := e.lim.Acquire(e.ctx, limiter.Request{EntityID: "u", Resource: "r", Consume: map[string]int64{"new": 4}})
	assert.Equal(t, "new", exceeded(t, err).Primary().Limit.Name)
}

// Credits pay what the bucket cannot, after its own tokens, above the
// capacity if need be, exactly once under concurrency; a rollback returns
// them; the consumption counter counts both.
func TestGrant(t *testing.T) {
	e := newEnv(t, limiter.Options{})
	require.NoError(t, e.ns.SetLimits(e.ctx, "u", "r", []limits.Limit{limits.PerHour("tpm", 100, 0)}))
	acq := func(n int64) (*limiter.Lease, error) {
		return e.lim.Acquire(e.ctx, limiter.Request{EntityID: "u", Resource: "r", Consume: map[string]int64{"tpm": n}})
	}
	// A grant to a bucket that does not exist creates it, full.
	n, err := e.lim.Grant(e.ctx, "u", "r", map[string]int64{"tpm": 500})
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	sts, err := e.lim.Available(e.ctx, "u", "r", nil, nil)
	require.NoError(t, err)
	assert.Equal(t, int64(100), sts[0].Available)
	assert.Equal(t, int64(500), sts[0].Credit)

	_, err = acq(90)
	require.NoError(t, err)
	lease, err := acq(300) // above the capacity: credits pay
	require.NoError(t, err)
	assert.Equal(t, map[string]int64{"u/tpm": 10}, e.avail(e.lim, "u", "r", nil), "the bucket's own 10 left")
	e.count.Reset()
	_, err = acq(10)
	require.NoError(t, err)
	assert.Equal(t, map[string]int64{"UpdateItem": 1}, e.count.Snapshot(), "the bucket's own tokens first")
	require.NoError(t, lease.Rollback(e.ctx))
	sts, err = e.lim.Available(e.ctx, "u", "r", nil, nil)
	require.NoError(t, err)
	assert.Equal(t, int64(0), sts[0].Available)
	assert.Equal(t, int64(500), sts[0].Credit, "the rollback returned the credits")
	assert.Equal(t, int64(100*milliPerToken), e.tc("u", "r", "tpm"), "90 + 10 consumed, 300 taken and given back")

	// Concurrent acquires take exactly the credits, no more.
	var admitted atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := e.newLimiter(limiter.Options{})
			for range 12 {
				if _, err := p.Acquire(e.ctx, limiter.Request{EntityID: "u", Resource: "r", Consume: map[string]int64{"tpm": 7}}); err == nil {
					admitted.Add(7)
				} else {
					exceeded(t, err)
				}
			}
		}()
	}
	wg.Wait()
	assert.Equal(t, int64(497), admitted.Load(), "71 of 7 fit in 500 credits, the bucket was empty")
	_, err = acq(4)
	exceeded(t, err)

	// A request above the capacity is judged on the item, not on a cache
	// from before a grant: a process that knows nothing of the bucket sees
	// credits granted by another at once, one that saw the bucket before
	// the grant within the denial cache's TTL (denying meanwhile without a
	// request), one without the denial cache at once.
	big := limiter.Request{EntityID: "u", Resource: "r", Consume: map[string]int64{"tpm": 150}}
	fresh := e.newLimiter(limiter.Options{})
	stale := e.newLimiter(limiter.Options{})
	uncached := e.newLimiter(limiter.Options{NoDenialCache: true})
	_, err = stale.Acquire(e.ctx, big)
	exceeded(t, err) // seen: no credits
	_, err = uncached.Acquire(e.ctx, big)
	exceeded(t, err)
	_, err = e.lim.Grant(e.ctx, "u", "r", map[string]int64{"tpm": 450})
	require.NoError(t, err)
	_, err = fresh.Acquire(e.ctx, big)
	require.NoError(t, err, "nothing seen: the item's credits pay")
	_, err = uncached.Acquire(e.ctx, big)
	require.NoError(t, err, "no denial cache: the item's credits pay")
	e.count.Reset()
	_, err = stale.Acquire(e.ctx, big)
	assert.Equal(t, limits.ReasonCached, exceeded(t, err).Reason, "seen within the TTL")
	assert.Empty(t, e.count.Snapshot(), "a request above the capacity denied on the state seen costs nothing")
	e.clock.Advance(limiter.DefaultDenialCacheTTL + time.Millisecond)
	_, err = stale.Acquire(e.ctx, big)
	require.NoError(t, err, "seen before the grant, longer ago than the TTL: the item's credits pay")
	_, err = fresh.Acquire(e.ctx, big)
	ex := exceeded(t, err)
	assert.False(t, ex.Retryable(), "above the capacity, no credits left")
	assert.Equal(t, "tpm", ex.Primary().Limit.Name)

	// Invalid grants change nothing.
	_, err = e.lim.Grant(e.ctx, "u", "r", map[string]int64{"rpm": 5})
	assert.ErrorIs(t, err, limits.ErrInvalid, "not a configured limit")
	_, err = e.lim.Grant(e.ctx, "u", "r", map[string]int64{"tpm": 0})
	assert.ErrorIs(t, err, limits.ErrInvalid)
	evs, err := e.ns.AuditEvents(e.ctx, "u", 0, "")
	require.NoError(t, err)
	require.NotEmpty(t, evs)
	assert.Equal(t, store.ActionCreditsGranted, evs[0].Action)
	assert.Equal(t, "r", evs[0].Resource)
}

// A reset fills every limit (or the one named) on every shard of the
// bucket, debt forgiven, credits kept, and is audited.
func TestReset(t *testing.T) {
	e := newEnv(t, limiter.Options{})
	ls := []limits.Limit{limits.PerHour("rpm", 100, 0), limits.PerHour("tpm", 1000, 0)}
	require.NoError(t, e.ns.SetLimits(e.ctx, "u", "r", ls))
	n, err := e.lim.Reset(e.ctx, "u", "r", nil)
	require.NoError(t, err)
	assert.Equal(t, 0, n, "no bucket: full already")

	lease, err := e.lim.Acquire(e.ctx, limiter.Request{EntityID: "u", Resource: "r", Consume: map[string]int64{"rpm": 100, "tpm": 600}})
	require.NoError(t, err)
	require.NoError(t, lease.Adjust(e.ctx, map[string]int64{"tpm": 900})) // 500 of debt
	_, err = e.lim.Grant(e.ctx, "u", "r", map[string]int64{"tpm": 50})
	require.NoError(t, err)

	n, err = e.lim.Reset(e.ctx, "u", "r", []string{"rpm"})
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	assert.Equal(t, map[string]int64{"u/rpm": 100, "u/tpm": -500}, e.avail(e.lim, "u", "r", nil))
	_, err = e.lim.Reset(e.ctx, "u", "r", nil)
	require.NoError(t, err)
	sts, err := e.lim.Available(e.ctx, "u", "r", nil, nil)
	require.NoError(t, err)
	assert.Equal(t, int64(1000), statusOf(t, sts, "u", "tpm").Available, "debt forgiven")
	assert.Equal(t, int64(50), statusOf(t, sts, "u", "tpm").Credit, "credits kept")
	// The lease's later rollback gives back nothing beyond full.
	require.NoError(t, lease.Rollback(e.ctx))
	assert.Equal(t, map[string]int64{"u/rpm": 100, "u/tpm": 1000}, e.avail(e.lim, "u", "r", nil))

	_, err = e.lim.Reset(e.ctx, "u", "r", []string{"nope"})
	assert.ErrorIs(t, err, limits.ErrInvalid)

	// Sharded: every shard is filled.
	_, err = e.lim.Acquire(e.ctx, limiter.Request{EntityID: "u", Resource: "r", Consume: map[string]int64{"rpm": 1}})
	require.NoError(t, err)
	e.spendWCU("u", "r", 0)
	for range 20 {
		_, _ = e.lim.Acquire(e.ctx, limiter.Request{EntityID: "u", Resource: "r", Consume: map[string]int64{"rpm": 2}})
	}
	require.NotNil(t, e.item("u", "r", 1), "the bucket split")
	n, err = e.lim.Reset(e.ctx, "u", "r", nil)
	require.NoError(t, err)
	assert.GreaterOrEqual(t, n, 2)
	assert.Equal(t, map[string]int64{"u/rpm": 100, "u/tpm": 1000}, e.avail(e.lim, "u", "r", nil))
	evs, err := e.ns.AuditEvents(e.ctx, "u", 0, "")
	require.NoError(t, err)
	assert.Equal(t, store.ActionBucketReset, evs[0].Action)
}

// Reset is exact under concurrent acquires: a drained bucket reset while
// writers hammer it admits exactly its capacity afterwards, no more (the
// clock is frozen: nothing refills). The writers make every attempt a
// write (no denial cache), so the reset races real writes.
func TestResetUnderConcurrency(t *testing.T) {
	e := newEnv(t, limiter.Options{})
	require.NoError(t, e.ns.SetLimits(e.ctx, "u", "r", []limits.Limit{limits.PerDay("rpd", 50, 0)}))
	_, err := e.lim.Acquire(e.ctx, limiter.Request{EntityID: "u", Resource: "r", Consume: map[string]int64{"rpd": 50}})
	require.NoError(t, err)
	var admitted, attempts atomic.Int64
	var resetDone atomic.Bool
	started := make(chan struct{}, 6)
	var wg sync.WaitGroup
	for range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := e.newLimiter(limiter.Options{NoDenialCache: true})
			after := 0
			for i := 0; after < 20; i++ {
				if i == 1 {
					started <- struct{}{}
				}
				if resetDone.Load() {
					after++
				}
				attempts.Add(1)
				if _, err := p.Acquire(e.ctx, limiter.Request{EntityID: "u", Resource: "r", Consume: map[string]int64{"rpd": 1}}); err == nil {
					admitted.Add(1)
				} else {
					exceeded(t, err)
				}
			}
		}()
	}
	for range 6 {
		<-started // every writer is running
	}
	_, err = e.lim.Reset(e.ctx, "u", "r", nil)
	require.NoError(t, err)
	resetDone.Store(true)
	wg.Wait()
	assert.Equal(t, int64(50), admitted.Load(), "exactly the capacity after the reset (%d attempts)", attempts.Load())
}

// A reset or a grant by another process reaches a process whose denial
// cache denies the bucket once the state it saw is DenialCacheTTL old (a
// minute of refill here is not one token), never later; in the process
// that made it, at once.
func TestResetAndGrantReachDenialCache(t *testing.T) {
	e := newEnv(t, limiter.Options{})
	require.NoError(t, e.ns.SetLimits(e.ctx, "u", "r", []limits.Limit{limits.PerDay("rpd", 50, 0)}))
	other := e.newLimiter(limiter.Options{})
	req := limiter.Request{EntityID: "u", Resource: "r", Consume: map[string]int64{"rpd": 1}}
	drain := func() {
		t.Helper()
		for {
			if _, err := other.Acquire(e.ctx, req); err != nil {
				_, err = other.Acquire(e.ctx, req)
				assert.Equal(t, limits.ReasonCached, exceeded(t, err).Reason)
				return
			}
		}
	}
	for _, admin := range []struct {
		name string
		do   func() error
	}{
		{"reset", func() error { _, err := e.lim.Reset(e.ctx, "u", "r", nil); return err }},
		{"grant", func() error { _, err := e.lim.Grant(e.ctx, "u", "r", map[string]int64{"rpd": 50}); return err }},
	} {
		t.Run(admin.name, func(t *testing.T) {
			drain()
			require.NoError(t, admin.do())
			e.count.Reset()
			e.clock.Advance(limiter.DefaultDenialCacheTTL - time.Millisecond)
			_, err := other.Acquire(e.ctx, req)
			assert.Equal(t, limits.ReasonCached, exceeded(t, err).Reason, "within the TTL: the state seen")
			assert.Empty(t, e.count.Snapshot())
			_, err = e.lim.Acquire(e.ctx, req)
			require.NoError(t, err, "the process that made it sees it at once")
			e.clock.Advance(2 * time.Millisecond)
			for i := range 49 {
				_, err = other.Acquire(e.ctx, req)
				require.NoError(t, err, "acquire %d after the TTL", i)
			}
			_, err = other.Acquire(e.ctx, req)
			exceeded(t, err)
		})
	}
}

// A blocked entity, and a child cascading to a blocked parent, is denied
// with reason blocked, with no DynamoDB request once the records are
// cached; the block reaches this process at once, and ends by itself or by
// an unblock.
func TestBlocked(t *testing.T) {
	e := newEnv(t, limiter.Options{})
	require.NoError(t, e.ns.SetResourceDefaults(e.ctx, "r", []limits.Limit{limits.PerMinute("rpm", 100, 0)}))
	_, err := e.ns.CreateEntity(e.ctx, store.Entity{ID: "key", ParentID: "org", Cascade: true})
	require.NoError(t, err)
	req := func(id string) limiter.Request {
		return limiter.Request{EntityID: id, Resource: "r", Consume: map[string]int64{"rpm": 1}}
	}
	_, err = e.lim.Acquire(e.ctx, req("key"))
	require.NoError(t, err)

	_, err = e.ns.BlockEntity(e.ctx, "org", time.Time{})
	require.NoError(t, err)
	_, err = e.lim.Acquire(e.ctx, req("key"))
	ex := exceeded(t, err)
	assert.Equal(t, limits.ReasonBlocked, ex.Reason)
	assert.Equal(t, "org", ex.Blocked, "the parent's block")
	assert.False(t, ex.Retryable())
	e.count.Reset()
	for range 50 {
		_, err = e.lim.Acquire(e.ctx, req("key"))
		exceeded(t, err)
		_, err = e.lim.Acquire(e.ctx, req("org"))
		exceeded(t, err)
	}
	assert.Empty(t, e.count.Snapshot(), "a blocked acquire costs nothing once the records are cached")

	// Another process sees the block once its cached records expire.
	other := e.newLimiter(limiter.Options{})
	_, err = other.Acquire(e.ctx, req("key"))
	exceeded(t, err)

	_, _, err = e.ns.UnblockEntity(e.ctx, "org")
	require.NoError(t, err)
	_, err = e.lim.Acquire(e.ctx, req("key"))
	require.NoError(t, err, "unblocked at once in this process")

	until := e.clock.Now().Add(10 * time.Minute)
	_, err = e.ns.BlockEntity(e.ctx, "key", until)
	require.NoError(t, err)
	_, err = e.lim.Acquire(e.ctx, req("key"))
	ex = exceeded(t, err)
	assert.Equal(t, 10*time.Minute, ex.RetryAfter())
	assert.True(t, ex.Retryable())
	_, err = e.lim.Acquire(e.ctx, req("org"))
	require.NoError(t, err, "a child's block does not reach its parent")
	e.clock.Set(until)
	_, err = e.lim.Acquire(e.ctx, req("key"))
	require.NoError(t, err, "the block ended")
}
