package shard

import (
	"github.com/zeroae/zae-limiter-go/shared/bucket"
	"github.com/zeroae/zae-limiter-go/shared/limits"
)

// Budget is the hidden per-shard write-pressure limit: 1000 writes a
// second, the write ceiling of one DynamoDB partition. It is not divided by
// shards and never shows in a status.
const Budget = limits.ReservedLimitName

// BudgetParams: a burst of two seconds of writes, refilled at 1000 a second.
var BudgetParams = bucket.Params{Capacity: 2000 * Milli, RefillAmount: 1000 * Milli, RefillPeriod: 1000}

// BudgetCost is what one write takes of the budget, in millitokens.
const BudgetCost = Milli

// MaxSkew is how far ahead of a writer's own clock (ms) the item's writer
// time is trusted as the budget's anchor. Beyond it the item's time is taken
// for a broken clock and the budget is started over at the writer's.
const MaxSkew int64 = 60_000

// MaxShards caps shard doubling: 64 shards of 1000 writes a second each
// (64,000 acquires a second on one bucket, far beyond one API key's
// traffic). It also keeps every read of all of a bucket's shards to one
// BatchGetItem (at most 100 keys).
const MaxShards = 64

// budgetAnchor is the instant a writer judges the budget at: the latest
// writer clock the item has seen, or its own when later. Every budget write
// is conditioned on its own anchor and records it (WT), so after any write
// W <= Clock(WT) + Capacity holds: judged at the anchor, the budget is only
// ever out when the writers' bookings really exceed it on the clock of the
// writer furthest ahead, never because this writer's clock lags. rebase
// reports an anchor that cannot be trusted (more than MaxSkew ahead).
func budgetAnchor(st *State, now int64) (at int64, rebase bool) {
	if st == nil || st.WT <= now {
		return now, false
	}
	if st.WT-now > MaxSkew {
		return now, true
	}
	return st.WT, false
}

// budgetFits reports whether one more write fits the budget of st at now.
func budgetFits(st *State, now int64) bool {
	l, ok := st.Limits[Budget]
	if !ok {
		return true
	}
	at, rebase := budgetAnchor(st, now)
	if rebase {
		return true
	}
	_, fits := bucket.Take(l.W, bucket.Clock(BudgetParams, at), BudgetCost, BudgetParams)
	return fits
}
