// Package upkeep is the refill function's logic: it keeps buckets writable
// and small from what the table's stream shows of them.
//
// Buckets are stored in GCRA form (ADR-001) and refill by themselves, so
// the reference's proactive token refill has nothing to do here (ADR-026).
// What a stream reader can do for buckets is structural:
//
//   - grow a hot bucket's shards before its writers run out of a shard's
//     write budget: a change showing a shard's budget more than half booked
//     ahead (a second of writes at a thousand a second) doubles the bucket's
//     shard count and splits its shards, so writers find the twins made
//     instead of splitting on their own path;
//   - merge a sharded bucket back once it is quiet: a shard other than 0
//     that expires (its ttl passes only when it has been idle and full for
//     at least an hour) makes the bucket shrink back, pair by pair, to one
//     shard, so a request larger than one shard's share is admissible again,
//     and the extra items and shard 0's missing ttl stop being permanent.
//
// Every write is conditioned on the state it was planned from (a count, a
// fingerprint and level, a merge's exact snapshot), so a batch delivered
// twice, retried or bisected changes nothing the first delivery changed.
package upkeep

import (
	"context"
	"errors"
	"sort"

	"github.com/zeroae/zae-limiter-go/shared/shard"
)

// Change is what one stream record shows of a bucket shard item.
type Change struct {
	ID shard.ID
	// Old and New are the item before and after (nil: absent, as for an
	// insert's Old or a removal's New).
	Old, New *shard.State
}

// removed reports a shard other than 0 that went away (expired, or deleted
// with its entity), a tombstone left by a merge aside.
func (c Change) removed() bool {
	return c.ID.Shard > 0 && c.New == nil && c.Old != nil && c.Old.Exists && !c.Old.Merged
}

// Limiter is what upkeep needs of the engine (*limiter.Limiter).
type Limiter interface {
	Grow(ctx context.Context, b shard.ID, n int) (int, error)
	Shrink(ctx context.Context, b shard.ID) (int, error)
}

// Options tune Upkeep.
type Options struct {
	// GrowAt is the write budget (millitokens) a shard may have booked ahead
	// before its bucket grows; 0 means half the budget (a second of writes).
	GrowAt int64
}

// Upkeep applies changes to buckets.
type Upkeep struct {
	lim Limiter
	o   Options
}

// New builds an Upkeep over an engine.
func New(lim Limiter, o Options) *Upkeep {
	if o.GrowAt <= 0 {
		o.GrowAt = shard.BudgetParams.Capacity / 2
	}
	return &Upkeep{lim: lim, o: o}
}

// Result counts what Apply did.
type Result struct {
	// Changes seen, buckets grown and shrunk, splits and merges done.
	Changes, Grown, Shrunk, Splits, Merges int
}

// Apply looks at a batch of changes and grows or shrinks the buckets that
// need it, each at most once per batch. failed holds the indexes of the
// changes whose bucket could not be handled (to report as batch item
// failures: the stream delivers them again).
func (u *Upkeep) Apply(ctx context.Context, changes []Change) (res Result, failed []int, err error) {
	type plan struct {
		id     shard.ID
		grow   int // the level of the hottest shard, 0: none
		shrink bool
		idx    []int
	}
	plans := map[string]*plan{}
	for i, c := range changes {
		res.Changes++
		b := c.ID.Of(0)
		p := plans[b.PK()]
		if p == nil {
			p = &plan{id: b}
			plans[b.PK()] = p
		}
		p.idx = append(p.idx, i)
		if c.New != nil && c.New.Exists && !c.New.Merged && c.New.Level < shard.MaxShards && shard.BudgetUse(c.New) > u.o.GrowAt {
			p.grow = max(p.grow, c.New.Level)
		}
		p.shrink = p.shrink || c.removed()
	}
	keys := make([]string, 0, len(plans))
	for k := range plans {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var errs []error
	for _, k := range keys {
		p := plans[k]
		var perr error
		switch {
		case p.grow > 0:
			n, err := u.lim.Grow(ctx, p.id, p.grow)
			res.Splits += n
			res.Grown++
			perr = err
		case p.shrink:
			n, err := u.lim.Shrink(ctx, p.id)
			res.Merges += n
			if n > 0 {
				res.Shrunk++
			}
			perr = err
		}
		if perr != nil {
			failed = append(failed, p.idx...)
			errs = append(errs, perr)
		}
	}
	sort.Ints(failed)
	return res, failed, errors.Join(errs...)
}
