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
// budget false leaves the shard's write budget out (a lease that must write
// this shard even though it is out of budget).
func (l *Limiter) consume(ctx context.Context, s shard, ps paramSet, amounts map[string]int64, now int64, budget bool) (writeResult, error) {
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
	if st != nil && st.exists && st.level != ps.level {
		done()
		return l.reconcile(ctx, s, ps, st, now)
	}
	// A bucket whose stored limits differ from the resolved ones gets them in
	// this very write (DECISIONS §3.6), its tokens carried over.
	syncing := st != nil && st.exists && st.pv != ps.pv
	upsert := st == nil && s.j == 0
	if st == nil {
		st = &shardState{limits: map[string]limitState{}}
	}
	e := &dynamo.Expr{}
	var conds, sets, adds []string
	charge := amounts
	if budget && ps.level < MaxShards {
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
		if syncing && (!known || cur.P != p) {
			cond, set, add, next, fits := resync(e, w, cur, known, p, n, now)
			if !fits {
				done()
				return writeResult{kind: denied, st: carried(st, ps, now)}, nil
			}
			conds, sets, adds = appendNonEmpty(conds, cond), appendNonEmpty(sets, set), appendNonEmpty(adds, add)
			cur.W = next
			mine[name] = projection{set: next}
		} else if name == wcu && known && cur.W > c-p.Capacity/2 {
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
	pv := ps.pv
	if syncing {
		pv = st.pv
		conds = append(conds, e.Name(schema.AttrShardLevel)+" = "+e.Num(int64(st.level)))
		for _, name := range sortedParams(ps.params) {
			p := ps.params[name]
			cur, known := st.limits[name]
			if known && cur.P == p {
				continue
			}
			if _, charged := charge[name]; !charged {
				// (A charged limit was planned, and projected, above.)
				w := e.Name(schema.BucketAttr(name, schema.SuffixVirtualTime))
				cond, set, add, next, _ := resync(e, w, cur, known, p, 0, now)
				conds, sets, adds = appendNonEmpty(conds, cond), appendNonEmpty(sets, set), appendNonEmpty(adds, add)
				cur.W, cur.P = next, p
				projected.limits[name] = cur
			}
			sets = append(sets,
				e.Name(schema.BucketAttr(name, schema.SuffixCapacity))+" = "+e.Num(p.Capacity),
				e.Name(schema.BucketAttr(name, schema.SuffixRefill))+" = "+e.Num(p.RefillAmount),
				e.Name(schema.BucketAttr(name, schema.SuffixPeriod))+" = "+e.Num(p.RefillPeriod))
		}
		// A limit no longer configured stays on the item, dormant: nothing
		// checks or charges it, and if it comes back its tokens carry over
		// instead of starting full (which would mint them).
		sets = append(sets,
			e.Name(schema.AttrParams)+" = "+e.Value(dynamo.S(ps.pv)),
			e.Name(schema.AttrParamsEpoch)+" = "+e.Num(ps.epoch))
		projected.pv, projected.pe = ps.pv, ps.epoch
	}
	if at := l.expiry(ps, projected, now); at > 0 && !(s.j == 0 && ps.level > 1) {
		// A split shard 0 never expires: it tells every process the bucket
		// is sharded, and recreated alone at level 1 it would hold the whole
		// limit beside its live twins.
		sets = append(sets, e.Name(schema.TTL)+" = "+e.Num(at))
	}
	cond := e.Name(schema.AttrParams) + " = " + e.Value(dynamo.S(pv)) + " AND " + strings.Join(conds, " AND ")
	if upsert {
		cond = "attribute_not_exists(" + e.Name(schema.PK) + ") OR (" + cond + ")"
		sets = append(sets, l.creationSets(e, s, ps, charge, now)...)
	}
	var clauses []string
	if len(sets) > 0 {
		clauses = append(clauses, "SET "+strings.Join(sets, ", "))
	}
	if len(adds) > 0 {
		clauses = append(clauses, "ADD "+strings.Join(adds, ", "))
	}
	update := strings.Join(clauses, " ")
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
	if !got.exists {
		l.forget(s.pk)
		if s.j == 0 && !upsert {
			return writeResult{kind: again}, nil // the next attempt creates it
		}
		return writeResult{kind: missing, st: got}, nil
	}
	if got.level != ps.level {
		return writeResult{kind: again, st: got}, nil
	}
	if got.pv != ps.pv {
		// Judge on the item as this write would have left it.
		got = carried(got, ps, now)
	}
	return writeResult{kind: judge(got, charge, ps.level, now), st: got}, nil
}

// resync plans one limit of a write that also changes its parameters from
// cur (absent when !known) to p, and takes n (cost units, may be 0): the
// tokens held are carried over, clamped to the new capacity, debt kept; a
// new limit starts full. A limit at or behind its clamp point holds
// min(old capacity, new capacity) afterwards (SET); a busy one keeps its
// token count (ADD the shift between the two clocks) — either way no change
// of parameters, back and forth, ever adds tokens. Each form is conditioned
// on the item being as predicted. It returns the condition, SET and ADD
// clauses (empty when unused), the virtual time it projects, and whether n
// fits at all in the idle form (when it does not, nothing may be written).
func resync(e *dynamo.Expr, w string, cur limitState, known bool, p bucket.Params, n, now int64) (cond, set, add string, next int64, fits bool) {
	nc := bucket.Clock(p, now)
	if !known {
		return "", w + " = " + e.Num(nc+n), "", nc + n, n <= p.Capacity
	}
	c := bucket.Clock(cur.P, now)
	clamp := c + max(0, cur.P.Capacity-p.Capacity)
	if cur.W <= clamp {
		base := nc + max(0, p.Capacity-cur.P.Capacity)
		return w + " <= " + e.Num(clamp), w + " = " + e.Num(base+n), "", base + n, base+n <= nc+p.Capacity
	}
	shift := (nc - c) + (p.Capacity - cur.P.Capacity)
	cond = w + " > " + e.Num(clamp)
	if n > 0 {
		cond += " AND " + w + " <= " + e.Num(nc+p.Capacity-n-shift)
	}
	return cond, "", w + " " + e.Num(shift+n), cur.W + shift + n, true
}

// carried is st with its parameters changed to ps, as resync writes it.
func carried(st *shardState, ps paramSet, now int64) *shardState {
	out := st.clone()
	out.limits = make(map[string]limitState, len(ps.params))
	out.pv, out.pe = ps.pv, ps.epoch
	for name, p := range ps.params {
		cur, known := st.limits[name]
		if !known || cur.P != p {
			_, _, _, next, _ := resync(&dynamo.Expr{}, "", cur, known, p, 0, now)
			cur.W, cur.P = next, p
		}
		out.limits[name] = cur
	}
	return out
}

func appendNonEmpty(xs []string, x string) []string {
	if x == "" {
		return xs
	}
	return append(xs, x)
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
	gen := e.Name(schema.AttrGeneration)
	out = append(out, gen+" = if_not_exists("+gen+", "+e.Num(now)+")")
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
		s := limits.Status{EntityID: t.entity, Resource: t.resource, Limit: lm, Requested: amounts[lm.Name] / milli, Shards: level}
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
