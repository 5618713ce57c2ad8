package store

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zeroae/zae-limiter-go/shared/limits"
)

func TestBlockEntity(t *testing.T) {
	c := newClock()
	f := setup(t, Options{Now: c.Now, Principal: "alice"})
	_, err := f.ns.CreateEntity(f.ctx, Entity{ID: "org-1", Name: "Org", Metadata: map[string]string{"tier": "gold"}})
	require.NoError(t, err)

	// This handle's cache sees the block at once.
	before, found, err := f.ns.CachedEntity(f.ctx, "org-1")
	require.NoError(t, err)
	require.True(t, found)
	assert.False(t, before.BlockedAt(c.Now()))
	e, err := f.ns.BlockEntity(f.ctx, "org-1", time.Time{})
	require.NoError(t, err)
	assert.True(t, e.Blocked)
	assert.Equal(t, "Org", e.Name, "the record's own attributes stay")
	assert.Equal(t, map[string]string{"tier": "gold"}, e.Metadata)
	cached, _, err := f.ns.CachedEntity(f.ctx, "org-1")
	require.NoError(t, err)
	assert.True(t, cached.BlockedAt(c.Now().Add(1000*time.Hour)), "open-ended")

	// A block with an end, rounded up to the second; it ends by itself.
	until := c.Now().Add(90*time.Minute + 300*time.Millisecond)
	e, err = f.ns.BlockEntity(f.ctx, "org-1", until)
	require.NoError(t, err)
	assert.Equal(t, until.Truncate(time.Second).Add(time.Second), e.BlockedUntil)
	assert.True(t, e.BlockedAt(c.Now().Add(90*time.Minute)))
	assert.False(t, e.BlockedAt(c.Now().Add(91*time.Minute)))

	_, err = f.ns.BlockEntity(f.ctx, "org-1", c.Now().Add(-time.Second))
	assert.ErrorIs(t, err, limits.ErrInvalid, "an end in the past")
	_, err = f.ns.BlockEntity(f.ctx, "bad#id", time.Time{})
	assert.ErrorIs(t, err, limits.ErrInvalid)

	// Another process sees it once its cached record expires.
	other := f.otherNS(t)
	got, _, err := other.CachedEntity(f.ctx, "org-1")
	require.NoError(t, err)
	assert.True(t, got.Blocked)

	e, was, err := f.ns.UnblockEntity(f.ctx, "org-1")
	require.NoError(t, err)
	assert.True(t, was)
	assert.False(t, e.Blocked)
	assert.True(t, e.BlockedUntil.IsZero())
	_, was, err = f.ns.UnblockEntity(f.ctx, "org-1")
	require.NoError(t, err)
	assert.False(t, was, "not blocked any more")
	_, _, err = f.ns.UnblockEntity(f.ctx, "ghost")
	assert.ErrorIs(t, err, limits.ErrNotFound)

	evs, err := f.ns.AuditEvents(f.ctx, "org-1", 0, "")
	require.NoError(t, err)
	var actions []string
	for _, ev := range evs {
		actions = append(actions, ev.Action)
		assert.Equal(t, "alice", ev.Principal)
	}
	assert.Equal(t, []string{ActionEntityUnblocked, ActionEntityBlocked, ActionEntityBlocked, ActionEntityCreated}, actions, "newest first")
}

// A key without a record can be blocked: the block creates its record.
func TestBlockEntityWithoutRecord(t *testing.T) {
	c := newClock()
	f := setup(t, Options{Now: c.Now})
	e, err := f.ns.BlockEntity(f.ctx, "sk-abuse", time.Time{})
	require.NoError(t, err)
	assert.Equal(t, Entity{ID: "sk-abuse", Name: "sk-abuse", CreatedAt: c.Now(), Blocked: true}, e)
	got, err := f.ns.GetEntity(f.ctx, "sk-abuse")
	require.NoError(t, err)
	assert.Equal(t, e, got)
	all, err := f.ns.ListEntities(f.ctx, "")
	require.NoError(t, err)
	assert.Equal(t, []Entity{e}, all)
}

// Calendar and shadow limits are stored on config items and read back;
// limits without them keep their old item shape.
func TestConfigCalendarShadow(t *testing.T) {
	f := setup(t, Options{})
	q := limits.PerCalendar("tpm", 5_000_000, limits.CalendarMonth)
	shadow := limits.PerMinute("rpm", 10, 0)
	shadow.Shadow = true
	plain := limits.PerHour("rph", 100, 0)
	ls := []limits.Limit{shadow, q, plain}
	require.NoError(t, f.ns.SetLimits(f.ctx, "u", "gpt-4", ls))
	got, err := f.ns.GetLimits(f.ctx, "u", "gpt-4")
	require.NoError(t, err)
	assert.Equal(t, []limits.Limit{plain, shadow, q}, got)
	require.NoError(t, f.ns.SetResourceDefaults(f.ctx, "gpt-4", ls))
	res, err := f.ns.GetResourceDefaults(f.ctx, "gpt-4")
	require.NoError(t, err)
	assert.Equal(t, []limits.Limit{plain, shadow, q}, res)

	// System defaults replace their stored attributes exactly: the calendar
	// and shadow flags go when the limit is set without them.
	require.NoError(t, f.ns.SetSystemDefaults(f.ctx, ls, ""))
	require.NoError(t, f.ns.SetSystemDefaults(f.ctx, []limits.Limit{limits.PerMinute("rpm", 10, 0), limits.PerMinute("tpm", 5, 0)}, ""))
	sys, err := f.ns.GetSystemDefaults(f.ctx)
	require.NoError(t, err)
	assert.Equal(t, []limits.Limit{limits.PerMinute("rpm", 10, 0), limits.PerMinute("tpm", 5, 0)}, sys.Limits)

	r, err := f.ns.ResolveLimits(f.ctx, "u", "gpt-4")
	require.NoError(t, err)
	assert.Equal(t, []limits.Limit{plain, shadow, q}, r.Limits)
}
