package store

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/oklog/ulid/v2"

	"github.com/zeroae/zae-limiter-go/shared/dynamo"
	"github.com/zeroae/zae-limiter-go/shared/limits"
	"github.com/zeroae/zae-limiter-go/shared/schema"
)

// Audit actions.
const (
	ActionEntityCreated = "entity_created"
	ActionEntityDeleted = "entity_deleted"
	ActionLimitsSet     = "limits_set"
	ActionLimitsDeleted = "limits_deleted"
)

// DefaultAuditPageSize is AuditEvents' page size when limit <= 0.
const DefaultAuditPageSize = 100

// AuditEvent records one admin change. Events of the resource and system
// levels use the entity ids ResourceAuditID(res) and SystemAuditID.
type AuditEvent struct {
	// EventID is a ULID: 26 characters, increasing with time.
	EventID   string         `json:"event_id"`
	Timestamp time.Time      `json:"timestamp"`
	Action    string         `json:"action"`
	EntityID  string         `json:"entity_id"`
	Principal string         `json:"principal,omitempty"`
	Resource  string         `json:"resource,omitempty"`
	Details   map[string]any `json:"details,omitempty"`
}

// audit writes one event. The caller validated principal before its own
// write (Store.Principal), so a bad principal never leaves a half-done change.
func (n *NS) audit(ctx context.Context, principal, action, entityID, resource string, details map[string]any) error {
	now := n.s.now()
	rec := AuditRecord{
		Namespace: n.ID,
		Event: AuditEvent{
			EventID: n.s.newEventID(now), Timestamp: now, Action: action,
			EntityID: entityID, Principal: principal, Resource: resource, Details: details,
		},
		Expires: now.Add(n.s.opts.AuditRetention),
	}
	it, err := rec.Item()
	if err != nil {
		return err
	}
	if _, err := n.s.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(n.s.table), Item: it}); err != nil {
		return fmt.Errorf("write audit event %s: %w", action, err)
	}
	return nil
}

// AuditRecord is an audit event as the table holds it: with its namespace
// id and its expiry (the item's ttl). The archiver reads records from the
// time index and writes them to S3; this type is the one codec of the item.
type AuditRecord struct {
	Namespace string
	Event     AuditEvent
	// Expires is when DynamoDB's TTL may delete the item (zero: never).
	Expires time.Time
}

// Key is the record's primary key.
func (r AuditRecord) Key() schema.Key {
	return schema.AuditKey(r.Namespace, r.Event.EntityID, r.Event.EventID)
}

// Item encodes the record as the store writes it: the event's attributes,
// its ttl, the archiver's time index (GSI2: the UTC day of Timestamp, then
// the event id) and the namespace index (GSI4). Timestamps are stored to
// the second; nil details are stored as an empty map.
func (r AuditRecord) Item() (dynamo.Item, error) {
	ev := r.Event
	k := r.Key()
	it := keyItem(k)
	it["event_id"] = dynamo.S(ev.EventID)
	it["entity_id"] = dynamo.S(ev.EntityID)
	it["action"] = dynamo.S(ev.Action)
	it["timestamp"] = dynamo.S(fmtTime(ev.Timestamp))
	it["principal"] = dynamo.S(ev.Principal)
	if ev.Resource != "" {
		it["resource"] = dynamo.S(ev.Resource)
	}
	details := ev.Details
	if details == nil {
		details = map[string]any{}
	}
	dm, err := attributevalue.MarshalMap(details)
	if err != nil {
		return nil, fmt.Errorf("encode audit details: %w", err)
	}
	it["details"] = &types.AttributeValueMemberM{Value: dm}
	if !r.Expires.IsZero() {
		it[schema.TTL] = dynamo.N(r.Expires.Unix())
	}
	it[schema.GSI2PK] = dynamo.S(schema.AuditDayGSI2PK(AuditDay(ev.Timestamp)))
	it[schema.GSI2SK] = dynamo.S(ev.EventID)
	setGSI4(it, r.Namespace, k)
	return it, nil
}

// AuditDay is the UTC day ("2006-01-02") under which an event with this
// timestamp is indexed (GSI2 _/AUDITDAY#{day}) and archived.
func AuditDay(ts time.Time) string { return ts.UTC().Format(time.DateOnly) }

// DecodeAuditRecord decodes an audit item read from the table or from the
// time index; ok is false for an item that is not an audit event.
func DecodeAuditRecord(it dynamo.Item) (AuditRecord, bool) {
	ns, rest, ok := schema.SplitNamespace(dynamo.GetS(it, schema.PK))
	if !ok || !strings.HasPrefix(rest, "AUDIT#") {
		return AuditRecord{}, false
	}
	ev, ok := decodeAudit(it)
	if !ok {
		return AuditRecord{}, false
	}
	rec := AuditRecord{Namespace: ns, Event: ev}
	if ttl, ok := dynamo.GetN(it, schema.TTL); ok {
		rec.Expires = time.Unix(ttl, 0).UTC()
	}
	return rec, true
}

func validateAuditEntity(id string) error {
	if id == SystemAuditID {
		return nil
	}
	if res, ok := strings.CutPrefix(id, "$RESOURCE:"); ok {
		return limits.ValidateResource(res)
	}
	return limits.ValidateEntityID(id)
}

// AuditEvents returns up to limit (DefaultAuditPageSize when <= 0) events of
// an entity, newest first, starting after the event id startAfter ("" for
// the newest). Pass the last id of a page to get the next one.
func (n *NS) AuditEvents(ctx context.Context, entityID string, limit int, startAfter string) ([]AuditEvent, error) {
	if err := validateAuditEntity(entityID); err != nil {
		return nil, err
	}
	if startAfter != "" {
		id, err := ulid.ParseStrict(startAfter)
		if err != nil {
			return nil, limits.Invalid("start_after", startAfter, "must be an audit event id")
		}
		startAfter = id.String() // canonical (upper case), as stored in the keys
	}
	if limit <= 0 {
		limit = DefaultAuditPageSize
	}
	pk := schema.AuditPK(n.ID, entityID)
	var e dynamo.Expr
	in := &dynamodb.QueryInput{
		TableName: aws.String(n.s.table),
		KeyConditionExpression: aws.String(e.Name(schema.PK) + " = " + e.Value(dynamo.S(pk)) +
			" AND begins_with(" + e.Name(schema.SK) + ", " + e.Value(dynamo.S(schema.SKAuditPrefix)) + ")"),
		ExpressionAttributeNames:  e.Names(),
		ExpressionAttributeValues: e.Values(),
		ScanIndexForward:          aws.Bool(false),
	}
	if startAfter != "" {
		in.ExclusiveStartKey = keyItem(schema.AuditKey(n.ID, entityID, startAfter))
	}
	out := []AuditEvent{}
	for len(out) < limit {
		in.Limit = aws.Int32(int32(limit - len(out)))
		page, err := n.s.db.Query(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("list audit events of %q: %w", entityID, err)
		}
		for _, it := range page.Items {
			if ev, ok := decodeAudit(it); ok {
				out = append(out, ev)
			}
		}
		if len(page.LastEvaluatedKey) == 0 {
			break
		}
		in.ExclusiveStartKey = page.LastEvaluatedKey
	}
	return out, nil
}

func decodeAudit(it dynamo.Item) (AuditEvent, bool) {
	ev := AuditEvent{
		EventID:   dynamo.GetS(it, "event_id"),
		Timestamp: parseTime(dynamo.GetS(it, "timestamp")),
		Action:    dynamo.GetS(it, "action"),
		EntityID:  dynamo.GetS(it, "entity_id"),
		Principal: dynamo.GetS(it, "principal"),
		Resource:  dynamo.GetS(it, "resource"),
	}
	if ev.Action == "" {
		return ev, false
	}
	if m, ok := it["details"].(*types.AttributeValueMemberM); ok && len(m.Value) > 0 {
		_ = attributevalue.UnmarshalMap(m.Value, &ev.Details)
	}
	return ev, true
}
