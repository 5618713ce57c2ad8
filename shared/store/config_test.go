package store

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zeroae/zae-limiter-go/shared/dynamo"
	"github.com/zeroae/zae-limiter-go/shared/limits"
	"github.com/zeroae/zae-limiter-go/shared/schema"
)

func TestSetAndGetLimits(t *testing.T) {
	f := setup(t, Options{})
	ls := []limits.Limit{
		limits.PerMinute("tpm", 10000, 15000),
		limits.PerMinute("rpm", 100, 0),
		limits.PerHour("gpt-3.5.req", 5, 0),
	}
	// No entity record is needed.
	require.NoError(t, f.ns.SetLimits(f.ctx, "u1", "openai/gpt-4", ls))
	got, err := f.ns.GetLimits(f.ctx, "u1", "openai/gpt-4")
	require.NoError(t, err)
	assert.Equal(t, []limits.Limit{ls[2], ls[1], ls[0]}, got, "sorted by name")

	k := schema.EntityConfigKey(f.ns.ID, "u1", "openai/gpt-4")
	it := f.get(k)
	assert.Equal(t, schema.EntityConfigGSI3PK(f.ns.ID, "openai/gpt-4"), dynamo.GetS(it, schema.GSI3PK))
	assert.Equal(t, "u1", dynamo.GetS(it, schema.GSI3SK))
	assert.Equal(t, schema.NamespaceGSI4PK(f.ns.ID), dynamo.GetS(it, schema.GSI4PK))
	assert.Equal(t, schema.GSI4SKFor(k), dynamo.GetS(it, schema.GSI4SK))
	cp, _ := dynamo.GetN(it, schema.ConfigAttr("tpm", schema.SuffixCapacity))
	rp, _ := dynamo.GetN(it, schema.ConfigAttr("gpt-3.5.req", schema.SuffixPeriod))
	assert.EqualValues(t, 15000, cp, "whole tokens")
	assert.EqualValues(t, 3600, rp, "seconds")

	// Replacement: the new set fully replaces the old one.
	require.NoError(t, f.ns.SetLimits(f.ctx, "u1", "openai/gpt-4", []limits.Limit{limits.PerSecond("rps", 2, 0)}))
	got, err = f.ns.GetLimits(f.ctx, "u1", "openai/gpt-4")
	require.NoError(t, err)
	assert.Equal(t, []limits.Limit{limits.PerSecond("rps", 2, 0)}, got)

	require.NoError(t, f.ns.SetLimits(f.ctx, "u1", limits.DefaultResource, ls[:1]))
	cfgs, err := f.ns.EntityConfigs(f.ctx, "u1")
	require.NoError(t, err)
	assert.Equal(t, map[string][]limits.Limit{
		"openai/gpt-4":         {limits.PerSecond("rps", 2, 0)},
		limits.DefaultResource: ls[:1],
	}, cfgs)

	_, err = f.ns.GetLimits(f.ctx, "u1", "other")
	require.ErrorIs(t, err, limits.ErrNotFound)
	assert.Contains(t, err.Error(), `entity "u1"`)
	assert.Contains(t, err.Error(), `resource "other"`)
	empty, err := f.ns.EntityConfigs(f.ctx, "nobody")
	require.NoError(t, err)
	assert.Empty(t, empty)
}

// Scenario 35: the entity-config registry counts configs per resource.
func TestEntityConfigRegistry(t *testing.T) {
	f := setup(t, Options{})
	rpm := []limits.Limit{limits.PerMinute("rpm", 10, 0)}
	count := func(res string) (int64, bool) {
		reg, err := f.ns.ConfigRegistry(f.ctx)
		require.NoError(t, err)
		c, ok := reg[res]
		return c, ok
	}

	require.NoError(t, f.ns.SetLimits(f.ctx, "u1", "gpt-4", rpm))
	c, _ := count("gpt-4")
	assert.EqualValues(t, 1, c)
	require.NoError(t, f.ns.SetLimits(f.ctx, "u1", "gpt-4", rpm))
	c, _ = count("gpt-4")
	assert.EqualValues(t, 1, c, "re-setting does not count again")
	require.NoError(t, f.ns.SetLimits(f.ctx, "u2", "gpt-4", rpm))
	require.NoError(t, f.ns.SetLimits(f.ctx, "u2", limits.DefaultResource, rpm))
	c, _ = count("gpt-4")
	assert.EqualValues(t, 2, c)

	it := f.get(schema.ConfigRegistryKey(f.ns.ID))
	assert.Equal(t, schema.NamespaceGSI4PK(f.ns.ID), dynamo.GetS(it, schema.GSI4PK))
	assert.Equal(t, schema.GSI4SKFor(schema.ConfigRegistryKey(f.ns.ID)), dynamo.GetS(it, schema.GSI4SK))

	res, err := f.ns.ResourcesWithEntityConfigs(f.ctx)
	require.NoError(t, err)
	assert.Equal(t, []string{limits.DefaultResource, "gpt-4"}, res)
	ids, err := f.ns.EntitiesWithCustomLimits(f.ctx, "gpt-4")
	require.NoError(t, err)
	assert.Equal(t, []string{"u1", "u2"}, ids)
	ids, err = f.ns.EntitiesWithCustomLimits(f.ctx, "unused")
	require.NoError(t, err)
	assert.Empty(t, ids)

	require.NoError(t, f.ns.DeleteLimits(f.ctx, "u1", "gpt-4"))
	c, _ = count("gpt-4")
	assert.EqualValues(t, 1, c)
	require.NoError(t, f.ns.DeleteLimits(f.ctx, "u2", "gpt-4"))
	_, ok := count("gpt-4")
	assert.False(t, ok, "removed at zero")
	res, err = f.ns.ResourcesWithEntityConfigs(f.ctx)
	require.NoError(t, err)
	assert.Equal(t, []string{limits.DefaultResource}, res)

	// Deleting a config that does not exist changes nothing, audits nothing.
	before, err := f.ns.AuditEvents(f.ctx, "u1", 0, "")
	require.NoError(t, err)
	err = f.ns.DeleteLimits(f.ctx, "u1", "gpt-4")
	require.ErrorIs(t, err, limits.ErrNotFound)
	_, ok = count("gpt-4")
	assert.False(t, ok)
	after, err := f.ns.AuditEvents(f.ctx, "u1", 0, "")
	require.NoError(t, err)
	assert.Equal(t, before, after)
	assert.Equal(t, ActionLimitsDeleted, after[0].Action)
	assert.Equal(t, "gpt-4", after[0].Resource)
}

func TestResourceDefaults(t *testing.T) {
	f := setup(t, Options{})
	ls := []limits.Limit{limits.PerMinute("rpm", 50, 0)}
	require.NoError(t, f.ns.SetResourceDefaults(f.ctx, "gpt-4", ls))
	require.NoError(t, f.ns.SetResourceDefaults(f.ctx, "claude/3", ls))
	got, err := f.ns.GetResourceDefaults(f.ctx, "gpt-4")
	require.NoError(t, err)
	assert.Equal(t, ls, got)
	list, err := f.ns.ListResources(f.ctx)
	require.NoError(t, err)
	assert.Equal(t, []string{"claude/3", "gpt-4"}, list)
	k := schema.ResourceConfigKey(f.ns.ID, "gpt-4")
	assert.Equal(t, schema.GSI4SKFor(k), dynamo.GetS(f.get(k), schema.GSI4SK))
	assert.Equal(t, schema.NamespaceGSI4PK(f.ns.ID), dynamo.GetS(f.get(schema.ResourcesRegistryKey(f.ns.ID)), schema.GSI4PK))

	require.NoError(t, f.ns.DeleteResourceDefaults(f.ctx, "gpt-4"))
	_, err = f.ns.GetResourceDefaults(f.ctx, "gpt-4")
	require.ErrorIs(t, err, limits.ErrNotFound)
	assert.Contains(t, err.Error(), `"gpt-4"`)
	err = f.ns.DeleteResourceDefaults(f.ctx, "gpt-4")
	require.ErrorIs(t, err, limits.ErrNotFound)
	list, err = f.ns.ListResources(f.ctx)
	require.NoError(t, err)
	assert.Equal(t, []string{"claude/3"}, list)

	ev, err := f.ns.AuditEvents(f.ctx, ResourceAuditID("gpt-4"), 0, "")
	require.NoError(t, err)
	require.Len(t, ev, 2, "set and one delete")
	assert.Equal(t, ActionLimitsDeleted, ev[0].Action)
	assert.Equal(t, "$RESOURCE:gpt-4", ev[0].EntityID)
	assert.Equal(t, "gpt-4", ev[0].Resource)
	assert.Equal(t, ActionLimitsSet, ev[1].Action)
}

func TestSystemDefaults(t *testing.T) {
	f := setup(t, Options{})
	_, err := f.ns.GetSystemDefaults(f.ctx)
	require.ErrorIs(t, err, limits.ErrNotFound)

	a := []limits.Limit{limits.PerMinute("rpm", 10, 0), limits.PerMinute("tpm", 1000, 0)}
	require.NoError(t, f.ns.SetSystemDefaults(f.ctx, a, limits.Allow))
	// Attributes written by others (e.g. infra provisioning) must survive.
	_, err = f.raw.UpdateItem(f.ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(f.table), Key: keyItem(schema.SystemConfigKey(f.ns.ID)),
		UpdateExpression:          aws.String("SET audit_retention_days = :d"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":d": dynamo.N(30)},
	})
	require.NoError(t, err)

	// DECISIONS §3.7: no on_unavailable keeps the stored value.
	b := []limits.Limit{limits.PerMinute("rpm", 20, 0)}
	require.NoError(t, f.ns.SetSystemDefaults(f.ctx, b, ""))
	got, err := f.ns.GetSystemDefaults(f.ctx)
	require.NoError(t, err)
	assert.Equal(t, SystemDefaults{Limits: b, OnUnavailable: limits.Allow}, got, "tpm removed, allow kept")
	it := f.get(schema.SystemConfigKey(f.ns.ID))
	d, ok := dynamo.GetN(it, "audit_retention_days")
	assert.True(t, ok)
	assert.EqualValues(t, 30, d)
	assert.NotContains(t, it, schema.ConfigAttr("tpm", schema.SuffixCapacity))
	assert.Equal(t, schema.GSI4SKFor(schema.SystemConfigKey(f.ns.ID)), dynamo.GetS(it, schema.GSI4SK))

	// Only on_unavailable: limits are kept.
	require.NoError(t, f.ns.SetSystemDefaults(f.ctx, nil, limits.Block))
	got, err = f.ns.GetSystemDefaults(f.ctx)
	require.NoError(t, err)
	assert.Equal(t, SystemDefaults{Limits: b, OnUnavailable: limits.Block}, got)

	ev, err := f.ns.AuditEvents(f.ctx, SystemAuditID, 0, "")
	require.NoError(t, err)
	require.Len(t, ev, 3)
	assert.Equal(t, "block", ev[0].Details["on_unavailable"])
	assert.Equal(t, "allow", ev[1].Details["on_unavailable"])

	require.NoError(t, f.ns.DeleteSystemDefaults(f.ctx))
	_, err = f.ns.GetSystemDefaults(f.ctx)
	require.ErrorIs(t, err, limits.ErrNotFound)
	require.ErrorIs(t, f.ns.DeleteSystemDefaults(f.ctx), limits.ErrNotFound)
	ev, err = f.ns.AuditEvents(f.ctx, SystemAuditID, 1, "")
	require.NoError(t, err)
	assert.Equal(t, ActionLimitsDeleted, ev[0].Action)
	assert.Equal(t, []any{"rpm"}, ev[0].Details["limits"])
}
