package limiter

import (
	"github.com/zeroae/zae-limiter-go/shared/bucket"
	"github.com/zeroae/zae-limiter-go/shared/shard"
)

const milli = shard.Milli

// The limiter keeps, per shard item, the last state it saw (the ALL_NEW of
// its last write, or the ALL_OLD of a failed one), with the effect of its own
// writes in flight projected onto it: concurrent goroutines of one process so
// see each other's writes before they land (the first writer of a grid step
// takes the idle form, the others the busy one). The cache only predicts the
// form of a write; every write is conditioned on what it predicts.

// MaxCached bounds each per-item cache of a limiter (states, states seen,
// shard counts): past it an arbitrary entry is dropped (it is learnt again
// from the next write), so memory stays bounded whatever the number of keys.
const MaxCached = 100_000

// seenState is the last state DynamoDB returned of a shard (no projection of
// this process's writes in flight), nil when unknown or older than
// Options.DenialCacheTTL: its virtual times are a lower bound of the item's
// (only refunds and resets lower them), so a request it cannot take cannot
// be taken now either, unless another process gave tokens back, reset the
// bucket or granted credits since (seen once the state ages out). The
// denial cache judges requests on it before writing.
func (l *Limiter) seenState(pk string) *shard.State {
	now := l.nowMs()
	l.mu.Lock()
	defer l.mu.Unlock()
	s, ok := l.seen[pk]
	if !ok || now-s.at > l.o.DenialCacheTTL.Milliseconds() || now < s.at {
		return nil
	}
	return s.st.Clone()
}

// seenRec is a state DynamoDB returned and when (this process's clock, ms).
type seenRec struct {
	st *shard.State
	at int64
}

// saw records a state DynamoDB returned.
func (l *Limiter) saw(pk string, st *shard.State) {
	now := l.nowMs()
	l.mu.Lock()
	defer l.mu.Unlock()
	if !st.Exists || st.Merged {
		delete(l.seen, pk)
		return
	}
	bound(l.seen)
	l.seen[pk] = seenRec{st: st.Clone(), at: now}
}

// bound drops an arbitrary entry of a full cache.
func bound[V any](m map[string]V) {
	if len(m) < MaxCached {
		return
	}
	for k := range m {
		delete(m, k)
		return
	}
}

// cached returns a copy of the last known state of a shard, nil if unknown.
func (l *Limiter) cached(pk string) *shard.State {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.items[pk].Clone()
}

func (l *Limiter) remember(pk string, st *shard.State) {
	l.mu.Lock()
	defer l.mu.Unlock()
	bound(l.items)
	l.items[pk] = st
}

func (l *Limiter) forget(pk string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.items, pk)
	delete(l.seen, pk)
}

// merge caches a state that came back from DynamoDB without losing what
// concurrent writers of this process projected: with the same parameters a
// limit's cached virtual time only moves forward.
func (l *Limiter) merge(pk string, got *shard.State) {
	l.saw(pk, got)
	l.mu.Lock()
	defer l.mu.Unlock()
	bound(l.items)
	st := got.Clone()
	if old, ok := l.items[pk]; ok && old.Exists && old.PV == st.PV && old.Level == st.Level {
		for name, ls := range st.Limits {
			if o, had := old.Limits[name]; had && o.W > ls.W {
				ls.W = o.W
				st.Limits[name] = ls
			}
		}
	}
	l.items[pk] = st
}

// unproject caches the state a failed write returned, taking this write's
// own projection back out while keeping what other writers of the process
// projected: a limit's cached virtual time never falls below the returned
// one, except that a limit found idle (at or behind the grid instant) is
// taken exactly as returned.
func (l *Limiter) unproject(pk string, got *shard.State, mine map[string]shard.Mark, now int64) {
	l.saw(pk, got)
	l.mu.Lock()
	defer l.mu.Unlock()
	bound(l.items)
	st := got.Clone()
	if old, ok := l.items[pk]; ok && old.Exists && old.PV == st.PV && old.Level == st.Level {
		for name, ls := range st.Limits {
			o, had := old.Limits[name]
			if !had || ls.W <= bucket.CeilTo(bucket.Clock(ls.Params, now), l.quantum(ls.Params, true)) {
				continue
			}
			w := o.W
			if m, planned := mine[name]; planned {
				switch {
				case m.Add != 0:
					w -= m.Add
				case w == m.Set:
					w = ls.W
				}
			}
			ls.W = max(ls.W, w)
			st.Limits[name] = ls
		}
	}
	l.items[pk] = st
}

// shardCount is the known shard count of a bucket (1 until learnt).
func (l *Limiter) shardCount(bucket string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return max(l.count[bucket], 1)
}

// forgetCount drops the known shard count (the bucket is gone).
func (l *Limiter) forgetCount(bucket string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.count, bucket)
}

// learnCount takes the shard count shard 0 holds (authoritative: it grows
// when a shard runs out of write budget and shrinks when a quiet bucket is
// merged back).
func (l *Limiter) learnCount(bucket string, n int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	bound(l.count)
	l.count[bucket] = max(n, 1)
}

// observe caches a shard's state and learns its shard count.
func (l *Limiter) observe(id shard.ID, st *shard.State) {
	if !st.Exists {
		l.forget(id.PK())
		return
	}
	l.remember(id.PK(), st)
	l.saw(id.PK(), st)
	l.learn(id, st)
}

// learn takes the shard count from shard 0's state.
func (l *Limiter) learn(id shard.ID, st *shard.State) {
	if id.Shard == 0 && st.Exists {
		l.learnCount(id.Bucket(), st.Count)
	}
}

// quantum is a limit's booking grid in millitokens. A writer alone on an
// item books exactly (1). Writers of one process in flight together on an
// item share a grid: what the limit refills in one Tick, at most 1% of its
// capacity, so that the idle form never books more than that ahead of the
// exact instant, and after the first idle-form write of a step the others
// take the busy form instead of racing it.
func (l *Limiter) quantum(p bucket.Params, concurrent bool) int64 {
	if !concurrent {
		return 1
	}
	return min(bucket.Quantum(p, l.o.Tick.Milliseconds()), max(1, p.Capacity/100))
}

// enter counts a write of this process in flight on an item and reports
// whether another one already is; leave undoes it.
func (l *Limiter) enter(pk string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.inflight[pk]++
	return l.inflight[pk] > 1
}

func (l *Limiter) leave(pk string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.inflight[pk]--; l.inflight[pk] <= 0 {
		delete(l.inflight, pk)
	}
}
