package store

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zeroae/zae-limiter-go/shared/dynamo"
	"github.com/zeroae/zae-limiter-go/shared/limits"
	"github.com/zeroae/zae-limiter-go/shared/schema"
)

// Scenario 33: audit.

func TestAuditEntityCreated(t *testing.T) {
	c := newClock()
	f := setup(t, Options{Now: c.Now, Principal: "alice@example.com", AuditRetention: 48 * time.Hour})
	_, err := f.ns.CreateEntity(f.ctx, Entity{ID: "u1", Name: "User One", ParentID: "org", Metadata: map[string]string{"k": "v"}})
	require.NoError(t, err)

	ev, err := f.ns.AuditEvents(f.ctx, "u1", 0, "")
	require.NoError(t, err)
	require.Len(t, ev, 1)
	e := ev[0]
	assert.Equal(t, ActionEntityCreated, e.Action)
	assert.Equal(t, "u1", e.EntityID)
	assert.Equal(t, "alice@example.com", e.Principal)
	assert.Empty(t, e.Resource)
	assert.Equal(t, c.Now(), e.Timestamp)
	assert.Len(t, e.EventID, 26)
	assert.Equal(t, map[string]any{"name": "User One", "parent_id": "org", "cascade": false,
		"metadata": map[string]any{"k": "v"}}, e.Details)

	// The item: ttl, the archiver's day index, the namespace index.
	k := schema.AuditKey(f.ns.ID, "u1", e.EventID)
	it := f.get(k)
	require.NotNil(t, it)
	ttl, _ := dynamo.GetN(it, schema.TTL)
	assert.Equal(t, c.Now().Add(48*time.Hour).Unix(), ttl)
	assert.Equal(t, schema.AuditDayGSI2PK("2026-03-14"), dynamo.GetS(it, schema.GSI2PK))
	assert.Equal(t, e.EventID, dynamo.GetS(it, schema.GSI2SK))
	assert.Equal(t, schema.NamespaceGSI4PK(f.ns.ID), dynamo.GetS(it, schema.GSI4PK))
	assert.Equal(t, schema.GSI4SKFor(k), dynamo.GetS(it, schema.GSI4SK))
}

func TestAuditLimitsDetails(t *testing.T) {
	f := setup(t, Options{Principal: "arn:aws:iam::123456789012:role/admin"})
	require.NoError(t, f.ns.SetLimits(f.ctx, "u1", "gpt-4", []limits.Limit{limits.PerMinute("tpm", 1000, 1500)}))
	ev, err := f.ns.AuditEvents(f.ctx, "u1", 0, "")
	require.NoError(t, err)
	require.Len(t, ev, 1)
	assert.Equal(t, ActionLimitsSet, ev[0].Action)
	assert.Equal(t, "gpt-4", ev[0].Resource)
	assert.Equal(t, "arn:aws:iam::123456789012:role/admin", ev[0].Principal)
	assert.Equal(t, []any{map[string]any{"name": "tpm", "capacity": 1500.0, "refill_amount": 1000.0,
		"refill_period_seconds": 60.0}}, ev[0].Details["limits"])
}

func TestAuditPagination(t *testing.T) {
	f := setup(t, Options{})
	for i := range 7 {
		require.NoError(t, f.ns.SetLimits(f.ctx, "u1", "api", rpm(int64(i+1))))
	}
	all, err := f.ns.AuditEvents(f.ctx, "u1", 0, "")
	require.NoError(t, err)
	require.Len(t, all, 7)
	for i := 1; i < len(all); i++ {
		assert.Greater(t, all[i-1].EventID, all[i].EventID, "newest first")
	}
	newest := all[0].Details["limits"].([]any)[0].(map[string]any)
	assert.EqualValues(t, 7, newest["capacity"])

	var paged []AuditEvent
	cursor := ""
	var sizes []int
	for {
		page, err := f.ns.AuditEvents(f.ctx, "u1", 3, cursor)
		require.NoError(t, err)
		if len(page) == 0 {
			break
		}
		sizes = append(sizes, len(page))
		paged = append(paged, page...)
		cursor = page[len(page)-1].EventID
	}
	assert.Equal(t, []int{3, 3, 1}, sizes)
	assert.Equal(t, all, paged)

	_, err = f.ns.AuditEvents(f.ctx, "u1", 3, "not-an-id")
	var ve *limits.ValidationError
	require.ErrorAs(t, err, &ve)
	assert.Equal(t, "start_after", ve.Field)
	none, err := f.ns.AuditEvents(f.ctx, "nobody", 0, "")
	require.NoError(t, err)
	assert.Empty(t, none)
}

func TestAuditPrincipals(t *testing.T) {
	for _, p := range []string{"alice@example.com", "service:billing", "arn:aws:sts::123456789012:assumed-role/r/s"} {
		t.Run(p, func(t *testing.T) {
			f := setup(t, Options{Principal: p})
			_, err := f.ns.CreateEntity(f.ctx, Entity{ID: "u1"})
			require.NoError(t, err)
			ev, err := f.ns.AuditEvents(f.ctx, "u1", 0, "")
			require.NoError(t, err)
			require.Len(t, ev, 1)
			assert.Equal(t, p, ev[0].Principal)
		})
	}
	// Without a principal: the lazily resolved one, else "unknown".
	f := setup(t, Options{PrincipalFunc: func(context.Context) (string, error) { return "arn:aws:iam::1:user/bob", nil }})
	_, err := f.ns.CreateEntity(f.ctx, Entity{ID: "u1"})
	require.NoError(t, err)
	ev, err := f.ns.AuditEvents(f.ctx, "u1", 0, "")
	require.NoError(t, err)
	assert.Equal(t, "arn:aws:iam::1:user/bob", ev[0].Principal)
}

func TestAuditEventIDsIncreaseAcrossWrites(t *testing.T) {
	f := setup(t, Options{})
	for i := range 20 {
		_, err := f.ns.CreateEntity(f.ctx, Entity{ID: fmt.Sprintf("e%02d", i)})
		require.NoError(t, err)
	}
	var ids []string
	for i := range 20 {
		ev, err := f.ns.AuditEvents(f.ctx, fmt.Sprintf("e%02d", i), 0, "")
		require.NoError(t, err)
		require.Len(t, ev, 1)
		ids = append(ids, ev[0].EventID)
	}
	assert.IsIncreasing(t, ids)
}
