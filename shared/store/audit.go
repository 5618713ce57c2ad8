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
	id := n.s.newEventID(now)
	k := schema.AuditKey(n.ID, entityID, id)
	it := keyItem(k)
	it["event_id"] = dynamo.S(id)
	it["entity_id"] = dynamo.S(entityID)
	it["action"] = dynamo.S(action)
	it["timestamp"] = dynamo.S(fmtTime(now))
	it["principal"] = dynamo.S(principal)
	if resource != "" {
		it["resource"] = dynamo.S(resource)
	}
	if details == nil {
		details = map[string]any{}
	}
	dm, err := attributevalue.MarshalMap(details)
	if err != nil {
		return fmt.Errorf("encode audit details: %w", err)
	}
	it["details"] = &types.AttributeValueMemberM{Value: dm}
	it[schema.TTL] = dynamo.N(now.Add(n.s.opts.AuditRetention).Unix())
	it[schema.GSI2PK] = dynamo.S(schema.AuditDayGSI2PK(now.UTC().Format("2006-01-02")))
	it[schema.GSI2SK] = dynamo.S(id)
	setGSI4(it, n.ID, k)
	if _, err := n.s.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(n.s.table), Item: it}); err != nil {
		return fmt.Errorf("write audit event %s: %w", action, err)
	}
	return nil
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
