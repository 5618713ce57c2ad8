package api

import (
	"context"
	"errors"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/zeroae/zae-limiter-go/shared/bucket"
	"github.com/zeroae/zae-limiter-go/shared/dynamo"
	"github.com/zeroae/zae-limiter-go/shared/limiter"
	"github.com/zeroae/zae-limiter-go/shared/limits"
	"github.com/zeroae/zae-limiter-go/shared/schema"
	"github.com/zeroae/zae-limiter-go/shared/wire"
)

// Attributes of the lease-state item (besides its keys, GSI4 and ttl).
const (
	attrClosed     = "closed"      // BOOL: released (committed or rolled back)
	attrRolledBack = "rolled_back" // BOOL: the release gave everything back
	attrEntity     = "entity_id"   // for people reading the table
	attrResource   = "resource"
	adjPrefix      = "a_" // a_{entry}_{limit}: net adjustment, millitokens
)

const milli = bucket.MilliPerToken

// stateTTL is how long the lease-state item outlives the token.
const stateTTL = 24 * time.Hour

// writeTimeout bounds the writes that follow a passed gate; they run even
// when the caller has gone, so the buckets and the state stay in step.
const writeTimeout = 10 * time.Second

func adjAttr(i int, name string) string { return adjPrefix + strconv.Itoa(i) + "_" + name }

var msgLeaseClosed = "the lease was already released; a lease is closed once and nothing was changed"

var errClosed = &apiError{status: http.StatusConflict, code: wire.CodeLeaseClosed, msg: msgLeaseClosed}

// adjust serves POST /v1/leases/adjust.
func (h *Handler) adjust(w http.ResponseWriter, r *http.Request) (any, error) {
	ctx := r.Context()
	var req wire.AdjustRequest
	if err := decodeBody(w, r, &req); err != nil {
		return nil, err
	}
	c, err := verify(req.Lease, h.o.Keys, h.o.Now())
	if err != nil {
		return nil, err
	}
	if req.Adjust == nil {
		return nil, limits.Invalid("adjust", "", `is required: an object of limit names and signed whole amounts, e.g. {"tpm": 700}`)
	}
	if err := validateAmounts("adjust", req.Adjust, true); err != nil {
		return nil, err
	}
	names := slices.Sorted(maps.Keys(req.Adjust))
	for _, name := range names {
		if !c.Degraded && !c.holds(name) {
			return nil, limits.Invalid("adjust "+name, name, "the lease on "+c.Entity+"/"+c.Resource+" holds no such limit")
		}
	}
	// Millitoken deltas per bucket of the lease.
	per := make([]map[string]int64, len(c.Entries))
	writes := false
	for i, ce := range c.Entries {
		per[i] = map[string]int64{}
		for _, name := range names {
			if d := req.Adjust[name]; d != 0 && ce.has(name) {
				per[i][name] = d * milli
				writes = true
			}
		}
	}
	if !writes {
		// Nothing to change: a read says whether the lease is closed.
		it, err := h.readState(ctx, c)
		if err != nil {
			return nil, err
		}
		if dynamo.GetBool(it, attrClosed) {
			return nil, errClosed
		}
		return wire.AdjustResponse{Lease: req.Lease, Consumed: c.consumed(c.adjustments(it))}, nil
	}
	lim, err := h.leaseLimiter(ctx, c)
	if err != nil {
		return nil, err
	}
	// The gate: record the deltas unless the lease is closed. Then the
	// buckets, on the exact shards the acquire wrote.
	it, err := h.update(ctx, c, per, nil)
	if err != nil {
		return nil, err
	}
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), writeTimeout)
	defer cancel()
	lease := lim.Resume(c.request(), c.entries(nil))
	before := lease.Entries()
	if err := lease.Adjust(wctx, req.Adjust); err != nil {
		// Take back what the gate recorded for the buckets not written.
		after := lease.Entries()
		undo := make([]map[string]int64, len(per))
		for i := range per {
			if len(per[i]) > 0 && maps.Equal(before[i].Consumed, after[i].Consumed) {
				undo[i] = negate(per[i])
			}
		}
		if uerr := h.undo(wctx, c, undo); uerr != nil {
			h.log.ErrorContext(ctx, "lease state keeps an adjustment its buckets did not get",
				"lease", c.ID, "namespace", c.NS, "cause", uerr.Error())
		}
		return nil, unavailable("adjust buckets", err)
	}
	return wire.AdjustResponse{Lease: req.Lease, Consumed: c.consumed(c.adjustments(it))}, nil
}

// release serves POST /v1/leases/release.
func (h *Handler) release(w http.ResponseWriter, r *http.Request) (any, error) {
	ctx := r.Context()
	var req wire.ReleaseRequest
	if err := decodeBody(w, r, &req); err != nil {
		return nil, err
	}
	c, err := verify(req.Lease, h.o.Keys, h.o.Now())
	if err != nil {
		return nil, err
	}
	var lim *limiter.Limiter
	if req.Rollback && len(c.Entries) > 0 {
		if lim, err = h.leaseLimiter(ctx, c); err != nil {
			return nil, err
		}
	}
	it, err := h.update(ctx, c, nil, &req.Rollback)
	if err != nil {
		return nil, err
	}
	if lim != nil {
		wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), writeTimeout)
		defer cancel()
		entries := c.entries(c.adjustments(it))
		lease := lim.Resume(c.request(), entries)
		if err := lease.Rollback(wctx); err != nil {
			// Reopen the lease with what was given back recorded, so a
			// retried release returns exactly the rest.
			after := lease.Entries()
			back := make([]map[string]int64, len(entries))
			for i := range entries {
				back[i] = map[string]int64{}
				for name, v := range entries[i].Consumed {
					if d := v - after[i].Consumed[name]; d != 0 {
						back[i][name] = -d
					}
				}
			}
			if rerr := h.reopen(wctx, c, back); rerr != nil {
				h.log.ErrorContext(ctx, "lease closed although its rollback failed: tokens not returned",
					"lease", c.ID, "namespace", c.NS, "cause", rerr.Error())
			}
			return nil, unavailable("roll back buckets", err)
		}
	}
	return wire.ReleaseResponse{Lease: req.Lease, RolledBack: req.Rollback}, nil
}

// leaseLimiter is the limiter of the lease's namespace.
func (h *Handler) leaseLimiter(ctx context.Context, c *claims) (*limiter.Limiter, error) {
	if l := h.cachedLimiter(c.NS); l != nil {
		return l, nil
	}
	ns, lim, err := h.namespace(ctx, c.NSName)
	var ae *apiError
	if (errors.As(err, &ae) && ae.status == http.StatusNotFound) || (err == nil && ns.ID != c.NS) {
		return nil, &apiError{status: http.StatusNotFound, code: wire.CodeNotFound,
			msg: "the lease's namespace " + quoteTrunc(c.NSName) + " is no longer registered"}
	}
	return lim, err
}

func (h *Handler) stateKey(c *claims) dynamo.Item {
	k := schema.LeaseKey(c.NS, c.ID)
	return dynamo.Item{schema.PK: dynamo.S(k.PK), schema.SK: dynamo.S(k.SK)}
}

// update is the close-once gate: on condition that the lease is not closed
// it ADDs adds (millitokens per bucket) and, when rollback is set, closes
// the lease. It creates the item on first use and returns it (ALL_NEW).
func (h *Handler) update(ctx context.Context, c *claims, adds []map[string]int64, rollback *bool) (dynamo.Item, error) {
	k := schema.LeaseKey(c.NS, c.ID)
	x := &dynamo.Expr{}
	setOnce := func(attr string, v types.AttributeValue) string {
		n := x.Name(attr)
		return n + " = if_not_exists(" + n + ", " + x.Value(v) + ")"
	}
	sets := []string{
		setOnce(schema.GSI4PK, dynamo.S(schema.NamespaceGSI4PK(c.NS))),
		setOnce(schema.GSI4SK, dynamo.S(schema.GSI4SKFor(k))),
		setOnce(schema.TTL, dynamo.N(c.Exp/1000+1+int64(stateTTL/time.Second))),
		setOnce(attrEntity, dynamo.S(c.Entity)),
		setOnce(attrResource, dynamo.S(c.Resource)),
	}
	if rollback != nil {
		sets = append(sets, x.Name(attrClosed)+" = "+x.Value(dynamo.Bool(true)),
			x.Name(attrRolledBack)+" = "+x.Value(dynamo.Bool(*rollback)))
	}
	expr := "SET " + strings.Join(sets, ", ")
	if a := addTerms(x, adds); a != "" {
		expr += " ADD " + a
	}
	cond := "attribute_not_exists(" + x.Name(attrClosed) + ") OR " + x.Name(attrClosed) + " = " + x.Value(dynamo.Bool(false))
	out, err := h.o.DB.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 aws.String(h.o.Table),
		Key:                       h.stateKey(c),
		UpdateExpression:          aws.String(expr),
		ConditionExpression:       aws.String(cond),
		ExpressionAttributeNames:  x.Names(),
		ExpressionAttributeValues: x.Values(),
		ReturnValues:              types.ReturnValueAllNew,
	})
	if dynamo.IsCondFailed(err) {
		return nil, errClosed
	}
	if err != nil {
		return nil, unavailable("update lease state", err)
	}
	return out.Attributes, nil
}

// undo takes back adjustments the gate recorded (best effort).
func (h *Handler) undo(ctx context.Context, c *claims, undo []map[string]int64) error {
	x := &dynamo.Expr{}
	a := addTerms(x, undo)
	if a == "" {
		return nil
	}
	_, err := h.o.DB.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 aws.String(h.o.Table),
		Key:                       h.stateKey(c),
		UpdateExpression:          aws.String("ADD " + a),
		ConditionExpression:       aws.String("attribute_exists(" + x.Name(schema.PK) + ")"),
		ExpressionAttributeNames:  x.Names(),
		ExpressionAttributeValues: x.Values(),
	})
	return err
}

// reopen undoes a release whose rollback failed part way: what was given
// back is recorded as adjustments and the lease is open again.
func (h *Handler) reopen(ctx context.Context, c *claims, back []map[string]int64) error {
	x := &dynamo.Expr{}
	expr := "SET " + x.Name(attrClosed) + " = " + x.Value(dynamo.Bool(false)) + " REMOVE " + x.Name(attrRolledBack)
	if a := addTerms(x, back); a != "" {
		expr += " ADD " + a
	}
	_, err := h.o.DB.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 aws.String(h.o.Table),
		Key:                       h.stateKey(c),
		UpdateExpression:          aws.String(expr),
		ConditionExpression:       aws.String(x.Name(attrClosed) + " = " + x.Value(dynamo.Bool(true))),
		ExpressionAttributeNames:  x.Names(),
		ExpressionAttributeValues: x.Values(),
	})
	return err
}

// readState reads the lease-state item (consistent; nil when absent).
func (h *Handler) readState(ctx context.Context, c *claims) (dynamo.Item, error) {
	out, err := h.o.DB.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      aws.String(h.o.Table),
		Key:            h.stateKey(c),
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return nil, unavailable("read lease state", err)
	}
	return out.Item, nil
}

// addTerms renders "name value" ADD terms for per-bucket millitoken deltas.
func addTerms(x *dynamo.Expr, per []map[string]int64) string {
	var terms []string
	for i, m := range per {
		for _, name := range slices.Sorted(maps.Keys(m)) {
			if d := m[name]; d != 0 {
				terms = append(terms, x.Name(adjAttr(i, name))+" "+x.Num(d))
			}
		}
	}
	return strings.Join(terms, ", ")
}

// adjustments reads the net adjustments per bucket (millitokens) from a
// lease-state item (nil item: none).
func (c *claims) adjustments(it dynamo.Item) []map[string]int64 {
	out := make([]map[string]int64, len(c.Entries))
	for i, ce := range c.Entries {
		out[i] = map[string]int64{}
		for _, l := range ce.Limits {
			if v, ok := dynamo.GetN(it, adjAttr(i, l.Name)); ok {
				out[i][l.Name] = v
			}
		}
	}
	return out
}

// consumed is the lease's net consumption in whole tokens, as
// limiter.Lease.Consumed reports it: the entity's amounts, the parent's for
// limits only the parent has.
func (c *claims) consumed(adj []map[string]int64) map[string]int64 {
	es := c.entries(adj)
	out := map[string]int64{}
	for i := len(es) - 1; i >= 0; i-- {
		for name, v := range es[i].Consumed {
			out[name] = v / milli
		}
	}
	return out
}

func negate(m map[string]int64) map[string]int64 {
	out := make(map[string]int64, len(m))
	for k, v := range m {
		out[k] = -v
	}
	return out
}
