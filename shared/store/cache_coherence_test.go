package store

// Shared reads (one read per cache miss, however many callers) and the
// caches stay coherent with writes made through the same handle.

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zeroae/zae-limiter-go/shared/limits"
)

// holdDB runs reads against the real table and, when armed, holds the
// answer of the next call of op ("TransactGetItems", the config reads, or
// "GetItem" for an eventually consistent read) until released, so a read can straddle a
// write.
type holdDB struct {
	DynamoDB
	op      string
	mu      sync.Mutex
	armed   bool
	entered chan struct{}
	release chan struct{}
}

func (h *holdDB) arm() {
	h.mu.Lock()
	h.armed, h.entered, h.release = true, make(chan struct{}), make(chan struct{})
	h.mu.Unlock()
}

// hold blocks a call of op while armed (once), until released or ctx ends.
func (h *holdDB) hold(ctx context.Context, op string) error {
	h.mu.Lock()
	armed, entered, release := h.armed && h.op == op, h.entered, h.release
	if armed {
		h.armed = false
	}
	h.mu.Unlock()
	if !armed {
		return nil
	}
	close(entered)
	select {
	case <-release:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (h *holdDB) TransactGetItems(ctx context.Context, in *dynamodb.TransactGetItemsInput, o ...func(*dynamodb.Options)) (*dynamodb.TransactGetItemsOutput, error) {
	out, err := h.DynamoDB.TransactGetItems(ctx, in, o...)
	if herr := h.hold(ctx, "TransactGetItems"); herr != nil {
		return nil, herr
	}
	return out, err
}

func (h *holdDB) GetItem(ctx context.Context, in *dynamodb.GetItemInput, o ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	out, err := h.DynamoDB.GetItem(ctx, in, o...)
	if !aws.ToBool(in.ConsistentRead) {
		if herr := h.hold(ctx, "GetItem"); herr != nil {
			return nil, herr
		}
	}
	return out, err
}

// holdingStore is a store over f's table whose reads of op can be held.
func holdingStore(t *testing.T, f *fixture, op string) (*holdDB, *NS) {
	h := &holdDB{DynamoDB: f.raw, op: op}
	st := New(h, Options{Table: f.table, Now: f.st.now})
	ns, err := st.Namespace(f.ctx, "default")
	require.NoError(t, err)
	return h, ns
}

// A caller whose context is cancelled while it leads a shared read must not
// fail the callers that joined it: their own contexts are fine.
func TestSharedRead_cancelledLeaderDoesNotFailJoiners(t *testing.T) {
	f := setup(t, Options{})
	require.NoError(t, f.ns.SetLimits(f.ctx, "e1", "gpt-4", []limits.Limit{limits.PerMinute("rpm", 10, 0)}))
	h, ns := holdingStore(t, f, "TransactGetItems")
	h.arm()

	actx, cancel := context.WithCancel(context.Background())
	go func() { _, _ = ns.ResolveLimits(actx, "e1", "gpt-4") }()
	<-h.entered
	var berr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, berr = ns.ResolveLimits(context.Background(), "e1", "gpt-4")
	}()
	time.Sleep(100 * time.Millisecond) // B joins the flight
	cancel()
	time.Sleep(50 * time.Millisecond) // A's cancellation must not reach the read
	close(h.release)                  // the read completes, as real reads do
	<-done
	assert.NoError(t, berr, "B's context was never cancelled")
}

// Read-your-writes through one handle: a config read in flight when
// SetLimits evicts the slot must not put the old value back into the cache,
// and a resolve started after SetLimits returned must not join that read.
func TestCache_configReadInFlightDuringSetLimitsIsNotRecached(t *testing.T) {
	f := setup(t, Options{})
	require.NoError(t, f.ns.SetLimits(f.ctx, "e1", "gpt-4", []limits.Limit{limits.PerMinute("rpm", 10, 0)}))
	h, ns := holdingStore(t, f, "TransactGetItems")
	h.arm()

	aDone := make(chan struct{})
	go func() { defer close(aDone); _, _ = ns.ResolveLimits(f.ctx, "e1", "gpt-4") }()
	<-h.entered // A has read rpm=10 and not yet cached it
	require.NoError(t, ns.SetLimits(f.ctx, "e1", "gpt-4", []limits.Limit{limits.PerMinute("rpm", 99, 0)}))
	close(h.release)
	<-aDone

	r, err := ns.ResolveLimits(f.ctx, "e1", "gpt-4")
	require.NoError(t, err)
	assert.Equal(t, int64(99), r.Limits[0].Capacity, "SetLimits through this handle returned before this resolve")
}

// Same for the entity cache: an entity read in flight during CreateEntity
// through the handle must not cache the absence for a TTL.
func TestCache_entityReadInFlightDuringCreateIsNotRecached(t *testing.T) {
	f := setup(t, Options{})
	g, ns := holdingStore(t, f, "GetItem")
	g.arm()
	aDone := make(chan struct{})
	go func() { defer close(aDone); _, _, _ = ns.CachedEntity(f.ctx, "e1") }()
	<-g.entered
	_, err := ns.CreateEntity(f.ctx, Entity{ID: "e1", ParentID: "p"})
	require.NoError(t, err)
	close(g.release)
	<-aDone
	_, found, err := ns.CachedEntity(f.ctx, "e1")
	require.NoError(t, err)
	assert.True(t, found, "CreateEntity through this handle returned before this read")
}
