package limiter_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/smithy-go"
	"github.com/stretchr/testify/require"

	"github.com/zeroae/zae-limiter-go/shared/ddblocal/ddbtest"
	"github.com/zeroae/zae-limiter-go/shared/dynamo"
	"github.com/zeroae/zae-limiter-go/shared/limiter"
	"github.com/zeroae/zae-limiter-go/shared/limits"
	"github.com/zeroae/zae-limiter-go/shared/schema"
	"github.com/zeroae/zae-limiter-go/shared/store"
)

// item reads a bucket shard item with a consistent read through an
// uncounted client (nil when it does not exist).
func (e *env) item(entity, resource string, shard int) dynamo.Item {
	e.t.Helper()
	k := schema.BucketKey(e.ns.ID, entity, resource, shard)
	out, err := ddbtest.Client(e.t).GetItem(e.ctx, &dynamodb.GetItemInput{
		TableName:      aws.String(e.table),
		Key:            dynamo.Item{schema.PK: dynamo.S(k.PK), schema.SK: dynamo.S(k.SK)},
		ConsistentRead: aws.Bool(true),
	})
	require.NoError(e.t, err)
	return out.Item
}

// num is a numeric attribute of an item; the test fails when it is absent.
func (e *env) num(it dynamo.Item, attr string) int64 {
	e.t.Helper()
	v, ok := dynamo.GetN(it, attr)
	require.True(e.t, ok, "attribute %s missing or not a number in %v", attr, it)
	return v
}

// tc is the net consumed counter (millitokens) of one limit on shard 0.
func (e *env) tc(entity, resource, name string) int64 {
	e.t.Helper()
	it := e.item(entity, resource, 0)
	require.NotNil(e.t, it, "bucket %s/%s missing", entity, resource)
	return e.num(it, schema.BucketAttr(name, schema.SuffixConsumed))
}

// avail returns "entity/limit" -> available whole tokens, as reported by
// lim.Available.
func (e *env) avail(lim *limiter.Limiter, entity, resource string, override []limits.Limit) map[string]int64 {
	e.t.Helper()
	sts, err := lim.Available(e.ctx, entity, resource, nil, override)
	require.NoError(e.t, err)
	out := map[string]int64{}
	for _, s := range sts {
		out[s.EntityID+"/"+s.Limit.Name] = s.Available
	}
	return out
}

// exceeded asserts err is a denial and returns it.
func exceeded(t *testing.T, err error) *limits.ExceededError {
	t.Helper()
	var ex *limits.ExceededError
	require.True(t, errors.As(err, &ex), "want *limits.ExceededError, got %v", err)
	return ex
}

// statusOf returns the status of entity/name in a list of statuses.
func statusOf(t *testing.T, sts []limits.Status, entity, name string) limits.Status {
	t.Helper()
	for _, s := range sts {
		if s.EntityID == entity && s.Limit.Name == name {
			return s
		}
	}
	require.Failf(t, "status missing", "%s/%s not in %+v", entity, name, sts)
	return limits.Status{}
}

func names(sts []limits.Status) []string {
	out := make([]string, 0, len(sts))
	for _, s := range sts {
		out = append(out, s.EntityID+"/"+s.Limit.Name)
	}
	return out
}

// flakyDB is the real DynamoDB client with failures injected: while a
// predicate matches, a call returns a service error without being sent.
// It satisfies both limiter.DynamoDB and store.DynamoDB.
type flakyDB struct {
	*dynamodb.Client
	mu        sync.Mutex
	fail      func(op, pk string) error
	ops       map[string]int // calls per operation (failed ones included)
	batchKeys []int          // keys of every BatchGetItem, config levels of every TransactGetItems
	calls     atomic.Int64   // calls that failed
	// late, when it matches an UpdateItem, applies it whatever happens to
	// the caller's context, then answers only when that context is done
	// (or after 200 ms): the caller sees its cancellation although the
	// write took place, as with a request cancelled in flight.
	late func(pk string) bool
}

// seen returns the calls per operation since the last reset, and the key
// counts of the BatchGetItem calls.
func (f *flakyDB) seen() (map[string]int, []int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ops := map[string]int{}
	for k, v := range f.ops {
		ops[k] = v
	}
	return ops, append([]int(nil), f.batchKeys...)
}

func (f *flakyDB) reset() {
	f.mu.Lock()
	f.ops, f.batchKeys = nil, nil
	f.mu.Unlock()
}

// failAll makes every call fail with err (nil: stop failing).
func (f *flakyDB) failAll(err error) {
	f.failWhen(func(string, string) error { return err })
}

// failWhen installs a predicate over the operation and the partition key
// (the first key's, "" for calls without one).
func (f *flakyDB) failWhen(fn func(op, pk string) error) {
	f.mu.Lock()
	f.fail = fn
	f.mu.Unlock()
}

func (f *flakyDB) check(op string, key dynamo.Item) error {
	f.mu.Lock()
	fn := f.fail
	if f.ops == nil {
		f.ops = map[string]int{}
	}
	f.ops[op]++
	f.mu.Unlock()
	if fn == nil {
		return nil
	}
	err := fn(op, dynamo.GetS(key, schema.PK))
	if err != nil {
		f.calls.Add(1)
	}
	return err
}

// serviceUnavailable is what DynamoDB answers when it cannot serve.
var serviceUnavailable = &smithy.GenericAPIError{Code: "ServiceUnavailable", Message: "injected: service unavailable", Fault: smithy.FaultServer}

// throttled is DynamoDB's throttling error.
var throttled = &smithy.GenericAPIError{Code: "ProvisionedThroughputExceededException", Message: "injected: throughput exceeded", Fault: smithy.FaultClient}

func (f *flakyDB) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, o ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	if err := f.check("UpdateItem", in.Key); err != nil {
		return nil, err
	}
	f.mu.Lock()
	late := f.late
	f.mu.Unlock()
	if late != nil && late(dynamo.GetS(in.Key, schema.PK)) {
		out, err := f.Client.UpdateItem(context.WithoutCancel(ctx), in, o...)
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
			return out, err
		}
	}
	return f.Client.UpdateItem(ctx, in, o...)
}

func (f *flakyDB) PutItem(ctx context.Context, in *dynamodb.PutItemInput, o ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	if err := f.check("PutItem", in.Item); err != nil {
		return nil, err
	}
	return f.Client.PutItem(ctx, in, o...)
}

func (f *flakyDB) GetItem(ctx context.Context, in *dynamodb.GetItemInput, o ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	if err := f.check("GetItem", in.Key); err != nil {
		return nil, err
	}
	return f.Client.GetItem(ctx, in, o...)
}

func (f *flakyDB) BatchGetItem(ctx context.Context, in *dynamodb.BatchGetItemInput, o ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error) {
	var first dynamo.Item
	n := 0
	for _, ka := range in.RequestItems {
		if len(ka.Keys) > 0 {
			first = ka.Keys[0]
		}
		n += len(ka.Keys)
	}
	f.mu.Lock()
	f.batchKeys = append(f.batchKeys, n)
	f.mu.Unlock()
	if err := f.check("BatchGetItem", first); err != nil {
		return nil, err
	}
	return f.Client.BatchGetItem(ctx, in, o...)
}

// TransactGetItems is how the store resolves limits (with the config
// version): batchKeys records the config levels read.
func (f *flakyDB) TransactGetItems(ctx context.Context, in *dynamodb.TransactGetItemsInput, o ...func(*dynamodb.Options)) (*dynamodb.TransactGetItemsOutput, error) {
	var first dynamo.Item
	if len(in.TransactItems) > 0 && in.TransactItems[0].Get != nil {
		first = in.TransactItems[0].Get.Key
	}
	f.mu.Lock()
	f.batchKeys = append(f.batchKeys, len(in.TransactItems)-1) // the config version is read with the levels
	f.mu.Unlock()
	if err := f.check("TransactGetItems", first); err != nil {
		return nil, err
	}
	return f.Client.TransactGetItems(ctx, in, o...)
}

func (f *flakyDB) Query(ctx context.Context, in *dynamodb.QueryInput, o ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error) {
	if err := f.check("Query", nil); err != nil {
		return nil, err
	}
	return f.Client.Query(ctx, in, o...)
}

func (f *flakyDB) TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, o ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error) {
	if err := f.check("TransactWriteItems", nil); err != nil {
		return nil, err
	}
	return f.Client.TransactWriteItems(ctx, in, o...)
}

// flaky returns a failure-injecting wrapper of the env's client, a store
// namespace handle over it (own caches) and a limiter over both.
func (e *env) flaky(o limiter.Options, so ...store.Options) (*flakyDB, *store.NS, *limiter.Limiter) {
	e.t.Helper()
	f := &flakyDB{Client: e.db}
	sopt := store.Options{}
	if len(so) > 0 {
		sopt = so[0]
	}
	sopt.Table, sopt.Now = e.table, e.clock.Now
	st := store.New(f, sopt)
	ns, err := st.Namespace(e.ctx, "default")
	require.NoError(e.t, err)
	require.Equal(e.t, e.ns.ID, ns.ID)
	o.Table, o.Namespace = e.table, ns.ID
	if o.Timeout == 0 {
		o.Timeout = testTimeout
	}
	if o.Now == nil {
		o.Now = e.clock.Now
	}
	f.reset()
	return f, ns, limiter.New(f, ns, o)
}

// isBucket reports whether a partition key is a bucket shard of entity.
func isBucket(pk, entity string) bool {
	return strings.Contains(pk, "/BUCKET#"+entity+"#")
}

// rpm, tpm build per-minute limits whose capacity equals the rate.
func rpm(n int64) limits.Limit { return limits.PerMinute("rpm", n, 0) }
func tpm(n int64) limits.Limit { return limits.PerMinute("tpm", n, 0) }
