package store

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/stretchr/testify/require"

	"github.com/zeroae/zae-limiter-go/shared/clocktest"
	"github.com/zeroae/zae-limiter-go/shared/ddblocal/ddbtest"
	"github.com/zeroae/zae-limiter-go/shared/dynamo"
	"github.com/zeroae/zae-limiter-go/shared/schema"
)

func TestMain(m *testing.M) { ddbtest.Main(m) }

// countingDB wraps the real DynamoDB client, counting calls per operation
// and optionally failing an operation (to reach error paths).
type countingDB struct {
	DynamoDB
	mu       sync.Mutex
	calls    map[string]int
	fail     map[string]error
	lastKeys int // config levels (or keys) of the last TransactGetItems (BatchGetItem)
}

func (c *countingDB) hit(op string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.calls == nil {
		c.calls = map[string]int{}
	}
	c.calls[op]++
	return c.fail[op]
}

func (c *countingDB) count(op string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calls[op]
}

// writes counts every call that can change the table.
func (c *countingDB) writes() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.calls["PutItem"] + c.calls["UpdateItem"] + c.calls["DeleteItem"] +
		c.calls["BatchWriteItem"] + c.calls["TransactWriteItems"]
}

func (c *countingDB) total() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, v := range c.calls {
		n += v
	}
	return n
}

func (c *countingDB) reset() {
	c.mu.Lock()
	c.calls = map[string]int{}
	c.mu.Unlock()
}

func (c *countingDB) failOp(op string, err error) {
	c.mu.Lock()
	if c.fail == nil {
		c.fail = map[string]error{}
	}
	if err == nil {
		delete(c.fail, op)
	} else {
		c.fail[op] = err
	}
	c.mu.Unlock()
}

func (c *countingDB) GetItem(ctx context.Context, in *dynamodb.GetItemInput, o ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	if err := c.hit("GetItem"); err != nil {
		return nil, err
	}
	return c.DynamoDB.GetItem(ctx, in, o...)
}

func (c *countingDB) PutItem(ctx context.Context, in *dynamodb.PutItemInput, o ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	if err := c.hit("PutItem"); err != nil {
		return nil, err
	}
	return c.DynamoDB.PutItem(ctx, in, o...)
}

func (c *countingDB) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, o ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	if err := c.hit("UpdateItem"); err != nil {
		return nil, err
	}
	return c.DynamoDB.UpdateItem(ctx, in, o...)
}

func (c *countingDB) DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, o ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error) {
	if err := c.hit("DeleteItem"); err != nil {
		return nil, err
	}
	return c.DynamoDB.DeleteItem(ctx, in, o...)
}

func (c *countingDB) Query(ctx context.Context, in *dynamodb.QueryInput, o ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error) {
	if err := c.hit("Query"); err != nil {
		return nil, err
	}
	return c.DynamoDB.Query(ctx, in, o...)
}

func (c *countingDB) BatchGetItem(ctx context.Context, in *dynamodb.BatchGetItemInput, o ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error) {
	if err := c.hit("BatchGetItem"); err != nil {
		return nil, err
	}
	n := 0
	for _, ka := range in.RequestItems {
		n += len(ka.Keys)
	}
	c.mu.Lock()
	c.lastKeys = n
	c.mu.Unlock()
	return c.DynamoDB.BatchGetItem(ctx, in, o...)
}

func (c *countingDB) TransactGetItems(ctx context.Context, in *dynamodb.TransactGetItemsInput, o ...func(*dynamodb.Options)) (*dynamodb.TransactGetItemsOutput, error) {
	if err := c.hit("TransactGetItems"); err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.lastKeys = len(in.TransactItems) - 1 // the config version is read with the levels
	c.mu.Unlock()
	return c.DynamoDB.TransactGetItems(ctx, in, o...)
}

func (c *countingDB) BatchWriteItem(ctx context.Context, in *dynamodb.BatchWriteItemInput, o ...func(*dynamodb.Options)) (*dynamodb.BatchWriteItemOutput, error) {
	if err := c.hit("BatchWriteItem"); err != nil {
		return nil, err
	}
	return c.DynamoDB.BatchWriteItem(ctx, in, o...)
}

func (c *countingDB) TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, o ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error) {
	if err := c.hit("TransactWriteItems"); err != nil {
		return nil, err
	}
	return c.DynamoDB.TransactWriteItems(ctx, in, o...)
}

func (c *countingDB) CreateTable(ctx context.Context, in *dynamodb.CreateTableInput, o ...func(*dynamodb.Options)) (*dynamodb.CreateTableOutput, error) {
	if err := c.hit("CreateTable"); err != nil {
		return nil, err
	}
	return c.DynamoDB.CreateTable(ctx, in, o...)
}

func (c *countingDB) UpdateTimeToLive(ctx context.Context, in *dynamodb.UpdateTimeToLiveInput, o ...func(*dynamodb.Options)) (*dynamodb.UpdateTimeToLiveOutput, error) {
	if err := c.hit("UpdateTimeToLive"); err != nil {
		return nil, err
	}
	return c.DynamoDB.UpdateTimeToLive(ctx, in, o...)
}

func (c *countingDB) DescribeTable(ctx context.Context, in *dynamodb.DescribeTableInput, o ...func(*dynamodb.Options)) (*dynamodb.DescribeTableOutput, error) {
	if err := c.hit("DescribeTable"); err != nil {
		return nil, err
	}
	return c.DynamoDB.DescribeTable(ctx, in, o...)
}

// newClock returns a settable test clock at the tests' usual instant.
func newClock() *clocktest.Clock {
	return clocktest.New(time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC))
}

// fixture is a fresh table with the namespace "default" registered.
type fixture struct {
	t     *testing.T
	ctx   context.Context
	raw   *dynamodb.Client
	db    *countingDB
	st    *Store
	ns    *NS
	table string
}

func setup(t *testing.T, o Options) *fixture {
	t.Helper()
	f := &fixture{t: t, ctx: context.Background(), raw: ddbtest.Client(t), table: ddbtest.NewTable(t)}
	f.db = &countingDB{DynamoDB: f.raw}
	o.Table = f.table
	f.st = New(f.db, o)
	_, err := f.st.RegisterNamespace(f.ctx, "default")
	require.NoError(t, err)
	f.ns, err = f.st.Namespace(f.ctx, "default")
	require.NoError(t, err)
	f.db.reset()
	return f
}

// get reads an item straight from the table (nil when absent).
func (f *fixture) get(k schema.Key) dynamo.Item {
	f.t.Helper()
	out, err := f.raw.GetItem(f.ctx, &dynamodb.GetItemInput{
		TableName: aws.String(f.table), Key: keyItem(k), ConsistentRead: aws.Bool(true),
	})
	require.NoError(f.t, err)
	if len(out.Item) == 0 {
		return nil
	}
	return out.Item
}

// put writes a raw item straight to the table.
func (f *fixture) put(it dynamo.Item) {
	f.t.Helper()
	_, err := f.raw.PutItem(f.ctx, &dynamodb.PutItemInput{TableName: aws.String(f.table), Item: it})
	require.NoError(f.t, err)
}

// gsi4Count counts the items of a namespace in GSI4.
func (f *fixture) gsi4Count(nsID string) int {
	f.t.Helper()
	n := 0
	in := indexQuery(schema.GSI4, schema.GSI4PK, nsID)
	in.TableName = aws.String(f.table)
	for {
		out, err := f.raw.Query(f.ctx, in)
		require.NoError(f.t, err)
		n += len(out.Items)
		if len(out.LastEvaluatedKey) == 0 {
			return n
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
}

var (
	_ DynamoDB = (*dynamodb.Client)(nil)
	_ DynamoDB = (*countingDB)(nil)
)

// otherNS is the namespace "default" through another store on the same
// table: another process, with caches of its own.
func (f *fixture) otherNS(t *testing.T) *NS {
	t.Helper()
	st := New(f.raw, Options{Table: f.table})
	ns, err := st.Namespace(f.ctx, "default")
	require.NoError(t, err)
	return ns
}
