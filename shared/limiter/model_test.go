package limiter_test

// A model-based randomized test of the engine against DynamoDB Local.
//
// Several simulated processes (limiters with their own config caches and
// clocks skewed by up to maxSkew) run random acquires, lease consumes,
// adjusts, rollbacks and commits, while an admin changes limits at the
// entity and resource levels (raise, lower, change the period, drop and
// re-add a limit), buckets cascade to a parent, shards split (their write
// budget spent) and items expire (deleted as TTL would, once their ttl has
// passed). Some rounds run concurrently, with processes whose own limits for
// one bucket differ (the config-cache window) and on_unavailable allow.
//
// A checker keeps, per bucket and limit, an upper envelope of what the
// bucket may legally hold: a token bucket with, at every instant, the
// largest capacity and rate of every configuration that may be in force
// (the config cache makes one stale for up to its TTL), on a clock ahead
// of the true one by the largest skew, charged with every admitted take and
// adjustment and credited with every refund. It fails when a checked take
// (or a degraded, unchecked lease) is admitted beyond the envelope, or when
// a bucket reports more available than the envelope: an excess or a token
// minted. A settle phase then checks liveness: on a quiet bucket, a denial's
// retry-after comes true.
//
// Beyond the reference (ADR-029 to 032): configurations draw calendar
// quotas (day, week, month) and shadow limits besides continuous ones, and
// a limit may change between them; the admin grants credits, resets
// buckets and blocks entities. The envelope of a calendar limit refills
// whole when the clock ahead by the largest skew crosses a boundary, and
// holds up to twice its capacity until the clock behind by it has crossed
// too (a lagging writer may still take from the period before); credits
// add to what may be taken, exactly as the leases book them; a reset fills
// the envelope; a shadow limit is charged what it took, never checked. An
// acquire for an entity blocked (or cascading to one blocked) since longer
// than the cache TTL must be denied with reason blocked, and one denied
// so must have been blocked within it.
//
// The run is seeded (MODEL_SEED, else random, printed) and bounded
// (MODEL_ROUNDS, MODEL_SEEDS); `make model` runs the long form. MODEL_TRACE
// logs every step; MODEL_WATCH=<entity> also its envelopes and its shard 0
// after each acquire.

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/stretchr/testify/require"

	"github.com/zeroae/zae-limiter-go/shared/bucket"
	"github.com/zeroae/zae-limiter-go/shared/limiter"
	"github.com/zeroae/zae-limiter-go/shared/limits"
	"github.com/zeroae/zae-limiter-go/shared/schema"
	"github.com/zeroae/zae-limiter-go/shared/shard"
	"github.com/zeroae/zae-limiter-go/shared/store"
)

const (
	maxSkew       = 2 * time.Second
	staleness     = store.DefaultCacheTTL + 5*time.Second // a process may resolve limits this old
	modelTol      = 2 * milliPerToken                     // rounding of the envelope's refill
	milliPerToken = 1000
)

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// TestModel runs MODEL_SEEDS seeds of MODEL_ROUNDS rounds each.
func TestModel(t *testing.T) {
	seeds := envInt("MODEL_SEEDS", 2)
	rounds := envInt("MODEL_ROUNDS", 120)
	first := uint64(envInt("MODEL_SEED", int(rand.Uint32())))
	for i := range seeds {
		seed := first + uint64(i)
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			t.Logf("reproduce with MODEL_SEED=%d MODEL_SEEDS=1 MODEL_ROUNDS=%d go test -run 'TestModel' ./shared/limiter", seed, rounds)
			newModel(t, seed).run(rounds)
		})
	}
}

// bkey names a bucket.
type bkey struct{ entity, resource string }

// envelope is the most a bucket's limit may legally hold, in millitokens.
// Until a write has taken from the limit it may not be on the item yet, and
// a limit new to an item starts full: it holds its capacity (established
// false).
type envelope struct {
	level       float64
	last        time.Time
	established bool
	// capacity and rate (millitokens per ms) last used: what it refills at
	// while the limit is dormant.
	capacity, rate float64
	// A calendar quota's: its largest capacity, the periods it may have
	// and the last boundary crossed (the envelope may hold twice the quota
	// until every writer's clock has crossed it).
	calCap     float64
	calPeriods []int64
	crossed    time.Time
	// credit is what grants added and takes from credits have not used.
	credit float64
}

// perm is what a limit may be at most, over the configurations that may be
// in force: a continuous capacity and rate, a calendar quota's capacity
// and periods, shadow in any of them.
type perm struct {
	capacity, rate float64
	calCap         float64
	calPeriods     []int64
	shadow         bool
}

// join is the most permissive of p and q.
func (p perm) join(q perm) perm {
	p.capacity, p.rate, p.calCap = max(p.capacity, q.capacity), max(p.rate, q.rate), max(p.calCap, q.calCap)
	for _, period := range q.calPeriods {
		if !slices.Contains(p.calPeriods, period) {
			p.calPeriods = append(p.calPeriods, period)
		}
	}
	p.shadow = p.shadow || q.shadow
	return p
}

// permOf is, per limit name, the join of the limit in every set.
func permOf(sets [][]limits.Limit) map[string]perm {
	out := map[string]perm{}
	for _, ls := range sets {
		for _, l := range ls {
			var q perm
			c := float64(l.Capacity * milliPerToken)
			if l.Calendar != "" {
				q.calCap, q.calPeriods = c, []int64{shard.ParamsOf(l).RefillPeriod}
			} else {
				q.capacity, q.rate = c, float64(l.RefillAmount*milliPerToken)/float64(l.RefillPeriodSeconds*1000)
			}
			q.shadow = l.Shadow
			out[l.Name] = out[l.Name].join(q)
		}
	}
	return out
}

type proc struct {
	lim  *limiter.Limiter
	ns   *store.NS
	skew time.Duration
}

type leaseRec struct {
	lease *limiter.Lease
	proc  *proc
	req   limiter.Request
}

// configRec is one configuration of a level, when it was set and in which
// order (several changes may share an instant).
type configRec struct {
	at     time.Time
	seq    int
	limits []limits.Limit // nil: deleted
}

type model struct {
	t      *testing.T
	e      *env
	rng    *rand.Rand
	procs  []*proc
	admin  *store.NS
	env    map[bkey]map[string]*envelope
	hist   map[string][]configRec // "entity:<id>" or "resource:<res>" -> history
	leases []*leaseRec
	parent map[string]string // cascading child -> parent
	// tainted buckets (sharded, expired, overridden): no liveness check.
	tainted map[bkey]bool
	// overrides: the limits requests brought for a bucket (as configs).
	overrides map[string][]configRec
	// split: buckets whose shard count grew.
	split map[bkey]bool
	// lastWrite is when a checked take last wrote a bucket (its parameters
	// synced).
	lastWrite map[bkey]time.Time
	// itemPerm is, per bucket and limit, the parameters its item may
	// carry: a limit dropped from the configuration stays on the item,
	// dormant, with the parameters it was last written with, refilling at
	// them, until a write brings it back (ADR-004).
	itemPerm map[bkey]map[string]perm
	stats    map[string]int
	// blocks are the block and unblock changes per entity, in order.
	blocks map[string][]blockRec
}

type blockRec struct {
	at      time.Time
	blocked bool
}

var modelEntities = []string{"u1", "u2", "c1", "c2", "p"}

func newModel(t *testing.T, seed uint64) *model {
	e := newEnv(t, exact)
	m := &model{t: t, e: e, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), admin: e.ns,
		env: map[bkey]map[string]*envelope{}, hist: map[string][]configRec{}, parent: map[string]string{},
		tainted: map[bkey]bool{}, stats: map[string]int{}, lastWrite: map[bkey]time.Time{}, itemPerm: map[bkey]map[string]perm{}, split: map[bkey]bool{}, overrides: map[string][]configRec{},
		blocks: map[string][]blockRec{}}
	for i := range 3 {
		skew := time.Duration(m.rng.Int64N(int64(2*maxSkew+1))) - maxSkew
		if i == 0 {
			skew = 0 // the observer
		}
		clock := func() time.Time { return e.clock.Now().Add(skew) }
		// The last process runs without the denial cache: both paths
		// decide against the same envelope.
		_, ns, lim := e.flaky(limiter.Options{Now: clock, Tick: time.Duration(1+m.rng.IntN(100)) * time.Millisecond, NoDenialCache: i == 2})
		m.procs = append(m.procs, &proc{lim: lim, ns: ns, skew: skew})
	}
	for _, c := range []string{"c1", "c2"} {
		_, err := e.ns.CreateEntity(e.ctx, store.Entity{ID: c, ParentID: "p", Cascade: true})
		require.NoError(t, err)
		m.parent[c] = "p"
	}
	m.setConfig("resource:r", m.randomLimits(nil))
	return m
}

func (m *model) now() time.Time { return m.e.clock.Now() }

// trace logs one step when MODEL_TRACE is set.
func (m *model) trace(format string, args ...any) {
	if os.Getenv("MODEL_TRACE") != "" {
		m.t.Logf("%s "+format, append([]any{m.now().Format("15:04:05.000")}, args...)...)
	}
}

// randomLimits draws a configuration: a non-empty subset of a, b, x with
// capacities of 5 to 400 and periods from a second to a day; from, when
// given, is varied instead (raise, lower, other period, drop or add one).
func (m *model) randomLimits(from []limits.Limit) []limits.Limit {
	periods := []int64{1, 60, 3600, 86400}
	calendars := []string{limits.CalendarDay, limits.CalendarWeek, limits.CalendarMonth}
	draw := func(name string) limits.Limit {
		c := int64(5 + m.rng.IntN(396))
		if m.rng.IntN(4) == 0 {
			l := limits.PerCalendar(name, c, calendars[m.rng.IntN(len(calendars))])
			l.Shadow = m.rng.IntN(6) == 0
			return l
		}
		r := max(1, c*int64(1+m.rng.IntN(3))/int64(1+m.rng.IntN(4)))
		return limits.Limit{Name: name, Capacity: c, RefillAmount: r, RefillPeriodSeconds: periods[m.rng.IntN(len(periods))],
			Shadow: m.rng.IntN(8) == 0}
	}
	if from == nil || m.rng.IntN(4) == 0 {
		var out []limits.Limit
		for _, n := range []string{"a", "b", "x"} {
			if m.rng.IntN(3) > 0 {
				out = append(out, draw(n))
			}
		}
		if len(out) == 0 {
			out = append(out, draw("a"))
		}
		return out
	}
	out := append([]limits.Limit(nil), from...)
	i := m.rng.IntN(len(out))
	switch m.rng.IntN(6) {
	case 0: // raise (every request above the old capacity is the defect-1 case)
		out[i].Capacity *= int64(2 + m.rng.IntN(8))
		if out[i].Calendar != "" {
			out[i].RefillAmount = out[i].Capacity
		}
	case 1: // lower
		out[i].Capacity = max(1, out[i].Capacity/int64(2+m.rng.IntN(4)))
		if out[i].Calendar != "" {
			out[i].RefillAmount = out[i].Capacity
		}
	case 2: // another period, continuous or calendar
		if m.rng.IntN(2) == 0 {
			out[i] = limits.PerCalendar(out[i].Name, out[i].Capacity, calendars[m.rng.IntN(len(calendars))])
		} else {
			out[i].Calendar = ""
			out[i].RefillPeriodSeconds = periods[m.rng.IntN(len(periods))]
		}
	case 5: // shadow or enforced
		out[i].Shadow = !out[i].Shadow
	case 3: // drop one (it goes dormant)
		if len(out) > 1 {
			out = append(out[:i], out[i+1:]...)
		}
	default: // (re-)add one
		have := map[string]bool{}
		for _, l := range out {
			have[l.Name] = true
		}
		for _, n := range []string{"a", "b", "x"} {
			if !have[n] {
				out = append(out, draw(n))
				break
			}
		}
	}
	return out
}

// setConfig writes a level (through the admin store) and records it.
func (m *model) setConfig(level string, ls []limits.Limit) {
	kind, id, _ := cut(level)
	var err error
	switch {
	case kind == "resource" && ls != nil:
		err = m.admin.SetResourceDefaults(m.e.ctx, id, ls)
	case kind == "entity" && ls != nil:
		err = m.admin.SetLimits(m.e.ctx, id, "r", ls)
	case kind == "entity":
		err = m.admin.DeleteLimits(m.e.ctx, id, "r")
	}
	require.NoError(m.t, err)
	m.stats["config seq"]++
	m.hist[level] = append(m.hist[level], configRec{at: m.now(), seq: m.stats["config seq"], limits: ls})
	m.trace("config %s = %v", level, ls)
	m.stats["config"]++
}

func cut(level string) (string, string, bool) {
	for i := range level {
		if level[i] == ':' {
			return level[:i], level[i+1:], true
		}
	}
	return level, "", false
}

// resolvedAt is the configuration of (entity, r) in force at t.
func (m *model) resolvedAt(entity string, t time.Time) []limits.Limit {
	for _, level := range []string{"entity:" + entity, "resource:r"} {
		var cur []limits.Limit
		for _, c := range m.hist[level] {
			if !c.at.After(t) {
				cur = c.limits
			}
		}
		if cur != nil {
			return cur
		}
	}
	return nil
}

// permissive is, per limit name, the largest capacity and rate (millitokens,
// per ms) of every configuration the bucket's item may carry now: one a
// process may still resolve (its cache is up to staleness old), or one the
// item was written with (parameters change on an item only when it is
// written: until then it refills at the old ones, ADR-004; a dormant limit
// keeps them until it comes back).
func (m *model) permissive(entity string) map[string]perm {
	out := permOf(m.windowSets(entity))
	for name, p := range m.itemPerm[bkey{entity, "r"}] {
		out[name] = out[name].join(p)
	}
	return out
}

// windowSets are the configurations a process may resolve for (entity, r)
// now, or may have when it last wrote the bucket.
func (m *model) windowSets(entity string) [][]limits.Limit {
	now := m.now()
	from := now.Add(-staleness)
	if w, ok := m.lastWrite[bkey{entity, "r"}]; ok && w.Add(-staleness).Before(from) {
		from = w.Add(-staleness)
	}
	// What was in force at from, then after every change since, in order.
	sets := [][]limits.Limit{m.resolvedAt(entity, from)}
	levels := []string{"entity:" + entity, "resource:r"}
	cur := map[string][]limits.Limit{}
	type change struct {
		level string
		rec   configRec
	}
	var changes []change
	for _, level := range levels {
		for _, c := range m.hist[level] {
			if c.at.After(from) {
				changes = append(changes, change{level, c})
			} else {
				cur[level] = c.limits
			}
		}
	}
	for _, o := range m.overrides[entity] {
		if !o.at.Before(from) {
			sets = append(sets, o.limits)
		}
	}
	// Each level is cached on its own (store.ResolveLimits): a process may
	// hold any value of one level in force since from beside any value of
	// the other, e.g. the entity's limits freshly read as deleted beside the
	// resource defaults they replaced, still cached.
	values := map[string][][]limits.Limit{}
	for _, level := range levels {
		values[level] = [][]limits.Limit{cur[level]}
	}
	sort.Slice(changes, func(i, j int) bool { return changes[i].rec.seq < changes[j].rec.seq })
	for _, c := range changes {
		values[c.level] = append(values[c.level], c.rec.limits)
	}
	for _, e := range values[levels[0]] {
		if e != nil {
			sets = append(sets, e)
			continue
		}
		sets = append(sets, values[levels[1]]...)
	}
	return sets
}

// synced records what bucket b's item may carry after an acquire for its
// entity: admitted, every configured limit was rewritten to one of the
// configurations a process may resolve; otherwise a denial may have
// rewritten them (a parameter sync), or not. A limit not in every such
// configuration may have been left dormant with what it had.
func (m *model) synced(b bkey, admitted bool) {
	sets := m.windowSets(b.entity)
	cur := m.itemPerm[b]
	if cur == nil {
		cur = map[string]perm{}
		m.itemPerm[b] = cur
	}
	for name, p := range permOf(sets) {
		everywhere := true
		for _, ls := range sets {
			everywhere = everywhere && slices.ContainsFunc(ls, func(l limits.Limit) bool { return l.Name == name })
		}
		if admitted && everywhere {
			cur[name] = p
		} else {
			cur[name] = cur[name].join(p)
		}
	}
}

// envelopeOf returns the refilled envelopes of a bucket, at the true clock
// plus the largest skew (a writer ahead credits refill early, once).
func (m *model) envelopeOf(b bkey, params map[string]perm) map[string]*envelope {
	at := m.now().Add(maxSkew)
	envs := m.env[b]
	if envs == nil {
		envs = map[string]*envelope{}
		m.env[b] = envs
	}
	for name := range params {
		if _, ok := envs[name]; !ok {
			envs[name] = &envelope{last: at} // a new limit starts full (below)
		}
	}
	for name, en := range envs {
		if p, ok := params[name]; ok {
			// A writer whose clock lags by s books an idle bucket s in the
			// past: the bucket then shows s*rate more than a synchronized
			// writer would have left (over any window, admissions stay
			// within capacity + rate*(window + s)). A writer ahead credits
			// refill early: the clock above is ahead by the same skew.
			capacity := p.capacity + p.rate*float64(maxSkew.Milliseconds())
			if p.rate > en.rate && en.established {
				// A faster refill may start up to a skew early (a lagging
				// writer carries the tokens as of its clock), and this
				// envelope has accrued up to a skew ahead at the old rate.
				en.level = min(max(capacity, en.calCap), en.level+(p.rate-en.rate)*float64(2*maxSkew.Milliseconds()))
			}
			en.capacity, en.rate = capacity, p.rate
			en.calCap = max(en.calCap, p.calCap)
			for _, period := range p.calPeriods {
				if !slices.Contains(en.calPeriods, period) {
					en.calPeriods = append(en.calPeriods, period)
				}
			}
		}
		if dt := at.Sub(en.last); dt > 0 {
			level := en.level + float64(dt.Milliseconds())*en.rate
			for _, period := range en.calPeriods {
				// A calendar quota refills whole at each boundary the
				// clock ahead crosses.
				crossed := bucket.Index(period, at.UnixMilli()) - bucket.Index(period, en.last.UnixMilli())
				level += float64(crossed) * en.calCap
			}
			en.level = min(en.limit(at), level)
			en.last = at
		}
		if !en.established {
			en.level = en.limit(at)
		}
	}
	return envs
}

// limit is the most the envelope may hold at at (the true clock plus the
// largest skew): its continuous capacity, or its calendar quota's, twice
// that until the clock behind by the largest skew has crossed the last
// boundary too (a lagging writer may still take from the period before).
func (en *envelope) limit(at time.Time) float64 {
	quota := en.calCap
	for _, period := range en.calPeriods {
		b := bucket.Start(period, bucket.Index(period, at.UnixMilli()))
		if at.UnixMilli()-2*maxSkew.Milliseconds() < b {
			quota = 2 * en.calCap
		}
	}
	return max(en.capacity, quota)
}

// bucketsOf is the bucket of an entity and, when it cascades, its parent's.
func (m *model) bucketsOf(entity string) []bkey {
	out := []bkey{{entity, "r"}}
	if p, ok := m.parent[entity]; ok {
		out = append(out, bkey{p, "r"})
	}
	return out
}

// charge applies what a lease took (or gave back) to the envelopes; checked
// takes must fit them.
func (m *model) charge(entries []limiter.Entry, before map[string]map[string]int64, checked bool, what string) {
	for _, en := range entries {
		b := bkey{en.EntityID, en.Resource}
		perms := m.permissive(en.EntityID)
		envs := m.envelopeOf(b, perms)
		if checked {
			// A checked take plans from the limits in force and rewrites
			// the item's parameters; an adjustment, release or rollback
			// writes only amounts (a bucket whose entity is blocked may
			// see nothing else for long).
			defer func() { m.synced(b, true); m.lastWrite[b] = m.now() }()
		}
		for name, v := range en.Consumed {
			d := float64(v - before[en.EntityID][name])
			// c: what the change took from credits (negative: gave back).
			c := float64(en.Credit[name] - before[en.EntityID]["credit:"+name])
			if d == 0 && c == 0 {
				continue
			}
			e := envs[name]
			if e == nil {
				e = &envelope{last: m.now().Add(maxSkew)}
				envs[name] = e
			}
			if checked && !perms[name].shadow && c > 0 && e.credit+modelTol < c {
				m.t.Errorf("%s took %.0f of %s's credits on %s/%s but at most %.0f were granted and not used (%v)",
					what, c/milliPerToken, name, b.entity, b.resource, e.credit/milliPerToken, m.now())
			}
			e.credit -= c
			d -= c
			if checked && !perms[name].shadow && d > 0 && e.level+modelTol < d {
				m.t.Errorf("%s admitted %.0f of %s on %s/%s but at most %.0f may legally be there (%v)",
					what, d/milliPerToken, name, b.entity, b.resource, e.level/milliPerToken, m.now())
			}
			if !e.established && !checked {
				// Not known to be on the item: an unchecked change may have
				// been dropped (a limit the item does not carry), and the
				// limit may start full when it first appears.
				continue
			}
			if m.split[b] && !checked && d > 0 {
				// A sharded bucket keeps debt on the shard it lands on (an
				// adjustment, or a refund that went to another shard than a
				// debt): the other shards keep admitting their shares, and
				// the debt is repaid at that shard's rate, so the limit holds
				// over windows longer than the repayment, not at every
				// instant (ADR-019). Debt is not checked across shards: an
				// unchecked charge may land on one shard while the others
				// keep their shares, so it is not taken from the envelope.
				continue
			}
			e.level -= d
			if m.split[b] {
				e.level = max(e.level, 0)
			}
			e.established = true
			if os.Getenv("MODEL_WATCH") == b.entity {
				m.trace("envelope %s/%s %s: %s %+.1f -> %.1f (cap %.1f rate %.4f/ms)", b.entity, b.resource, name, what, -d/milliPerToken, e.level/milliPerToken, e.capacity/milliPerToken, e.rate)
			}
		}
	}
}

// consumedOf is what each entry of a lease has consumed, per limit, and
// (as "credit:<limit>") what it took from credits.
func consumedOf(entries []limiter.Entry) map[string]map[string]int64 {
	out := map[string]map[string]int64{}
	for _, en := range entries {
		out[en.EntityID] = map[string]int64{}
		for k, v := range en.Consumed {
			out[en.EntityID][k] = v
		}
		for k, v := range en.Credit {
			out[en.EntityID]["credit:"+k] = v
		}
	}
	return out
}

// checkAvailable: no bucket reports more than its envelope (no token minted).
func (m *model) checkAvailable(entity string) {
	sts, err := m.procs[0].lim.Available(m.e.ctx, entity, "r", nil, nil)
	if errors.Is(err, limits.ErrInvalid) {
		return
	}
	require.NoError(m.t, err)
	for _, s := range sts {
		envs := m.envelopeOf(bkey{s.EntityID, s.Resource}, m.permissive(s.EntityID))
		if e := envs[s.Limit.Name]; e != nil {
			m.trace("available %s/%s %s: %d (envelope %.1f, established %v)", s.EntityID, s.Resource, s.Limit.Name, s.Available, e.level/milliPerToken, e.established)
		}
		if e := envs[s.Limit.Name]; e != nil && (s.Credit < 0 || float64(s.Credit*milliPerToken) > e.credit+modelTol+milliPerToken) {
			m.t.Errorf("%s/%s reports %d of %s's credits; %.0f were granted and not used (%v)",
				s.EntityID, s.Resource, s.Credit, s.Limit.Name, e.credit/milliPerToken, m.now())
		}
		if e := envs[s.Limit.Name]; e != nil && float64(s.Available*milliPerToken) > e.level+modelTol+milliPerToken {
			m.t.Errorf("%s/%s reports %d of %s available; at most %.0f may legally be there (%v)",
				s.EntityID, s.Resource, s.Available, s.Limit.Name, e.level/milliPerToken, m.now())
			if os.Getenv("MODEL_TRACE") != "" {
				dst, _ := shard.Decode(m.e.item(s.EntityID, s.Resource, 0))
				m.t.Logf("status %+v; shard 0 holds %+v", s, dst.Limits)
			}
		}
	}
}

// request draws an acquire for entity from the limits in force now: small
// amounts, or (to exercise raised limits) a large part of a capacity.
func (m *model) request(entity string) limiter.Request {
	ls := m.resolvedAt(entity, m.now())
	consume := map[string]int64{}
	for _, l := range ls {
		if m.rng.IntN(2) == 0 {
			continue
		}
		if m.rng.IntN(3) == 0 {
			consume[l.Name] = max(1, l.Capacity/2+m.rng.Int64N(l.Capacity/2+1))
		} else {
			consume[l.Name] = 1 + m.rng.Int64N(max(1, l.Capacity/8))
		}
	}
	if len(consume) == 0 && len(ls) > 0 {
		consume[ls[0].Name] = 1
	}
	return limiter.Request{EntityID: entity, Resource: "r", Consume: consume}
}

func (m *model) acquire(p *proc, req limiter.Request) {
	lease, err := p.lim.Acquire(m.e.ctx, req)
	m.trace("acquire skew=%v %s %v: %v", p.skew, req.EntityID, req.Consume, err)
	if os.Getenv("MODEL_WATCH") == req.EntityID {
		dst, _ := shard.Decode(m.e.item(req.EntityID, "r", 0))
		m.trace("%s shard 0 holds %+v (now %d)", req.EntityID, dst.Limits, m.now().UnixMilli())
	}
	var ex *limits.ExceededError
	sure, maybe := m.blockedNow(req.EntityID)
	if err != nil {
		for _, b := range m.bucketsOf(req.EntityID) {
			m.synced(b, false) // a denial may have rewritten parameters
		}
	}
	switch {
	case err == nil && lease.Degraded():
		m.t.Errorf("a degraded (unchecked) lease on a reachable DynamoDB: %+v", req)
	case err == nil && sure:
		m.t.Errorf("admitted %+v although blocked for longer than the cache TTL (%v)", req, m.now())
	case errors.As(err, &ex) && ex.Reason == limits.ReasonBlocked:
		m.stats["blocked"]++
		if !maybe {
			m.t.Errorf("%+v denied as blocked (%s) but not blocked within the cache TTL (%v)", req, ex.Blocked, m.now())
		}
	case err == nil:
		m.stats["admitted"]++
		m.charge(lease.Entries(), nil, true, "acquire")
		if m.rng.IntN(2) == 0 {
			m.leases = append(m.leases, &leaseRec{lease: lease, proc: p, req: req})
		}
	case errors.As(err, &ex):
		m.stats["denied"]++
		if ex.Reason == limits.ReasonCached {
			m.stats["cached"]++
		}
	case errors.Is(err, limits.ErrInvalid):
		m.stats["invalid"]++ // a stale config names other limits
	default:
		m.t.Errorf("acquire %+v: %v", req, err)
	}
}

func (m *model) leaseOp() {
	if len(m.leases) == 0 {
		return
	}
	i := m.rng.IntN(len(m.leases))
	lr := m.leases[i]
	before := lr.lease.Entries()
	names := map[string]bool{}
	for _, en := range before {
		for n := range en.Limits {
			names[en.Limits[n].Name] = true
		}
	}
	sorted := make([]string, 0, len(names))
	for n := range names {
		sorted = append(sorted, n)
	}
	sort.Strings(sorted)
	name := sorted[m.rng.IntN(len(sorted))]
	var err error
	op := m.rng.IntN(6)
	defer func() { m.trace("lease op %d (%s) on %v: %v -> %v", op, name, before, err, lr.lease.Entries()) }()
	switch op {
	case 0, 1: // checked: against the limits in force now
		err = lr.lease.Consume(m.e.ctx, map[string]int64{name: 1 + m.rng.Int64N(20)})
		var ex *limits.ExceededError
		if errors.As(err, &ex) || errors.Is(err, limits.ErrInvalid) {
			m.stats["consume denied"]++
			for _, en := range before {
				m.synced(bkey{en.EntityID, en.Resource}, false)
			}
			return
		}
		if err == nil {
			m.stats["consume"]++
			m.charge(lr.lease.Entries(), consumedOf(before), true, "lease consume")
		}
	case 2: // unchecked, into debt maybe
		err = lr.lease.Adjust(m.e.ctx, map[string]int64{name: m.rng.Int64N(50)})
		if err == nil {
			m.stats["adjust"]++
			m.charge(lr.lease.Entries(), consumedOf(before), false, "adjust")
		}
	case 3: // give some back
		var held int64
		for _, en := range before {
			held = max(held, en.Consumed[name]/milliPerToken)
		}
		err = lr.lease.Release(m.e.ctx, map[string]int64{name: m.rng.Int64N(held + 1)})
		if err == nil {
			m.stats["release"]++
			m.charge(lr.lease.Entries(), consumedOf(before), false, "release")
		} else if errors.Is(err, limits.ErrInvalid) {
			err = nil // a cascade holds less of it on one bucket
		}
	case 4:
		err = lr.lease.Rollback(m.e.ctx)
		if err == nil {
			m.stats["rollback"]++
			after := lr.lease.Entries()
			m.charge(after, consumedOf(before), false, "rollback")
		}
		m.leases = append(m.leases[:i], m.leases[i+1:]...)
	default:
		require.NoError(m.t, lr.lease.Commit(m.e.ctx))
		m.leases = append(m.leases[:i], m.leases[i+1:]...)
	}
	if err != nil && !errors.Is(err, limits.ErrInvalid) {
		m.t.Errorf("lease op: %v", err)
	}
}

// blockedNow reports whether entity (or the parent it cascades to) was
// blocked during the whole of the last cache TTL (sure), and at any instant
// of it (maybe).
func (m *model) blockedNow(entity string) (sure, maybe bool) {
	from := m.now().Add(-staleness)
	for _, ent := range []string{entity, m.parent[entity]} {
		state, changed := false, false
		for _, b := range m.blocks[ent] {
			if b.at.After(from) {
				changed = true
				maybe = maybe || b.blocked
			} else {
				state = b.blocked
			}
		}
		maybe = maybe || state
		sure = sure || state && !changed
	}
	return sure, maybe
}

// block blocks or unblocks a random entity (the admin's store).
func (m *model) block() {
	ent := modelEntities[m.rng.IntN(len(modelEntities))]
	h := m.blocks[ent]
	if len(h) > 0 && h[len(h)-1].blocked {
		_, _, err := m.admin.UnblockEntity(m.e.ctx, ent)
		require.NoError(m.t, err)
		m.blocks[ent] = append(h, blockRec{at: m.now()})
	} else {
		_, err := m.admin.BlockEntity(m.e.ctx, ent, time.Time{})
		require.NoError(m.t, err)
		m.blocks[ent] = append(h, blockRec{at: m.now(), blocked: true})
	}
	m.trace("block %s: %v", ent, m.blocks[ent][len(m.blocks[ent])-1].blocked)
	m.stats["block"]++
}

// grant adds credits to a random limit of a random bucket; reset fills a
// random bucket (both by a random process, with its own config).
func (m *model) grantOrReset() {
	ent := modelEntities[m.rng.IntN(len(modelEntities))]
	p := m.procs[m.rng.IntN(len(m.procs))]
	b := bkey{ent, "r"}
	cur := m.resolvedAt(ent, m.now())
	if len(cur) == 0 {
		return
	}
	if m.rng.IntN(2) == 0 {
		l := cur[m.rng.IntN(len(cur))]
		g := 1 + m.rng.Int64N(l.Capacity)
		_, err := p.lim.Grant(m.e.ctx, ent, "r", map[string]int64{l.Name: g})
		m.trace("grant %s %s %d: %v", ent, l.Name, g, err)
		if errors.Is(err, limits.ErrInvalid) {
			return // a stale config names other limits
		}
		require.NoError(m.t, err)
		envs := m.envelopeOf(b, m.permissive(ent))
		if envs[l.Name] == nil {
			envs[l.Name] = &envelope{last: m.now().Add(maxSkew)}
		}
		envs[l.Name].credit += float64(g * milliPerToken)
		m.stats["grant"]++
		return
	}
	_, err := p.lim.Reset(m.e.ctx, ent, "r", nil)
	m.trace("reset %s: %v", ent, err)
	if errors.Is(err, limits.ErrInvalid) {
		return
	}
	require.NoError(m.t, err)
	at := m.now().Add(maxSkew)
	for _, en := range m.envelopeOf(b, m.permissive(ent)) {
		en.level = en.limit(at) // full, whatever it held
	}
	m.stats["reset"]++
}

// expire deletes, as TTL would, every shard item whose ttl has passed.
func (m *model) expire() {
	for _, ent := range modelEntities {
		for j := range limiter.MaxShards {
			it := m.e.item(ent, "r", j)
			if it == nil {
				if j > 0 {
					break
				}
				continue
			}
			if ttl, ok := it[schema.TTL]; ok {
				if v, _ := strconv.ParseInt(attrN(ttl), 10, 64); v > 0 && v < m.now().Unix() {
					m.e.deleteShard(ent, "r", j)
					if j == 0 {
						for _, en := range m.env[bkey{ent, "r"}] {
							en.established = false // the bucket starts over
						}
					}
					m.tainted[bkey{ent, "r"}] = true
					m.stats["expired"]++
				}
			}
		}
	}
}

// upkeep grows or shrinks a random bucket as the refill function does
// (splits and merges conserve tokens, or lose some, never mint).
func (m *model) upkeep() {
	ent := modelEntities[m.rng.IntN(len(modelEntities))]
	it := m.e.item(ent, "r", 0)
	if it == nil {
		return
	}
	count, _ := strconv.Atoi(attrN(it[schema.AttrShardCount]))
	b := shard.ID{Namespace: m.e.ns.ID, Entity: ent, Resource: "r"}
	if m.rng.IntN(2) == 0 {
		n, err := m.procs[0].lim.Grow(m.e.ctx, b, max(count, 1))
		require.NoError(m.t, err)
		m.tainted[bkey{ent, "r"}], m.split[bkey{ent, "r"}] = true, true
		m.stats["grow splits"] += n
	} else {
		n, err := m.procs[0].lim.Shrink(m.e.ctx, m.e.db, b)
		require.NoError(m.t, err)
		m.stats["merges"] += n
	}
	m.trace("upkeep %s", ent)
}

// split spends a random bucket's write budget: its next write grows the
// shards.
func (m *model) spend() {
	ent := modelEntities[m.rng.IntN(len(modelEntities))]
	if m.e.item(ent, "r", 0) == nil {
		return
	}
	m.e.spendWCU(ent, "r", 0)
	m.tainted[bkey{ent, "r"}] = true
	m.split[bkey{ent, "r"}] = true
	m.stats["split"]++
}

// war is a concurrent round on one bucket by every process, each with its
// own slightly different limits (as caches disagree), allow on unavailable:
// contention must never admit unchecked, and the sum admitted must fit.
func (m *model) war(round int) {
	entity := "w" + strconv.Itoa(round%3)
	b := bkey{entity, "r"}
	m.tainted[b] = true
	base := 5 + m.rng.Int64N(60)
	var sets [][]limits.Limit
	perms := map[string]perm{}
	for i := range m.procs {
		ls := []limits.Limit{{Name: "a", Capacity: base + int64(i), RefillAmount: 1 + int64(i), RefillPeriodSeconds: 3600}}
		sets = append(sets, ls)
		c, r := float64(ls[0].Capacity*milliPerToken), float64(ls[0].RefillAmount*milliPerToken)/3.6e6
		perms["a"] = perm{capacity: max(perms["a"].capacity, c), rate: max(perms["a"].rate, r)}
	}
	envs := m.envelopeOf(b, perms)
	var mu sync.Mutex
	var admitted float64
	var wg sync.WaitGroup
	for g := range 12 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := m.procs[g%len(m.procs)]
			for range 4 {
				lease, err := p.lim.Acquire(context.Background(), limiter.Request{EntityID: entity, Resource: "r",
					Consume: map[string]int64{"a": 1 + int64(g%3)}, Limits: sets[g%len(m.procs)], OnUnavailable: limits.Allow})
				var ex *limits.ExceededError
				switch {
				case err == nil:
					mu.Lock()
					admitted += float64((1 + g%3) * milliPerToken)
					if lease.Degraded() {
						m.stats["degraded"]++
					}
					mu.Unlock()
				case errors.As(err, &ex):
				default:
					m.t.Errorf("war acquire: %v", err)
				}
			}
		}()
	}
	wg.Wait()
	e := envs["a"]
	if admitted > e.level+modelTol {
		m.t.Errorf("concurrent round on %s admitted %.0f; at most %.0f may legally be there", entity, admitted/milliPerToken, e.level/milliPerToken)
	}
	e.level -= admitted
	if m.stats["degraded"] > 0 {
		m.t.Errorf("%d degraded (unchecked) leases on a reachable DynamoDB under contention", m.stats["degraded"])
		m.stats["degraded"] = 0
	}
	m.stats["war"]++
}

// dormant: two processes bring their own limits for one bucket, one with a
// limit per minute, the other with the same limit per day, each then drops it
// (it stays on the item, dormant); the first process, whose cache shows the
// per-minute limit, asks for all of it a second after the other drained it.
func (m *model) dormant(round int) {
	entity := "d" + strconv.Itoa(round%2)
	b := bkey{entity, "r"}
	m.tainted[b] = true
	n := 100 + m.rng.Int64N(900)
	base := limits.PerMinute("rpm", 1000, 0)
	perMin := []limits.Limit{base, limits.PerMinute("x", n, 0)}
	perDay := []limits.Limit{base, limits.PerDay("x", n, 0)}
	only := []limits.Limit{base}
	a, c := m.procs[1], m.procs[2]
	step := func(p *proc, ls []limits.Limit, consume map[string]int64) {
		m.overrides[entity] = append(m.overrides[entity], configRec{at: m.now(), limits: ls})
		lease, err := p.lim.Acquire(m.e.ctx, limiter.Request{EntityID: entity, Resource: "r", Consume: consume, Limits: ls})
		m.trace("dormant %s %v %v: %v", entity, ls, consume, err)
		if err == nil {
			m.charge(lease.Entries(), nil, true, "acquire with its own limits")
		}
	}
	step(a, perMin, map[string]int64{"rpm": 1})
	step(a, only, map[string]int64{"rpm": 1})
	step(c, perDay, map[string]int64{"rpm": 1})
	step(c, perDay, map[string]int64{"x": n - 2}) // (less a grid step)
	step(c, only, map[string]int64{"rpm": 1})
	m.e.clock.Advance(time.Second)
	step(a, perMin, map[string]int64{"x": n - 2})
	m.stats["dormant"]++
}

// lowered lowers a bucket's limits under a lease taken before, then keeps
// using both: the lease's checked consumes must take the limits in force,
// never put the old ones back.
func (m *model) lowered() {
	ent := []string{"u1", "u2"}[m.rng.IntN(2)]
	cur := m.resolvedAt(ent, m.now())
	if len(cur) == 0 {
		return
	}
	name := cur[m.rng.IntN(len(cur))].Name
	p := m.procs[m.rng.IntN(len(m.procs))]
	lease, err := p.lim.Acquire(m.e.ctx, limiter.Request{EntityID: ent, Resource: "r", Consume: map[string]int64{name: 1}})
	if err != nil {
		return
	}
	m.charge(lease.Entries(), nil, true, "acquire")
	lower := append([]limits.Limit(nil), cur...)
	for i := range lower {
		d := int64(2 + m.rng.IntN(10))
		lower[i].Capacity = max(1, lower[i].Capacity/d)
		lower[i].RefillAmount = max(1, lower[i].RefillAmount/d)
	}
	m.setConfig("entity:"+ent, lower)
	m.e.clock.Advance(staleness)
	for range 10 {
		m.e.clock.Advance(time.Duration(1+m.rng.IntN(10)) * time.Second)
		before := lease.Entries()
		if err := lease.Consume(m.e.ctx, map[string]int64{name: 1}); err == nil {
			m.charge(lease.Entries(), consumedOf(before), true, "lease consume")
		} else {
			for _, en := range before {
				m.synced(bkey{en.EntityID, en.Resource}, false)
			}
		}
		m.acquire(m.procs[m.rng.IntN(len(m.procs))], m.request(ent))
	}
	m.leases = append(m.leases, &leaseRec{lease: lease, proc: p})
	m.stats["lowered"]++
}

func (m *model) run(rounds int) {
	for round := range rounds {
		if m.t.Failed() {
			return
		}
		switch r := m.rng.IntN(100); {
		case r < 50:
			ent := modelEntities[m.rng.IntN(len(modelEntities))]
			m.acquire(m.procs[m.rng.IntN(len(m.procs))], m.request(ent))
		case r < 72:
			m.leaseOp()
		case r < 80:
			ent := modelEntities[m.rng.IntN(len(modelEntities))]
			level := "entity:" + ent
			if m.rng.IntN(3) == 0 {
				level = "resource:r"
			}
			cur := m.resolvedAt(ent, m.now())
			if h := m.hist[level]; level == "entity:"+ent && m.rng.IntN(5) == 0 && len(h) > 0 && h[len(h)-1].limits != nil {
				m.setConfig(level, nil) // back to the resource defaults
			} else {
				m.setConfig(level, m.randomLimits(cur))
			}
		case r < 92:
			m.e.clock.Advance(time.Duration(m.rng.Int64N(int64(20 * time.Second))))
		case r < 94:
			if m.rng.IntN(3) == 0 {
				m.block()
			} else {
				m.grantOrReset()
			}
		case r < 96:
			m.e.clock.Advance(time.Duration(60+m.rng.IntN(120)) * time.Second)
		case r < 97:
			// To a few seconds before a calendar boundary (a day, a week
			// or a month away at most), where skewed clocks disagree.
			period := []int64{bucket.CalendarDay, bucket.CalendarWeek, bucket.CalendarMonth}[m.rng.IntN(3)]
			next := time.UnixMilli(bucket.Next(period, m.now().UnixMilli()))
			m.e.clock.Set(next.Add(-time.Duration(m.rng.Int64N(int64(3 * maxSkew)))))
			m.expire()
		case r < 98:
			m.e.clock.Advance(time.Duration(1+m.rng.IntN(30)) * time.Hour)
			m.expire()
		case r < 99:
			switch m.rng.IntN(8) {
			case 0:
				m.spend()
			case 1:
				m.lowered()
			case 2:
				m.dormant(round)
			case 3, 4:
				m.grantOrReset()
			case 5:
				m.block()
			default:
				m.upkeep()
			}
		default:
			m.war(round)
		}
		if w := os.Getenv("MODEL_WATCH"); w != "" {
			if it := m.e.item(w, "r", 0); it != nil {
				line := fmt.Sprintf("watch %s: pv=%v pe=%v wt=%v", w, attrS(it["pv"]), attrN(it["pe"]), attrN(it["wt"]))
				for _, n := range []string{"a", "b", "x"} {
					if _, ok := it["b_"+n+"_w"]; ok {
						line += fmt.Sprintf(" %s=[cp %v ra %v rp %v w %v cr %v]", n, attrN(it["b_"+n+"_cp"]), attrN(it["b_"+n+"_ra"]),
							attrN(it["b_"+n+"_rp"]), attrN(it["b_"+n+"_w"]), attrN(it["b_"+n+"_cr"]))
					}
				}
				m.trace("%s", line)
			}
		}
		if round%5 == 0 {
			m.checkAvailable(modelEntities[m.rng.IntN(len(modelEntities))])
		}
	}
	m.settle()
	keys := make([]string, 0, len(m.stats))
	for k := range m.stats {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var line string
	for _, k := range keys {
		line += fmt.Sprintf(" %s=%d", k, m.stats[k])
	}
	m.t.Logf("ops:%s", line)
}

// settle: leases closed, config left alone for longer than any cache, every
// bucket refilled; then on each untainted bucket a request of most of a
// limit's capacity is admitted once its denial's retry-after has passed
// (a change of limits reaches a bucket that only sees denials).
func (m *model) settle() {
	for _, lr := range m.leases {
		_ = lr.lease.Commit(m.e.ctx)
	}
	m.leases = nil
	for ent, h := range m.blocks {
		if h[len(h)-1].blocked {
			_, _, err := m.admin.UnblockEntity(m.e.ctx, ent)
			require.NoError(m.t, err)
			m.blocks[ent] = append(h, blockRec{at: m.now()})
		}
	}
	m.e.clock.Advance(staleness + 2*time.Minute)
	for _, ent := range []string{"u1", "u2"} {
		b := bkey{ent, "r"}
		if m.tainted[b] {
			continue
		}
		ls := m.resolvedAt(ent, m.now())
		for _, l := range ls {
			n := max(1, l.Capacity*9/10)
			req := limiter.Request{EntityID: ent, Resource: "r", Consume: map[string]int64{l.Name: n}}
			var err error
			for attempt := range 4 {
				_, err = m.procs[m.rng.IntN(len(m.procs))].lim.Acquire(m.e.ctx, req)
				var ex *limits.ExceededError
				if !errors.As(err, &ex) {
					break
				}
				require.True(m.t, ex.Retryable(), "%d of %s fits its capacity %d", n, l.Name, l.Capacity)
				wait := ex.RetryAfter() + maxSkew + time.Second
				m.e.clock.Advance(wait)
				m.stats["settle wait"]++
				_ = attempt
			}
			if err != nil {
				m.t.Errorf("settle: %s/r asks %d of %s (capacity %d, rate %d/%ds): still denied after the promised waits: %v",
					ent, n, l.Name, l.Capacity, l.RefillAmount, l.RefillPeriodSeconds, err)
				continue
			}
			m.stats["settled"]++
			m.e.clock.Advance(time.Duration(l.RefillPeriodSeconds) * time.Second * time.Duration(1+l.Capacity/l.RefillAmount))
		}
	}
}

func attrN(v any) string {
	if n, ok := v.(*types.AttributeValueMemberN); ok {
		return n.Value
	}
	return ""
}

func attrS(v any) string {
	if x, ok := v.(*types.AttributeValueMemberS); ok {
		return x.Value
	}
	return ""
}
