package limiter

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/zeroae/zae-limiter-go/shared/bucket"
	"github.com/zeroae/zae-limiter-go/shared/dynamo"
	"github.com/zeroae/zae-limiter-go/shared/shard"
)

// outcome of one attempt to take from a shard.
type outcome int

const (
	admitted  outcome = iota // written
	denied                   // the request does not fit (exact), or never can
	budgetOut                // only the shard's write budget ran out
	again                    // the state was learnt or reconciled: try again
	missing                  // the shard item does not exist
	newer                    // the item carries a newer config than the writer's
)

type attempt struct {
	kind outcome
	// st is the state to judge and report: the item as written, as
	// returned by a failed condition, or as a denial judged it.
	st *shard.State
	// exact: st came back from DynamoDB (not the cache).
	exact bool
	// credits and shadowed are what an admitted write took from credit
	// balances and which shadow limits would have denied it (shard.Plan).
	credits, shadowed map[string]int64
	// cached: denied on the state last seen, without a request.
	cached bool
}

// consume makes one attempt to take amounts (millitokens) from shard id
// with the configuration cfg. It never reads: the write is planned from the
// cached state (or from exact, the state a failed write of this acquire
// returned), and the item comes back on any failure. budget false leaves
// the shard's write budget out (a lease that must write this shard even
// though it is out of budget).
func (l *Limiter) consume(ctx context.Context, id shard.ID, cfg shard.Config, amounts map[string]int64, now int64, budget bool, exact *shard.State, ordered bool) (attempt, error) {
	pk := id.PK()
	// Planning is atomic with the projection of its effect on the cache, so
	// concurrent writers of this process see each other's writes before they
	// land.
	l.plan.Lock()
	planning := true
	done := func() {
		if planning {
			planning = false
			l.plan.Unlock()
		}
	}
	defer done()
	// Alone on this item the idle form books exactly at now; with writes of
	// this process in flight on it, on the shared grid (see quantum).
	concurrent := l.enter(pk)
	defer l.leave(pk)
	fromCache := false
	if exact == nil && !l.o.NoDenialCache {
		// The denial cache: judge on the state last seen, as on a state a
		// failed write of this acquire returned (a request that does not
		// fit it is denied without a write).
		exact, fromCache = l.seenState(pk), true
	}
	st := l.cached(pk)
	if st == nil && exact != nil {
		st = exact.Clone()
	}
	tk := shard.Take{
		Amounts: amounts, Budget: budget && cfg.Level < shard.MaxShards, Now: now,
		Grid:  func(p bucket.Params) int64 { return l.quantum(p, concurrent) },
		Judge: exact, Ordered: ordered, TTLMultiplier: l.o.TTLMultiplier,
	}
	plan, verdict, err := shard.PlanTake(id, st, cfg, tk)
	if err != nil {
		return attempt{}, err
	}
	switch verdict {
	case shard.Deny, shard.Never:
		done()
		known := plan.Next != nil && plan.Next.Exists
		// Never judged on a state this acquire did not read may be stale:
		// the item may hold credits granted since by another process
		// (ADR-030), or a sharded bucket may have been merged back since
		// (the refill function merges quiet buckets, and no write would
		// ever tell this process). Judged on no state seen within the
		// denial cache's TTL, or on a sharded one, it is judged again on
		// the shard as read; on a single shard seen within the TTL it is
		// denied without a request, like any cached denial.
		if verdict == shard.Never && known && (exact == nil || fromCache && plan.Next.Level > 1) {
			got, err := l.read(ctx, id)
			if err != nil {
				return attempt{}, err
			}
			switch {
			case !got.Exists && id.Shard == 0:
				return attempt{kind: again}, nil
			case !got.Exists || got.Merged:
				return attempt{kind: missing, st: got}, nil
			}
			return attempt{kind: again, st: got, exact: true}, nil
		}
		if !known {
			// Nothing known of the bucket: report what it holds now, or,
			// when it exists, judge a Never again on it (its credits may
			// pay).
			got, err := l.read(ctx, id)
			if err != nil {
				return attempt{}, err
			}
			if verdict == shard.Never && got.Exists && !got.Merged {
				return attempt{kind: again, st: got, exact: true}, nil
			}
			plan.Next, fromCache = got, false
		}
		return attempt{kind: denied, st: plan.Next, exact: exact != nil, cached: fromCache}, nil
	case shard.OutOfBudget:
		return attempt{kind: budgetOut, st: plan.Next, exact: true}, nil
	case shard.Newer:
		return attempt{kind: newer, st: st}, nil
	}
	if st != nil && st.Exists {
		l.remember(pk, plan.Next.Clone())
	}
	done()
	out, err := l.db.UpdateItem(ctx, plan.Update.Input(l.o.Table, id.Key()))
	if err == nil {
		got, derr := shard.Decode(out.Attributes)
		if derr != nil {
			l.forget(pk)
			return attempt{}, derr
		}
		l.merge(pk, got)
		l.learn(id, got)
		if verdict == shard.SyncOnly {
			return attempt{kind: denied, st: got, exact: true}, nil
		}
		return attempt{kind: admitted, st: got, credits: plan.Credits, shadowed: plan.Shadowed}, nil
	}
	old, ok := dynamo.CondFailedItem(err)
	if !ok {
		l.forget(pk)
		return attempt{}, fmt.Errorf("write bucket %s shard %d: %w", id.Bucket(), id.Shard, err)
	}
	got, derr := shard.Decode(old)
	if derr != nil {
		l.forget(pk)
		return attempt{}, derr
	}
	if !got.Exists || got.Merged {
		l.forget(pk)
		if id.Shard == 0 && !got.Exists {
			return attempt{kind: again}, nil // the next attempt creates it
		}
		return attempt{kind: missing, st: got}, nil
	}
	l.unproject(pk, got, plan.Marks, now)
	l.learn(id, got)
	return attempt{kind: again, st: got, exact: true}, nil
}

// update sends one conditional UpdateItem and caches what comes back either
// way; a failed condition is not an error (ok false).
func (l *Limiter) update(ctx context.Context, id shard.ID, u *dynamo.Update, optFns ...func(*dynamodb.Options)) (st *shard.State, ok bool, err error) {
	out, err := l.db.UpdateItem(ctx, u.Input(l.o.Table, id.Key()), optFns...)
	var it dynamo.Item
	switch {
	case err == nil:
		it, ok = out.Attributes, true
	default:
		var failed bool
		if it, failed = dynamo.CondFailedItem(err); !failed {
			l.forget(id.PK())
			return nil, false, err
		}
		err = nil
	}
	st, derr := shard.Decode(it)
	if derr != nil {
		l.forget(id.PK())
		return nil, false, derr
	}
	l.observe(id, st)
	return st, ok, nil
}
