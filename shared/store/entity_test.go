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

// Scenario 30: entities.

func TestCreateAndGetEntity(t *testing.T) {
	c := newClock()
	f := setup(t, Options{Now: c.Now})
	e, err := f.ns.CreateEntity(f.ctx, Entity{ID: "org-1", Metadata: map[string]string{"tier": "gold"}})
	require.NoError(t, err)
	assert.Equal(t, "org-1", e.Name, "name defaults to the id")
	assert.False(t, e.Cascade)
	assert.Equal(t, c.Now(), e.CreatedAt)

	got, err := f.ns.GetEntity(f.ctx, "org-1")
	require.NoError(t, err)
	assert.Equal(t, e, got)

	_, err = f.ns.CreateEntity(f.ctx, Entity{ID: "org-1", Name: "again"})
	require.ErrorIs(t, err, limits.ErrExists)
	assert.EqualError(t, err, `create entity "org-1": already exists`)

	_, err = f.ns.GetEntity(f.ctx, "ghost")
	require.ErrorIs(t, err, limits.ErrNotFound)
	assert.Contains(t, err.Error(), `"ghost"`)

	child, err := f.ns.CreateEntity(f.ctx, Entity{ID: "key-1", Name: "Key one", ParentID: "org-1", Cascade: true})
	require.NoError(t, err)
	assert.True(t, child.Cascade)

	// Item layout: GSI1 only for children, GSI4 always.
	it := f.get(schema.EntityKey(f.ns.ID, "key-1"))
	assert.Equal(t, schema.ParentGSI1PK(f.ns.ID, "org-1"), dynamo.GetS(it, schema.GSI1PK))
	assert.Equal(t, schema.ChildGSI1SK("key-1"), dynamo.GetS(it, schema.GSI1SK))
	assert.Equal(t, schema.NamespaceGSI4PK(f.ns.ID), dynamo.GetS(it, schema.GSI4PK))
	assert.Equal(t, schema.GSI4SKFor(schema.EntityKey(f.ns.ID, "key-1")), dynamo.GetS(it, schema.GSI4SK))
	assert.Equal(t, "2026-03-14T15:09:26Z", dynamo.GetS(it, "created_at"))
	parent := f.get(schema.EntityKey(f.ns.ID, "org-1"))
	assert.NotContains(t, parent, schema.GSI1PK)
}

func TestListEntitiesAndChildren(t *testing.T) {
	f := setup(t, Options{})
	f.st.pageSize = 4
	for _, id := range []string{"p2", "p1"} {
		_, err := f.ns.CreateEntity(f.ctx, Entity{ID: id})
		require.NoError(t, err)
	}
	for i := 9; i >= 0; i-- {
		_, err := f.ns.CreateEntity(f.ctx, Entity{ID: fmt.Sprintf("c%d", i), ParentID: "p1"})
		require.NoError(t, err)
	}
	_, err := f.ns.CreateEntity(f.ctx, Entity{ID: "c-other", ParentID: "p2"})
	require.NoError(t, err)
	// Configs live in the entity partition too; they are not entities.
	require.NoError(t, f.ns.SetLimits(f.ctx, "p1", "api", []limits.Limit{limits.PerMinute("rpm", 1, 0)}))

	kids, err := f.ns.ListEntities(f.ctx, "p1")
	require.NoError(t, err)
	require.Len(t, kids, 10)
	for i, k := range kids {
		assert.Equal(t, fmt.Sprintf("c%d", i), k.ID)
		assert.Equal(t, "p1", k.ParentID)
	}
	none, err := f.ns.ListEntities(f.ctx, "c1")
	require.NoError(t, err)
	assert.NotNil(t, none, "empty, not nil (JSON [])")
	assert.Empty(t, none)

	all, err := f.ns.ListEntities(f.ctx, "")
	require.NoError(t, err)
	ids := make([]string, len(all))
	for i, e := range all {
		ids[i] = e.ID
	}
	assert.Equal(t, []string{"c-other", "c0", "c1", "c2", "c3", "c4", "c5", "c6", "c7", "c8", "c9", "p1", "p2"}, ids)
}

func TestListEntitiesBeyondOneBatchGet(t *testing.T) {
	f := setup(t, Options{})
	for i := range 105 {
		_, err := f.ns.CreateEntity(f.ctx, Entity{ID: fmt.Sprintf("e%03d", i)})
		require.NoError(t, err)
	}
	f.db.reset()
	all, err := f.ns.ListEntities(f.ctx, "")
	require.NoError(t, err)
	require.Len(t, all, 105)
	assert.Equal(t, "e000", all[0].ID)
	assert.Equal(t, "e104", all[104].ID)
	assert.Equal(t, 2, f.db.count("BatchGetItem"), "100 keys per call")
}

func TestDeleteEntity(t *testing.T) {
	f := setup(t, Options{})
	_, err := f.ns.CreateEntity(f.ctx, Entity{ID: "u1"})
	require.NoError(t, err)
	n, err := f.ns.DeleteEntity(f.ctx, "u1")
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	_, err = f.ns.GetEntity(f.ctx, "u1")
	require.ErrorIs(t, err, limits.ErrNotFound)

	_, err = f.ns.DeleteEntity(f.ctx, "u1")
	require.ErrorIs(t, err, limits.ErrNotFound)
	assert.Contains(t, err.Error(), `delete entity "u1"`)

	ev, err := f.ns.AuditEvents(f.ctx, "u1", 0, "")
	require.NoError(t, err)
	require.Len(t, ev, 2, "created, deleted; the failed delete wrote nothing")
	assert.Equal(t, ActionEntityDeleted, ev[0].Action)
	assert.EqualValues(t, 1, ev[0].Details["records_deleted"])
}

// DeleteEntity follows every result page of both queries and keeps the
// entity-config registry exact.
func TestDeleteEntityAcrossPages(t *testing.T) {
	f := setup(t, Options{})
	f.st.pageSize = 7
	ns := f.ns.ID
	_, err := f.ns.CreateEntity(f.ctx, Entity{ID: "big"})
	require.NoError(t, err)
	_, err = f.ns.CreateEntity(f.ctx, Entity{ID: "bystander"})
	require.NoError(t, err)

	var keys []schema.Key
	keys = append(keys, schema.EntityKey(ns, "big"))
	rpm := []limits.Limit{limits.PerMinute("rpm", 10, 0)}
	for i := range 30 {
		res := fmt.Sprintf("res-%02d", i)
		require.NoError(t, f.ns.SetLimits(f.ctx, "big", res, rpm))
		keys = append(keys, schema.EntityConfigKey(ns, "big", res))
	}
	require.NoError(t, f.ns.SetLimits(f.ctx, "bystander", "res-00", rpm))
	for i := range 20 { // usage snapshots, as the aggregator writes them
		k := schema.UsageKey(ns, "big", "res-00", "hourly", fmt.Sprintf("2026-01-01T%02d:00:00Z", i))
		it := keyItem(k)
		it["entity_id"] = dynamo.S("big")
		setGSI4(it, ns, k)
		f.put(it)
		keys = append(keys, k)
	}
	for _, res := range []string{"api", "gpt-4", "a/b"} { // bucket shards
		for shard := range 4 {
			for _, owner := range []string{"big", "bystander"} {
				k := schema.BucketKey(ns, owner, res, shard)
				it := keyItem(k)
				it[schema.AttrEntityID] = dynamo.S(owner)
				it[schema.AttrResource] = dynamo.S(res)
				it[schema.GSI3PK] = dynamo.S(schema.BucketGSI3PK(ns, owner))
				it[schema.GSI3SK] = dynamo.S(schema.BucketGSI3SK(res, shard))
				it[schema.GSI4PK] = dynamo.S(schema.NamespaceGSI4PK(ns))
				it[schema.GSI4SK] = dynamo.S(schema.BucketGSI4SK(res, owner, shard))
				f.put(it)
				if owner == "big" {
					keys = append(keys, k)
				}
			}
		}
	}
	reg, err := f.ns.ConfigRegistry(f.ctx)
	require.NoError(t, err)
	require.EqualValues(t, 2, reg["res-00"])
	require.EqualValues(t, 1, reg["res-29"])

	f.db.reset()
	n, err := f.ns.DeleteEntity(f.ctx, "big")
	require.NoError(t, err)
	assert.Equal(t, 1+30+20+12, n)
	assert.Greater(t, f.db.count("Query"), 4, "paginated")
	for _, k := range keys {
		assert.Nil(t, f.get(k), "left behind: %v", k)
	}

	reg, err = f.ns.ConfigRegistry(f.ctx)
	require.NoError(t, err)
	assert.EqualValues(t, 1, reg["res-00"], "bystander's config still counted")
	assert.NotContains(t, reg, "res-29", "count removed at zero")
	res, err := f.ns.ResourcesWithEntityConfigs(f.ctx)
	require.NoError(t, err)
	assert.Equal(t, []string{"res-00"}, res)

	// The bystander keeps everything.
	_, err = f.ns.GetEntity(f.ctx, "bystander")
	require.NoError(t, err)
	assert.NotNil(t, f.get(schema.BucketKey(ns, "bystander", "a/b", 3)))
	_, err = f.ns.GetLimits(f.ctx, "bystander", "res-00")
	require.NoError(t, err)

	ev, err := f.ns.AuditEvents(f.ctx, "big", 1, "")
	require.NoError(t, err)
	require.Len(t, ev, 1)
	assert.Equal(t, ActionEntityDeleted, ev[0].Action)
	assert.EqualValues(t, n, ev[0].Details["records_deleted"])
}

func TestDeleteEntityWithoutRecordDeletesItsData(t *testing.T) {
	f := setup(t, Options{})
	require.NoError(t, f.ns.SetLimits(f.ctx, "ghost", "api", []limits.Limit{limits.PerMinute("rpm", 1, 0)}))
	n, err := f.ns.DeleteEntity(f.ctx, "ghost")
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	_, err = f.ns.GetLimits(f.ctx, "ghost", "api")
	require.ErrorIs(t, err, limits.ErrNotFound)
}

func TestCachedEntity(t *testing.T) {
	c := newClock()
	f := setup(t, Options{Now: c.Now, CacheTTL: time.Minute})
	_, ok, err := f.ns.CachedEntity(f.ctx, "u1")
	require.NoError(t, err)
	assert.False(t, ok)
	_, ok, err = f.ns.CachedEntity(f.ctx, "u1")
	require.NoError(t, err)
	assert.False(t, ok)
	assert.Equal(t, 1, f.db.count("GetItem"), "absence is cached")

	_, err = f.ns.CreateEntity(f.ctx, Entity{ID: "u1", ParentID: "org", Cascade: true})
	require.NoError(t, err)
	f.db.reset()
	e, ok, err := f.ns.CachedEntity(f.ctx, "u1")
	require.NoError(t, err)
	require.True(t, ok, "create evicted the cached absence")
	assert.True(t, e.Cascade)
	assert.Equal(t, "org", e.ParentID)
	_, _, err = f.ns.CachedEntity(f.ctx, "u1")
	require.NoError(t, err)
	assert.Equal(t, 1, f.db.count("GetItem"))

	// Another process deletes it: visible after the TTL.
	other := New(f.raw, Options{Table: f.table})
	ons, err := other.Namespace(f.ctx, "default")
	require.NoError(t, err)
	_, err = ons.DeleteEntity(f.ctx, "u1")
	require.NoError(t, err)
	_, ok, err = f.ns.CachedEntity(f.ctx, "u1")
	require.NoError(t, err)
	assert.True(t, ok, "still cached")
	c.Advance(time.Minute + time.Second)
	_, ok, err = f.ns.CachedEntity(f.ctx, "u1")
	require.NoError(t, err)
	assert.False(t, ok, "expired")
}
