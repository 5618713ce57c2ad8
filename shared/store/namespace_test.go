package store

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zeroae/zae-limiter-go/shared/dynamo"
	"github.com/zeroae/zae-limiter-go/shared/limits"
	"github.com/zeroae/zae-limiter-go/shared/schema"
)

// Scenario 34: namespaces.

func TestRegisterNamespaceIsIdempotent(t *testing.T) {
	f := setup(t, Options{})
	a, err := f.st.RegisterNamespace(f.ctx, "tenant-a")
	require.NoError(t, err)
	b, err := f.st.RegisterNamespace(f.ctx, "tenant-a")
	require.NoError(t, err)
	assert.Equal(t, a.ID, b.ID)
	assert.Equal(t, StatusActive, a.Status)
	assert.NotEqual(t, byte('-'), a.ID[0])
	assert.Len(t, a.ID, 11)

	// A second Store (another process) resolves the same id.
	other := New(f.raw, Options{Table: f.table})
	c, err := other.RegisterNamespace(f.ctx, "tenant-a")
	require.NoError(t, err)
	assert.Equal(t, a.ID, c.ID)

	// Both records exist, with GSI4 in the reserved namespace.
	for _, k := range []schema.Key{schema.NamespaceKey("tenant-a"), schema.NamespaceIDKey(a.ID)} {
		it := f.get(k)
		require.NotNil(t, it, k)
		assert.Equal(t, a.ID, dynamo.GetS(it, "namespace_id"))
		assert.Equal(t, "tenant-a", dynamo.GetS(it, "namespace_name"))
		assert.Equal(t, schema.TableNS, dynamo.GetS(it, schema.GSI4PK))
		assert.Equal(t, schema.GSI4SKFor(k), dynamo.GetS(it, schema.GSI4SK))
	}

	got, err := f.st.GetNamespace(f.ctx, "tenant-a")
	require.NoError(t, err)
	assert.Equal(t, a.ID, got.ID)
	assert.Equal(t, a.CreatedAt.Unix(), got.CreatedAt.Unix())
}

func TestReservedNamespaceRejected(t *testing.T) {
	f := setup(t, Options{})
	for _, call := range []func() error{
		func() error { _, err := f.st.RegisterNamespace(f.ctx, "_"); return err },
		func() error { return f.st.DeleteNamespace(f.ctx, "_") },
		func() error { _, err := f.st.Namespace(f.ctx, "_"); return err },
		func() error { _, err := f.st.GetNamespace(f.ctx, "_"); return err },
	} {
		var ve *limits.ValidationError
		require.ErrorAs(t, call(), &ve)
		assert.Equal(t, "namespace", ve.Field)
	}
	assert.Zero(t, f.db.writes())
}

func TestNamespaceListDeleteRecover(t *testing.T) {
	f := setup(t, Options{})
	for _, n := range []string{"zeta", "alpha", "mid"} {
		_, err := f.st.RegisterNamespace(f.ctx, n)
		require.NoError(t, err)
	}
	list, err := f.st.ListNamespaces(f.ctx)
	require.NoError(t, err)
	assert.Equal(t, []string{"alpha", "default", "mid", "zeta"}, names(list))

	mid, err := f.st.Namespace(f.ctx, "mid")
	require.NoError(t, err)
	require.NoError(t, f.st.DeleteNamespace(f.ctx, "mid"))
	require.ErrorIs(t, f.st.DeleteNamespace(f.ctx, "mid"), limits.ErrNotFound)

	list, err = f.st.ListNamespaces(f.ctx)
	require.NoError(t, err)
	assert.Equal(t, []string{"alpha", "default", "zeta"}, names(list))
	_, err = f.st.GetNamespace(f.ctx, "mid")
	require.ErrorIs(t, err, limits.ErrNotFound)
	assert.Contains(t, err.Error(), `namespace "mid"`)
	_, err = f.st.Namespace(f.ctx, "mid") // the cache entry was evicted
	require.ErrorIs(t, err, limits.ErrNotFound)

	orphans, err := f.st.ListOrphanNamespaces(f.ctx)
	require.NoError(t, err)
	require.Len(t, orphans, 1)
	assert.Equal(t, mid.ID, orphans[0].ID)
	assert.Equal(t, "mid", orphans[0].Name)
	assert.Equal(t, StatusDeleted, orphans[0].Status)
	assert.False(t, orphans[0].DeletedAt.IsZero())

	// Recover restores it under the same id.
	rec, err := f.st.RecoverNamespace(f.ctx, mid.ID)
	require.NoError(t, err)
	assert.Equal(t, "mid", rec.Name)
	assert.Equal(t, StatusActive, rec.Status)
	got, err := f.st.GetNamespace(f.ctx, "mid")
	require.NoError(t, err)
	assert.Equal(t, mid.ID, got.ID)
	assert.Nil(t, f.get(schema.NamespaceIDKey(mid.ID))["deleted_at"])
	orphans, err = f.st.ListOrphanNamespaces(f.ctx)
	require.NoError(t, err)
	assert.Empty(t, orphans)

	// Recovering an active namespace names the state.
	_, err = f.st.RecoverNamespace(f.ctx, mid.ID)
	var se *NamespaceStateError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, StatusActive, se.State)
	assert.ErrorIs(t, err, ErrNamespaceState)

	// Deleted, then the name registered again: recovery is refused.
	require.NoError(t, f.st.DeleteNamespace(f.ctx, "mid"))
	again, err := f.st.RegisterNamespace(f.ctx, "mid")
	require.NoError(t, err)
	assert.NotEqual(t, mid.ID, again.ID)
	_, err = f.st.RecoverNamespace(f.ctx, mid.ID)
	require.ErrorAs(t, err, &se)
	assert.Equal(t, StatusReRegistered, se.State)
	got, err = f.st.GetNamespace(f.ctx, "mid")
	require.NoError(t, err)
	assert.Equal(t, again.ID, got.ID, "the new registration is untouched")

	_, err = f.st.RecoverNamespace(f.ctx, "AAAAAAAAAAA")
	require.ErrorIs(t, err, limits.ErrNotFound)
	_, err = f.st.Namespace(f.ctx, "never-registered")
	require.ErrorIs(t, err, limits.ErrNotFound)
}

func TestPurgeNamespace(t *testing.T) {
	f := setup(t, Options{})
	f.st.pageSize = 7 // many GSI4 pages
	_, err := f.st.RegisterNamespace(f.ctx, "doomed")
	require.NoError(t, err)
	doomed, err := f.st.Namespace(f.ctx, "doomed")
	require.NoError(t, err)

	// The same entity ids in both namespaces.
	for i := range 12 {
		id := fmt.Sprintf("user-%02d", i)
		for _, ns := range []*NS{doomed, f.ns} {
			_, err := ns.CreateEntity(f.ctx, Entity{ID: id})
			require.NoError(t, err)
		}
		require.NoError(t, doomed.SetLimits(f.ctx, id, "gpt-4", []limits.Limit{limits.PerMinute("rpm", 10, 0)}))
	}
	require.NoError(t, doomed.SetResourceDefaults(f.ctx, "gpt-4", []limits.Limit{limits.PerMinute("rpm", 5, 0)}))
	require.NoError(t, doomed.SetSystemDefaults(f.ctx, []limits.Limit{limits.PerMinute("rpm", 1, 0)}, limits.Allow))
	// 12 entities + 12 configs + 24 audit (create, set) + resource config +
	// registry + resource audit + system config + system audit + config registry.
	want := 12 + 12 + 24 + 1 + 1 + 1 + 1 + 1 + 1
	require.Equal(t, want, f.gsi4Count(doomed.ID))
	before := f.gsi4Count(f.ns.ID)

	_, err = f.st.PurgeNamespace(f.ctx, doomed.ID, nil)
	var se *NamespaceStateError
	require.ErrorAs(t, err, &se, "purging an active namespace is refused")
	assert.Equal(t, StatusActive, se.State)
	assert.Equal(t, want, f.gsi4Count(doomed.ID))

	require.NoError(t, f.st.DeleteNamespace(f.ctx, "doomed"))
	var reports []int
	n, err := f.st.PurgeNamespace(f.ctx, doomed.ID, func(d int) { reports = append(reports, d) })
	require.NoError(t, err)
	assert.Equal(t, want, n)
	assert.Zero(t, f.gsi4Count(doomed.ID))
	require.NotEmpty(t, reports)
	assert.Equal(t, want, reports[len(reports)-1])
	assert.IsIncreasing(t, reports)
	assert.Greater(t, f.db.count("BatchWriteItem"), 2)
	assert.Nil(t, f.get(schema.NamespaceIDKey(doomed.ID)), "registry record removed")
	assert.Nil(t, f.get(schema.EntityKey(doomed.ID, "user-00")))
	orphans, err := f.st.ListOrphanNamespaces(f.ctx)
	require.NoError(t, err)
	assert.Empty(t, orphans)

	// The other namespace is untouched.
	assert.Equal(t, before, f.gsi4Count(f.ns.ID))
	e, err := f.ns.GetEntity(f.ctx, "user-00")
	require.NoError(t, err)
	assert.Equal(t, "user-00", e.ID)

	_, err = f.st.PurgeNamespace(f.ctx, doomed.ID, nil)
	require.ErrorIs(t, err, limits.ErrNotFound)
}

func TestSameEntityIDIsolatedAcrossNamespaces(t *testing.T) {
	f := setup(t, Options{})
	_, err := f.st.RegisterNamespace(f.ctx, "other")
	require.NoError(t, err)
	other, err := f.st.Namespace(f.ctx, "other")
	require.NoError(t, err)
	require.NotEqual(t, f.ns.ID, other.ID)

	_, err = f.ns.CreateEntity(f.ctx, Entity{ID: "u1", Name: "in default"})
	require.NoError(t, err)
	_, err = other.CreateEntity(f.ctx, Entity{ID: "u1", Name: "in other"})
	require.NoError(t, err, "same id in another namespace is not a duplicate")
	require.NoError(t, f.ns.SetLimits(f.ctx, "u1", "api", []limits.Limit{limits.PerMinute("rpm", 10, 0)}))
	require.NoError(t, other.SetLimits(f.ctx, "u1", "api", []limits.Limit{limits.PerMinute("rpm", 99, 0)}))

	a, err := f.ns.GetEntity(f.ctx, "u1")
	require.NoError(t, err)
	b, err := other.GetEntity(f.ctx, "u1")
	require.NoError(t, err)
	assert.Equal(t, "in default", a.Name)
	assert.Equal(t, "in other", b.Name)
	ra, err := f.ns.ResolveLimits(f.ctx, "u1", "api")
	require.NoError(t, err)
	rb, err := other.ResolveLimits(f.ctx, "u1", "api")
	require.NoError(t, err)
	assert.EqualValues(t, 10, ra.Limits[0].Capacity)
	assert.EqualValues(t, 99, rb.Limits[0].Capacity)

	_, err = f.ns.DeleteEntity(f.ctx, "u1")
	require.NoError(t, err)
	_, err = f.ns.GetEntity(f.ctx, "u1")
	require.ErrorIs(t, err, limits.ErrNotFound)
	b, err = other.GetEntity(f.ctx, "u1")
	require.NoError(t, err)
	assert.Equal(t, "in other", b.Name)
	ls, err := other.GetLimits(f.ctx, "u1", "api")
	require.NoError(t, err)
	assert.EqualValues(t, 99, ls[0].Capacity)
	ev, err := other.AuditEvents(f.ctx, "u1", 0, "")
	require.NoError(t, err)
	assert.Len(t, ev, 2)
}

func TestNamespaceHandleIsSharedAndCached(t *testing.T) {
	c := newClock()
	f := setup(t, Options{Now: c.Now, CacheTTL: 10 * time.Second})
	h1, err := f.st.Namespace(f.ctx, "default")
	require.NoError(t, err)
	assert.Same(t, f.ns, h1)
	assert.Zero(t, f.db.total(), "resolved from the cache")

	c.Advance(11 * time.Second)
	h2, err := f.st.Namespace(f.ctx, "default")
	require.NoError(t, err)
	assert.Same(t, f.ns, h2, "same id, same handle")
	assert.Equal(t, 1, f.db.count("GetItem"), "expired entry re-read")
}

func names(nss []Namespace) []string {
	out := make([]string, len(nss))
	for i, ns := range nss {
		out[i] = ns.Name
	}
	return out
}
