package shard

import (
	"github.com/zeroae/zae-limiter-go/shared/bucket"
	"github.com/zeroae/zae-limiter-go/shared/dynamo"
	"github.com/zeroae/zae-limiter-go/shared/schema"
)

// Shards share a limit by level (ADR-002): shard j at level L holds 1/L of
// it. Splitting j doubles its level with its virtual times unchanged, so it
// keeps half of what it held, and creates its twin j+L at the doubled level
// with the very same virtual times: the other half. No lock on the tokens is
// needed, and the sum over shards never exceeds the limit.

// PlanSplit doubles the level of shard st (conditioned on its fingerprint
// and level, so a split happens once). A split shard 0 loses its ttl: it
// tells every process the bucket is sharded, and recreated alone at level 1
// it would hold the whole limit beside its live twins.
//
// Its write budget starts over at now, as its twin's does (never booked
// further ahead than it was): each half now takes about half the writes, so
// what the whole item booked before says nothing of how busy the half is,
// and a shard still showing it would make its bucket grow again for writes
// that a split already spread. The budget is no limit (no token depends on
// it), so the SET needs no condition of its own.
func PlanSplit(id ID, st *State, now int64) Plan {
	u := &dynamo.Update{}
	next := st.Clone()
	next.Level = st.Level * 2
	next.PV = Fingerprint(st.Params(), next.Level)
	u.If("$ = ? AND $ = ?", schema.AttrParams, st.PV, schema.AttrShardLevel, st.Level)
	u.Set(schema.AttrShardLevel, next.Level)
	u.Set(schema.AttrParams, next.PV)
	if l, ok := next.Limits[Budget]; ok {
		l.W = min(l.W, bucket.Clock(l.Params, now))
		next.Limits[Budget] = l
		u.Set(schema.BucketAttr(Budget, schema.SuffixVirtualTime), l.W)
	}
	if id.Shard == 0 {
		u.Remove(schema.TTL)
		next.TTL = 0
	}
	return Plan{Update: u, Next: next}
}

// Twin is the item of the twin of a shard just split (from: its state after
// the split, ALL_NEW): same level, virtual times and credits, a full write
// budget, a fresh generation and consumed counters at zero.
func Twin(id ID, from *State, now int64, mult int) (dynamo.Item, *State) {
	st := &State{Exists: true, Level: from.Level, Count: from.Level, PE: from.PE, Gen: now, GID: from.GID, Limits: map[string]Limit{}}
	for name, l := range from.Limits {
		l.TC, l.SD = 0, 0 // counters start over; the credit is shared like W
		if name == Budget {
			l.W = bucket.Clock(l.Params, now)
		}
		st.Limits[name] = l
	}
	st.PV = Fingerprint(st.Params(), st.Level)
	return item(id, st, now, mult), st
}

// Empty is the item of a shard recreated after it went missing (expired, or
// its creation interrupted) at level: every limit of params empty (the
// conservative state: its share may still sit with a sibling), its write
// budget full.
func Empty(id ID, params map[string]bucket.Params, level int, version, now int64, mult int) (dynamo.Item, *State) {
	st := &State{Exists: true, Level: level, Count: level, PE: version, Gen: now, Limits: map[string]Limit{}}
	for name, p := range params {
		w := bucket.Clock(p, now) + p.Capacity
		if name == Budget {
			w = bucket.Clock(p, now)
		}
		st.Limits[name] = Limit{Params: p, W: w}
	}
	st.PV = Fingerprint(st.Params(), level)
	return item(id, st, now, mult), st
}

// Fresh is the item of a bucket's shard 0 created anew at level 1 (the
// whole bucket had expired): every limit full.
func Fresh(id ID, cfg Config, now int64, mult int) (dynamo.Item, *State) {
	st := &State{Exists: true, Level: 1, Count: 1, PE: cfg.Version, Gen: now, Limits: map[string]Limit{}}
	for name, p := range cfg.All() {
		st.Limits[name] = Limit{Params: p, W: bucket.Clock(p, now)}
	}
	st.PV = Fingerprint(st.Params(), 1)
	return item(id, st, now, mult), st
}

// item encodes a whole shard item (for a conditional PutItem).
func item(id ID, st *State, now int64, mult int) dynamo.Item {
	it := dynamo.Item{
		schema.PK:              dynamo.S(id.PK()),
		schema.SK:              dynamo.S(schema.SKState),
		schema.AttrEntityID:    dynamo.S(id.Entity),
		schema.AttrResource:    dynamo.S(id.Resource),
		schema.AttrShard:       dynamo.N(int64(id.Shard)),
		schema.AttrShardLevel:  dynamo.N(int64(st.Level)),
		schema.AttrShardCount:  dynamo.N(int64(st.Count)),
		schema.AttrParams:      dynamo.S(st.PV),
		schema.AttrParamsEpoch: dynamo.N(st.PE),
		schema.AttrGeneration:  dynamo.N(st.Gen),
		schema.GSI3PK:          dynamo.S(schema.BucketGSI3PK(id.Namespace, id.Entity)),
		schema.GSI3SK:          dynamo.S(schema.BucketGSI3SK(id.Resource, id.Shard)),
		schema.GSI4PK:          dynamo.S(schema.NamespaceGSI4PK(id.Namespace)),
		schema.GSI4SK:          dynamo.S(schema.BucketGSI4SK(id.Resource, id.Entity, id.Shard)),
	}
	if st.GID != "" {
		it[schema.AttrGrant] = dynamo.S(st.GID) // a twin carries its parent's grants
	}
	if !(id.Shard == 0 && st.Level > 1) {
		if at := Expiry(st, now, mult); at > 0 {
			it[schema.TTL] = dynamo.N(at)
			st.TTL = at
		}
	}
	for name, l := range st.Limits {
		it[schema.BucketAttr(name, schema.SuffixVirtualTime)] = dynamo.N(l.W)
		it[schema.BucketAttr(name, schema.SuffixCapacity)] = dynamo.N(l.Params.Capacity)
		it[schema.BucketAttr(name, schema.SuffixRefill)] = dynamo.N(l.Params.RefillAmount)
		it[schema.BucketAttr(name, schema.SuffixPeriod)] = dynamo.N(l.Params.RefillPeriod)
		if name != Budget {
			it[schema.BucketAttr(name, schema.SuffixConsumed)] = dynamo.N(l.TC)
		}
		if l.CR != 0 {
			it[schema.BucketAttr(name, schema.SuffixCredit)] = dynamo.N(l.CR)
		}
	}
	return it
}

// PlanBump doubles the target shard count on shard 0, from n (conditioned
// on it, so concurrent writers that ran out of budget double it once).
func PlanBump(n int) *dynamo.Update { return PlanCount(n, 2*n) }
