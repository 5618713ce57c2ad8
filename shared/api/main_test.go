package api

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/smithy-go"
	"github.com/stretchr/testify/require"

	"github.com/zeroae/zae-limiter-go/shared/clocktest"
	"github.com/zeroae/zae-limiter-go/shared/ddblocal/ddbtest"
	"github.com/zeroae/zae-limiter-go/shared/dynamo"
	"github.com/zeroae/zae-limiter-go/shared/limits"
	"github.com/zeroae/zae-limiter-go/shared/schema"
	"github.com/zeroae/zae-limiter-go/shared/store"
	"github.com/zeroae/zae-limiter-go/shared/syncio"
	"github.com/zeroae/zae-limiter-go/shared/wire"
)

func TestMain(m *testing.M) { ddbtest.Main(m) }

// fixture is a fresh table with the default namespace registered, a
// handler over it with a frozen clock, and a failure-injecting client.
type fixture struct {
	t     *testing.T
	ctx   context.Context
	table string
	db    *flakyDB
	store *store.Store
	ns    *store.NS
	clock *clocktest.Clock
	keys  [][]byte
	h     *Handler
	logs  *syncio.Buffer
}

func newFixture(t *testing.T, mod ...func(*Options)) *fixture {
	t.Helper()
	f := &fixture{t: t, ctx: context.Background(), table: ddbtest.NewTable(t),
		clock: clocktest.New(time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)), logs: &syncio.Buffer{}}
	client := ddbtest.Client(t)
	f.db = &flakyDB{Client: client}
	f.store = store.New(client, store.Options{Table: f.table, Now: f.clock.Now})
	_, err := f.store.RegisterNamespace(f.ctx, "default")
	require.NoError(t, err)
	f.ns, err = f.store.Namespace(f.ctx, "default")
	require.NoError(t, err)
	f.keys = [][]byte{[]byte("test-key-0123456789abcdef")}
	f.h = f.handler(mod...)
	return f
}

// handler builds another handler (another "process") over the same table.
func (f *fixture) handler(mod ...func(*Options)) *Handler {
	o := Options{
		Store: f.store, DB: f.db, Table: f.table, Keys: f.keys, Now: f.clock.Now,
		Logger: slog.New(slog.NewJSONHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	for _, m := range mod {
		m(&o)
	}
	return New(o)
}

// do sends one request through h (f.h when nil); body is JSON-encoded
// unless it is a string or []byte.
func (f *fixture) do(h *Handler, method, path string, body any, hdr ...string) *httptest.ResponseRecorder {
	f.t.Helper()
	if h == nil {
		h = f.h
	}
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		js, err := json.Marshal(b)
		require.NoError(f.t, err)
		rd = bytes.NewReader(js)
	}
	req := httptest.NewRequest(method, path, rd)
	if method == http.MethodPost {
		req.Header.Set("Content-Type", wire.ContentType) // hdr may replace it
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func (f *fixture) post(path string, body any) *httptest.ResponseRecorder {
	f.t.Helper()
	return f.do(nil, http.MethodPost, path, body)
}

// acquire posts an acquire and requires 200.
func (f *fixture) acquire(req wire.AcquireRequest) wire.AcquireResponse {
	f.t.Helper()
	rec := f.post(wire.PathAcquire, req)
	require.Equal(f.t, http.StatusOK, rec.Code, rec.Body.String())
	return decode[wire.AcquireResponse](f.t, rec)
}

// avail reads GET /v1/available as "entity/limit" -> available.
func (f *fixture) avail(entity, resource string) map[string]int64 {
	f.t.Helper()
	rec := f.do(nil, http.MethodGet, wire.PathAvailable+"?entity_id="+entity+"&resource="+resource, nil)
	require.Equal(f.t, http.StatusOK, rec.Code, rec.Body.String())
	out := map[string]int64{}
	for _, l := range decode[wire.AvailableResponse](f.t, rec).Limits {
		out[l.EntityID+"/"+l.Name] = l.Available
	}
	return out
}

// setDefaults stores system defaults in the default namespace.
func (f *fixture) setDefaults(on limits.OnUnavailable, ls ...limits.Limit) {
	f.t.Helper()
	require.NoError(f.t, f.ns.SetSystemDefaults(f.ctx, ls, on))
}

// leaseItem reads the lease-state item of a token (nil when absent).
func (f *fixture) leaseItem(tok string) dynamo.Item {
	f.t.Helper()
	c := payload(f.t, tok)
	k := schema.LeaseKey(c.NS, c.ID)
	out, err := ddbtest.Client(f.t).GetItem(f.ctx, &dynamodb.GetItemInput{
		TableName: aws.String(f.table), ConsistentRead: aws.Bool(true),
		Key: dynamo.Item{schema.PK: dynamo.S(k.PK), schema.SK: dynamo.S(k.SK)},
	})
	require.NoError(f.t, err)
	return out.Item
}

// leaseItems counts the lease-state items in the table.
func (f *fixture) leaseItems() int {
	f.t.Helper()
	n := 0
	p := dynamodb.NewScanPaginator(ddbtest.Client(f.t), &dynamodb.ScanInput{TableName: aws.String(f.table), ConsistentRead: aws.Bool(true)})
	for p.HasMorePages() {
		out, err := p.NextPage(f.ctx)
		require.NoError(f.t, err)
		for _, it := range out.Items {
			if dynamo.GetS(it, schema.SK) == schema.SKLease {
				n++
			}
		}
	}
	return n
}

// payload decodes a token's claims without checking the signature.
func payload(t *testing.T, tok string) claims {
	t.Helper()
	p, _, ok := strings.Cut(tok, ".")
	require.True(t, ok, tok)
	b, err := base64.RawURLEncoding.DecodeString(p)
	require.NoError(t, err)
	var c claims
	require.NoError(t, json.Unmarshal(b, &c))
	return c
}

func decode[T any](t *testing.T, rec *httptest.ResponseRecorder) T {
	t.Helper()
	var v T
	dec := json.NewDecoder(rec.Body)
	dec.DisallowUnknownFields()
	require.NoError(t, dec.Decode(&v))
	return v
}

// errorBody requires an error answer with status and code and returns it.
func errorBody(t *testing.T, rec *httptest.ResponseRecorder, status int, code string) wire.Error {
	t.Helper()
	require.Equal(t, status, rec.Code, rec.Body.String())
	require.Equal(t, "application/json", rec.Header().Get("Content-Type"))
	e := decode[wire.Error](t, rec)
	require.Equal(t, code, e.Code, e.Message)
	require.NotEmpty(t, e.Message)
	return e
}

// flakyDB is the real client with failures injected: while fail returns
// an error for (operation, partition key), the call is not sent.
type flakyDB struct {
	*dynamodb.Client
	mu   sync.Mutex
	fail func(op, pk string) error
}

func (d *flakyDB) failWhen(fn func(op, pk string) error) {
	d.mu.Lock()
	d.fail = fn
	d.mu.Unlock()
}

func (d *flakyDB) check(op string, key dynamo.Item) error {
	d.mu.Lock()
	fn := d.fail
	d.mu.Unlock()
	if fn == nil {
		return nil
	}
	return fn(op, dynamo.GetS(key, schema.PK))
}

// injected is what DynamoDB answers when it cannot serve; its text must
// never reach a response body.
var injected = &smithy.GenericAPIError{Code: "ServiceUnavailable", Message: "injected: SECRET-SDK-TEXT", Fault: smithy.FaultServer}

// throttled is a failure that proves the write was not applied.
var throttled = &smithy.GenericAPIError{Code: "ThrottlingException", Message: "injected: SECRET-SDK-TEXT", Fault: smithy.FaultClient}

// bucketWrites fails every write to a bucket item.
func bucketWrites(op, pk string) error {
	if op == "UpdateItem" && strings.Contains(pk, "/BUCKET#") {
		return injected
	}
	return nil
}

// lostAnswer, returned by a failWhen function for an UpdateItem, sends the
// write and then answers injected: applied, but the caller cannot know.
var lostAnswer = errors.New("lost answer")

func (d *flakyDB) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, o ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	if err := d.check("UpdateItem", in.Key); errors.Is(err, lostAnswer) {
		if _, err := d.Client.UpdateItem(ctx, in, o...); err != nil {
			return nil, err
		}
		return nil, injected
	} else if err != nil {
		return nil, err
	}
	return d.Client.UpdateItem(ctx, in, o...)
}

func (d *flakyDB) PutItem(ctx context.Context, in *dynamodb.PutItemInput, o ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	if err := d.check("PutItem", in.Item); err != nil {
		return nil, err
	}
	return d.Client.PutItem(ctx, in, o...)
}

func (d *flakyDB) GetItem(ctx context.Context, in *dynamodb.GetItemInput, o ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	if err := d.check("GetItem", in.Key); err != nil {
		return nil, err
	}
	return d.Client.GetItem(ctx, in, o...)
}

func (d *flakyDB) BatchGetItem(ctx context.Context, in *dynamodb.BatchGetItemInput, o ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error) {
	var first dynamo.Item
	for _, ka := range in.RequestItems {
		if len(ka.Keys) > 0 {
			first = ka.Keys[0]
		}
	}
	if err := d.check("BatchGetItem", first); err != nil {
		return nil, err
	}
	return d.Client.BatchGetItem(ctx, in, o...)
}

func (d *flakyDB) TransactGetItems(ctx context.Context, in *dynamodb.TransactGetItemsInput, o ...func(*dynamodb.Options)) (*dynamodb.TransactGetItemsOutput, error) {
	var first dynamo.Item
	if len(in.TransactItems) > 0 && in.TransactItems[0].Get != nil {
		first = in.TransactItems[0].Get.Key
	}
	if err := d.check("TransactGetItems", first); err != nil {
		return nil, err
	}
	return d.Client.TransactGetItems(ctx, in, o...)
}
