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
			if err := ls.l.apply(gctx, e, d); err != nil {
				return err
			}
			addAmounts(e.Consumed, d)
			return nil
		})
	}
	return g.Wait()
}

// Release returns whole tokens the work did not use (Adjust with the
// amounts negated).
func (ls *Lease) Release(ctx context.Context, amounts map[string]int64) error {
	return ls.Adjust(ctx, negate(amounts))
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
			continue
		}
		addAmounts(e.Consumed, back)
	}
	if len(errs) > 0 {
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

// apply writes signed millitoken deltas to the lease's shard without any
// check. A shard split since the acquire is followed (the level scales
// virtual time); a bucket that no longer exists (expired) has nothing to
// return or to charge.
func (l *Limiter) apply(ctx context.Context, e *Entry, deltas map[string]int64) error {
	s := l.shardOf(e.target(), e.Shard)
	level := 1
	if st := l.cached(s.pk); st != nil {
		level = st.level
	}
	for range l.o.MaxAttempts {
		x := &dynamo.Expr{}
		var adds []string
		for _, name := range sortedNames(deltas) {
			d := deltas[name]
			if d == 0 {
				continue
			}
			adds = append(adds,
				x.Name(schema.BucketAttr(name, schema.SuffixVirtualTime))+" "+x.Num(d*int64(level)),
				x.Name(schema.BucketAttr(name, schema.SuffixConsumed))+" "+x.Num(d))
		}
		if len(adds) == 0 {
			return nil
		}
		cond := "attribute_exists(" + x.Name(schema.PK) + ") AND " + x.Name(schema.AttrShardLevel) + " = " + x.Num(int64(level))
		update := "ADD " + strings.Join(adds, ", ")
		if ttl := l.ttlSeconds(newParamSet(e.Limits, level, 0)); ttl > 0 {
			// Renew the time to live like every write, so debt is not forgiven early.
			update = "SET " + x.Name(schema.TTL) + " = " + x.Num(l.nowMs()/1000+ttl) + " " + update
		}
		_, err := l.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
			TableName:                           aws.String(l.o.Table),
			Key:                                 key(s.pk),
			ConditionExpression:                 aws.String(cond),
			UpdateExpression:                    aws.String(update),
			ExpressionAttributeNames:            x.Names(),
			ExpressionAttributeValues:           x.Values(),
			ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
		})
		if err == nil {
			if st := l.cached(s.pk); st != nil && st.level == level {
				for name, d := range deltas {
					if ls, ok := st.limits[name]; ok {
						ls.W += d * int64(level)
						st.limits[name] = ls
					}
				}
				l.remember(s.pk, st)
			}
			return nil
		}
		old, ok := dynamo.CondFailedItem(err)
		if !ok {
			return fmt.Errorf("adjust bucket %s shard %d: %w", s.t.key(), s.j, err)
		}
		st := decodeShard(old)
		if !st.exists {
			l.forget(s.pk)
			return nil
		}
		l.observe(s, st)
		level = st.level
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
