package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/zeroae/zae-limiter-go/shared/schema"
)

type item = map[string]types.AttributeValue

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

func sv(s string) types.AttributeValue { return &types.AttributeValueMemberS{Value: s} }
func nv(n int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(n, 10)}
}
func bv(b bool) types.AttributeValue { return &types.AttributeValueMemberBOOL{Value: b} }

func keyItem(k schema.Key) item { return item{schema.PK: sv(k.PK), schema.SK: sv(k.SK)} }

func keyOf(it item) schema.Key { return schema.Key{PK: getS(it, schema.PK), SK: getS(it, schema.SK)} }

// setGSI4 puts a non-bucket item of namespace ns into the namespace index.
func setGSI4(it item, ns string, k schema.Key) {
	it[schema.GSI4PK] = sv(schema.NamespaceGSI4PK(ns))
	it[schema.GSI4SK] = sv(schema.GSI4SKFor(k))
}

func getS(it item, name string) string {
	if v, ok := it[name].(*types.AttributeValueMemberS); ok {
		return v.Value
	}
	return ""
}

func getN(it item, name string) (int64, bool) {
	v, ok := it[name].(*types.AttributeValueMemberN)
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(v.Value, 10, 64)
	if err != nil {
		f, ferr := strconv.ParseFloat(v.Value, 64)
		if ferr != nil {
			return 0, false
		}
		n = int64(f)
	}
	return n, true
}

func getBool(it item, name string) bool {
	v, ok := it[name].(*types.AttributeValueMemberBOOL)
	return ok && v.Value
}

// expr collects positional aliases (#0, :0, ...) for one request.
type expr struct {
	names   map[string]string
	aliases map[string]string
	values  map[string]types.AttributeValue
}

// n returns the alias of attribute name.
func (e *expr) n(name string) string {
	if a, ok := e.aliases[name]; ok {
		return a
	}
	if e.names == nil {
		e.names, e.aliases = map[string]string{}, map[string]string{}
	}
	a := "#" + strconv.Itoa(len(e.names))
	e.names[a], e.aliases[name] = name, a
	return a
}

// v returns the placeholder of a value.
func (e *expr) v(val types.AttributeValue) string {
	if e.values == nil {
		e.values = map[string]types.AttributeValue{}
	}
	p := ":" + strconv.Itoa(len(e.values))
	e.values[p] = val
	return p
}

// Names and Values are nil when empty (DynamoDB rejects empty maps).
func (e *expr) Names() map[string]string {
	if len(e.names) == 0 {
		return nil
	}
	return e.names
}

func (e *expr) Values() map[string]types.AttributeValue {
	if len(e.values) == 0 {
		return nil
	}
	return e.values
}

// notExists is the condition "no item with this key".
func notExists(e *expr) string { return "attribute_not_exists(" + e.n(schema.PK) + ")" }

// exists is the condition "an item with this key".
func exists(e *expr) string { return "attribute_exists(" + e.n(schema.PK) + ")" }

func isCondFailed(err error) bool {
	var ccf *types.ConditionalCheckFailedException
	return errors.As(err, &ccf)
}

// cancelCodes returns the per-item reasons of a cancelled transaction.
func cancelCodes(err error) ([]string, bool) {
	var tce *types.TransactionCanceledException
	if !errors.As(err, &tce) {
		return nil, false
	}
	codes := make([]string, len(tce.CancellationReasons))
	for i, r := range tce.CancellationReasons {
		codes[i] = aws.ToString(r.Code)
	}
	return codes, true
}

// failedCondition reports whether item i of a transaction failed its condition.
func failedCondition(codes []string, i int) bool {
	return i < len(codes) && codes[i] == "ConditionalCheckFailed"
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
	codes, ok := cancelCodes(err)
	if !ok {
		return false
	}
	conflict := false
	for _, c := range codes {
		switch c {
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
func (s *Store) getItem(ctx context.Context, k schema.Key, consistent bool) (item, error) {
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

// queryAll runs in page by page until the end, calling fn for every item.
func (s *Store) queryAll(ctx context.Context, in *dynamodb.QueryInput, fn func(item) error) error {
	in.TableName = aws.String(s.table)
	if s.pageSize > 0 {
		in.Limit = aws.Int32(s.pageSize)
	}
	for {
		out, err := s.db.Query(ctx, in)
		if err != nil {
			return err
		}
		for _, it := range out.Items {
			if err := fn(it); err != nil {
				return err
			}
		}
		if len(out.LastEvaluatedKey) == 0 {
			return nil
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
}

// batchGet reads keys 100 per call, retrying unprocessed keys with backoff.
// Absent items are absent from the result.
func (s *Store) batchGet(ctx context.Context, keys []schema.Key, consistent bool) (map[schema.Key]item, error) {
	found := make(map[schema.Key]item, len(keys))
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
