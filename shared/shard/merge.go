package shard

import (
	"github.com/zeroae/zae-limiter-go/shared/bucket"
	"github.com/zeroae/zae-limiter-go/shared/dynamo"
	"github.com/zeroae/zae-limiter-go/shared/schema"
)

// Merging undoes a split: shard j and its twin k = j + L/2, both at level L,
// become j at level L/2, holding what the two held. Each held (C - (W - c))/L
// of a limit at clock c (with W taken at c at least: a full shard holds its
// share, no more), so the merged virtual time is their mean, rounded up:
// the merged shard never holds more than the two did. A twin that is
// missing (expired, or its creation interrupted) counts as empty.
//
// Both writes are conditioned on the exact stored state they were planned
// from (fingerprint, level and every limit's virtual time), so any write in
// between cancels the merge; the twin is left as a tombstone (merged, its
// fingerprint gone, expiring within the hour) so that no writer recreates
// it meanwhile. Merges are planned only on quiet buckets (refill), and only
// after the bucket's shard count on shard 0 was lowered (PlanCount), so
// writers stop picking the twins first.

// MergeTTL is how long a tombstone stays (seconds).
const MergeTTL = 3600

// PlanMerge plans the merge of j (state sj) and its twin k (state sk, nil
// or !Exists when missing) at now. It returns j's update, k's update (a
// tombstone; nil when k is missing) and j's state after the merge; ok is
// false when the two cannot be merged (different levels or parameters).
func PlanMerge(j ID, sj *State, sk *State, now int64, mult int) (uj, uk *dynamo.Update, next *State, ok bool) {
	if sk != nil && sk.Merged {
		// A tombstone's tokens went to its sibling when it was merged: as a
		// twin it is missing (empty), whatever its stale state says.
		sk = nil
	}
	L := sj.Level
	if L < 2 || (sk != nil && sk.Exists && (sk.Level != L || Fingerprint(sk.Params(), L) != Fingerprint(sj.Params(), L))) {
		return nil, nil, nil, false
	}
	uj = &dynamo.Update{}
	next = sj.Clone()
	next.Level = L / 2
	snapshot(uj, sj)
	for _, name := range sortedNames(sj.Limits) {
		l := sj.Limits[name]
		c := bucket.Clock(l.Params, now)
		wj := max(l.W, c)
		wk := c + l.Params.Capacity // missing: empty
		if sk != nil && sk.Exists {
			wk = max(sk.Limits[name].W, c)
		}
		if name == Budget {
			wj, wk = c, c // a merged shard's write budget starts over
		}
		l.W = ceilHalf(wj, wk)
		uj.Set(schema.BucketAttr(name, schema.SuffixVirtualTime), l.W)
		if crk := sk.credit(name); l.CR != 0 || crk != 0 {
			// Credits are shared like W: the merged shard holds their
			// mean, rounded down (never more than the two held).
			l.CR = floorHalf(l.CR, crk)
			uj.Set(schema.BucketAttr(name, schema.SuffixCredit), l.CR)
		}
		next.Limits[name] = l
	}
	next.PV = Fingerprint(next.Params(), next.Level)
	uj.Set(schema.AttrShardLevel, next.Level)
	uj.Set(schema.AttrParams, next.PV)
	if j.Shard == 0 && next.Level == 1 {
		// One shard again: shard 0 expires like any bucket.
		next.TTL = 0
		setExpiry(uj, j, next, now, mult)
	} else if j.Shard != 0 {
		setExpiry(uj, j, next, now, mult)
	}
	if sk == nil || !sk.Exists {
		return uj, nil, next, true // (k's absence is checked too: MergeAbsent)
	}
	uk = &dynamo.Update{}
	snapshot(uk, sk)
	uk.Set(schema.AttrMerged, true)
	uk.Set(schema.AttrParams, "merged")
	uk.Set(schema.TTL, now/1000+MergeTTL)
	return uj, uk, next, true
}

// MergeAbsent is the condition a merge puts on a missing twin: still
// absent (or a tombstone).
func MergeAbsent() *dynamo.Update { return absentOrMerged() }

// TwinAbsent is the condition of a split's twin: no shard there (a
// tombstone may be replaced: the twin is made from its parent's state).
func TwinAbsent() *dynamo.Update { return absentOrMerged() }

func absentOrMerged() *dynamo.Update {
	u := &dynamo.Update{}
	u.If("attribute_not_exists($) OR attribute_exists($)", schema.PK, schema.AttrMerged)
	return u
}

// snapshot conditions u on the exact state st was read in (credits too).
func snapshot(u *dynamo.Update, st *State) {
	u.If("$ = ? AND $ = ?", schema.AttrParams, st.PV, schema.AttrShardLevel, st.Level)
	for _, name := range sortedNames(st.Limits) {
		u.If("$ = ?", schema.BucketAttr(name, schema.SuffixVirtualTime), st.Limits[name].W)
		cr := schema.BucketAttr(name, schema.SuffixCredit)
		if v := st.Limits[name].CR; v != 0 {
			u.If("$ = ?", cr, v)
		} else {
			u.If("attribute_not_exists($) OR $ = ?", cr, cr, 0)
		}
	}
}

// credit is a limit's credit balance on st (0 when st is missing).
func (s *State) credit(name string) int64 {
	if s == nil || !s.Exists {
		return 0
	}
	return s.Limits[name].CR
}

// floorHalf is the mean of a and b (credits, >= 0) rounded down.
func floorHalf(a, b int64) int64 {
	s := a/2 + b/2
	if a%2 == 1 && b%2 == 1 {
		s++
	}
	return s
}

func ceilHalf(a, b int64) int64 {
	s := a/2 + b/2
	if a%2 != 0 || b%2 != 0 {
		s++ // round up: never more tokens than the two held
	}
	return s
}

// PlanCount sets shard 0's shard count from n to m (conditioned on n): up
// when a shard runs out of write budget (m = 2n), down before a quiet
// bucket's shards are merged back (m = n/2).
func PlanCount(n, m int) *dynamo.Update {
	u := &dynamo.Update{}
	u.If("$ = ?", schema.AttrShardCount, n)
	u.Set(schema.AttrShardCount, m)
	return u
}

// BudgetUse is how much of its write budget a shard has booked ahead of
// its writers' latest clock (millitokens; up to BudgetParams.Capacity):
// how busy it was at its last write.
func BudgetUse(st *State) int64 { return BookedAhead(st, st.WT) }

// BookedAhead is how much of its write budget a shard has booked ahead at
// now (Unix ms), judged as writers judge it (at the latest writer clock
// the item has seen when that is later): how busy it still is.
func BookedAhead(st *State, now int64) int64 {
	l, ok := st.Limits[Budget]
	if !ok || !st.Exists {
		return 0
	}
	at, _ := budgetAnchor(st, now)
	return max(0, l.W-bucket.Clock(BudgetParams, at))
}
