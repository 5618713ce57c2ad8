package store

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zeroae/zae-limiter-go/shared/limits"
	"github.com/zeroae/zae-limiter-go/shared/schema"
)

// Scenario 31: validation. A rejected input makes no write call and leaves
// no item at the keys it would have written.

func requireInvalid(t *testing.T, f *fixture, err error, field string) {
	t.Helper()
	var ve *limits.ValidationError
	require.ErrorAs(t, err, &ve)
	assert.Equal(t, field, ve.Field)
	assert.ErrorIs(t, err, limits.ErrInvalid)
	assert.Zero(t, f.db.writes(), "a bad input must write nothing")
}

func TestEntityIDValidation(t *testing.T) {
	f := setup(t, Options{})
	for _, bad := range []string{"user#123", "", strings.Repeat("a", 300), "_user123"} {
		_, err := f.ns.CreateEntity(f.ctx, Entity{ID: bad})
		requireInvalid(t, f, err, "entity_id")
		if bad != "" {
			assert.Nil(t, f.get(schema.EntityKey(f.ns.ID, bad)))
		}
		err = f.ns.SetLimits(f.ctx, bad, "api", []limits.Limit{limits.PerMinute("rpm", 1, 0)})
		requireInvalid(t, f, err, "entity_id")
		_, err = f.ns.DeleteEntity(f.ctx, bad)
		requireInvalid(t, f, err, "entity_id")
	}
	for _, bad := range []string{"parent#123", "-p"} {
		_, err := f.ns.CreateEntity(f.ctx, Entity{ID: "child", ParentID: bad})
		requireInvalid(t, f, err, "parent_id")
	}
	_, err := f.ns.CreateEntity(f.ctx, Entity{ID: "self", ParentID: "self"})
	requireInvalid(t, f, err, "parent_id")
	assert.Nil(t, f.get(schema.EntityKey(f.ns.ID, "child")))
	assert.Nil(t, f.get(schema.EntityKey(f.ns.ID, "self")))

	for _, good := range []string{"550e8400-e29b-41d4-a716-446655440000", "sk-proj-abc123", "a@b.c", "user:42"} {
		_, err := f.ns.CreateEntity(f.ctx, Entity{ID: good})
		assert.NoError(t, err, good)
	}
}

func TestLimitAndResourceValidation(t *testing.T) {
	f := setup(t, Options{})
	ok := []limits.Limit{limits.PerMinute("rpm", 1, 0)}
	for _, good := range []string{"gpt-3.5", "rate-limit", "a.b_c"} {
		require.NoError(t, f.ns.SetLimits(f.ctx, "u1", "api", []limits.Limit{limits.PerMinute(good, 1, 0)}), good)
	}
	f.db.reset()
	for _, bad := range []string{"123rpm", "rpm/tpm", "rpm@x", "wcu", ""} {
		err := f.ns.SetLimits(f.ctx, "u2", "api", []limits.Limit{limits.PerMinute(bad, 1, 0)})
		requireInvalid(t, f, err, "limit name")
	}
	err := f.ns.SetLimits(f.ctx, "u2", "api", []limits.Limit{{Name: "rpm", Capacity: 0, RefillAmount: 1, RefillPeriodSeconds: 60}})
	requireInvalid(t, f, err, "limit rpm capacity")
	err = f.ns.SetLimits(f.ctx, "u2", "api", []limits.Limit{ok[0], ok[0]})
	requireInvalid(t, f, err, "limit name")
	err = f.ns.SetLimits(f.ctx, "u2", "api", nil)
	requireInvalid(t, f, err, "limits")
	err = f.ns.SetResourceDefaults(f.ctx, "api", nil)
	requireInvalid(t, f, err, "limits")
	err = f.ns.SetSystemDefaults(f.ctx, nil, "")
	requireInvalid(t, f, err, "limits")
	err = f.ns.SetSystemDefaults(f.ctx, ok, "maybe")
	requireInvalid(t, f, err, "on_unavailable")
	assert.Nil(t, f.get(schema.EntityConfigKey(f.ns.ID, "u2", "api")))
	assert.Nil(t, f.get(schema.SystemConfigKey(f.ns.ID)))

	for _, good := range []string{"openai/gpt-4", "a/b/c/d", "openai/", limits.DefaultResource} {
		require.NoError(t, f.ns.SetLimits(f.ctx, "u1", good, ok), good)
	}
	f.db.reset()
	for _, bad := range []string{"/gpt-4", "123api", "openai#gpt-4", strings.Repeat("r", 100), ""} {
		requireInvalid(t, f, f.ns.SetLimits(f.ctx, "u3", bad, ok), "resource")
		requireInvalid(t, f, f.ns.SetResourceDefaults(f.ctx, bad, ok), "resource")
		requireInvalid(t, f, f.ns.DeleteLimits(f.ctx, "u1", bad), "resource")
		_, err := f.ns.ResolveLimits(f.ctx, "u1", bad)
		requireInvalid(t, f, err, "resource")
	}
	// The entity-default sentinel is a config key, not a resource.
	requireInvalid(t, f, f.ns.SetResourceDefaults(f.ctx, limits.DefaultResource, ok), "resource")
	assert.Nil(t, f.get(schema.ResourceConfigKey(f.ns.ID, limits.DefaultResource)))
}

func TestInvalidPrincipalWritesNothing(t *testing.T) {
	f := setup(t, Options{Principal: "user#admin"})
	_, err := f.ns.CreateEntity(f.ctx, Entity{ID: "u1"})
	requireInvalid(t, f, err, "principal")
	requireInvalid(t, f, f.ns.SetLimits(f.ctx, "u1", "api", []limits.Limit{limits.PerMinute("rpm", 1, 0)}), "principal")
	requireInvalid(t, f, f.ns.SetResourceDefaults(f.ctx, "api", []limits.Limit{limits.PerMinute("rpm", 1, 0)}), "principal")
	requireInvalid(t, f, f.ns.SetSystemDefaults(f.ctx, nil, limits.Allow), "principal")
	_, err = f.ns.DeleteEntity(f.ctx, "u1")
	requireInvalid(t, f, err, "principal")
	assert.Nil(t, f.get(schema.EntityKey(f.ns.ID, "u1")))
	assert.Nil(t, f.get(schema.EntityConfigKey(f.ns.ID, "u1", "api")))
	assert.Nil(t, f.get(schema.ConfigRegistryKey(f.ns.ID)))
	assert.Nil(t, f.get(schema.SystemConfigKey(f.ns.ID)))
}
