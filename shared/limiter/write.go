package limiter

import (
	"context"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/zeroae/zae-limiter-go/shared/bucket"
	"github.com/zeroae/zae-limiter-go/shared/dynamo"
	"github.com/zeroae/zae-limiter-go/shared/limits"
	"github.com/zeroae/zae-limiter-go/shared/schema"
)

// outcome of one conditional write.
type outcome int

const (
	admitted outcome = iota // written
	denied                  // an app limit has too few tokens (exact, from ALL_OLD)
	wcuOut                  // only the shard's write budget ran out
	again                   // the state was learnt; the next attempt is exact
	missing                 // the shard item does not exist
)

type writeResult struct {
	kind outcome
	st   *shardState
}

// shard names one bucket shard of a target.
type shard struct {
	t  target
	j  int
	pk string
}

func (l *Limiter) shardOf(t target, j int) shard {
	return shard{t: t, j: j, pk: schema.BucketPK(l.o.Namespace, t.entity, t.resource, j)}
}

// consume tries once to take amounts (millitokens, all > 0) from shard s
// with the parameters ps. It never reads: the form of each limit's update is
// predicted from the cached state, and the item comes back on any failure.
func (l *Limiter) consume(ctx context.Context, s shard, ps paramSet, amounts map[string]int64, now int64) (writeResult, error) {
	// Planning is atomic with the projection of its effect on the cache, so
	// concurrent writers of this process see each other's writes before they
	// land (the first writer of a grid step takes the idle form, the others
	// the busy one).
	l.plan.Lock()
	planning := true
	done := func() {
		if planning {
			planning = false
			l.plan.Unlock()
		}
	}
	defer done()
	// Alone on this item the idle form books exactly at now; with writes of
	// this process in flight on it, on the shared grid (see quantum).
	concurrent := l.enter(s.pk)
	defer l.leave(s.pk)
	st := l.cached(s.pk)
	if st != nil && st.exists && (st.pv != ps.pv || st.level != ps.level) {
		done()
		return l.reconcile(ctx, s, ps, st, now)
	}
	upsert := st == nil && s.j == 0
	if st == nil {
		st = &shardState{limits: map[string]limitState{}}
	}
	e := &dynamo.Expr{}
	var conds, sets, adds []string
	charge := amounts
	if ps.level < MaxShards {
		// At the shard cap the write budget no longer decides anything:
		// DynamoDB throttles if it must.
		charge = withWCU(amounts)
	}
	projected := st.clone()
	mine := map[string]projection{}
	for _, name := range sortedNames(charge) {
		p, ok := ps.params[name]
		if !ok {
			return writeResult{}, fmt.Errorf("limit %q not in the bucket's parameters", name)
		}
		n := cost(name, charge[name], ps.level)
		if n > p.Capacity {
			// More than the whole bucket: never admissible at these limits.
			// The denial reports what the bucket holds now.
			done()
			if !st.exists {
				if got, err := l.read(ctx, s); err == nil && got.exists {
					st = got
				}
			}
			return writeResult{kind: denied, st: st}, nil
		}
		c := bucket.Clock(p, now)
		chi := bucket.CeilTo(c, l.quantum(p, concurrent))
		w := e.Name(schema.BucketAttr(name, schema.SuffixVirtualTime))
		cur, known := st.limits[name]
		if name == wcu && known && cur.W > c-p.Capacity/2 {
			// The write budget is a soft trigger for sharding, not a user
			// limit: it only needs an upper bound, so it takes the busy
			// form unless idle for long (carrying at most half a second of
			// unused budget), and never makes concurrent writers collide.
			conds = append(conds, fmt.Sprintf("%s <= %s", w, e.Num(c+p.Capacity-n)))
			adds = append(adds, w+" "+e.Num(n))
			cur.W += n
			mine[name] = projection{add: n}
		} else if known && cur.W > chi {
			// Busy: exact and commutative.
			conds = append(conds, fmt.Sprintf("%s > %s AND %s <= %s", w, e.Num(chi), w, e.Num(c+p.Capacity-n)))
			adds = append(adds, w+" "+e.Num(n))
			cur.W += n
			mine[name] = projection{add: n}
		} else {
			// Idle: book at the grid instant (never earlier than now).
			b := min(chi, c+p.Capacity-n)
			conds = append(conds, fmt.Sprintf("%s <= %s", w, e.Num(b)))
			sets = append(sets, w+" = "+e.Num(b+n))
			cur.W = b + n
			mine[name] = projection{set: b + n}
		}
		cur.P = p
		projected.limits[name] = cur
		if name != wcu {
			adds = append(adds, e.Name(schema.BucketAttr(name, schema.SuffixConsumed))+" "+e.Num(charge[name]))
		}
	}
	if ttl := l.ttlSeconds(ps); ttl > 0 {
		sets = append(sets, e.Name(schema.TTL)+" = "+e.Num(now/1000+ttl))
	}
	cond := e.Name(schema.AttrParams) + " = " + e.Value(dynamo.S(ps.pv)) + " AND " + strings.Join(conds, " AND ")
	if upsert {
		cond = "attribute_not_exists(" + e.Name(schema.PK) + ") OR (" + cond + ")"
		sets = append(sets, l.creationSets(e, s, ps, charge, now)...)
	}
	update := "SET " + strings.Join(sets, ", ")
	if len(adds) > 0 {
		update += " ADD " + strings.Join(adds, ", ")
	}
	if st.exists {
		projected.exists = true
		l.remember(s.pk, projected)
	}
	done()
	out, err := l.update(ctx, s, cond, update, e)
	if err == nil {
		got := decodeShard(out.Attributes)
		l.merge(s.pk, got)
		l.learn(s, got)
		return writeResult{kind: admitted, st: got}, nil
	}
	old, ok := dynamo.CondFailedItem(err)
	if !ok {
		l.forget(s.pk)
		return writeResult{}, fmt.Errorf("write bucket %s shard %d: %w", s.t.key(), s.j, err)
	}
	got := decodeShard(old)
	if got.exists {
		l.unproject(s.pk, got, mine, now)
		l.learn(s, got)
	}
	if debugExpr {
		for _, name := range sortedNames(charge) {
			p := ps.params[name]
			c := bucket.Clock(p, now)
			chi := bucket.CeilTo(c, l.quantum(p, true))
			fmt.Printf("FAIL %s pred=%d actual=%d chi=%d c=%d\n", name, projected.limits[name].W-cost(name, charge[name], ps.level), got.limits[name].W, chi, c)
		}
	}
	if !got.exists {
		l.forget(s.pk)
		if s.j == 0 && !upsert {
			return writeResult{kind: again}, nil // the next attempt creates it
		}
		return writeResult{kind: missing, st: got}, nil
	}
	if got.pv != ps.pv || got.level != ps.level {
		return writeResult{kind: again, st: got}, nil
	}
	return writeResult{kind: judge(got, charge, ps.level, now), st: got}, nil
}

// projection is what a planned write assumed it would do to a limit.
type projection struct {
	add int64 // the busy form's ADD
	set int64 // the idle form's SET (when add == 0)
}

// unproject caches the state a failed write returned, taking this write's
// own projection back out while keeping what other writers of the process
// projected: a limit's cached virtual time never falls below the returned
// one, except that a limit found idle (at or behind the grid instant) is
// taken exactly as returned.
func (l *Limiter) unproject(pk string, got *shardState, mine map[string]projection, now int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	st := got.clone()
	old, ok := l.items[pk]
	if ok && old.exists && old.pv == st.pv && old.level == st.level {
		for name, ls := range st.limits {
			o, had := old.limits[name]
			if !had || ls.W <= bucket.CeilTo(bucket.Clock(ls.P, now), l.quantum(ls.P, true)) {
				continue
			}
			w := o.W
			if m, planned := mine[name]; planned {
				switch {
				case m.add != 0:
					w -= m.add
				case w == m.set:
					w = ls.W
				}
			}
			ls.W = max(ls.W, w)
			st.limits[name] = ls
		}
	}
	l.items[pk] = st
}

// quantum is a limit's booking grid in millitokens. A writer alone on an
// item books exactly (1). Writers of one process in flight together on an
// item share a grid: what the limit refills in one Tick, at most 1% of its
// capacity, so that the idle form never books more than that ahead of the
// exact instant, and after the first idle-form write of a step the others
// take the busy form instead of racing it.
func (l *Limiter) quantum(p bucket.Params, concurrent bool) int64 {
	if !concurrent {
		return 1
	}
	return min(bucket.Quantum(p, l.o.Tick.Milliseconds()), max(1, p.Capacity/100))
}

// enter counts a write of this process in flight on an item and reports
// whether another one already is; leave undoes it.
func (l *Limiter) enter(pk string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.inflight[pk]++
	return l.inflight[pk] > 1
}

func (l *Limiter) leave(pk string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.inflight[pk]--; l.inflight[pk] <= 0 {
		delete(l.inflight, pk)
	}
}

// judge decides, from the exact state a failed write returned, whether the
// request can be admitted at all: a request that fits failed only because
// its predicted form was wrong, and the next attempt is exact.
func judge(st *shardState, charge map[string]int64, level int, now int64) outcome {
	app, write := true, true
	for name, amt := range charge {
		ls, ok := st.limits[name]
		if !ok {
			app = false
			continue
		}
		n := cost(name, amt, level)
		if _, fits := bucket.Take(ls.W, bucket.Clock(ls.P, now), n, ls.P); !fits {
			if name == wcu {
				write = false
			} else {
				app = false
			}
		}
	}
	switch {
	case !app:
		return denied
	case !write:
		return wcuOut
	}
	return again
}

// cost is what taking amt millitokens of a limit costs in virtual time on a
// shard at level: a shard holds 1/level of the limit, so each of its tokens
// is worth level of the limit's. The write budget is per shard.
func cost(name string, amt int64, level int) int64 {
	if name == wcu {
		return amt
	}
	return amt * int64(level)
}

func withWCU(amounts map[string]int64) map[string]int64 {
	out := make(map[string]int64, len(amounts)+1)
	for k, v := range amounts {
		out[k] = v
	}
	out[wcu] = wcuCost
	return out
}

// creationSets are the attributes an upsert writes so that a new item is
// complete; on an existing item they rewrite the same values.
func (l *Limiter) creationSets(e *dynamo.Expr, s shard, ps paramSet, charged map[string]int64, now int64) []string {
	set := func(attr string, v types.AttributeValue) string { return e.Name(attr) + " = " + e.Value(v) }
	out := []string{
		set(schema.AttrEntityID, dynamo.S(s.t.entity)),
		set(schema.AttrResource, dynamo.S(s.t.resource)),
		set(schema.AttrShard, dynamo.N(int64(s.j))),
		set(schema.AttrShardLevel, dynamo.N(int64(ps.level))),
		set(schema.AttrParams, dynamo.S(ps.pv)),
		set(schema.AttrParamsEpoch, dynamo.N(ps.epoch)),
		set(schema.GSI3PK, dynamo.S(schema.BucketGSI3PK(l.o.Namespace, s.t.entity))),
		set(schema.GSI3SK, dynamo.S(schema.BucketGSI3SK(s.t.resource, s.j))),
		set(schema.GSI4PK, dynamo.S(schema.NamespaceGSI4PK(l.o.Namespace))),
		set(schema.GSI4SK, dynamo.S(schema.BucketGSI4SK(s.t.resource, s.t.entity, s.j))),
	}
	sc := e.Name(schema.AttrShardCount)
	out = append(out, sc+" = if_not_exists("+sc+", "+e.Num(1)+")")
	for _, name := range sortedParams(ps.params) {
		p := ps.params[name]
		out = append(out,
			set(schema.BucketAttr(name, schema.SuffixCapacity), dynamo.N(p.Capacity)),
			set(schema.BucketAttr(name, schema.SuffixRefill), dynamo.N(p.RefillAmount)),
			set(schema.BucketAttr(name, schema.SuffixPeriod), dynamo.N(p.RefillPeriod)))
		if _, ok := charged[name]; !ok {
			w := e.Name(schema.BucketAttr(name, schema.SuffixVirtualTime))
			out = append(out, w+" = if_not_exists("+w+", "+e.Num(bucket.Clock(p, now))+")")
		}
	}
	return out
}

// observe caches a shard's state and learns its shard count.
func (l *Limiter) observe(s shard, st *shardState) {
	if !st.exists {
		return
	}
	l.remember(s.pk, st)
	l.learn(s, st)
}

// learn raises the known shard count from a shard's state.
func (l *Limiter) learn(s shard, st *shardState) {
	if s.j == 0 {
		l.learnCount(s.t.key(), st.count)
	}
	l.learnCount(s.t.key(), st.level)
}

func key(pk string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{schema.PK: dynamo.S(pk), schema.SK: dynamo.S(schema.SKState)}
}

// statuses reports every configured limit of t as seen in st at now, with
// the amounts requested (millitokens) and whether each could be admitted.
func statuses(t target, st *shardState, amounts map[string]int64, level int, now int64) []limits.Status {
	out := make([]limits.Status, 0, len(t.limits))
	for _, lm := range t.limits {
		s := limits.Status{EntityID: t.entity, Resource: t.resource, Limit: lm, Requested: amounts[lm.Name] / milli}
		ls, ok := st.limits[lm.Name]
		if !ok {
			// Not on the item yet: a new limit starts full.
			s.Available = lm.Capacity / int64(level)
			p := bucket.Params{Capacity: lm.Capacity * milli, RefillAmount: lm.RefillAmount * milli, RefillPeriod: lm.RefillPeriodSeconds * 1000}
			if n := amounts[lm.Name] * int64(level); n > p.Capacity {
				// Never admissible at once: say how long the amount takes
				// to accrue, as for a limit on the item.
				s.Exceeded = true
				s.RetryAfter = msDuration(bucket.Wait(bucket.Clock(p, now), n, p, now))
			}
			out = append(out, s)
			continue
		}
		c := bucket.Clock(ls.P, now)
		s.Available = bucket.Whole(bucket.Level(ls.W, c, ls.P) / int64(level))
		if n := amounts[lm.Name]; n > 0 {
			if _, fits := bucket.Take(ls.W, c, n*int64(level), ls.P); !fits {
				s.Exceeded = true
				s.RetryAfter = msDuration(bucket.Wait(ls.W, n*int64(level), ls.P, now))
			}
		}
		out = append(out, s)
	}
	return out
}

var debugExpr = false
