package limiter

import (
	"context"
	"errors"
	"fmt"

	"golang.org/x/sync/errgroup"

	"github.com/zeroae/zae-limiter-go/shared/limits"
)

// acquire writes the request's consumption to the entity's bucket and, when
// it cascades, to its parent's, concurrently. If one is admitted and the
// other denied (or failed), the admitted one is given back.
func (l *Limiter) acquire(ctx context.Context, req Request) (*Lease, error) {
	ts, err := l.targets(ctx, req.EntityID, req.Resource, req.Limits, sortedNames(req.Consume))
	if err != nil {
		return nil, err
	}
	type result struct {
		entry *Entry
		amt   map[string]int64
		st    []limits.Status
		ok    bool
	}
	results := make([]result, len(ts))
	// Not errgroup.WithContext: a failure must not cancel a sibling's write
	// in flight, whose outcome would then be unknown (applied, yet never
	// given back or recorded).
	var g errgroup.Group
	gctx := ctx
	for i, t := range ts {
		amt := millis(req.Consume, t.has)
		results[i].amt = amt
		g.Go(func() error {
			j, st, ok, err := l.take(gctx, t, amt)
			results[i].st, results[i].ok = st, ok
			if ok {
				results[i].entry = &Entry{EntityID: t.entity, Resource: t.resource, Shard: j, Limits: t.limits, Consumed: copyAmounts(amt)}
				if st := l.cached(l.shardOf(t, j).pk); st != nil {
					results[i].entry.Gen = st.gen
				}
			}
			return err
		})
	}
	err = g.Wait()
	var all []limits.Status
	rejected := false
	for _, r := range results {
		all = append(all, r.st...)
		rejected = rejected || !r.ok
	}
	if err != nil || rejected {
		for _, r := range results {
			if r.ok {
				if cerr := l.apply(context.WithoutCancel(ctx), r.entry, negate(r.amt)); cerr != nil && err == nil {
					err = fmt.Errorf("give back %s/%s after a denial: %w", r.entry.EntityID, r.entry.Resource, cerr)
				}
			}
		}
		if err != nil {
			return nil, err
		}
		return nil, limits.NewExceeded(all)
	}
	lease := &Lease{l: l, req: req, statuses: all}
	for _, r := range results {
		lease.entries = append(lease.entries, r.entry)
	}
	return lease, nil
}

// take admits amounts (millitokens) on one of t's shards: a random one,
// other shards when it has no tokens, more shards when write budgets run
// out. It returns the shard written, or ok=false with the denial's statuses.
func (l *Limiter) take(ctx context.Context, t target, amounts map[string]int64) (int, []limits.Status, bool, error) {
	n := l.shardCount(t.key())
	j := l.pick(n, nil)
	tried := map[int]bool{}
	var denial []limits.Status
	for range l.o.MaxAttempts {
		now := l.nowMs()
		ps := newParamSet(t.limits, n, 0)
		res, err := l.consume(ctx, l.shardOf(t, j), ps, amounts, now, true)
		if err != nil {
			return 0, nil, false, err
		}
		switch res.kind {
		case admitted:
			return j, statuses(t, res.st, amounts, ps.level, now), true, nil
		case missing:
			err := l.ensure(ctx, t, j, n, now)
			if errors.Is(err, errNoShard0) {
				// Everything expired: start over with one shard.
				l.forgetCount(t.key())
				n, j = 1, 0
				continue
			}
			if err != nil {
				return 0, nil, false, err
			}
		case wcuOut:
			if n, err = l.bump(ctx, t, n); err != nil {
				return 0, nil, false, err
			}
			j = l.pick(n, nil)
		case denied:
			tried[j] = true
			if denial == nil {
				denial = statuses(t, res.st, amounts, ps.level, now)
			}
			if n > 1 && len(tried) <= l.o.ShardRetries && len(tried) < n {
				j = l.pick(n, tried)
				continue
			}
			return 0, denial, false, nil
		case again:
			if c := l.shardCount(t.key()); c != n {
				n = c
				j = l.pick(n, nil)
			}
		}
	}
	return 0, nil, false, fmt.Errorf("acquire %s: %w", t.key(), ErrContention)
}

// takeShard admits amounts on one given shard (a lease taking more): the
// shard's current level is followed, but no other shard is tried.
func (l *Limiter) takeShard(ctx context.Context, t target, j int, amounts map[string]int64) ([]limits.Status, bool, error) {
	s := l.shardOf(t, j)
	budget := true
	for range l.o.MaxAttempts {
		level := l.shardCount(t.key())
		if st := l.cached(s.pk); st != nil {
			level = st.level
		}
		now := l.nowMs()
		ps := newParamSet(t.limits, level, 0)
		res, err := l.consume(ctx, s, ps, amounts, now, budget)
		if err != nil {
			return nil, false, err
		}
		switch res.kind {
		case admitted:
			return statuses(t, res.st, amounts, level, now), true, nil
		case wcuOut:
			// The lease must write this very shard: grow the shard count
			// for later acquires, then take it without the write budget.
			if _, err := l.bump(ctx, t, max(level, l.shardCount(t.key()))); err != nil {
				return nil, false, err
			}
			budget = false
		case denied:
			return statuses(t, res.st, amounts, level, now), false, nil
		case missing:
			return nil, false, fmt.Errorf("bucket %s shard %d: %w", t.key(), j, limits.ErrNotFound)
		}
	}
	return nil, false, fmt.Errorf("consume on %s: %w", t.key(), ErrContention)
}

// pick chooses a shard in [0, n) not in tried (uniformly).
func (l *Limiter) pick(n int, tried map[int]bool) int {
	if n <= 1 {
		return 0
	}
	free := make([]int, 0, n)
	for i := range n {
		if !tried[i] {
			free = append(free, i)
		}
	}
	if len(free) == 0 {
		return l.o.Rand(n)
	}
	return free[l.o.Rand(len(free))]
}
