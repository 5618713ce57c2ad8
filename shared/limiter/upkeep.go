package limiter

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/zeroae/zae-limiter-go/shared/dynamo"
	"github.com/zeroae/zae-limiter-go/shared/shard"
)

// The structural upkeep of buckets, for the refill function: growing a hot
// bucket's shards before its writers run out of write budget, and merging a
// quiet one back. Both only ever write conditionally on the state they were
// planned from, so a replayed or concurrent call changes nothing twice.

// Stats counts the structural writes this limiter made.
type Stats struct {
	// Splits done (a shard split in two), by writers or by Grow.
	Splits int64
	// Bumps of a bucket's shard count.
	Bumps int64
	// Merges of a pair of shards (by Shrink).
	Merges int64
	// ShadowDenials: requests admitted that a shadow limit would have
	// denied (ADR-031), one per limit.
	ShadowDenials int64
}

type stats struct{ splits, bumps, merges, shadow atomic.Int64 }

// Stats returns what this limiter counted so far.
func (l *Limiter) Stats() Stats {
	return Stats{Splits: l.stats.splits.Load(), Bumps: l.stats.bumps.Load(), Merges: l.stats.merges.Load(),
		ShadowDenials: l.stats.shadow.Load()}
}

// Transactor is the call Shrink makes beyond the limiter's own (the acquire
// path never needs it). *dynamodb.Client satisfies it.
type Transactor interface {
	TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, optFns ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error)
}

// Grow doubles bucket b's shard count if shard 0 still holds n, then splits
// every shard below the count, so that writers find the twins made instead
// of splitting on their own path. It returns the splits it did.
func (l *Limiter) Grow(ctx context.Context, b shard.ID, n int) (int, error) {
	if n >= MaxShards {
		return 0, nil
	}
	s0, err := l.read(ctx, b.Of(0))
	if err != nil || !s0.Exists {
		return 0, err
	}
	count := s0.Count
	if count == n {
		if count, err = l.bump(ctx, b, n); err != nil {
			return 0, err
		}
	}
	splits := 0
	for j := range count {
		st, err := l.read(ctx, b.Of(j))
		if err != nil {
			return splits, err
		}
		// Only shards already there: a missing one is made by splitting
		// its parent, which this loop reaches first.
		if !st.Exists || st.Merged || st.Level >= count {
			continue
		}
		if err := l.split(ctx, b.Of(j), st, l.nowMs()); err != nil {
			return splits, err
		}
		splits++
	}
	return splits, nil
}

// Shrink merges bucket b back, one level at a time, down to one shard: it
// lowers shard 0's count from the bucket's level L to L/2 (writers stop
// picking the upper half), then merges each pair (j, j+L/2) in one
// transaction conditioned on both shards' exact state. It stops, without
// error, at the first pair a writer touched in between (the bucket is not
// quiet). It returns the merges it did. Call it on a quiet bucket: merging
// is exact (or loses tokens), never mints, but a busy bucket grows again.
func (l *Limiter) Shrink(ctx context.Context, tx Transactor, b shard.ID) (int, error) {
	merges := 0
	for range 8 {
		states, err := l.Shards(ctx, b)
		if err != nil {
			return merges, err
		}
		top := 1
		for _, st := range states {
			if st.Exists && !st.Merged {
				top = max(top, st.Level)
			}
		}
		s0 := states[0]
		if !s0.Exists || top <= 1 {
			return merges, nil
		}
		if s0.Count > top/2 {
			// Writers first: no one picks a shard of the upper half after.
			if _, ok, err := l.update(ctx, b.Of(0), shard.PlanCount(s0.Count, top/2)); err != nil || !ok {
				return merges, err
			}
		}
		now := l.nowMs()
		for j := range top / 2 {
			sj, sk := states[j], states[j+top/2]
			if !sj.Exists || sj.Merged || sj.Level != top {
				if sk.Exists && !sk.Merged && sk.Level == top {
					return merges, nil // a twin without its shard: leave the bucket as it is
				}
				continue
			}
			uj, uk, _, ok := shard.PlanMerge(b.Of(j), sj, sk, now, l.o.TTLMultiplier)
			if !ok {
				return merges, nil
			}
			items := []types.TransactWriteItem{{Update: updateOf(l.o.Table, b.Of(j), uj)}}
			if uk != nil {
				items = append(items, types.TransactWriteItem{Update: updateOf(l.o.Table, b.Of(j+top/2), uk)})
			} else {
				a := shard.MergeAbsent()
				items = append(items, types.TransactWriteItem{ConditionCheck: &types.ConditionCheck{
					TableName: aws.String(l.o.Table), Key: b.Of(j + top/2).Key(),
					ConditionExpression: aws.String(a.Condition()), ExpressionAttributeNames: a.Names(),
				}})
			}
			_, err := tx.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: items})
			l.forget(b.Of(j).PK())
			l.forget(b.Of(j + top/2).PK())
			if _, cancelled := dynamo.CancelReasons(err); cancelled {
				return merges, nil // a writer was there: not quiet after all
			}
			if err != nil {
				return merges, fmt.Errorf("merge shards %d and %d of %s: %w", j, j+top/2, b.Bucket(), err)
			}
			merges++
			l.stats.merges.Add(1)
		}
	}
	return merges, errors.New("shrink: too many levels")
}

// Shards reads every shard item of bucket b (index j at [j], MaxShards of
// them, missing ones with Exists false) in one consistent BatchGetItem.
func (l *Limiter) Shards(ctx context.Context, b shard.ID) ([]*shard.State, error) {
	keys := make([]map[string]types.AttributeValue, MaxShards)
	for i := range MaxShards {
		keys[i] = b.Of(i).Key()
	}
	got, err := l.batchGet(ctx, keys, true)
	if err != nil {
		return nil, fmt.Errorf("read the shards of %s: %w", b.Bucket(), err)
	}
	states := make([]*shard.State, MaxShards)
	for i := range MaxShards {
		if states[i], err = shard.Decode(got[b.Of(i).PK()]); err != nil {
			return nil, fmt.Errorf("shard %d of %s: %w", i, b.Bucket(), err)
		}
	}
	return states, nil
}

func updateOf(table string, id shard.ID, u *dynamo.Update) *types.Update {
	return &types.Update{
		TableName: aws.String(table), Key: id.Key(),
		UpdateExpression: aws.String(u.Expression()), ConditionExpression: aws.String(u.Condition()),
		ExpressionAttributeNames: u.Names(), ExpressionAttributeValues: u.Values(),
	}
}
