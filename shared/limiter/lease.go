package limiter

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"golang.org/x/sync/errgroup"

	"github.com/zeroae/zae-limiter-go/shared/dynamo"
	"github.com/zeroae/zae-limiter-go/shared/limits"
	"github.com/zeroae/zae-limiter-go/shared/schema"
	"github.com/zeroae/zae-limiter-go/shared/shard"
)

// Entry is one bucket shard a lease holds and what it has taken from it.
type Entry struct {
	EntityID string `json:"entity_id"`
	Resource string `json:"resource"`
	Shard    int    `json:"shard"`
	// Limits are every limit of the bucket (the lease may adjust any).
	Limits []limits.Limit `json:"limits"`
	// Consumed is the net amount taken per limit, in millitokens: the
	// initial consumption plus every adjustment so far.
	Consumed map[string]int64 `json:"consumed"`
	// Gen is the generation of the shard item taken from: refunds go only
	// to that generation, never to a bucket recreated since (it expired).
	Gen int64 `json:"gen,omitempty"`
	// Credit is the part of the checked takes paid from the bucket's
	// credit balances (ADR-030), millitokens per limit: a rollback returns
	// up to that much to them, the rest to the bucket.
	Credit map[string]int64 `json:"credit,omitempty"`
}

func (e *Entry) target() target {
	return target{entity: e.EntityID, resource: e.Resource, limits: e.Limits}
}

func (e *Entry) has(name string) bool { return e.target().has(name) }

// Lease holds what an acquire took until it is committed or rolled back.
// Every change through it is written when called. It is safe for
// concurrent use.
type Lease struct {
	l        *Limiter
	req      Request
	mu       sync.Mutex
	entries  []*Entry
	statuses []limits.Status
	closed   bool
	degraded bool
}

// Entries returns a copy of the buckets the lease holds.
func (ls *Lease) Entries() []Entry {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	out := make([]Entry, len(ls.entries))
	for i, e := range ls.entries {
		out[i] = *e
		out[i].Consumed = copyAmounts(e.Consumed)
		if e.Credit != nil {
			out[i].Credit = copyAmounts(e.Credit)
		}
	}
	return out
}

// Resume rebuilds a lease from entries kept elsewhere (the HTTP API keeps
// them in a signed token and its adjustments server-side).
func (l *Limiter) Resume(req Request, entries []Entry) *Lease {
	ls := &Lease{l: l, req: req}
	for i := range entries {
		e := entries[i]
		e.Consumed = copyAmounts(e.Consumed)
		ls.entries = append(ls.entries, &e)
	}
	return ls
}

// Degraded reports a no-op lease handed out because the backend was
// unavailable and the policy is allow.
func (ls *Lease) Degraded() bool { return ls.degraded }

// Statuses are every limit's state right after the acquire.
func (ls *Lease) Statuses() []limits.Status { return ls.statuses }

// Consumed is the net whole tokens taken per limit name (the entity's
// amounts; a cascading parent was charged the same).
func (ls *Lease) Consumed() map[string]int64 {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	out := map[string]int64{}
	for i := len(ls.entries) - 1; i >= 0; i-- {
		for name, v := range ls.entries[i].Consumed {
			out[name] = v / milli
		}
	}
	return out
}

// Consume takes more through the lease, checked like an acquire on the
// same shards, against the limits in force now (not those of the acquire:
// a lease never puts back a limit changed since); a denial changes nothing.
func (ls *Lease) Consume(ctx context.Context, amounts map[string]int64) error {
	if err := validateAmounts("consume", amounts, false); err != nil {
		return err
	}
	ctx, cancel := ls.l.budget(ctx)
	defer cancel()
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if err := ls.usable(amounts); err != nil || ls.degraded {
		return err
	}
	if err := ls.l.blocked(ctx, ls.req.EntityID); err != nil {
		return err
	}
	ts := make([]target, len(ls.entries))
	for i, e := range ls.entries {
		t, err := ls.l.current(ctx, e.EntityID, e.Resource, ls.req.Limits)
		if err != nil {
			return err
		}
		ts[i] = t
	}
	for name := range amounts {
		known := false
		for _, t := range ts {
			known = known || t.has(name)
		}
		if !known {
			return limits.Invalid("consume", name, fmt.Sprintf("no limit %q is configured for %s/%s now", name, ls.req.EntityID, ls.req.Resource))
		}
	}
	type result struct {
		e   *Entry
		amt map[string]int64
		st  []limits.Status
		tk  taken
		ok  bool
	}
	results := make([]result, len(ls.entries))
	// Not errgroup.WithContext: a failure must not cancel a sibling's write
	// in flight, whose outcome would then be unknown (applied, yet never
	// given back or recorded).
	var g errgroup.Group
	for i, e := range ls.entries {
		amt := millis(amounts, ts[i].has)
		if len(amt) == 0 {
			continue
		}
		results[i] = result{e: e, amt: amt}
		g.Go(func() error {
			st, tk, ok, err := ls.l.takeShard(ctx, &ts[i], e, amt)
			results[i].st, results[i].tk, results[i].ok = st, tk, ok
			for name := range tk.shadowed {
				delete(results[i].amt, name) // not taken
			}
			return err
		})
	}
	err := g.Wait()
	var all []limits.Status
	rejected := false
	reason := ""
	for _, r := range results {
		all = append(all, r.st...)
		rejected = rejected || (r.e != nil && !r.ok)
	}
	var ce *contentionError
	if errors.As(err, &ce) {
		err, reason = nil, limits.ReasonContention
	}
	if err != nil || rejected {
		back, cancel := ls.l.detached(ctx)
		defer cancel()
		for _, r := range results {
			if r.e != nil && r.ok {
				_ = ls.l.apply(back, r.e, negate(r.amt), r.tk.credits)
			}
		}
		if err != nil {
			return err
		}
		return limits.NewExceededBecause(reason, all)
	}
	for _, r := range results {
		if r.e != nil {
			addAmounts(r.e.Consumed, r.amt)
			if len(r.tk.credits) > 0 {
				if r.e.Credit == nil {
					r.e.Credit = map[string]int64{}
				}
				addAmounts(r.e.Credit, r.tk.credits)
			}
		}
	}
	return nil
}

// Adjust changes what the lease took by signed whole-token deltas, without
// any check: a positive delta may put the bucket into debt (up to
// shard.MaxDebt), a negative one returns tokens. It is written at once, to
// every bucket of the lease or to none: when one bucket's write fails, the
// others are taken back, so the call can simply be repeated.
func (ls *Lease) Adjust(ctx context.Context, deltas map[string]int64) error {
	if err := validateAmounts("adjust", deltas, true); err != nil {
		return err
	}
	ctx, cancel := ls.l.budget(ctx)
	defer cancel()
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if err := ls.usable(deltas); err != nil || ls.degraded {
		return err
	}
	// A lease gives back at most what it holds, and holds at most
	// limits.MaxTokens of a limit (so no sum it writes can saturate).
	for _, e := range ls.entries {
		for name, d := range millis(deltas, e.has) {
			switch held := e.Consumed[name] + d; {
			case held < 0:
				return limits.Invalid("adjust."+name, fmt.Sprint(d/milli),
					fmt.Sprintf("the lease holds %d of %s on %s; it cannot give back more", e.Consumed[name]/milli, name, e.EntityID))
			case held > limits.MaxTokens*milli:
				return limits.Invalid("adjust."+name, fmt.Sprint(d/milli),
					fmt.Sprintf("the lease would hold more than %d of %s on %s", limits.MaxTokens, name, e.EntityID))
			}
		}
	}
	type result struct {
		e   *Entry
		d   map[string]int64
		err error
	}
	var results []*result
	// Not errgroup.WithContext: a failure must not cancel a sibling's write
	// in flight, whose outcome would then be unknown (applied, yet never
	// given back or recorded).
	var g errgroup.Group
	for _, e := range ls.entries {
		d := millis(deltas, e.has)
		if len(d) == 0 {
			continue
		}
		r := &result{e: e, d: d}
		results = append(results, r)
		g.Go(func() error {
			r.err = ls.l.apply(ctx, e, d, nil)
			return nil
		})
	}
	_ = g.Wait()
	failed := false
	for _, r := range results {
		failed = failed || (r.err != nil && !errors.Is(r.err, ErrOutcomeUnknown))
	}
	var errs []error
	back, cancelBack := ls.l.detached(ctx)
	defer cancelBack()
	for _, r := range results {
		switch {
		case r.err == nil && failed:
			// All or nothing: take back what landed.
			if err := ls.l.apply(back, r.e, negate(r.d), nil); err != nil {
				addAmounts(r.e.Consumed, r.d)
				errs = append(errs, fmt.Errorf("adjust of %s/%s landed and could not be taken back: %w", r.e.EntityID, r.e.Resource, err))
			}
		case r.err == nil:
			addAmounts(r.e.Consumed, r.d)
		case errors.Is(r.err, ErrOutcomeUnknown):
			// Counted as done: it must not be sent again.
			addAmounts(r.e.Consumed, r.d)
			errs = append(errs, r.err)
		default:
			errs = append(errs, r.err)
		}
	}
	return errors.Join(errs...)
}

// Release returns whole tokens the work did not use (Adjust with the
// amounts negated). Amounts must be >= 0.
func (ls *Lease) Release(ctx context.Context, amounts map[string]int64) error {
	if err := validateAmounts("release", amounts, false); err != nil {
		return err
	}
	return ls.Adjust(ctx, negate(amounts))
}

// Closed reports whether Commit or Rollback has closed the lease.
func (ls *Lease) Closed() bool {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	return ls.closed
}

// Commit keeps what the lease took and closes it. It writes nothing.
func (ls *Lease) Commit(context.Context) error {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if ls.closed {
		return fmt.Errorf("commit: %w", limits.ErrLeaseClosed)
	}
	ls.closed = true
	return nil
}

// Rollback returns everything the lease took (the initial consumption and
// every adjustment) and closes it. If a write fails, the buckets already
// restored stay restored and Rollback may be called again.
func (ls *Lease) Rollback(ctx context.Context) error {
	ctx, cancel := ls.l.budget(ctx)
	defer cancel()
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if ls.closed {
		return fmt.Errorf("rollback: %w", limits.ErrLeaseClosed)
	}
	if ls.degraded {
		ls.closed = true
		return nil
	}
	var errs []error
	for _, e := range ls.entries {
		back := map[string]int64{}
		credit := map[string]int64{}
		for name, v := range e.Consumed {
			if v != 0 {
				back[name] = -v
			}
			if c := min(e.Credit[name], v); c > 0 {
				// What credits paid goes back to them (the rest, and
				// every adjustment, to the bucket).
				credit[name] = c
			}
		}
		if len(back) == 0 {
			continue
		}
		if err := ls.l.apply(ctx, e, back, credit); err != nil {
			errs = append(errs, err)
			if !errors.Is(err, ErrOutcomeUnknown) {
				continue // not applied: a later Rollback sends it again
			}
		}
		addAmounts(e.Consumed, back)
		for name, c := range credit {
			e.Credit[name] -= c
		}
	}
	if len(errs) > 0 {
		unknown := true
		for _, err := range errs {
			unknown = unknown && errors.Is(err, ErrOutcomeUnknown)
		}
		// Only writes known not to have landed are retried by a later call.
		ls.closed = unknown
		return errors.Join(errs...)
	}
	ls.closed = true
	return nil
}

func (ls *Lease) usable(amounts map[string]int64) error {
	if ls.closed {
		return limits.ErrLeaseClosed
	}
	if ls.degraded {
		return nil
	}
	for name := range amounts {
		known := false
		for _, e := range ls.entries {
			known = known || e.has(name)
		}
		if !known {
			return limits.Invalid("limit", name, fmt.Sprintf("the lease on %s/%s holds no such limit", ls.req.EntityID, ls.req.Resource))
		}
	}
	return nil
}

// ErrOutcomeUnknown: a write giving tokens back failed in a way that leaves
// its outcome unknown (a timeout, a lost answer). The lease counts it as
// done and it must not be sent again: losing tokens is safe, minting them
// is not.
var ErrOutcomeUnknown = errors.New("outcome unknown; counted as done, do not retry")

// apply writes signed millitoken deltas to the lease's shard, unchecked (see
// shard.PlanAdjust): a charge may put the bucket into debt, a refund returns
// tokens. A shard split since the acquire is followed (the level scales
// virtual time); a bucket that no longer exists (expired, hence full) has
// nothing to give back; a charge on it is booked on the shard recreated (at
// the bucket's level, see recreate). A write with a refund is sent once (no
// SDK retry): if its outcome is unknown, the error wraps ErrOutcomeUnknown.
// credit is the part of the refunds that goes back to credit balances.
func (l *Limiter) apply(ctx context.Context, e *Entry, deltas, credit map[string]int64) error {
	t := e.target()
	id := l.bucketID(&t).Of(e.Shard)
	cfg := shard.ConfigOf(e.Limits, 1, 0)
	adj := shard.Adjust{Deltas: deltas, Credit: credit, Gen: e.Gen, Fallback: cfg.All(), TTLMultiplier: l.o.TTLMultiplier}
	refund := adj.Refund()
	for range l.o.MaxAttempts {
		st := l.cached(id.PK())
		adj.Level = 1
		if st != nil {
			adj.Level = st.Level
		}
		adj.Now = l.nowMs()
		plan := shard.PlanAdjust(id, st, adj)
		if plan.Update == nil {
			return nil
		}
		out, err := l.db.UpdateItem(ctx, plan.Update.Input(l.o.Table, id.Key()), func(o *dynamodb.Options) {
			if refund {
				o.RetryMaxAttempts = 1
			}
		})
		if err == nil {
			got, derr := shard.Decode(out.Attributes)
			if derr != nil {
				l.forget(id.PK())
				return derr
			}
			l.merge(id.PK(), got)
			return nil
		}
		old, ok := dynamo.CondFailedItem(err)
		if !ok {
			l.forget(id.PK())
			if refund && !dynamo.NotApplied(err) {
				return fmt.Errorf("adjust bucket %s shard %d: %w: %w", id.Bucket(), id.Shard, ErrOutcomeUnknown, err)
			}
			return fmt.Errorf("adjust bucket %s shard %d: %w", id.Bucket(), id.Shard, err)
		}
		got, derr := shard.Decode(old)
		if derr != nil {
			l.forget(id.PK())
			return derr
		}
		switch {
		case !got.Exists && refund:
			// Expired, hence full: nothing to give back.
			l.forget(id.PK())
			return nil
		case !got.Exists:
			// Expired: a charge must still be booked, on the shard recreated.
			l.forget(id.PK())
			if err := l.recover(ctx, id, cfg, adj.Now); err != nil {
				return err
			}
			continue
		case got.Merged:
			// Merged back into its sibling (a quiet bucket shrank): what
			// the shard held is there now. A charge follows it; a refund
			// finds another generation there and is dropped, as for a
			// recreated bucket (tokens lost, never minted).
			l.forget(id.PK())
			home, err := l.home(ctx, id, adj.Now)
			if err != nil {
				return err
			}
			e.Shard, id = home.Shard, home
			continue
		case refund && e.Gen != 0 && got.Gen != e.Gen:
			// Recreated since the lease took from it: its tokens went
			// with the old item.
			l.remember(id.PK(), got)
			return nil
		}
		l.remember(id.PK(), got)
		l.learn(id, got)
		// A limit the item does not carry (it expired and was recreated
		// under limits without it) has nothing to charge or give back: as
		// for an expired bucket, it starts over full if it comes back.
		if kept := carried(adj.Deltas, got); len(kept) < len(adj.Deltas) {
			if len(kept) == 0 {
				return nil
			}
			adj.Deltas = kept
		}
		if name, over := shard.OverDebt(got, adj); over {
			return limits.Invalid("adjust."+name, fmt.Sprint(deltas[name]/milli),
				fmt.Sprintf("it would put %s of %s more than %d tokens into debt", name, id.Entity, shard.MaxDebt/milli))
		}
	}
	return fmt.Errorf("adjust bucket %s shard %d: %w", id.Bucket(), id.Shard, ErrContention)
}

// carried is deltas without the limits st does not carry.
func carried(deltas map[string]int64, st *shard.State) map[string]int64 {
	out := make(map[string]int64, len(deltas))
	for name, d := range deltas {
		if _, ok := st.Limits[name]; ok {
			out[name] = d
		}
	}
	return out
}

// recover brings back a missing shard a charge must be booked on: shard 0
// missing means the whole bucket expired (it starts over full, at one
// shard); another shard is recreated empty at the bucket's level.
func (l *Limiter) recover(ctx context.Context, id shard.ID, cfg shard.Config, now int64) error {
	if id.Shard != 0 {
		err := l.recreate(ctx, id, cfg.All(), 0, now)
		if errors.Is(err, errNoShard0) {
			return fmt.Errorf("bucket %s shard %d: %w", id.Bucket(), id.Shard, limits.ErrNotFound)
		}
		return err
	}
	l.forgetCount(id.Bucket())
	it, _ := shard.Fresh(id, cfg, now, l.o.TTLMultiplier)
	var absent dynamo.Update
	absent.IfNotExists(schema.PK)
	return l.put(ctx, id, it, &absent)
}

func millis(amounts map[string]int64, keep func(string) bool) map[string]int64 {
	out := map[string]int64{}
	for name, v := range amounts {
		if v != 0 && keep(name) {
			out[name] = v * milli
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

func addAmounts(dst, src map[string]int64) {
	for k, v := range src {
		dst[k] += v
	}
}

func copyAmounts(m map[string]int64) map[string]int64 {
	out := make(map[string]int64, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func limitNames(ls []limits.Limit) []string {
	out := make([]string, len(ls))
	for i, l := range ls {
		out[i] = l.Name
	}
	sort.Strings(out)
	return out
}
