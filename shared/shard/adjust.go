package shard

import (
	"github.com/zeroae/zae-limiter-go/shared/bucket"
	"github.com/zeroae/zae-limiter-go/shared/dynamo"
	"github.com/zeroae/zae-limiter-go/shared/schema"
)

// MaxDebt bounds how far an unchecked charge may put a limit into debt, in
// virtual-time millitokens beyond its capacity (about 1.15e15 tokens): far
// beyond any real use, and far enough from int64's end that every sum the
// limiter stores stays exact, so a rollback always restores exactly.
const MaxDebt int64 = 1 << 60

// Adjust is one unchecked change through a lease: a charge may put the
// bucket into debt (up to MaxDebt), a refund returns tokens.
type Adjust struct {
	// Deltas are signed millitokens per limit (zero ones are ignored).
	Deltas map[string]int64
	// Credit is the part of a refund (millitokens, at most its size) that
	// goes back to the limit's credit balance instead of the bucket: what a
	// rolled-back take had paid from credits (ADR-030).
	Credit map[string]int64
	// Level is the shard level the caller believes the item is at; the write
	// is conditioned on it (the lease follows its shard through splits).
	Level int
	// Gen is the generation the lease took from: a refund goes only to it,
	// never to a bucket recreated since (0: any).
	Gen int64
	// Fallback are the parameters of limits st does not know (an empty
	// cache): the write is conditioned on them and fails if they are wrong.
	Fallback map[string]bucket.Params
	Now      int64
	// TTLMultiplier: see Expiry.
	TTLMultiplier int
}

// Refund reports whether any delta gives tokens back.
func (a Adjust) Refund() bool {
	for _, d := range a.Deltas {
		if d < 0 {
			return true
		}
	}
	return false
}

// PlanAdjust plans an unchecked change on shard id from st (the cached
// state, nil when unknown). A charge on an idle limit is booked from the
// clock (SET clock+d), never absorbed by refill the bucket could not hold; a
// busy one is a commutative ADD; both are conditioned on the limit's refill
// parameters (the clock's units) and on the debt bound. A refund is an ADD
// conditioned on the generation. It returns a nil Update when there is
// nothing to write.
func PlanAdjust(id ID, st *State, a Adjust) Plan {
	u := &dynamo.Update{}
	next := &State{Exists: true, Level: a.Level, Limits: map[string]Limit{}}
	if st != nil {
		next = st.Clone()
	}
	u.IfExists(schema.PK)
	u.IfNotExists(schema.AttrMerged)
	u.If("$ = ?", schema.AttrShardLevel, a.Level)
	if a.Refund() && a.Gen != 0 {
		u.If("$ = ?", schema.AttrGeneration, a.Gen)
	}
	wrote := false
	for _, name := range sortedNames(a.Deltas) {
		d := a.Deltas[name]
		if d == 0 {
			continue
		}
		wrote = true
		v := Cost(name, d, a.Level)
		w := schema.BucketAttr(name, schema.SuffixVirtualTime)
		cur, known := next.Limits[name]
		if !known {
			cur.Params = a.Fallback[name]
		}
		p := cur.Params
		if d < 0 {
			u.IfExists(w)
			back := min(a.Credit[name], -d)
			if v := Cost(name, d+back, a.Level); v != 0 {
				u.Add(w, v)
				cur.W += v
			}
			if back > 0 {
				u.Add(schema.BucketAttr(name, schema.SuffixCredit), Cost(name, back, a.Level))
				cur.CR += Cost(name, back, a.Level)
			}
		} else {
			// A charge reads the clock, so it holds only for the refill
			// the item really has.
			c := bucket.Clock(p, a.Now)
			clockUnits(u, name, p)
			if known && cur.W < c {
				u.If("$ < ?", w, c)
				u.Set(w, c+v)
				cur.W = c + v
			} else {
				u.If("$ >= ? AND $ <= ?", w, c, w, c+p.Capacity+MaxDebt-v)
				u.Add(w, v)
				cur.W += v
			}
		}
		u.Add(schema.BucketAttr(name, schema.SuffixConsumed), d)
		cur.TC += d
		next.Limits[name] = cur
	}
	if !wrote {
		return Plan{Next: st}
	}
	// Renew the time to live like every write, so debt is not forgiven
	// early (a split shard 0 carries none).
	setExpiry(u, id, next, a.Now, a.TTLMultiplier)
	return Plan{Update: u, Next: next}
}

// OverDebt reports whether the charges of a would put a limit of st (an
// exact state) beyond the debt bound.
func OverDebt(st *State, a Adjust) (string, bool) {
	for _, name := range sortedNames(a.Deltas) {
		d := a.Deltas[name]
		l, ok := st.Limits[name]
		if d <= 0 || !ok {
			continue
		}
		c := bucket.Clock(l.Params, a.Now)
		if max(l.W, c) > c+l.Params.Capacity+MaxDebt-Cost(name, d, st.Level) {
			return name, true
		}
	}
	return "", false
}
