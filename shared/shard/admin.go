package shard

import (
	"github.com/zeroae/zae-limiter-go/shared/bucket"
	"github.com/zeroae/zae-limiter-go/shared/dynamo"
	"github.com/zeroae/zae-limiter-go/shared/schema"
)

// The admin writes of ADR-030: a reset fills a shard's limits, a grant adds
// credits to them. Both go to every shard of a bucket (the limiter makes
// each exist first); on a shard at level L a credit of G (in the unit of
// W) is worth G/L tokens, so the same G on every shard of a bucket adds up
// to G, whatever the levels: shards partition the bucket.

// PlanReset fills the named limits of shard st (read from the item, not
// merged): each one's virtual time is set to its clock at now, so it holds
// its capacity, debt forgiven. The write is conditioned on the item, its
// level and each limit's refill parameters (the units of the clock it sets
// to); concurrent takes landing before it are overwritten, those after it
// take from the full bucket. Credits and counters are left alone. names
// must be on st.
func PlanReset(id ID, st *State, names []string, now int64, mult int) Plan {
	u := &dynamo.Update{}
	next := st.Clone()
	u.IfExists(schema.PK)
	u.IfNotExists(schema.AttrMerged)
	u.If("$ = ?", schema.AttrShardLevel, st.Level)
	for _, name := range names {
		l := st.Limits[name]
		clockUnits(u, name, l.Params)
		l.W = bucket.Clock(l.Params, now)
		u.Set(schema.BucketAttr(name, schema.SuffixVirtualTime), l.W)
		next.Limits[name] = l
	}
	setExpiry(u, id, next, now, mult)
	return Plan{Update: u, Next: next}
}

// PlanGrant adds credits (millitokens per limit, > 0) to shard st (read
// from the item, not merged) once: conditioned on the item, its level, and
// on another grant id than this one's (so a retry after an unknown outcome
// finds it done). A limit not on the item yet keeps its credit until it is.
func PlanGrant(id ID, st *State, credits map[string]int64, grantID string, now int64, mult int) Plan {
	u := &dynamo.Update{}
	next := st.Clone()
	u.IfExists(schema.PK)
	u.IfNotExists(schema.AttrMerged)
	u.If("$ = ?", schema.AttrShardLevel, st.Level)
	u.If("attribute_not_exists($) OR $ <> ?", schema.AttrGrant, schema.AttrGrant, grantID)
	u.Set(schema.AttrGrant, grantID)
	next.GID = grantID
	for _, name := range sortedNames(credits) {
		u.Add(schema.BucketAttr(name, schema.SuffixCredit), credits[name])
		if l, ok := next.Limits[name]; ok {
			l.CR += credits[name]
			next.Limits[name] = l
		}
	}
	setExpiry(u, id, next, now, mult)
	return Plan{Update: u, Next: next}
}

// GrantItem is the item of a bucket's shard 0 created by a grant (the
// bucket did not exist): every limit of cfg full, with the credits.
func GrantItem(id ID, cfg Config, credits map[string]int64, grantID string, now int64, mult int) (dynamo.Item, *State) {
	_, st := Fresh(id, cfg, now, mult)
	for name, v := range credits {
		l := st.Limits[name]
		l.CR = v
		st.Limits[name] = l
	}
	st.GID = grantID
	return item(id, st, now, mult), st
}

// clockUnits conditions u on a limit's refill parameters: what its clock
// counts (a calendar limit's period code among them).
func clockUnits(u *dynamo.Update, name string, p bucket.Params) {
	u.If("$ = ? AND $ = ?", schema.BucketAttr(name, schema.SuffixRefill), p.RefillAmount,
		schema.BucketAttr(name, schema.SuffixPeriod), p.RefillPeriod)
}
