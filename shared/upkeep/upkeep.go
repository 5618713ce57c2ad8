// Package upkeep is the refill function's logic: it keeps buckets writable
// and small from what the table's stream shows of them.
//
// Buckets are stored in GCRA form (ADR-001) and refill by themselves, so
// the reference's proactive token refill has nothing to do here (ADR-026).
// What a stream reader can do for buckets is structural:
//
//   - grow a hot bucket's shards before its writers run out of a shard's
//     write budget: a change showing a shard's budget more than half booked
//     ahead (a second of writes at a thousand a second), of a bucket one of
//     whose shards still is when the record is read, doubles the bucket's
//     shard count and splits its shards, so writers find the twins made
//     instead of splitting on their own path;
//   - merge a sharded bucket back once it is quiet: a shard other than 0
//     that expires (its ttl passes only when it has been idle and full for
//     at least an hour) makes the bucket shrink back, pair by pair, to one
//     shard, so a request larger than one shard's share is admissible again,
//     and the extra items and shard 0's missing ttl stop being permanent
//     (if, when the record is read, a shard is still missing: a bucket
//     whose writers came back and recreated it is not quiet).
//
// Every write is conditioned on the state it was planned from (a count, a
// fingerprint and level, a merge's exact snapshot), so a batch delivered
// twice, retried or bisected changes nothing the first delivery changed.
package upkeep

import (
	"context"
	"errors"
	"sort"
	"time"

	"github.com/zeroae/zae-limiter-go/shared/shard"
)

// Change is what one stream record shows of a bucket shard item.
type Change struct {
	ID shard.ID
	// Seq is the stream record's sequence number (what a batch item
	// failure names).
	Seq string
	// Old and New are the item before and after (nil: absent, as for an
	// insert's Old or a removal's New).
	Old, New *shard.State
}

// hot reports a change showing a shard that had more than growAt of its
// write budget booked ahead when it was written.
func (c Change) hot(growAt int64) bool {
	return c.New != nil && c.New.Exists && !c.New.Merged && c.New.Level < shard.MaxShards && shard.BudgetUse(c.New) > growAt
}

// removed reports a shard other than 0 that went away (expired, or deleted
// with its entity), a tombstone left by a merge aside.
func (c Change) removed() bool {
	return c.ID.Shard > 0 && c.New == nil && c.Old != nil && c.Old.Exists && !c.Old.Merged
}

// Limiter is what upkeep needs of the engine (Engine over a
// *limiter.Limiter): reading a bucket's shards, and its two structural
// writes, both safe whenever called (conditioned on what they read); the
// policy of when to call them is upkeep's.
type Limiter interface {
	Shards(ctx context.Context, b shard.ID) ([]*shard.State, error)
	Grow(ctx context.Context, b shard.ID, n int) (int, error)
	Shrink(ctx context.Context, b shard.ID) (int, error)
}

// Options tune Upkeep.
type Options struct {
	// GrowAt is the write budget (millitokens) a shard may have booked ahead
	// before its bucket grows; 0 means half the budget (a second of writes).
	GrowAt int64
	// Now is the clock (nil: time.Now): a bucket grows only while one of
	// its shards is still busy at now.
	Now func() time.Time
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
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Upkeep{lim: lim, o: o}
}

// Result counts what Apply did.
type Result struct {
	// Changes seen, buckets grown and shrunk, splits and merges done.
	Changes, Grown, Shrunk, Splits, Merges int
	// Done lists the buckets that were grown or shrunk, in key order.
	Done []Done
}

// Done is what Apply did to one bucket.
type Done struct {
	Bucket shard.ID
	// Op is "grow" or "shrink"; N the splits or merges it did.
	Op string
	N  int
}

// Apply looks at a batch of changes and grows or shrinks the buckets that
// need it, each at most once per batch. failed holds the indexes of the
// changes whose bucket could not be handled (to report as batch item
// failures: the stream delivers them again).
func (u *Upkeep) Apply(ctx context.Context, changes []Change) (res Result, failed []int, err error) {
	type plan struct {
		id     shard.ID
		grow   bool
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
		p.grow = p.grow || c.hot(u.o.GrowAt)
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
		case p.grow:
			n, err := u.grow(ctx, p.id)
			res.Splits += n
			if n > 0 {
				res.Grown++
				res.Done = append(res.Done, Done{Bucket: p.id, Op: "grow", N: n})
			}
			perr = err
		case p.shrink:
			n, err := u.shrink(ctx, p.id)
			res.Merges += n
			if n > 0 {
				res.Shrunk++
				res.Done = append(res.Done, Done{Bucket: p.id, Op: "shrink", N: n})
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

// grow grows bucket b if it is still busy: a record shows a shard as it
// was when written (up to the mapping's lag, or an hour for a retried
// batch, ago), so the decision is taken again on the shards as they are
// now: one of them still has more than GrowAt of its budget booked ahead.
// A replayed record of a bucket that has grown since, or calmed down, or
// been merged back, changes nothing.
func (u *Upkeep) grow(ctx context.Context, b shard.ID) (int, error) {
	states, err := u.lim.Shards(ctx, b)
	if err != nil {
		return 0, err
	}
	s0 := states[0]
	if !s0.Exists || s0.Count >= shard.MaxShards {
		return 0, nil
	}
	now := u.o.Now().UnixMilli()
	for _, st := range states {
		if st.Exists && !st.Merged && shard.BookedAhead(st, now) > u.o.GrowAt {
			return u.lim.Grow(ctx, b, max(s0.Count, 1))
		}
	}
	return 0, nil
}

// shrink merges bucket b back if it is quiet now: sharded, and a shard
// below its level is missing (it expired: idle and full for an hour at
// least, and no writer has picked it since) or its count is already below
// its level (a shrink that stopped halfway). A replayed removal of a
// bucket that has grown back whole since changes nothing.
func (u *Upkeep) shrink(ctx context.Context, b shard.ID) (int, error) {
	states, err := u.lim.Shards(ctx, b)
	if err != nil {
		return 0, err
	}
	s0 := states[0]
	top := 1
	for _, st := range states {
		if st.Exists && !st.Merged {
			top = max(top, st.Level)
		}
	}
	if !s0.Exists || top <= 1 {
		return 0, nil
	}
	quiet := s0.Count < top
	for j := 1; j < top && !quiet; j++ {
		quiet = !states[j].Exists || states[j].Merged
	}
	if !quiet {
		return 0, nil
	}
	return u.lim.Shrink(ctx, b)
}
