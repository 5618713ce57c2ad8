package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/zeroae/zae-limiter-go/shared/dynamo"
	"github.com/zeroae/zae-limiter-go/shared/schema"
)

// DynamoDB's per-call limits.
const (
	batchWriteMax = 25
	batchGetMax   = 100
	retryAttempts = 10
)

// timeLayout is how every timestamp is stored: RFC 3339, UTC, seconds.
const timeLayout = "2006-01-02T15:04:05Z"

func fmtTime(t time.Time) string { return t.UTC().Format(timeLayout) }

func parseTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}
	}
	return t.UTC()
}

func keyItem(k schema.Key) dynamo.Item {
	return dynamo.Item{schema.PK: dynamo.S(k.PK), schema.SK: dynamo.S(k.SK)}
}

func keyOf(it dynamo.Item) schema.Key {
	return schema.Key{PK: dynamo.GetS(it, schema.PK), SK: dynamo.GetS(it, schema.SK)}
}

// setGSI4 puts a non-bucket item of namespace ns into the namespace index.
func setGSI4(it dynamo.Item, ns string, k schema.Key) {
	it[schema.GSI4PK] = dynamo.S(schema.NamespaceGSI4PK(ns))
	it[schema.GSI4SK] = dynamo.S(schema.GSI4SKFor(k))
}

// notExists is the condition "no item with this key".
func notExists(e *dynamo.Expr) string { return "attribute_not_exists(" + e.Name(schema.PK) + ")" }

// exists is the condition "an item with this key".
func exists(e *dynamo.Expr) string { return "attribute_exists(" + e.Name(schema.PK) + ")" }

// failedCondition reports whether item i of a transaction failed its condition.
func failedCondition(reasons []types.CancellationReason, i int) bool {
	return i < len(reasons) && dynamo.ReasonCode(reasons[i]) == "ConditionalCheckFailed"
}

// transact runs a transaction, retrying with backoff while it is cancelled
// only by conflicts with concurrent transactions (never by a condition).
func (s *Store) transact(ctx context.Context, items []types.TransactWriteItem) error {
	for attempt := 0; ; attempt++ {
		_, err := s.db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: items})
		if err == nil || attempt+1 >= retryAttempts || !onlyConflicts(err) {
			return err
		}
		if err := sleep(ctx, attempt); err != nil {
			return err
		}
	}
}

func onlyConflicts(err error) bool {
	var tc *types.TransactionConflictException
	if errors.As(err, &tc) {
		return true
	}
	reasons, ok := dynamo.CancelReasons(err)
	if !ok {
		return false
	}
	conflict := false
	for _, r := range reasons {
		switch dynamo.ReasonCode(r) {
		case "TransactionConflict":
			conflict = true
		case "", "None":
		default:
			return false
		}
	}
	return conflict
}

// sleep waits for the i-th retry's backoff (25 ms doubling, at most 1 s).
func sleep(ctx context.Context, i int) error {
	d := 25 * time.Millisecond << min(i, 6)
	d = min(d, time.Second)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// getItem reads one item; nil when absent.
func (s *Store) getItem(ctx context.Context, k schema.Key, consistent bool) (dynamo.Item, error) {
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      aws.String(s.table),
		Key:            keyItem(k),
		ConsistentRead: aws.Bool(consistent),
	})
	if err != nil {
		return nil, err
	}
	if len(out.Item) == 0 {
		return nil, nil
	}
	return out.Item, nil
}

// indexQuery is the query of a whole partition of a global secondary index:
// every item whose pkAttr is pk. The table name is left to the caller.
func indexQuery(index, pkAttr, pk string) *dynamodb.QueryInput {
	var e dynamo.Expr
	return &dynamodb.QueryInput{
		IndexName:                 aws.String(index),
		KeyConditionExpression:    aws.String(e.Name(pkAttr) + " = " + e.Value(dynamo.S(pk))),
		ExpressionAttributeNames:  e.Names(),
		ExpressionAttributeValues: e.Values(),
	}
}

// queryAll runs in page by page until the end, calling fn for every item.
func (s *Store) queryAll(ctx context.Context, in *dynamodb.QueryInput, fn func(dynamo.Item) error) error {
	in.TableName = aws.String(s.table)
	if s.pageSize > 0 {
		in.Limit = aws.Int32(s.pageSize)
	}
	return dynamo.QueryAll(ctx, s.db, in, fn)
}

// batchGet reads keys 100 per call, retrying unprocessed keys with backoff.
// Absent items are absent from the result.
func (s *Store) batchGet(ctx context.Context, keys []schema.Key, consistent bool) (map[schema.Key]dynamo.Item, error) {
	found := make(map[schema.Key]dynamo.Item, len(keys))
	for start := 0; start < len(keys); start += batchGetMax {
		chunk := keys[start:min(start+batchGetMax, len(keys))]
		req := map[string]types.KeysAndAttributes{s.table: {ConsistentRead: aws.Bool(consistent)}}
		ka := req[s.table]
		for _, k := range chunk {
			ka.Keys = append(ka.Keys, keyItem(k))
		}
		req[s.table] = ka
		for attempt := 0; len(req) > 0; attempt++ {
			if attempt > 0 {
				if attempt >= retryAttempts {
					return nil, fmt.Errorf("batch get: %d keys still unprocessed after %d attempts",
						len(req[s.table].Keys), attempt)
				}
				if err := sleep(ctx, attempt); err != nil {
					return nil, err
				}
			}
			out, err := s.db.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: req})
			if err != nil {
				return nil, err
			}
			for _, it := range out.Responses[s.table] {
				found[keyOf(it)] = it
			}
			req = nil
			if ka, ok := out.UnprocessedKeys[s.table]; ok && len(ka.Keys) > 0 {
				req = map[string]types.KeysAndAttributes{s.table: ka}
			}
		}
	}
	return found, nil
}

// batchDelete deletes keys 25 per call, retrying unprocessed items with
// backoff, and reports the running total to progress after each call.
func (s *Store) batchDelete(ctx context.Context, keys []schema.Key, progress func(int)) (int, error) {
	deleted := 0
	for start := 0; start < len(keys); start += batchWriteMax {
		chunk := keys[start:min(start+batchWriteMax, len(keys))]
		var reqs []types.WriteRequest
		for _, k := range chunk {
			reqs = append(reqs, types.WriteRequest{DeleteRequest: &types.DeleteRequest{Key: keyItem(k)}})
		}
		pending := map[string][]types.WriteRequest{s.table: reqs}
		for attempt := 0; len(pending[s.table]) > 0; attempt++ {
			if attempt > 0 {
				if attempt >= retryAttempts {
					return deleted, fmt.Errorf("batch delete: %d items still unprocessed after %d attempts",
						len(pending[s.table]), attempt)
				}
				if err := sleep(ctx, attempt); err != nil {
					return deleted, err
				}
			}
			out, err := s.db.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{RequestItems: pending})
			if err != nil {
				return deleted, err
			}
			deleted += len(pending[s.table]) - len(out.UnprocessedItems[s.table])
			pending = out.UnprocessedItems
		}
		if progress != nil {
			progress(deleted)
		}
	}
	return deleted, nil
}

// dedupe keeps the first occurrence of every key.
func dedupe(keys []schema.Key) []schema.Key {
	seen := make(map[schema.Key]bool, len(keys))
	out := keys[:0:0]
	for _, k := range keys {
		if !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	return out
}
