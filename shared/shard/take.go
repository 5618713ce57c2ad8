package shard

import (
	"fmt"
	"maps"

	"github.com/zeroae/zae-limiter-go/shared/bucket"
	"github.com/zeroae/zae-limiter-go/shared/dynamo"
	"github.com/zeroae/zae-limiter-go/shared/limits"
	"github.com/zeroae/zae-limiter-go/shared/schema"
)

// Config is what an acquire wants a shard item to carry.
type Config struct {
	// Level is the level the writer expects the shard at when it knows
	// nothing of it (the bucket's shard count); a known shard is written at
	// its own level.
	Level int
	// Limits are the configured limits' whole-limit parameters, in
	// millitokens and milliseconds (the write budget is added by the planner).
	Limits map[string]bucket.Params
	// Version is the config version they were resolved at (0: the request's
	// own limits, which are not ordered against stored config).
	Version int64
	// Shadow names the shadow limits (ADR-031): counted, never denying.
	Shadow map[string]bool
}

// ConfigOf converts limits to a Config.
func ConfigOf(ls []limits.Limit, level int, version int64) Config {
	c := Config{Level: level, Limits: make(map[string]bucket.Params, len(ls)), Version: version}
	for _, l := range ls {
		c.Limits[l.Name] = ParamsOf(l)
		if l.Shadow {
			if c.Shadow == nil {
				c.Shadow = map[string]bool{}
			}
			c.Shadow[l.Name] = true
		}
	}
	return c
}

// ParamsOf is a limit's parameters in millitokens and milliseconds; a
// calendar limit's period is its calendar code (ADR-029).
func ParamsOf(l limits.Limit) bucket.Params {
	p := bucket.Params{Capacity: l.Capacity * Milli, RefillAmount: l.RefillAmount * Milli, RefillPeriod: l.RefillPeriodSeconds * 1000}
	switch l.Calendar {
	case limits.CalendarDay:
		p.RefillPeriod = bucket.CalendarDay
	case limits.CalendarWeek:
		p.RefillPeriod = bucket.CalendarWeek
	case limits.CalendarMonth:
		p.RefillPeriod = bucket.CalendarMonth
	}
	return p
}

// All is the configured limits plus the write budget: every limit the
// planner puts on an item.
func (c Config) All() map[string]bucket.Params {
	out := make(map[string]bucket.Params, len(c.Limits)+1)
	for k, v := range c.Limits {
		out[k] = v
	}
	out[Budget] = BudgetParams
	return out
}

// Differs reports whether st lacks a configured limit or stores one with
// other parameters (dormant limits do not count).
func (c Config) Differs(st *State) bool {
	for name, p := range c.All() {
		if l, ok := st.Limits[name]; !ok || l.Params != p {
			return true
		}
	}
	return false
}

// Take is one checked consumption.
type Take struct {
	// Amounts are millitokens per configured limit, each > 0.
	Amounts map[string]int64
	// Budget charges the shard's write budget too.
	Budget bool
	// Now is the writer's clock (Unix ms).
	Now int64
	// Grid is a limit's booking grid in millitokens (nil: exact, 1).
	Grid func(bucket.Params) int64
	// Judge is the state a failed write of this very acquire returned
	// (exact, nil when none): a request it cannot take is denied without
	// another write. A cached state may be stale (another process may have
	// returned tokens), so with a cached state alone the write is sent and
	// its condition decides. The write itself is always planned from the
	// state passed to PlanTake (the cache, with this process's writes in
	// flight projected onto it, predicts the forms best).
	Judge *State
	// Ordered makes a writer with an older config than the item's defer to
	// it (Newer) instead of rewriting its parameters.
	Ordered bool
	// TTLMultiplier: see Expiry.
	TTLMultiplier int
}

// Verdict is what PlanTake tells the caller to do.
type Verdict int

const (
	// Write: send Plan.Update; success admits, a failed condition returns
	// the item to plan again from.
	Write Verdict = iota
	// SyncOnly: the request does not fit, but the item's parameters are
	// not the configured ones: send Plan.Update (parameters only), then
	// deny, judged on the state it leaves (Plan.Next). A change of limits so
	// reaches a bucket that only sees denials.
	SyncOnly
	// Deny: the exact state cannot admit the request; nothing to write.
	// Plan.Next is the state to judge and report.
	Deny
	// Never: an amount is above what a shard can ever hold at the
	// configured limits; nothing to write.
	Never
	// OutOfBudget: the request fits but the shard's write budget is spent
	// (exact state): the caller grows the shard count.
	OutOfBudget
	// Newer: the item's parameters come from a newer config than the
	// writer's: refresh the config and plan again.
	Newer
)

func (v Verdict) String() string {
	return [...]string{"write", "sync-only", "deny", "never", "out-of-budget", "newer"}[v]
}

// Plan is one planned write.
type Plan struct {
	Update *dynamo.Update
	// Next is the state the write leaves if it succeeds (for Deny and
	// Never: the state to judge, with the configured parameters carried).
	Next *State
	// Marks record what the write assumed of each limit it takes from, so a
	// cache that projected it can take it back out.
	Marks map[string]Mark
	// Credits are the millitokens the write takes from credit balances
	// (ADR-030), per limit: the bucket could not take them.
	Credits map[string]int64
	// Shadowed are the shadow limits that would have denied the request
	// (not taken, counted in SD), each with the wait it would have named
	// (ms).
	Shadowed map[string]int64
}

// Mark is what a planned write does to a limit's virtual time: the busy
// form's ADD, or the idle form's SET when Add is 0.
type Mark struct{ Add, Set int64 }

// PlanTake plans a checked consumption on shard id from st (nil or !Exists:
// unknown or missing; shard 0 is then created by the same write). It is
// pure: every decision is argued on st, cfg and tk.
//
// The write is conditioned on the item's parameter fingerprint PV (every
// limit on it, dormant ones and the level included) and, per limit taken
// from, on the form predicted from st: busy (W ahead of the booking instant)
// ADDs n if W is still ahead and W+n stays within clock+capacity; idle SETs
// W to the booking instant + n if W is still at or behind it. When the
// configured parameters differ from the item's, the same write rewrites them
// (Carry), each limit keeping its token count, clamped to the new capacity.
func PlanTake(id ID, st *State, cfg Config, tk Take) (Plan, Verdict, error) {
	known := st != nil && st.Exists
	if known {
		// A shard is written at its own level, whatever the bucket's shard
		// count: its share is what it holds. (A shard below the count is
		// split when its missing twin is first picked; one above it is being
		// merged back.)
		cfg.Level = st.Level
	}
	for name, amt := range tk.Amounts {
		p, ok := cfg.Limits[name]
		if !ok {
			// The config read afresh (a newer version on the item) may no
			// longer have a limit the caller resolved: its input, now invalid.
			return Plan{}, 0, limits.Invalid("consume", name, fmt.Sprintf("no limit %q is configured for %s/%s now", name, id.Entity, id.Resource))
		}
		if amt <= 0 {
			return Plan{}, 0, limits.Invalid("consume."+name, fmt.Sprint(amt), "must be positive")
		}
		if cost := Cost(name, amt, cfg.Level); cost > p.Capacity && !cfg.Shadow[name] && !credited(st, name, cost) {
			// More than the bucket ever holds, and (as far as this state
			// shows) more than its credits: a shadow limit only reports it.
			next := st
			if known && cfg.Differs(st) {
				next = Carry(st, cfg, tk.Now)
			}
			return Plan{Next: next}, Never, nil
		}
	}
	sync := known && cfg.Differs(st)
	if sync && tk.Ordered && cfg.Version > 0 && st.PE > cfg.Version {
		return Plan{Next: st}, Newer, nil
	}
	if j := tk.Judge; j != nil && j.Exists && j.Level == st.Level {
		judged := j
		if cfg.Differs(j) {
			judged = Carry(j, cfg, tk.Now)
		}
		if !cfg.fits(judged, tk.Amounts, cfg.Level, tk.Now) {
			if cfg.Differs(j) {
				return planSync(id, j, cfg, tk), SyncOnly, nil
			}
			return Plan{Next: judged}, Deny, nil
		}
		if tk.Budget && !budgetFits(j, tk.Now) {
			return Plan{Next: judged}, OutOfBudget, nil
		}
	}
	if sync && !cfg.fits(Carry(st, cfg, tk.Now), tk.Amounts, cfg.Level, tk.Now) {
		// What the item holds under the new parameters cannot take the
		// request: write the parameters alone, then deny. (Judged on a
		// cached state this may deny a request another process's refund
		// would have let through: conservative, and the write's condition
		// still checks the state it assumed.)
		return planSync(id, st, cfg, tk), SyncOnly, nil
	}
	plan := planWrite(id, st, known, sync, cfg, tk)
	if n := plan.Update.Size(); n > dynamo.MaxExpressionSize {
		// limits.MaxLimits keeps every write far below this: a request
		// that got here anyway is the caller's input, never an outage.
		return Plan{}, 0, limits.Invalid("limits", fmt.Sprintf("%d limits", len(cfg.Limits)),
			fmt.Sprintf("the write for bucket %s would be %d bytes, above DynamoDB's %d", id.Bucket(), n, dynamo.MaxExpressionSize))
	}
	return plan, Write, nil
}

// fits reports whether every amount of a limit that can deny (shadow
// limits never do) can be taken from st (configured parameters) at now:
// from the bucket, or else from its credits.
func (c Config) fits(st *State, amounts map[string]int64, level int, now int64) bool {
	for name, amt := range amounts {
		if c.Shadow[name] {
			continue
		}
		l, ok := st.Limits[name]
		if !ok || !takes(l, Cost(name, amt, level), now) && l.CR < Cost(name, amt, level) {
			return false
		}
	}
	return true
}

// takes reports whether the bucket of l alone can take cost now.
func takes(l Limit, cost, now int64) bool {
	_, ok := bucket.Take(l.W, bucket.Clock(l.Params, now), cost, l.Params)
	return ok
}

// credited reports whether st shows credits of name that cover cost.
func credited(st *State, name string, cost int64) bool {
	return st != nil && st.Limits[name].CR >= cost
}

// planWrite builds the take (and, with sync, the parameter rewrite).
func planWrite(id ID, st *State, known, sync bool, cfg Config, tk Take) Plan {
	u := &dynamo.Update{}
	base := st
	if !known {
		base = &State{Level: cfg.Level, Limits: map[string]Limit{}}
	}
	next := base.Clone()
	next.Exists = true
	marks := map[string]Mark{}
	want := cfg.All()
	now := tk.Now

	charge := tk.Amounts
	if tk.Budget {
		charge = make(map[string]int64, len(tk.Amounts)+1)
		for k, v := range tk.Amounts {
			charge[k] = v
		}
		charge[Budget] = BudgetCost
	}
	charge, shadowed := cfg.judgeShadow(base, charge, now)
	credits := map[string]int64{}
	at, rebase := budgetAnchor(st, now)
	for _, name := range sortedNames(charge) {
		p := want[name]
		n := Cost(name, charge[name], cfg.Level)
		w := schema.BucketAttr(name, schema.SuffixVirtualTime)
		cur, had := base.Limits[name]
		switch {
		case sync && (!had || cur.Params != p):
			carried, _ := carryLimit(cur, had, p, now)
			if !cfg.Shadow[name] && !takes(Limit{W: carried, Params: p}, n, now) && cur.CR >= n {
				// The carried bucket cannot take it, its credits can
				// (the carry is conditioned; the credit alone pays).
				cur.W = resync(u, w, cur, had, p, 0, now, true)
				cur.CR = payCredit(u, name, cur.CR, n)
				credits[name] = charge[name]
			} else {
				cur.W = resync(u, w, cur, had, p, n, now, !cfg.Shadow[name])
			}
			marks[name] = Mark{Set: cur.W}
		case cfg.Shadow[name]:
			// Never denying: judged above on the state planned from, and
			// taken in the forms of a checked limit without their upper
			// bound. Their other conditions only say the form was right
			// (a failed one returns the item to plan again from): W stays
			// exact, never lowered (another process may enforce the
			// limit: a SET over a booking would mint for it) nor a take
			// absorbed by refill the bucket could not hold.
			c := bucket.Clock(p, now)
			chi := bucket.CeilTo(c, grid(tk.Grid, p))
			if had && cur.W > chi {
				u.If("$ > ?", w, chi)
				u.Add(w, n)
				cur.W += n
				marks[name] = Mark{Add: n}
			} else {
				u.If("$ <= ?", w, chi)
				u.Set(w, chi+n)
				cur.W = chi + n
				marks[name] = Mark{Set: cur.W}
			}
		case had && !takes(cur, n, now) && cur.CR >= n:
			// Paid by credits (ADR-030): the bucket cannot take it (the
			// complement of the busy form's bound), its credits can. W
			// stays as it is.
			if n <= p.Capacity {
				c := bucket.Clock(p, now)
				u.If("$ > ?", w, c+p.Capacity-n)
			}
			cur.CR = payCredit(u, name, cur.CR, n)
			credits[name] = charge[name]
		case name == Budget:
			c := bucket.Clock(p, at)
			switch {
			case rebase:
				// The item's writer time is far ahead of any sane clock:
				// start the budget over at this writer's.
				u.If("$ = ?", schema.AttrWriterTime, st.WT)
				u.Set(w, c+n)
				cur.W = c + n
				marks[name] = Mark{Set: cur.W}
			case had && cur.W > c-p.Capacity/2:
				// A soft trigger for sharding, not a user limit: it needs
				// only an upper bound, so it takes the busy form unless idle
				// for long (carrying at most half a second of unused
				// budget), and never makes concurrent writers collide.
				u.If("$ <= ?", w, c+p.Capacity-n)
				u.Add(w, n)
				cur.W += n
				marks[name] = Mark{Add: n}
			default:
				u.If("$ <= ?", w, c)
				u.Set(w, c+n)
				cur.W = c + n
				marks[name] = Mark{Set: cur.W}
			}
		default:
			c := bucket.Clock(p, now)
			chi := bucket.CeilTo(c, grid(tk.Grid, p))
			if had && cur.W > chi {
				// Busy: exact and commutative.
				u.If("$ > ? AND $ <= ?", w, chi, w, c+p.Capacity-n)
				u.Add(w, n)
				cur.W += n
				marks[name] = Mark{Add: n}
			} else {
				// Idle: book at the grid instant (never earlier than now).
				b := min(chi, c+p.Capacity-n)
				u.If("$ <= ?", w, b)
				u.Set(w, b+n)
				cur.W = b + n
				marks[name] = Mark{Set: cur.W}
			}
		}
		cur.Params = p
		if name != Budget {
			u.Add(schema.BucketAttr(name, schema.SuffixConsumed), charge[name])
			cur.TC += charge[name]
		}
		next.Limits[name] = cur
	}
	if sync {
		syncRest(u, st, next, cfg, charge, now)
	}
	for _, name := range sortedNames(shadowed) {
		// A shadow limit's would-be denial is counted on the item.
		u.Add(schema.BucketAttr(name, schema.SuffixShadow), 1)
		l := next.Limits[name]
		l.SD++
		next.Limits[name] = l
	}
	if tk.Budget || rebase {
		u.Set(schema.AttrWriterTime, at)
		next.WT = at
	}
	setExpiry(u, id, next, now, tk.TTLMultiplier)
	pv := Fingerprint(want, cfg.Level)
	if known {
		pv = st.PV
	}
	u.If("$ = ?", schema.AttrParams, pv)
	if !known && id.Shard == 0 {
		creation(u, id, cfg, charge, now)
		u.OrIfNotExists(schema.PK)
		next.Level, next.Count, next.PV, next.PE, next.Gen = cfg.Level, max(base.Count, 1), pv, cfg.Version, now
	}
	return Plan{Update: u, Next: next, Marks: marks, Credits: credits, Shadowed: shadowed}
}

// payCredit takes n (cost units) from a limit's credit balance cr, on
// condition that it holds them, and returns the balance left.
func payCredit(u *dynamo.Update, name string, cr, n int64) int64 {
	attr := schema.BucketAttr(name, schema.SuffixCredit)
	u.If("$ >= ?", attr, n)
	u.Add(attr, -n)
	return cr - n
}

// judgeShadow decides, on the state planned from (the configured
// parameters carried), which shadow limits would deny their amount: those
// are not taken (ADR-031). It returns charge without them, and each with
// the wait (ms) its denial would have named.
func (c Config) judgeShadow(base *State, charge map[string]int64, now int64) (map[string]int64, map[string]int64) {
	var shadowed map[string]int64
	var judged *State
	for _, name := range sortedNames(charge) {
		if !c.Shadow[name] {
			continue
		}
		if judged == nil {
			judged = Carry(base, c, now)
		}
		l, cost := judged.Limits[name], Cost(name, charge[name], base.Level)
		if takes(l, cost, now) {
			continue
		}
		if shadowed == nil {
			shadowed = map[string]int64{}
			charge = maps.Clone(charge)
		}
		shadowed[name] = bucket.Wait(l.W, cost, l.Params, now)
		delete(charge, name)
	}
	return charge, shadowed
}

// planSync rewrites the configured parameters without taking anything.
func planSync(id ID, st *State, cfg Config, tk Take) Plan {
	u := &dynamo.Update{}
	next := st.Clone()
	syncRest(u, st, next, cfg, nil, tk.Now)
	setExpiry(u, id, next, tk.Now, tk.TTLMultiplier)
	u.If("$ = ?", schema.AttrParams, st.PV)
	return Plan{Update: u, Next: next}
}

// syncRest rewrites every configured limit that charge did not already
// (carrying its tokens), the parameters of every changed limit, and the
// fingerprint. Dormant limits stay on the item, unchecked: if one comes
// back its tokens carry over instead of starting full (which would mint).
func syncRest(u *dynamo.Update, st, next *State, cfg Config, charge map[string]int64, now int64) {
	want := cfg.All()
	for _, name := range sortedNames(want) {
		p := want[name]
		cur, had := st.Limits[name]
		if had && cur.Params == p {
			continue
		}
		if _, charged := charge[name]; !charged {
			cur.W = resync(u, schema.BucketAttr(name, schema.SuffixVirtualTime), cur, had, p, 0, now, true)
			cur.Params = p
			next.Limits[name] = cur
		}
		u.Set(schema.BucketAttr(name, schema.SuffixCapacity), p.Capacity)
		u.Set(schema.BucketAttr(name, schema.SuffixRefill), p.RefillAmount)
		u.Set(schema.BucketAttr(name, schema.SuffixPeriod), p.RefillPeriod)
	}
	next.PV = Fingerprint(next.Params(), st.Level)
	next.PE = cfg.Version
	u.Set(schema.AttrParams, next.PV)
	u.Set(schema.AttrParamsEpoch, cfg.Version)
}

// resync plans one limit whose parameters change from cur (absent when
// !had) to p, taking n (cost units, may be 0), and returns its new virtual
// time. The tokens held are carried over, clamped to the new capacity, debt
// kept; a new limit starts full. A limit at or behind its clamp point holds
// min(old capacity, new capacity) afterwards (SET); a busy one keeps its
// token count (ADD the shift between the two clocks). Either way no change
// of parameters, back and forth, ever adds tokens. Each form is conditioned
// on the item being as predicted; bounded false leaves out the bound on
// what is taken (a shadow limit, which never denies).
func resync(u *dynamo.Update, w string, cur Limit, had bool, p bucket.Params, n, now int64, bounded bool) int64 {
	next, form := carryLimit(cur, had, p, now)
	switch form {
	case formNew:
		u.Set(w, next+n)
	case formClamp:
		clamp := bucket.Clock(cur.Params, now) + max(0, cur.Params.Capacity-p.Capacity)
		u.If("$ <= ?", w, clamp)
		u.Set(w, next+n)
	case formShift:
		clamp := bucket.Clock(cur.Params, now) + max(0, cur.Params.Capacity-p.Capacity)
		shift := next - cur.W
		if n > 0 && bounded {
			u.If("$ > ? AND $ <= ?", w, clamp, w, bucket.Clock(p, now)+p.Capacity-n-shift)
		} else {
			u.If("$ > ?", w, clamp)
		}
		u.Add(w, shift+n)
	}
	return next + n
}

type carryForm int

const (
	formNew carryForm = iota
	formClamp
	formShift
)

// carryLimit is the virtual time a limit has under p once its parameters
// change from cur's, and the form of the write that does it.
func carryLimit(cur Limit, had bool, p bucket.Params, now int64) (int64, carryForm) {
	nc := bucket.Clock(p, now)
	if !had {
		return nc, formNew
	}
	c := bucket.Clock(cur.Params, now)
	clamp := c + max(0, cur.Params.Capacity-p.Capacity)
	if cur.W <= clamp {
		return nc + max(0, p.Capacity-cur.Params.Capacity), formClamp
	}
	shift := (nc - c) + (p.Capacity - cur.Params.Capacity)
	return cur.W + shift, formShift
}

// Carry is st with the configured parameters of cfg written as a take's
// sync would write them (no consumption): what the item holds under the new
// limits.
func Carry(st *State, cfg Config, now int64) *State {
	out := st.Clone()
	for name, p := range cfg.All() {
		cur, had := st.Limits[name]
		if had && cur.Params == p {
			continue
		}
		cur.W, _ = carryLimit(cur, had, p, now)
		cur.Params = p
		out.Limits[name] = cur
	}
	out.PV = Fingerprint(out.Params(), st.Level)
	out.PE = cfg.Version
	return out
}

func grid(g func(bucket.Params) int64, p bucket.Params) int64 {
	if g == nil {
		return 1
	}
	return max(1, g(p))
}

// creation adds what an upsert writes so that a new shard 0 is complete; on
// an existing item the same values are rewritten (or kept: if_not_exists).
func creation(u *dynamo.Update, id ID, cfg Config, charged map[string]int64, now int64) {
	u.Set(schema.AttrEntityID, id.Entity)
	u.Set(schema.AttrResource, id.Resource)
	u.Set(schema.AttrShard, id.Shard)
	u.Set(schema.AttrShardLevel, cfg.Level)
	u.Set(schema.AttrParams, Fingerprint(cfg.All(), cfg.Level))
	u.Set(schema.AttrParamsEpoch, cfg.Version)
	u.Set(schema.GSI3PK, schema.BucketGSI3PK(id.Namespace, id.Entity))
	u.Set(schema.GSI3SK, schema.BucketGSI3SK(id.Resource, id.Shard))
	u.Set(schema.GSI4PK, schema.NamespaceGSI4PK(id.Namespace))
	u.Set(schema.GSI4SK, schema.BucketGSI4SK(id.Resource, id.Entity, id.Shard))
	u.SetExpr(schema.AttrShardCount, "if_not_exists($, ?)", schema.AttrShardCount, 1)
	u.SetExpr(schema.AttrGeneration, "if_not_exists($, ?)", schema.AttrGeneration, now)
	all := cfg.All()
	for _, name := range sortedNames(all) {
		p := all[name]
		u.Set(schema.BucketAttr(name, schema.SuffixCapacity), p.Capacity)
		u.Set(schema.BucketAttr(name, schema.SuffixRefill), p.RefillAmount)
		u.Set(schema.BucketAttr(name, schema.SuffixPeriod), p.RefillPeriod)
		if _, ok := charged[name]; !ok {
			w := schema.BucketAttr(name, schema.SuffixVirtualTime)
			u.SetExpr(w, "if_not_exists($, ?)", w, bucket.Clock(p, now))
		}
	}
}

// setExpiry renews the item's time to live (see Expiry); a split shard 0
// carries none.
func setExpiry(u *dynamo.Update, id ID, next *State, now int64, mult int) {
	if id.Shard == 0 && next.Level > 1 {
		return
	}
	if at := Expiry(next, now, mult); at > 0 {
		u.Set(schema.TTL, at)
		next.TTL = at
	}
}

// Expiry is the ttl (epoch seconds) a write sets, 0 when mult < 0 (TTL
// disabled): mult times the slowest fill time of every limit on the item
// (configured or dormant), at least an hour, never before any debt is repaid
// (a limit's virtual time back at its clock) plus an hour, and never before
// the ttl the item already has (a writer whose clock lags must not expire
// it early: an expired bucket starts over full, so expiring early would
// forgive tokens). An item holding credits gets the ten-year cap.
func Expiry(st *State, now int64, mult int) int64 {
	if mult < 0 {
		return 0
	}
	var fill int64
	repaid := now
	credit := false
	for _, l := range st.Limits {
		fill = max(fill, bucket.FillTime(l.Params))
		if l.Params.Valid() {
			repaid = max(repaid, bucket.ClockTime(l.Params, l.W))
		}
		credit = credit || l.CR > 0
	}
	const decade = 10 * 366 * 86400 // a sanity cap: ten years
	at := max(now/1000+max(fill/1000*int64(mult), 3600), repaid/1000+3600)
	if credit {
		// Granted credits were bought: an item holding some stays as long
		// as any item may.
		at = now/1000 + decade
	}
	at = min(at, now/1000+decade)
	return max(at, st.TTL)
}
