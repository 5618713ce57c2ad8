package store

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/zeroae/zae-limiter-go/shared/dynamo"
	"github.com/zeroae/zae-limiter-go/shared/limits"
	"github.com/zeroae/zae-limiter-go/shared/schema"
)

// Blocked entities (ADR-032): a flag on the entity record, which the
// limiter reads through the entity cache on every acquire anyway, so a
// blocked entity is denied without a bucket write, at no DynamoDB cost once
// its record is cached. A block reaches other processes when their cached
// record expires (the cache TTL), this handle at once.

// Audit actions of the admin changes beyond the configuration.
const (
	ActionEntityBlocked   = "entity_blocked"
	ActionEntityUnblocked = "entity_unblocked"
	ActionBucketReset     = "bucket_reset"
	ActionCreditsGranted  = "credits_granted"
)

const (
	attrBlocked      = "blocked"
	attrBlockedUntil = "blocked_until"
)

// BlockEntity blocks the entity until until (the zero time: until
// UnblockEntity), replacing any block it has. An id without a record gets
// one (name = id, no parent): a block must work on any key an acquire can
// name. until is kept to the second, rounded up; it must be in the future.
// It writes the audit event entity_blocked and returns the record.
func (n *NS) BlockEntity(ctx context.Context, id string, until time.Time) (Entity, error) {
	if err := limits.ValidateEntityID(id); err != nil {
		return Entity{}, err
	}
	now := n.s.now()
	if !until.IsZero() {
		if r := until.Truncate(time.Second); r.Before(until) {
			until = r.Add(time.Second)
		}
		if !until.After(now) {
			return Entity{}, limits.Invalid("until", fmtTime(until), "must be in the future")
		}
	}
	principal, err := n.s.Principal(ctx)
	if err != nil {
		return Entity{}, err
	}
	k := schema.EntityKey(n.ID, id)
	u := &dynamo.Update{}
	u.Set(attrBlocked, true)
	if until.IsZero() {
		u.Remove(attrBlockedUntil)
	} else {
		u.Set(attrBlockedUntil, fmtTime(until))
	}
	// The record's own attributes, when the block creates it.
	u.SetExpr("entity_id", "if_not_exists($, ?)", "entity_id", id)
	u.SetExpr("name", "if_not_exists($, ?)", "name", id)
	u.SetExpr("cascade", "if_not_exists($, ?)", "cascade", dynamo.Bool(false))
	u.SetExpr("created_at", "if_not_exists($, ?)", "created_at", fmtTime(now.Truncate(time.Second)))
	u.Set(schema.GSI4PK, schema.NamespaceGSI4PK(n.ID))
	u.Set(schema.GSI4SK, schema.GSI4SKFor(k))
	in := u.Input(n.s.table, keyItem(k))
	in.ReturnValues = types.ReturnValueAllNew
	out, err := n.s.db.UpdateItem(ctx, in)
	n.evictEntity(id)
	if err != nil {
		return Entity{}, fmt.Errorf("block entity %q: %w", id, err)
	}
	e := decodeEntity(out.Attributes)
	details := map[string]any{"until": ""}
	if !until.IsZero() {
		details["until"] = fmtTime(until)
	}
	if err := n.audit(ctx, principal, ActionEntityBlocked, id, "", details); err != nil {
		return e, fmt.Errorf("block entity %q: %w", id, err)
	}
	return e, nil
}

// UnblockEntity lifts the entity's block. wasBlocked reports whether it had
// one (the audit event entity_unblocked is written only then); an id
// without a record wraps limits.ErrNotFound.
func (n *NS) UnblockEntity(ctx context.Context, id string) (e Entity, wasBlocked bool, err error) {
	if err := limits.ValidateEntityID(id); err != nil {
		return Entity{}, false, err
	}
	principal, err := n.s.Principal(ctx)
	if err != nil {
		return Entity{}, false, err
	}
	u := &dynamo.Update{}
	u.IfExists(schema.PK)
	u.Remove(attrBlocked)
	u.Remove(attrBlockedUntil)
	in := u.Input(n.s.table, keyItem(schema.EntityKey(n.ID, id)))
	in.ReturnValues = types.ReturnValueAllOld
	out, err := n.s.db.UpdateItem(ctx, in)
	n.evictEntity(id)
	if dynamo.IsCondFailed(err) {
		return Entity{}, false, fmt.Errorf("entity %q: %w", id, limits.ErrNotFound)
	}
	if err != nil {
		return Entity{}, false, fmt.Errorf("unblock entity %q: %w", id, err)
	}
	old := decodeEntity(out.Attributes)
	e = old
	e.Blocked, e.BlockedUntil = false, time.Time{}
	if !old.Blocked {
		return e, false, nil
	}
	if err := n.audit(ctx, principal, ActionEntityUnblocked, id, "", nil); err != nil {
		return e, true, fmt.Errorf("unblock entity %q: %w", id, err)
	}
	return e, true, nil
}

// Principal is the audit principal of the store (see Store.Principal).
func (n *NS) Principal(ctx context.Context) (string, error) { return n.s.Principal(ctx) }

// Audit writes one audit event for a change made through another package
// (the limiter's bucket reset and grant); principal comes from Principal,
// checked before the change was made.
func (n *NS) Audit(ctx context.Context, principal, action, entityID, resource string, details map[string]any) error {
	return n.audit(ctx, principal, action, entityID, resource, details)
}
