package api

import (
	"context"
	"errors"
	"maps"
	"net/http"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/zeroae/zae-limiter-go/shared/bucket"
	"github.com/zeroae/zae-limiter-go/shared/dynamo"
	"github.com/zeroae/zae-limiter-go/shared/leasestate"
	"github.com/zeroae/zae-limiter-go/shared/limiter"
	"github.com/zeroae/zae-limiter-go/shared/limits"
	"github.com/zeroae/zae-limiter-go/shared/wire"
)

const milli = bucket.MilliPerToken

// writeTimeout bounds the writes that follow a passed gate; they run even
// when the caller has gone, so the buckets and the state stay in step.
const writeTimeout = 10 * time.Second

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
	if leasestate.Empty(per) {
		// Nothing to change: a read says whether the lease is closed.
		st, err := h.readState(ctx, c)
		if st.Closed {
			return nil, errClosed
		}
		if err != nil {
			return nil, readable(err)
		}
		return wire.AdjustResponse{Lease: req.Lease, Consumed: c.consumed(st.Adj)}, nil
	}
	lim, err := h.leaseLimiter(ctx, c)
	if err != nil {
		return nil, h.closedFirst(ctx, c, err)
	}
	// The gate: record the deltas unless the lease is closed, would give
	// back more than it took or hold more than a lease may. Then the
	// buckets, on the exact shards the acquire wrote.
	st, err := h.gate(ctx, c, leasestate.Request{Adds: per})
	if errors.Is(err, leasestate.ErrUnreadable) {
		// Recorded, but the state cannot be read back exactly: the
		// buckets are not charged, and the lease can never be rolled
		// back (see release), so nothing is minted.
		h.log.ErrorContext(ctx, "lease state unreadable after an adjust; buckets not charged",
			"lease", c.ID, "namespace", c.NS, "cause", err.Error())
		return nil, errUnreadable
	}
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
	base := add(st.Adj, nil) // a copy: st.Adj is the answer's
	for i := range per {
		for name, d := range per[i] {
			base[i][name] -= d
		}
	}
	errs := h.writeBuckets(wctx, lim, c, base, per)
	err = firstError(errs)
	if err == nil {
		return wire.AdjustResponse{Lease: req.Lease, Consumed: c.consumed(st.Adj)}, nil
	}
	done := make([]map[string]int64, len(per))
	not := make([]map[string]int64, len(per))
	for i := range per {
		done[i], not[i] = counted(per[i], outcomeOf(errs[i]))
	}
	if leasestate.Empty(not) {
		// Every write landed or is a refund of unknown outcome, counted
		// as done (never sent again): the adjustment is booked as
		// recorded. A 503 would have the client send the refund again.
		h.log.WarnContext(ctx, "adjust refund outcome unknown; counted as done",
			"lease", c.ID, "namespace", c.NS, "cause", err.Error())
		return wire.AdjustResponse{Lease: req.Lease, Consumed: c.consumed(st.Adj)}, nil
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
	if !leasestate.Empty(left) {
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
	if leasestate.Empty(undo) {
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
	if leasestate.Empty(redo) {
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
	st, rerr := h.readState(ctx, c)
	if st.Closed {
		return errClosed
	}
	if rerr != nil && !errors.Is(rerr, leasestate.ErrUnreadable) {
		return rerr
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
	st, err := h.gate(ctx, c, leasestate.Request{Release: true, RolledBack: req.Rollback})
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), writeTimeout)
	defer cancel()
	switch {
	case errors.Is(err, leasestate.ErrUnreadable) && lim != nil:
		// What the lease holds cannot be known exactly, so it cannot be
		// given back exactly: reopen it, give back nothing, say so.
		if rerr := h.reopen(wctx, c, nil); rerr != nil {
			h.log.ErrorContext(ctx, "lease closed although it was not rolled back: its state is unreadable",
				"lease", c.ID, "namespace", c.NS, "cause", rerr.Error())
		}
		return nil, errUnreadable
	case errors.Is(err, leasestate.ErrUnreadable):
		// A commit only closes the lease: done.
	case err != nil:
		return nil, err
	}
	if lim != nil {
		entries := c.entries(st.Adj)
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
			if !leasestate.Empty(rest) {
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

// lease is what the lease-state item depends on of the token.
func (c *claims) lease() leasestate.Lease {
	l := leasestate.Lease{NS: c.NS, ID: c.ID, Entity: c.Entity, Resource: c.Resource, Expires: c.Exp,
		Buckets: make([]leasestate.Bucket, len(c.Entries))}
	for i, ce := range c.Entries {
		l.Buckets[i] = leasestate.Bucket{Entity: ce.Entity, Initial: ce.Initial}
	}
	return l
}

// gate is the close-once gate (leasestate.Gate): on condition that the
// lease is open and every delta keeps the lease's net amount of a bucket
// and limit within [0, leasestate.MaxNet], it ADDs r.Adds (millitokens per
// bucket) and, for a release, closes the lease, and returns the item as
// written. A refused gate writes nothing: 409 lease_closed, or 400
// invalid_request naming the delta that would give back more than the
// lease holds or hold more than a lease may. A written item that cannot be
// read exactly is returned with an error matching leasestate.ErrUnreadable.
func (h *Handler) gate(ctx context.Context, c *claims, r leasestate.Request) (leasestate.State, error) {
	l := c.lease()
	out, err := h.o.DB.UpdateItem(ctx, leasestate.Gate(l, r).Input(h.o.Table, l.Key()), sendOnce)
	if old, ok := dynamo.CondFailedItem(err); ok {
		s, derr := leasestate.Decode(old, len(c.Entries))
		switch cerr := l.Check(s, r); {
		case errors.Is(cerr, limits.ErrLeaseClosed):
			return leasestate.State{}, errClosed
		case derr != nil:
			return leasestate.State{}, errUnreadable
		case cerr != nil:
			return leasestate.State{}, cerr
		}
		return leasestate.State{}, unavailable("update lease state", err) // cannot happen
	}
	if err != nil {
		return leasestate.State{}, unavailable("update lease state", err)
	}
	return leasestate.Decode(out.Attributes, len(c.Entries))
}

// errUnreadable answers a lease whose state holds an adjustment that is no
// exact int64 (only an item written before adjustments were bounded): it
// cannot be given back exactly, so it is not rolled back at all.
var errUnreadable = &apiError{status: http.StatusInternalServerError, code: wire.CodeInternal,
	msg: "the lease's recorded adjustments cannot be read exactly, so it can be neither adjusted nor rolled back: nothing was given back and the lease stays open (release it with rollback false to close it)"}

// readable is err, or errUnreadable for a state that cannot be read
// exactly.
func readable(err error) error {
	if errors.Is(err, leasestate.ErrUnreadable) {
		return errUnreadable
	}
	return err
}

// undo takes back adjustments the gate recorded (per bucket, millitokens,
// negated in undo) on leasestate.Undo's conditions. It is sent once (see
// sendOnce).
func (h *Handler) undo(ctx context.Context, c *claims, undo []map[string]int64) error {
	if leasestate.Empty(undo) {
		return nil
	}
	l := c.lease()
	_, err := h.o.DB.UpdateItem(ctx, leasestate.Undo(l, undo).Input(h.o.Table, l.Key()), sendOnce)
	return err
}

// reopen undoes a release whose rollback failed part way: what was given
// back (or is counted as given back) is recorded as adjustments and the
// lease is open again. It is sent once (see sendOnce): if its outcome is
// unknown the lease may stay closed, and the rest is lost, not minted.
func (h *Handler) reopen(ctx context.Context, c *claims, back []map[string]int64) error {
	_, err := h.o.DB.UpdateItem(ctx, leasestate.Reopen(back).Input(h.o.Table, c.lease().Key()), sendOnce)
	return err
}

// readState reads the lease-state item (consistent; the zero state when
// absent). An adjustment that cannot be read exactly is an error matching
// leasestate.ErrUnreadable, with the state's flags read.
func (h *Handler) readState(ctx context.Context, c *claims) (leasestate.State, error) {
	out, err := h.o.DB.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      aws.String(h.o.Table),
		Key:            c.lease().Key(),
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return leasestate.State{}, unavailable("read lease state", err)
	}
	return leasestate.Decode(out.Item, len(c.Entries))
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
