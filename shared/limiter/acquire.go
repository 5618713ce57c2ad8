package limiter

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/zeroae/zae-limiter-go/shared/limits"
	"github.com/zeroae/zae-limiter-go/shared/shard"
	"github.com/zeroae/zae-limiter-go/shared/wait"
)

// acquire writes the request's consumption to the entity's bucket and, when
// it cascades, to its parent's, concurrently. If one is admitted and the
// other denied (or failed), the admitted one is given back.
func (l *Limiter) acquire(ctx context.Context, req Request) (*Lease, error) {
	ts, err := l.targets(ctx, req.EntityID, req.Resource, req.Limits, sortedNames(req.Consume), true)
	if err != nil {
		return nil, err
	}
	if sts, denied := l.precheck(ts, req.Consume); denied {
		return nil, limits.NewExceededBecause(limits.ReasonCached, sts)
	}
	type result struct {
		entry  *Entry
		amt    map[string]int64
		st     []limits.Status
		ok     bool
		cached bool
	}
	results := make([]result, len(ts))
	// Not errgroup.WithContext: a failure must not cancel a sibling's write
	// in flight, whose outcome would then be unknown (applied, yet never
	// given back or recorded).
	var g errgroup.Group
	for i, t := range ts {
		amt := millis(req.Consume, t.has)
		results[i].amt = amt
		g.Go(func() error {
			tk, st, ok, cached, err := l.take(ctx, &ts[i], amt)
			results[i].st, results[i].ok, results[i].cached = st, ok, cached
			if ok {
				results[i].entry = &Entry{EntityID: t.entity, Resource: t.resource, Shard: tk.shard, Limits: ts[i].limits,
					Consumed: copyAmounts(amt), Gen: tk.gen, Credit: tk.credits}
				for name := range tk.shadowed {
					delete(results[i].entry.Consumed, name) // not taken
				}
			}
			return err
		})
	}
	err = g.Wait()
	var all []limits.Status
	rejected := false
	reason := ""
	cached := true
	for _, r := range results {
		all = append(all, r.st...)
		rejected = rejected || !r.ok
		cached = cached && (r.ok || r.cached)
	}
	if rejected && cached && err == nil {
		reason = limits.ReasonCached
	}
	var ce *contentionError
	if errors.As(err, &ce) {
		err, rejected, reason = nil, true, limits.ReasonContention
		all = append(all, ce.statuses...)
	}
	if err != nil || rejected {
		back, cancel := l.detached(ctx)
		defer cancel()
		for _, r := range results {
			if r.ok {
				if cerr := l.apply(back, r.entry, negate(r.entry.Consumed), r.entry.Credit); cerr != nil && err == nil {
					err = fmt.Errorf("give back %s/%s after a denial: %w", r.entry.EntityID, r.entry.Resource, cerr)
				}
			}
		}
		if err != nil {
			return nil, err
		}
		return nil, limits.NewExceededBecause(reason, all)
	}
	lease := &Lease{l: l, req: req, statuses: all}
	for _, r := range results {
		lease.entries = append(lease.entries, r.entry)
	}
	return lease, nil
}

// precheck is the denial cache for a whole acquire: when one of its
// buckets is a single shard whose last seen state cannot take the request,
// the acquire is denied before any write (a cascade never writes the child
// only to give it back). It returns every bucket's statuses.
func (l *Limiter) precheck(ts []target, consume map[string]int64) ([]limits.Status, bool) {
	if l.o.NoDenialCache {
		return nil, false
	}
	now := l.nowMs()
	var all []limits.Status
	denied := false
	for i := range ts {
		t := &ts[i]
		b := l.bucketID(t)
		seen := l.seenState(b.PK())
		if l.shardCount(b.Bucket()) != 1 || seen == nil || seen.Level != 1 {
			return nil, false // unknown, or sharded: the write decides
		}
		amt := millis(consume, t.has)
		if len(amt) == 0 {
			continue
		}
		plan, verdict, err := shard.PlanTake(b, seen, shard.ConfigOf(t.limits, 1, t.version), shard.Take{
			Amounts: amt, Now: now, Judge: seen, TTLMultiplier: l.o.TTLMultiplier})
		switch {
		case err != nil:
			return nil, false
		case verdict == shard.Deny:
			denied = true
			all = append(all, shard.Statuses(t.entity, t.resource, t.limits, plan.Next, amt, 1, now)...)
		default:
			all = append(all, shard.Statuses(t.entity, t.resource, t.limits, seen, amt, 1, now)...)
		}
	}
	return all, denied
}

// contentionError: a bucket changed under every attempt. It is a denial
// (the caller may retry at once), never an outage (DECISIONS §3.19).
type contentionError struct {
	bucket   string
	statuses []limits.Status
}

func (e *contentionError) Error() string {
	return fmt.Sprintf("acquire %s: %v", e.bucket, ErrContention)
}
func (e *contentionError) Unwrap() error { return ErrContention }

// taken is what an admitted take wrote: the shard and its generation, the
// millitokens paid from credits and the shadow limits that would have
// denied it (not taken), per limit.
type taken struct {
	shard             int
	gen               int64
	credits, shadowed map[string]int64
}

// take admits amounts (millitokens) on one of t's shards: a random one,
// other shards when it has no tokens, more shards when write budgets run
// out. It returns what it took, or ok=false with the denial's statuses and
// whether it was denied without a request (the denial cache).
func (l *Limiter) take(ctx context.Context, t *target, amounts map[string]int64) (tk taken, sts []limits.Status, ok, cached bool, err error) {
	b := l.bucketID(t)
	n := l.shardCount(b.Bucket())
	j := l.pick(n, nil)
	tried := map[int]bool{}
	var denial []limits.Status
	var exact *shard.State
	var last *shard.State
	refreshed := false
	allCached := true
	for attempt := range l.o.MaxAttempts {
		if attempt >= 3 {
			if err := backoff(ctx, attempt); err != nil {
				return taken{}, nil, false, false, err
			}
		}
		now := l.nowMs()
		cfg := shard.ConfigOf(t.limits, n, t.version)
		res, err := l.consume(ctx, b.Of(j), cfg, amounts, now, true, exact, !refreshed)
		if err != nil {
			return taken{}, nil, false, false, err
		}
		exact = nil
		if res.st != nil && res.st.Exists {
			last = res.st
		}
		switch res.kind {
		case admitted:
			sts := l.shadowStatuses(shard.Statuses(t.entity, t.resource, t.limits, res.st, amounts, res.st.Level, now), res.shadowed)
			return taken{shard: j, gen: res.st.Gen, credits: res.credits, shadowed: res.shadowed}, sts, true, false, nil
		case missing:
			err := l.ensure(ctx, b.Of(j), now)
			switch {
			case errors.Is(err, errNoShard0):
				// Everything expired: start over with one shard.
				l.forgetCount(b.Bucket())
				n, j = 1, 0
				continue
			case errors.Is(err, errShrank):
				// Merged back: pick again among the shards that remain.
				n = l.shardCount(b.Bucket())
				j = l.pick(n, nil)
				continue
			case err != nil:
				return taken{}, nil, false, false, err
			}
		case budgetOut:
			if n, err = l.bump(ctx, b, n); err != nil {
				return taken{}, nil, false, false, err
			}
			j = l.pick(n, nil)
		case denied:
			tried[j] = true
			allCached = allCached && res.cached
			if denial == nil {
				denial = shard.Statuses(t.entity, t.resource, t.limits, res.st, amounts, res.st.Level, now)
			}
			if n > 1 && len(tried) <= l.o.ShardRetries && len(tried) < n {
				j = l.pick(n, tried)
				continue
			}
			return taken{}, denial, false, allCached, nil
		case newer:
			// Another process wrote this bucket with a newer config: ours
			// is stale. Read it afresh and plan again.
			if err := l.refresh(ctx, t); err != nil {
				return taken{}, nil, false, false, err
			}
			refreshed = true
		case again:
			if res.exact {
				exact = res.st
			}
			if c := l.shardCount(b.Bucket()); c != n {
				n, exact = c, nil
				j = l.pick(n, nil)
			}
		}
	}
	if last != nil {
		sts = shard.Statuses(t.entity, t.resource, t.limits, last, amounts, last.Level, l.nowMs())
	}
	return taken{}, nil, false, false, &contentionError{bucket: b.Bucket(), statuses: sts}
}

// takeShard admits amounts on one given shard (a lease taking more): the
// shard's current level is followed, but no other shard is tried. It
// returns what it took from credits and the shadow limits it did not take.
func (l *Limiter) takeShard(ctx context.Context, t *target, e *Entry, amounts map[string]int64) ([]limits.Status, taken, bool, error) {
	id := l.bucketID(t).Of(e.Shard)
	budget := true
	var exact *shard.State
	refreshed := false
	for attempt := range l.o.MaxAttempts {
		if attempt >= 3 {
			if err := backoff(ctx, attempt); err != nil {
				return nil, taken{}, false, err
			}
		}
		level := l.shardCount(id.Bucket())
		if st := l.cached(id.PK()); st != nil {
			level = st.Level
		}
		if exact != nil {
			level = exact.Level
		}
		now := l.nowMs()
		cfg := shard.ConfigOf(t.limits, level, t.version)
		res, err := l.consume(ctx, id, cfg, amounts, now, budget, exact, !refreshed)
		if err != nil {
			return nil, taken{}, false, err
		}
		exact = nil
		switch res.kind {
		case admitted:
			sts := l.shadowStatuses(shard.Statuses(t.entity, t.resource, t.limits, res.st, amounts, level, now), res.shadowed)
			return sts, taken{shard: id.Shard, gen: res.st.Gen, credits: res.credits, shadowed: res.shadowed}, true, nil
		case budgetOut:
			// The lease must write this very shard: grow the shard count
			// for later acquires, then take it without the write budget.
			if _, err := l.bump(ctx, id, max(level, l.shardCount(id.Bucket()))); err != nil {
				return nil, taken{}, false, err
			}
			budget = false
		case denied:
			return shard.Statuses(t.entity, t.resource, t.limits, res.st, amounts, level, now), taken{}, false, nil
		case missing:
			// Merged back into a sibling, or expired: take where its share
			// is now (and keep the lease there).
			home, err := l.home(ctx, id, l.nowMs())
			if err != nil {
				return nil, taken{}, false, err
			}
			id, e.Shard, exact = home, home.Shard, nil
		case newer:
			if err := l.refresh(ctx, t); err != nil {
				return nil, taken{}, false, err
			}
			refreshed = true
		case again:
			if res.exact {
				exact = res.st
			}
		}
	}
	return nil, taken{}, false, &contentionError{bucket: id.Bucket()}
}

// backoff sleeps a little after a few lost races (1-2 ms times the attempt,
// jittered), so writers that keep invalidating each other spread out.
func backoff(ctx context.Context, attempt int) error {
	d := time.Duration(attempt) * time.Millisecond
	d += time.Duration(rand.Int64N(int64(d) + 1))
	return wait.For(ctx, d)
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
