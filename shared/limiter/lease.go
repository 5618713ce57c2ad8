package limiter

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"golang.org/x/sync/errgroup"

	"github.com/zeroae/zae-limiter-go/shared/bucket"
	"github.com/zeroae/zae-limiter-go/shared/dynamo"
	"github.com/zeroae/zae-limiter-go/shared/limits"
	"github.com/zeroae/zae-limiter-go/shared/schema"
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
}

func (e *Entry) target() target { return target{e.EntityID, e.Resource, e.Limits} }

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
// same shards; a denial changes nothing.
func (ls *Lease) Consume(ctx context.Context, amounts map[string]int64) error {
	if err := validateAmounts("consume", amounts, false); err != nil {
		return err
	}
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if err := ls.usable(amounts); err != nil || ls.degraded {
		return err
	}
	type result struct {
		e   *Entry
		amt map[string]int64
		st  []limits.Status
		ok  bool
	}
	results := make([]result, len(ls.entries))
	// Not errgroup.WithContext: a failure must not cancel a sibling's write
	// in flight, whose outcome would then be unknown (applied, yet never
	// given back or recorded).
	var g errgroup.Group
	gctx := ctx
	for i, e := range ls.entries {
		amt := millis(amounts, e.has)
		if len(amt) == 0 {
			continue
		}
		results[i] = result{e: e, amt: amt}
		g.Go(func() error {
			st, ok, err := ls.l.takeShard(gctx, e.target(), e.Shard, amt)
			results[i].st, results[i].ok = st, ok
			return err
		})
	}
	err := g.Wait()
	var all []limits.Status
	rejected := false
	for _, r := range results {
		all = append(all, r.st...)
		rejected = rejected || (r.e != nil && !r.ok)
	}
	if err != nil || rejected {
		for _, r := range results {
			if r.e != nil && r.ok {
				_ = ls.l.apply(context.WithoutCancel(ctx), r.e, negate(r.amt))
			}
		}
		if err != nil {
			return err
		}
		return limits.NewExceeded(all)
	}
	for _, r := range results {
		if r.e != nil {
			addAmounts(r.e.Consumed, r.amt)
		}
	}
	return nil
}

// Adjust changes what the lease took by signed whole-token deltas, without
// any check: a positive delta may put the bucket into debt, a negative one
// returns tokens. It is written at once.
func (ls *Lease) Adjust(ctx context.Context, deltas map[string]int64) error {
	if err := validateAmounts("adjust", deltas, true); err != nil {
		return err
	}
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if err := ls.usable(deltas); err != nil || ls.degraded {
		return err
	}
	// A lease gives back at most what it holds.
	for _, e := range ls.entries {
		for name, d := range millis(deltas, e.has) {
			if e.Consumed[name]+d < 0 {
				return limits.Invalid("adjust."+name, fmt.Sprint(d/milli),
					fmt.Sprintf("the lease holds %d of %s on %s; it cannot give back more", e.Consumed[name]/milli, name, e.EntityID))
			}
		}
	}
	// Not errgroup.WithContext: a failure must not cancel a sibling's write
	// in flight, whose outcome would then be unknown (applied, yet never
	// given back or recorded).
	var g errgroup.Group
	gctx := ctx
	for _, e := range ls.entries {
		d := millis(deltas, e.has)
		if len(d) == 0 {
			continue
		}
		g.Go(func() error {
			err := ls.l.apply(gctx, e, d)
			if err == nil || errors.Is(err, ErrOutcomeUnknown) {
				addAmounts(e.Consumed, d)
			}
			return err
		})
	}
	return g.Wait()
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
		for name, v := range e.Consumed {
			if v != 0 {
				back[name] = -v
			}
		}
		if len(back) == 0 {
			continue
		}
		if err := ls.l.apply(ctx, e, back); err != nil {
			errs = append(errs, err)
			if !errors.Is(err, ErrOutcomeUnknown) {
				continue // not applied: a later Rollback sends it again
			}
		}
		addAmounts(e.Consumed, back)
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

// apply writes signed millitoken deltas to the lease's shard, unchecked: a
// charge may put the bucket into debt, a refund returns tokens. A charge on
// an idle bucket is booked from now (SET clock+d), never absorbed by refill
// the bucket could not hold; a busy one is a commutative ADD. A shard split
// since the acquire is followed (the level scales virtual time); a bucket
// that no longer exists (expired, hence full) has nothing to give back or
// to charge. A write with a refund is sent once (no SDK retry): if its
// outcome is unknown, the error wraps ErrOutcomeUnknown.
func (l *Limiter) apply(ctx context.Context, e *Entry, deltas map[string]int64) error {
	s := l.shardOf(e.target(), e.Shard)
	ps := newParamSet(e.Limits, 1, 0)
	refund := false
	for _, d := range deltas {
		refund = refund || d < 0
	}
	for range l.o.MaxAttempts {
		st := l.cached(s.pk)
		level := 1
		if st != nil {
			level = st.level
		}
		now := l.nowMs()
		projected := &shardState{limits: map[string]limitState{}}
		if st != nil {
			projected = st.clone()
		}
		x := &dynamo.Expr{}
		conds := []string{"attribute_exists(" + x.Name(schema.PK) + ")", x.Name(schema.AttrShardLevel) + " = " + x.Num(int64(level))}
		if refund && e.Gen != 0 {
			conds = append(conds, x.Name(schema.AttrGeneration)+" = "+x.Num(e.Gen))
		}
		var sets, adds []string
		for _, name := range sortedNames(deltas) {
			d := deltas[name]
			if d == 0 {
				continue
			}
			v := d * int64(level)
			w := x.Name(schema.BucketAttr(name, schema.SuffixVirtualTime))
			cur, known := projected.limits[name]
			p := ps.params[name]
			if known {
				p = cur.P
			}
			c := bucket.Clock(p, now)
			switch {
			case d < 0:
				adds = append(adds, w+" "+x.Num(v))
				cur.W += v
			default:
				// A charge reads the clock, so it holds only for the
				// refill the item really has.
				conds = append(conds,
					x.Name(schema.BucketAttr(name, schema.SuffixRefill))+" = "+x.Num(p.RefillAmount),
					x.Name(schema.BucketAttr(name, schema.SuffixPeriod))+" = "+x.Num(p.RefillPeriod))
				if known && cur.W < c {
					conds = append(conds, w+" < "+x.Num(c))
					sets = append(sets, w+" = "+x.Num(c+v))
					cur.W = c + v
				} else {
					conds = append(conds, w+" >= "+x.Num(c))
					adds = append(adds, w+" "+x.Num(v))
					cur.W += v
				}
			}
			cur.P = p
			projected.limits[name] = cur
			adds = append(adds, x.Name(schema.BucketAttr(name, schema.SuffixConsumed))+" "+x.Num(d))
		}
		if len(adds) == 0 && len(sets) == 0 {
			return nil
		}
		if at := l.expiry(ps, projected, now); at > 0 && !(s.j == 0 && level > 1) {
			// Renew the time to live like every write, so debt is not
			// forgiven early (a split shard 0 never expires: see split).
			sets = append(sets, x.Name(schema.TTL)+" = "+x.Num(at))
		}
		update := ""
		if len(sets) > 0 {
			update = "SET " + strings.Join(sets, ", ") + " "
		}
		update += "ADD " + strings.Join(adds, ", ")
		out, err := l.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
			TableName:                           aws.String(l.o.Table),
			Key:                                 key(s.pk),
			ConditionExpression:                 aws.String(strings.Join(conds, " AND ")),
			UpdateExpression:                    aws.String(update),
			ExpressionAttributeNames:            x.Names(),
			ExpressionAttributeValues:           x.Values(),
			ReturnValues:                        types.ReturnValueAllNew,
			ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
		}, func(o *dynamodb.Options) {
			if refund {
				o.RetryMaxAttempts = 1
			}
		})
		if err == nil {
			l.merge(s.pk, decodeShard(out.Attributes))
			return nil
		}
		old, ok := dynamo.CondFailedItem(err)
		if !ok {
			l.forget(s.pk)
			if refund && !dynamo.NotApplied(err) {
				return fmt.Errorf("adjust bucket %s shard %d: %w: %w", s.t.key(), s.j, ErrOutcomeUnknown, err)
			}
			return fmt.Errorf("adjust bucket %s shard %d: %w", s.t.key(), s.j, err)
		}
		got := decodeShard(old)
		switch {
		case !got.exists && refund:
			// Expired, hence full: nothing to give back.
			l.forget(s.pk)
			return nil
		case !got.exists:
			// Expired: a charge must still be booked, on the shard recreated.
			// Shard 0 missing means the whole bucket expired: it starts over
			// full, at one shard. Another shard is recreated empty (the
			// conservative state: its share may still sit with a sibling).
			l.forget(s.pk)
			cps, from := newParamSet(e.Limits, 1, 0), (*shardState)(nil)
			if s.j == 0 {
				l.forgetCount(s.t.key())
				from = &shardState{limits: map[string]limitState{}}
				for name, p := range cps.params {
					from.limits[name] = limitState{P: p, W: bucket.Clock(p, now)}
				}
			} else {
				lv := max(level, l.shardCount(s.t.key()))
				for lv <= s.j { // a shard j exists only at a level above j
					lv *= 2
				}
				cps = newParamSet(e.Limits, lv, 0)
			}
			if err := l.createShard(ctx, s, cps, from, now); err != nil {
				return err
			}
			continue
		case refund && e.Gen != 0 && got.gen != e.Gen:
			// Recreated since the lease took from it: its tokens went
			// with the old item.
			l.remember(s.pk, got)
			return nil
		}
		l.remember(s.pk, got)
		l.learn(s, got)
	}
	return fmt.Errorf("adjust bucket %s shard %d: %w", s.t.key(), s.j, ErrContention)
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
