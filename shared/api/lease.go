package api

import (
	"context"
	"errors"
	"fmt"
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
			return nil, h.closedFirst(ctx, c, limits.Invalid("adjust", name, "the lease on "+c.Entity+"/"+c.Resource+" holds no such limit"))
		}
	}
	// Millitoken deltas per bucket of the lease.
	per := make([]map[string]int64, len(c.Entries))
	for i, ce := range c.Entries {
		per[i] = map[string]int64{}
		for _, name := range names {
			if d := req.Adjust[name]; d != 0 && ce.has(name) {
				per[i][name] = d * milli
			}
		}
	}
	if empty(per) {
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
		return nil, h.closedFirst(ctx, c, err)
	}
	// The gate: record the deltas unless the lease is closed or would give
	// back more than it took. Then the buckets, on the exact shards the
	// acquire wrote.
	it, err := h.update(ctx, c, per, nil)
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), writeTimeout)
	defer cancel()
	if err != nil {
		var ae *apiError
		if errors.As(err, &ae) && ae.status == http.StatusServiceUnavailable && outcomeOf(ae.cause) == unknown {
			// The gate may have recorded the deltas: its charges go to
			// the buckets all the same, so a later rollback cannot return
			// what they never got (its refunds are not sent: if recorded,
			// tokens are lost, not minted).
			charges := make([]map[string]int64, len(per))
			for i := range per {
				_, charges[i] = counted(per[i], unknown)
			}
			if werr := firstError(h.writeBuckets(wctx, lim, c, nil, charges)); werr != nil {
				h.log.ErrorContext(ctx, "lease state may keep an adjustment its buckets did not get",
					"lease", c.ID, "namespace", c.NS, "cause", werr.Error())
			}
		}
		return nil, err
	}
	base := c.adjustments(it)
	for i := range per {
		for name, d := range per[i] {
			base[i][name] -= d
		}
	}
	errs := h.writeBuckets(wctx, lim, c, base, per)
	err = firstError(errs)
	if err == nil {
		return wire.AdjustResponse{Lease: req.Lease, Consumed: c.consumed(c.adjustments(it))}, nil
	}
	done := make([]map[string]int64, len(per))
	not := make([]map[string]int64, len(per))
	for i := range per {
		done[i], not[i] = counted(per[i], outcomeOf(errs[i]))
	}
	if empty(not) {
		// Every write landed or is a refund of unknown outcome, counted
		// as done (never sent again): the adjustment is booked as
		// recorded. A 503 would have the client send the refund again.
		h.log.WarnContext(ctx, "adjust refund outcome unknown; counted as done",
			"lease", c.ID, "namespace", c.NS, "cause", err.Error())
		return wire.AdjustResponse{Lease: req.Lease, Consumed: c.consumed(c.adjustments(it))}, nil
	}
	// Some share is known (or booked) not to have landed: take the whole
	// adjustment back, so that a 503 means nothing changed and a retry is
	// safe. First the buckets give back what they are counted as having
	// got (those reversals follow the same outcome rules), then the state
	// drops what the buckets are not counted as keeping.
	after := add(base, done)
	rev := make([]map[string]int64, len(per))
	for i := range per {
		rev[i] = negate(done[i])
	}
	kept := make([]map[string]int64, len(per))
	rerrs := h.writeBuckets(wctx, lim, c, after, rev)
	for i := range per {
		_, failed := counted(rev[i], outcomeOf(rerrs[i]))
		kept[i] = negate(failed)
	}
	undo := make([]map[string]int64, len(per))
	for i := range per {
		undo[i] = negate(sub(per[i], kept[i]))
	}
	left := add(kept, h.takeBack(ctx, wctx, lim, c, add(base, kept), undo))
	if hasRefund(left) {
		// A refund stays booked (its reversal failed): a retry would send
		// it again and mint tokens. Answer with the adjustment as booked;
		// the shares not booked are lost to the caller's intent.
		h.log.ErrorContext(ctx, "adjust applied in part: a refund could not be taken back",
			"lease", c.ID, "namespace", c.NS, "cause", err.Error())
		return wire.AdjustResponse{Lease: req.Lease, Consumed: c.consumed(add(base, left))}, nil
	}
	if !empty(left) {
		h.log.ErrorContext(ctx, "adjust failed; charges that could not be taken back stay booked",
			"lease", c.ID, "namespace", c.NS, "cause", err.Error())
	}
	return nil, unavailable("adjust buckets", err)
}

// takeBack removes from the lease state deltas its buckets did not get
// (undo holds them negated), on condition that the lease is still open and
// its net consumption stays at least zero. When that fails — the lease was
// closed meanwhile (a rollback may have returned the deltas already), or a
// concurrent adjust gave tokens back on the strength of them — the deltas
// are written to the buckets again instead, so the buckets are charged
// exactly what the state says. Nothing is sent twice after an unknown
// outcome: where the books cannot be balanced for sure, tokens are lost,
// never minted.
//
// It returns what it wrote to the buckets again (counted as booked).
func (h *Handler) takeBack(ctx, wctx context.Context, lim *limiter.Limiter, c *claims, base, undo []map[string]int64) []map[string]int64 {
	if empty(undo) {
		return nil
	}
	o := outcomeOf(h.undo(wctx, c, undo))
	if o == written {
		return nil
	}
	// Write again what the state keeps: after a known failure all of it;
	// after an unknown outcome the charges only (if the undo took effect,
	// they are lost; a refund written again could mint).
	redo := make([]map[string]int64, len(undo))
	for i := range undo {
		redo[i] = negate(undo[i])
		if o == unknown {
			_, redo[i] = counted(redo[i], unknown)
		}
	}
	if empty(redo) {
		return nil
	}
	h.log.WarnContext(ctx, "lease state could not take back an adjustment; writing it to the buckets again",
		"lease", c.ID, "namespace", c.NS)
	if err := firstError(h.writeBuckets(wctx, lim, c, base, redo)); err != nil {
		h.log.ErrorContext(ctx, "lease state keeps an adjustment its buckets did not get",
			"lease", c.ID, "namespace", c.NS, "cause", err.Error())
	}
	return redo
}

// closedFirst is err, or 409 lease_closed when the lease is closed: for
// the answers an adjust or release could give before its gate (a limit
// the lease does not hold, a namespace no longer registered), so a closed
// lease is told so first (DECISIONS §4.2). A consistent read, on these
// error paths only; if it fails, its 503.
func (h *Handler) closedFirst(ctx context.Context, c *claims, err error) error {
	var ae *apiError
	if !errors.Is(err, limits.ErrInvalid) && !(errors.As(err, &ae) && ae.status == http.StatusNotFound) {
		return err
	}
	it, rerr := h.readState(ctx, c)
	if rerr != nil {
		return rerr
	}
	if dynamo.GetBool(it, attrClosed) {
		return errClosed
	}
	return err
}

// writeBuckets writes per-bucket millitoken deltas (whole tokens) through
// the limiter, one resumed lease per bucket, all at once, and returns each
// bucket's error. base is the lease's net adjustment before the deltas (nil:
// none).
func (h *Handler) writeBuckets(ctx context.Context, lim *limiter.Limiter, c *claims, base, per []map[string]int64) []error {
	entries := c.entries(base)
	return parallel(len(per), func(i int) error {
		d := map[string]int64{}
		for name, v := range per[i] {
			if v != 0 {
				d[name] = v / milli
			}
		}
		if len(d) == 0 {
			return nil
		}
		return lim.Resume(c.request(), entries[i:i+1]).Adjust(ctx, d)
	})
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
			return nil, h.closedFirst(ctx, c, err)
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
		errs := parallel(len(entries), func(i int) error {
			return lim.Resume(c.request(), entries[i:i+1]).Rollback(wctx)
		})
		if err := firstError(errs); err != nil {
			// What each bucket is counted as having got back: a refund
			// whose outcome is unknown counts as given (it is never sent
			// again).
			given := make([]map[string]int64, len(entries))
			rest := make([]map[string]int64, len(entries))
			for i, e := range entries {
				back := negate(e.Consumed)
				if errs[i] == nil {
					given[i], rest[i] = back, nil
					continue
				}
				given[i], rest[i] = counted(back, outcomeOf(errs[i]))
			}
			if !empty(rest) {
				// Reopen the lease with what was given back recorded, so
				// a retried release returns exactly the rest.
				if rerr := h.reopen(wctx, c, given); rerr != nil {
					h.log.ErrorContext(ctx, "lease closed although its rollback failed: tokens not returned",
						"lease", c.ID, "namespace", c.NS, "cause", rerr.Error())
				}
			} else {
				// Everything is counted as given back: the lease stays
				// closed (a retried release is told lease_closed).
				h.log.WarnContext(ctx, "rollback outcome unknown; counted as done",
					"lease", c.ID, "namespace", c.NS, "cause", err.Error())
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
// and that no refund in adds takes the lease's net consumption of a bucket
// and limit (initial + adjustments) below zero, it ADDs adds (millitokens
// per bucket) and, when rollback is set, closes the lease. It creates the
// item on first use and returns it (ALL_NEW). A failed condition writes
// nothing: 409 lease_closed, or 400 invalid_request for a refund beyond what
// the lease holds.
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
	cond := strings.Join(append([]string{openCond(x)}, c.floors(x, adds)...), " AND ")
	out, err := h.o.DB.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                           aws.String(h.o.Table),
		Key:                                 h.stateKey(c),
		UpdateExpression:                    aws.String(expr),
		ConditionExpression:                 aws.String(cond),
		ExpressionAttributeNames:            x.Names(),
		ExpressionAttributeValues:           x.Values(),
		ReturnValues:                        types.ReturnValueAllNew,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	}, sendOnce)
	if old, ok := dynamo.CondFailedItem(err); ok {
		if dynamo.GetBool(old, attrClosed) {
			return nil, errClosed
		}
		if e := c.overdrawn(old, adds); e != nil {
			return nil, e
		}
		return nil, unavailable("update lease state", err) // cannot happen
	}
	if err != nil {
		return nil, unavailable("update lease state", err)
	}
	return out.Attributes, nil
}

// openCond is the condition that the lease is not closed.
func openCond(x *dynamo.Expr) string {
	return "(attribute_not_exists(" + x.Name(attrClosed) + ") OR " + x.Name(attrClosed) + " = " + x.Value(dynamo.Bool(false)) + ")"
}

// floors are the conditions that each refund (negative delta) in adds
// leaves the net consumption at least zero: initial + a + d >= 0, that is
// a >= -initial - d (an absent a is 0). A charge cannot take it below zero.
func (c *claims) floors(x *dynamo.Expr, adds []map[string]int64) []string {
	var conds []string
	for i, m := range adds {
		for _, name := range slices.Sorted(maps.Keys(m)) {
			d := m[name]
			if d >= 0 {
				continue
			}
			a := x.Name(adjAttr(i, name))
			floor := -c.Entries[i].Initial[name] - d
			cond := a + " >= " + x.Num(floor)
			if floor <= 0 {
				cond = "(" + cond + " OR attribute_not_exists(" + a + "))"
			}
			conds = append(conds, cond)
		}
	}
	return conds
}

// overdrawn is the 400 for the first refund in adds that would take the
// net consumption recorded in it (nil when none would).
func (c *claims) overdrawn(it dynamo.Item, adds []map[string]int64) error {
	adj := c.adjustments(it)
	for i, m := range adds {
		for _, name := range slices.Sorted(maps.Keys(m)) {
			held := c.Entries[i].Initial[name] + adj[i][name]
			if d := m[name]; d < 0 && held+d < 0 {
				return limits.Invalid("adjust."+name, strconv.FormatInt(d/milli, 10),
					fmt.Sprintf("the lease holds %s of %s on %s; it cannot give back more than it holds",
						tokens(held), name, c.Entries[i].Entity))
			}
		}
	}
	return nil
}

// tokens renders millitokens as whole tokens (with decimals if need be).
func tokens(m int64) string {
	if m%milli == 0 {
		return strconv.FormatInt(m/milli, 10)
	}
	return strconv.FormatFloat(float64(m)/float64(milli), 'f', -1, 64)
}

// undo takes back adjustments the gate recorded (per bucket, millitokens),
// on condition that the lease is open and that no bucket's net consumption
// goes below zero. It is sent once (see sendOnce).
func (h *Handler) undo(ctx context.Context, c *claims, undo []map[string]int64) error {
	x := &dynamo.Expr{}
	a := addTerms(x, undo)
	if a == "" {
		return nil
	}
	cond := strings.Join(append([]string{"attribute_exists(" + x.Name(schema.PK) + ")", openCond(x)}, c.floors(x, undo)...), " AND ")
	_, err := h.o.DB.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 aws.String(h.o.Table),
		Key:                       h.stateKey(c),
		UpdateExpression:          aws.String("ADD " + a),
		ConditionExpression:       aws.String(cond),
		ExpressionAttributeNames:  x.Names(),
		ExpressionAttributeValues: x.Values(),
	}, sendOnce)
	return err
}

// reopen undoes a release whose rollback failed part way: what was given
// back (or is counted as given back) is recorded as adjustments and the
// lease is open again. It is sent once (see sendOnce): if its outcome is
// unknown the lease may stay closed, and the rest is lost, not minted.
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
	}, sendOnce)
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

// add sums per-bucket millitoken deltas (a nil slice or map is none).
func add(a, b []map[string]int64) []map[string]int64 {
	out := make([]map[string]int64, max(len(a), len(b)))
	for i := range out {
		out[i] = map[string]int64{}
		for _, m := range [][]map[string]int64{a, b} {
			if i < len(m) {
				for k, v := range m[i] {
					out[i][k] += v
				}
			}
		}
	}
	return out
}

// sub is a - b for one bucket's deltas, without zeros.
func sub(a, b map[string]int64) map[string]int64 {
	out := map[string]int64{}
	for k, v := range a {
		if d := v - b[k]; d != 0 {
			out[k] = d
		}
	}
	for k, v := range b {
		if _, ok := a[k]; !ok && v != 0 {
			out[k] = -v
		}
	}
	return out
}

// hasRefund reports whether any delta is negative.
func hasRefund(per []map[string]int64) bool {
	for _, m := range per {
		for _, v := range m {
			if v < 0 {
				return true
			}
		}
	}
	return false
}

func negate(m map[string]int64) map[string]int64 {
	out := make(map[string]int64, len(m))
	for k, v := range m {
		out[k] = -v
	}
	return out
}
