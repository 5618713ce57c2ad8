package limiter

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/zeroae/zae-limiter-go/shared/dynamo"
	"github.com/zeroae/zae-limiter-go/shared/limits"
	"github.com/zeroae/zae-limiter-go/shared/schema"
	"github.com/zeroae/zae-limiter-go/shared/shard"
	"github.com/zeroae/zae-limiter-go/shared/store"
)

// Admin writes to buckets (ADR-030): Reset fills a bucket, Grant adds
// credits to it. Both write every shard of the bucket, each write
// conditioned on the shard as read, and are audited.

// Auditor is what Reset and Grant need of the limiter's Config besides
// resolving limits: the audit log. *store.NS has it.
type Auditor interface {
	Principal(ctx context.Context) (string, error)
	Audit(ctx context.Context, principal, action, entityID, resource string, details map[string]any) error
}

// Reset fills the bucket of (entityID, resource): every limit in force, or
// only those named, on every shard, debt forgiven (credits are kept). A
// bucket that does not exist is full already. It returns the shards
// written and writes the audit event bucket_reset.
func (l *Limiter) Reset(ctx context.Context, entityID, resource string, names []string) (int, error) {
	audit, t, err := l.admin(ctx, entityID, resource, names)
	if err != nil {
		return 0, err
	}
	if len(names) == 0 {
		names = limitNames(t.limits)
	}
	b := l.bucketID(&t)
	n, err := l.eachShard(ctx, b, func(id shard.ID, st *shard.State) *dynamo.Update {
		var on []string
		for _, name := range names {
			if _, ok := st.Limits[name]; ok {
				on = append(on, name) // a limit not on the item yet starts full
			}
		}
		if len(on) == 0 {
			return nil
		}
		return shard.PlanReset(id, st, on, l.nowMs(), l.o.TTLMultiplier).Update
	})
	if errors.Is(err, errNoShard0) {
		n, err = 0, nil
	}
	if err != nil {
		return n, fmt.Errorf("reset bucket %s: %w", b.Bucket(), err)
	}
	return n, audit(store.ActionBucketReset, map[string]any{"limits": names, "shards": n})
}

// Grant adds credits (whole tokens per limit, > 0) to the bucket of
// (entityID, resource), once: granted tokens an acquire uses when the
// bucket itself cannot take it, above the capacity if need be. They are
// spread over the bucket's shards (each holds its share). A bucket that
// does not exist is created full, with them. It returns the shards written
// and writes the audit event credits_granted.
func (l *Limiter) Grant(ctx context.Context, entityID, resource string, credits map[string]int64) (int, error) {
	if len(credits) == 0 {
		return 0, limits.Invalid("credits", "{}", "give at least one limit and amount")
	}
	if err := validateAmounts("credits", credits, false); err != nil {
		return 0, err
	}
	for _, name := range sortedNames(credits) {
		if credits[name] <= 0 {
			return 0, limits.Invalid("credits."+name, fmt.Sprint(credits[name]), "must be a whole number > 0")
		}
	}
	audit, t, err := l.admin(ctx, entityID, resource, sortedNames(credits))
	if err != nil {
		return 0, err
	}
	grantID := newGrantID()
	amounts := millis(credits, func(string) bool { return true })
	b := l.bucketID(&t)
	n := 0
	for range 3 {
		n, err = l.eachShard(ctx, b, func(id shard.ID, st *shard.State) *dynamo.Update {
			if st.GID == grantID {
				return nil // there already (a retried write landed)
			}
			return shard.PlanGrant(id, st, amounts, grantID, l.nowMs(), l.o.TTLMultiplier).Update
		})
		if !errors.Is(err, errNoShard0) {
			break
		}
		// No bucket: create it with the credits (unless one appears).
		l.forgetCount(b.Bucket())
		it, _ := shard.GrantItem(b.Of(0), shard.ConfigOf(t.limits, 1, t.version), amounts, grantID, l.nowMs(), l.o.TTLMultiplier)
		var absent dynamo.Update
		absent.IfNotExists(schema.PK)
		if err = l.put(ctx, b.Of(0), it, &absent); err != nil {
			break
		}
		st, rerr := l.read(ctx, b.Of(0))
		if err = rerr; err != nil || st.GID == grantID {
			n = 1
			break
		}
	}
	if err != nil {
		return n, fmt.Errorf("grant credits to bucket %s: %w", b.Bucket(), err)
	}
	return n, audit(store.ActionCreditsGranted, map[string]any{"credits": credits, "shards": n, "grant_id": grantID})
}

// admin validates an admin write on (entity, resource) naming limits: the
// principal first (a bad one changes nothing), then the limits in force,
// which must have every name. It returns the audit call to make after.
func (l *Limiter) admin(ctx context.Context, entity, resource string, names []string) (func(string, map[string]any) error, target, error) {
	if err := validateRequest(Request{EntityID: entity, Resource: resource}); err != nil {
		return nil, target{}, err
	}
	for _, name := range names {
		if err := limits.ValidateLimitName(name); err != nil {
			return nil, target{}, err
		}
	}
	a, ok := l.cfg.(Auditor)
	if !ok {
		return nil, target{}, errors.New("the limiter's config store keeps no audit log")
	}
	principal, err := a.Principal(ctx)
	if err != nil {
		return nil, target{}, err
	}
	t, err := l.current(ctx, entity, resource, nil)
	if err != nil {
		return nil, target{}, err
	}
	for _, name := range names {
		if !t.has(name) {
			return nil, target{}, limits.Invalid("limit", name, fmt.Sprintf("no limit %q is configured for %s/%s (it has %v)", name, entity, resource, limitNames(t.limits)))
		}
	}
	audit := func(action string, details map[string]any) error {
		if err := a.Audit(ctx, principal, action, entity, resource, details); err != nil {
			return fmt.Errorf("%s of %s/%s done, its audit event not written: %w", action, entity, resource, err)
		}
		return nil
	}
	return audit, t, nil
}

// eachShard writes plan(id, st) to every shard holding a share of bucket b
// (st read consistently, nil plans skipped), each write conditioned on the
// shard as read (its level among others). It goes again until one pass
// finds every shard as read and the shards read cover the bucket: a shard
// split, merged or made meanwhile is written in another pass, a twin made
// after its parent was written carries the write. It returns the shards
// written; errNoShard0 when the bucket does not exist.
func (l *Limiter) eachShard(ctx context.Context, b shard.ID, plan func(shard.ID, *shard.State) *dynamo.Update) (int, error) {
	written := map[int]bool{}
	skip := map[int]bool{}
	for round := range l.o.MaxAttempts {
		if round >= 2 {
			if err := backoff(ctx, round); err != nil {
				return len(written), err
			}
		}
		states, err := l.Shards(ctx, b)
		if err != nil {
			return len(written), err
		}
		if !states[0].Exists {
			return len(written), errNoShard0
		}
		if r := uncovered(states, skip); r >= 0 {
			// A twin not put yet (a split in flight) or a shard expired:
			// wait for it, then make it as writers do.
			if round >= 3 {
				switch err := l.ensure(ctx, b.Of(r), l.nowMs()); {
				case errors.Is(err, errShrank):
					skip[r] = true // above the count: never written again
				case err != nil && !errors.Is(err, errNoShard0):
					return len(written), err
				}
			}
			continue
		}
		clean := true
		for j, st := range states {
			if !st.Exists || st.Merged {
				continue
			}
			u := plan(b.Of(j), st)
			if u == nil {
				continue
			}
			_, ok, err := l.update(ctx, b.Of(j), u)
			if err != nil {
				return len(written), err
			}
			written[j] = written[j] || ok
			clean = clean && ok
		}
		if clean {
			return len(written), nil
		}
	}
	return len(written), ErrContention
}

// uncovered is the smallest share of the bucket no shard read holds (shard
// j at level L holds the indices j mod L, below the highest level), or -1.
func uncovered(states []*shard.State, skip map[int]bool) int {
	top := 1
	for _, st := range states {
		if st.Exists && !st.Merged {
			top = max(top, st.Level)
		}
	}
	for r := range top {
		held := skip[r]
		for j, st := range states {
			if held = held || st.Exists && !st.Merged && j < st.Level && r%st.Level == j; held {
				break
			}
		}
		if !held {
			return r
		}
	}
	return -1
}

func newGrantID() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return hex.EncodeToString(b)
}

// blocked is the denial of an acquire for entity when it, or the parent it
// cascades to, is blocked (ADR-032): read through the entity cache, so it
// costs no DynamoDB request once the records are cached.
func (l *Limiter) blocked(ctx context.Context, entity string) error {
	e, found, err := l.cfg.CachedEntity(ctx, entity)
	if err != nil {
		return fmt.Errorf("read entity %q: %w", entity, err)
	}
	return l.blockedBy(ctx, e, found)
}

// blockedBy is blocked for an entity record already read.
func (l *Limiter) blockedBy(ctx context.Context, e store.Entity, found bool) error {
	now := l.o.Now()
	if !found {
		return nil
	}
	if e.BlockedAt(now) {
		return limits.NewBlocked(e.ID, e.BlockedUntil, now)
	}
	if !e.Cascade || e.ParentID == "" {
		return nil
	}
	p, found, err := l.cfg.CachedEntity(ctx, e.ParentID)
	if err != nil {
		return fmt.Errorf("read entity %q: %w", e.ParentID, err)
	}
	if found && p.BlockedAt(now) {
		return limits.NewBlocked(p.ID, p.BlockedUntil, now)
	}
	return nil
}

// shadowStatuses marks, among the statuses of an admitted take, the shadow
// limits that would have denied it, and only those, with the wait their
// denial would have named (ADR-031), and counts them.
func (l *Limiter) shadowStatuses(sts []limits.Status, shadowed map[string]int64) []limits.Status {
	for i := range sts {
		if !sts[i].Limit.Shadow {
			continue
		}
		wait, would := shadowed[sts[i].Limit.Name]
		sts[i].Exceeded, sts[i].RetryAfter = would, 0
		if would {
			sts[i].RetryAfter = time.Duration(min(wait, int64(1<<62)/int64(time.Millisecond))) * time.Millisecond
		}
	}
	l.stats.shadow.Add(int64(len(shadowed)))
	return sts
}
