package store

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/zeroae/zae-limiter-go/shared/dynamo"
	"github.com/zeroae/zae-limiter-go/shared/limits"
	"github.com/zeroae/zae-limiter-go/shared/schema"
)

// Entity is an entity's record. Entities are optional: acquire works for ids
// without one (no parent, no cascade).
type Entity struct {
	ID       string            `json:"entity_id"`
	Name     string            `json:"name"`
	ParentID string            `json:"parent_id,omitempty"`
	Cascade  bool              `json:"cascade"`
	Metadata map[string]string `json:"metadata,omitempty"`
	// CreatedAt is set by CreateEntity (second precision, UTC).
	CreatedAt time.Time `json:"created_at"`
	// Blocked denies every acquire of the entity and of the children that
	// cascade to it (ADR-032), until BlockedUntil when it is set.
	Blocked      bool      `json:"blocked,omitempty"`
	BlockedUntil time.Time `json:"blocked_until,omitzero"`
}

// BlockedAt reports whether the entity is blocked at now.
func (e Entity) BlockedAt(now time.Time) bool {
	return e.Blocked && (e.BlockedUntil.IsZero() || now.Before(e.BlockedUntil))
}

func (n *NS) entityItem(e Entity) dynamo.Item {
	k := schema.EntityKey(n.ID, e.ID)
	it := keyItem(k)
	it["entity_id"] = dynamo.S(e.ID)
	it["name"] = dynamo.S(e.Name)
	it["cascade"] = dynamo.Bool(e.Cascade)
	it["created_at"] = dynamo.S(fmtTime(e.CreatedAt))
	if e.ParentID != "" {
		it["parent_id"] = dynamo.S(e.ParentID)
		it[schema.GSI1PK] = dynamo.S(schema.ParentGSI1PK(n.ID, e.ParentID))
		it[schema.GSI1SK] = dynamo.S(schema.ChildGSI1SK(e.ID))
	}
	if len(e.Metadata) > 0 {
		m := make(map[string]types.AttributeValue, len(e.Metadata))
		for k, v := range e.Metadata {
			m[k] = dynamo.S(v)
		}
		it["metadata"] = &types.AttributeValueMemberM{Value: m}
	}
	setGSI4(it, n.ID, k)
	return it
}

func decodeEntity(it dynamo.Item) Entity {
	e := Entity{
		ID:        dynamo.GetS(it, "entity_id"),
		Name:      dynamo.GetS(it, "name"),
		ParentID:  dynamo.GetS(it, "parent_id"),
		Cascade:   dynamo.GetBool(it, "cascade"),
		CreatedAt: parseTime(dynamo.GetS(it, "created_at")),
		Blocked:   dynamo.GetBool(it, attrBlocked),
	}
	if u := dynamo.GetS(it, attrBlockedUntil); u != "" {
		e.BlockedUntil = parseTime(u)
	}
	if m, ok := it["metadata"].(*types.AttributeValueMemberM); ok && len(m.Value) > 0 {
		e.Metadata = make(map[string]string, len(m.Value))
		for k, v := range m.Value {
			if s, ok := v.(*types.AttributeValueMemberS); ok {
				e.Metadata[k] = s.Value
			}
		}
	}
	return e
}

// CreateEntity writes a new entity record (name defaults to the id) and the
// audit event entity_created. A duplicate id wraps limits.ErrExists. The
// parent need not exist; it must differ from the id.
func (n *NS) CreateEntity(ctx context.Context, e Entity) (Entity, error) {
	if err := limits.ValidateEntityID(e.ID); err != nil {
		return Entity{}, err
	}
	if e.ParentID != "" {
		if err := limits.ValidateIdentifier("parent_id", e.ParentID); err != nil {
			return Entity{}, err
		}
		if e.ParentID == e.ID {
			return Entity{}, limits.Invalid("parent_id", e.ParentID, "must differ from the entity id")
		}
	}
	for k := range e.Metadata {
		if k == "" {
			return Entity{}, limits.Invalid("metadata key", k, "must not be empty")
		}
	}
	principal, err := n.s.Principal(ctx)
	if err != nil {
		return Entity{}, err
	}
	if e.Name == "" {
		e.Name = e.ID
	}
	e.CreatedAt = n.s.now().UTC().Truncate(time.Second)
	var x dynamo.Expr
	_, err = n.s.db.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:                aws.String(n.s.table),
		Item:                     n.entityItem(e),
		ConditionExpression:      aws.String(notExists(&x)),
		ExpressionAttributeNames: x.Names(),
	})
	if dynamo.IsCondFailed(err) {
		return Entity{}, fmt.Errorf("create entity %q: %w", e.ID, limits.ErrExists)
	}
	if err != nil {
		return Entity{}, fmt.Errorf("create entity %q: %w", e.ID, err)
	}
	n.evictEntity(e.ID)
	details := map[string]any{"name": e.Name, "parent_id": e.ParentID, "cascade": e.Cascade, "metadata": e.Metadata}
	if err := n.audit(ctx, principal, ActionEntityCreated, e.ID, "", details); err != nil {
		return e, fmt.Errorf("create entity %q: %w", e.ID, err)
	}
	return e, nil
}

// GetEntity reads an entity record (consistently).
func (n *NS) GetEntity(ctx context.Context, id string) (Entity, error) {
	if err := limits.ValidateEntityID(id); err != nil {
		return Entity{}, err
	}
	it, err := n.s.getItem(ctx, schema.EntityKey(n.ID, id), true)
	if err != nil {
		return Entity{}, fmt.Errorf("get entity %q: %w", id, err)
	}
	if it == nil {
		return Entity{}, fmt.Errorf("entity %q: %w", id, limits.ErrNotFound)
	}
	return decodeEntity(it), nil
}

// CachedEntity reads an entity through the entity cache. An id without a
// record yields (Entity{}, false, nil), and that absence is cached too.
func (n *NS) CachedEntity(ctx context.Context, id string) (Entity, bool, error) {
	if err := limits.ValidateEntityID(id); err != nil {
		return Entity{}, false, err
	}
	n.mu.Lock()
	c, ok := n.entities[id]
	gen := n.gen
	n.mu.Unlock()
	if ok && n.fresh(c.expires) {
		e := c.e
		e.Metadata = maps.Clone(e.Metadata) // callers may not change the cache
		return e, c.found, nil
	}
	v, err := n.shared(ctx, "entity\x00"+id, gen, func(ctx context.Context) (any, error) {
		return n.s.getItem(ctx, schema.EntityKey(n.ID, id), false)
	})
	if err != nil {
		return Entity{}, false, fmt.Errorf("get entity %q: %w", id, err)
	}
	it := v.(dynamo.Item)
	var e Entity
	if it != nil {
		e = decodeEntity(it)
	}
	if n.s.cacheTTL() > 0 {
		n.mu.Lock()
		if n.gen == gen { // no write through this handle since the read began
			n.entities[id] = entityEntry{e: e, found: it != nil, expires: n.expiry()}
		}
		n.mu.Unlock()
	}
	return e, it != nil, nil
}

// DeleteEntity deletes everything stored under the entity: its record, its
// configs (decrementing the entity-config registry), its usage snapshots and
// every bucket shard of every resource, across all result pages. Audit
// events stay. It writes entity_deleted with records_deleted and returns
// that count; an entity with nothing to delete wraps limits.ErrNotFound.
func (n *NS) DeleteEntity(ctx context.Context, id string) (int, error) {
	if err := limits.ValidateEntityID(id); err != nil {
		return 0, err
	}
	principal, err := n.s.Principal(ctx)
	if err != nil {
		return 0, err
	}
	fail := func(deleted int, err error) (int, error) {
		return deleted, fmt.Errorf("delete entity %q: %w", id, err)
	}

	var keys []schema.Key
	var configs []string
	var e1 dynamo.Expr
	err = n.s.queryAll(ctx, &dynamodb.QueryInput{
		KeyConditionExpression:    aws.String(e1.Name(schema.PK) + " = " + e1.Value(dynamo.S(schema.EntityPK(n.ID, id)))),
		ProjectionExpression:      aws.String(e1.Name(schema.PK) + ", " + e1.Name(schema.SK)),
		ExpressionAttributeNames:  e1.Names(),
		ExpressionAttributeValues: e1.Values(),
		ConsistentRead:            aws.Bool(true),
	}, func(it dynamo.Item) error {
		k := keyOf(it)
		if res, ok := strings.CutPrefix(k.SK, schema.SKConfigPrefix); ok {
			configs = append(configs, res)
		} else {
			keys = append(keys, k)
		}
		return nil
	})
	if err != nil {
		return fail(0, err)
	}
	var e2 dynamo.Expr
	err = n.s.queryAll(ctx, &dynamodb.QueryInput{
		IndexName: aws.String(schema.GSI3),
		KeyConditionExpression: aws.String(e2.Name(schema.GSI3PK) + " = " + e2.Value(dynamo.S(schema.BucketGSI3PK(n.ID, id))) +
			" AND begins_with(" + e2.Name(schema.GSI3SK) + ", " + e2.Value(dynamo.S("BUCKET#")) + ")"),
		ExpressionAttributeNames:  e2.Names(),
		ExpressionAttributeValues: e2.Values(),
	}, func(it dynamo.Item) error {
		keys = append(keys, keyOf(it))
		return nil
	})
	if err != nil {
		return fail(0, err)
	}

	deleted := 0
	for _, res := range configs {
		existed, err := n.deleteConfig(ctx, id, res)
		if err != nil {
			return fail(deleted, err)
		}
		if existed {
			deleted++
		}
	}
	d, err := n.s.batchDelete(ctx, dedupe(keys), nil)
	deleted += d
	n.evictEntity(id)
	if err != nil {
		return fail(deleted, err)
	}
	if deleted == 0 {
		return 0, fmt.Errorf("delete entity %q: %w", id, limits.ErrNotFound)
	}
	if err := n.audit(ctx, principal, ActionEntityDeleted, id, "", map[string]any{"records_deleted": deleted}); err != nil {
		return fail(deleted, err)
	}
	return deleted, nil
}

// ListEntities lists entity records sorted by id: every entity of the
// namespace when parent is "", else the children of parent.
func (n *NS) ListEntities(ctx context.Context, parent string) ([]Entity, error) {
	if parent != "" {
		return n.children(ctx, parent)
	}
	var keys []schema.Key
	var e dynamo.Expr
	err := n.s.queryAll(ctx, &dynamodb.QueryInput{
		IndexName: aws.String(schema.GSI4),
		KeyConditionExpression: aws.String(e.Name(schema.GSI4PK) + " = " + e.Value(dynamo.S(schema.NamespaceGSI4PK(n.ID))) +
			" AND begins_with(" + e.Name(schema.GSI4SK) + ", " + e.Value(dynamo.S(schema.EntitiesGSI4Prefix)) + ")"),
		ExpressionAttributeNames:  e.Names(),
		ExpressionAttributeValues: e.Values(),
	}, func(it dynamo.Item) error {
		keys = append(keys, keyOf(it))
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list entities: %w", err)
	}
	found, err := n.s.batchGet(ctx, dedupe(keys), false)
	if err != nil {
		return nil, fmt.Errorf("list entities: %w", err)
	}
	out := make([]Entity, 0, len(found))
	for _, it := range found {
		out = append(out, decodeEntity(it))
	}
	sortEntities(out)
	return out, nil
}

func (n *NS) children(ctx context.Context, parent string) ([]Entity, error) {
	if err := limits.ValidateIdentifier("parent_id", parent); err != nil {
		return nil, err
	}
	out := []Entity{}
	in := indexQuery(schema.GSI1, schema.GSI1PK, schema.ParentGSI1PK(n.ID, parent))
	err := n.s.queryAll(ctx, in, func(it dynamo.Item) error {
		out = append(out, decodeEntity(it))
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list children of %q: %w", parent, err)
	}
	sortEntities(out)
	return out, nil
}

func sortEntities(es []Entity) {
	slices.SortFunc(es, func(a, b Entity) int { return strings.Compare(a.ID, b.ID) })
}
