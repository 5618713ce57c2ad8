package limiter

import (
	"context"
	"errors"
	"fmt"
	"math/bits"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/zeroae/zae-limiter-go/shared/bucket"
	"github.com/zeroae/zae-limiter-go/shared/dynamo"
	"github.com/zeroae/zae-limiter-go/shared/schema"
	"github.com/zeroae/zae-limiter-go/shared/shard"
)

// errNoShard0: the bucket's shard 0 does not exist, so the bucket does not
// (a split shard 0 never expires): the next acquire creates it afresh.
var errNoShard0 = errors.New("no shard 0")

// MaxShards caps shard doubling.
const MaxShards = shard.MaxShards

// read fetches a shard item with a strongly consistent read (split and
// recovery paths only) and caches it.
func (l *Limiter) read(ctx context.Context, id shard.ID) (*shard.State, error) {
	out, err := l.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: aws.String(l.o.Table), Key: id.Key(), ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return nil, fmt.Errorf("read bucket %s shard %d: %w", id.Bucket(), id.Shard, err)
	}
	st, err := shard.Decode(out.Item)
	if err != nil {
		l.forget(id.PK())
		return nil, err
	}
	l.observe(id, st)
	return st, nil
}

// split divides shard st (at level L) into itself and its twin id+L, both at
// level 2L (ADR-002). The twin is created from the very state the split
// returned, so the two halves together hold exactly what the shard held.
func (l *Limiter) split(ctx context.Context, id shard.ID, st *shard.State, now int64) error {
	got, ok, err := l.update(ctx, id, shard.PlanSplit(id, st).Update)
	if err != nil || !ok {
		return err
	}
	it, _ := shard.Twin(id.Of(id.Shard+st.Level), got, now, l.o.TTLMultiplier)
	return l.put(ctx, id.Of(id.Shard+st.Level), it)
}

// put creates a shard item unless one exists (a twin or a recreated shard
// that someone else created first is theirs to keep).
func (l *Limiter) put(ctx context.Context, id shard.ID, it dynamo.Item) error {
	var u dynamo.Update
	u.IfNotExists(schema.PK)
	_, err := l.db.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:                aws.String(l.o.Table),
		Item:                     it,
		ConditionExpression:      aws.String(u.Condition()),
		ExpressionAttributeNames: u.Names(),
	})
	if err != nil && !dynamo.IsCondFailed(err) {
		return fmt.Errorf("create bucket %s shard %d: %w", id.Bucket(), id.Shard, err)
	}
	return nil
}

// ensure makes shard j of the bucket exist at a level of at least n,
// splitting the shards it descends from as needed: shard j is created by
// splitting j - 2^k (k = the highest bit of j) from level 2^k to 2^(k+1).
func (l *Limiter) ensure(ctx context.Context, id shard.ID, n int, now int64) error {
	for range 2 * bits.Len(uint(MaxShards)) {
		st, err := l.read(ctx, id)
		if err != nil {
			return err
		}
		switch {
		case st.Exists && st.Level >= n:
			return nil
		case st.Exists:
			if err := l.split(ctx, id, st, now); err != nil {
				return err
			}
		case id.Shard == 0:
			return errNoShard0
		default:
			h := 1 << (bits.Len(uint(id.Shard)) - 1)
			parent := id.Of(id.Shard - h)
			if err := l.ensure(ctx, parent, h, now); err != nil {
				return err
			}
			pst, err := l.read(ctx, parent)
			if err != nil {
				return err
			}
			if !pst.Exists {
				if parent.Shard == 0 {
					return errNoShard0
				}
				return nil // raced with an expiry: the caller tries again
			}
			if pst.Level == h {
				if err := l.split(ctx, parent, pst, now); err != nil {
					return err
				}
				continue
			}
			// The parent was split long ago and this shard has since
			// expired (or its creation was interrupted): recreate it.
			if err := l.recreate(ctx, id, pst.Params(), pst.PE, now); err != nil {
				return err
			}
		}
	}
	return fmt.Errorf("bucket %s: shard %d could not be brought to %d shards", id.Bucket(), id.Shard, n)
}

// recreate puts back a missing shard j > 0, empty, at the bucket's shard
// count as shard 0 records it (read consistently): at that level the shard
// covers itself alone, so whatever siblings or descendants still exist, the
// shares never add up to more than the limit. A level guessed from a cache
// could cover a live sibling's share too (and mint it).
func (l *Limiter) recreate(ctx context.Context, id shard.ID, params map[string]bucket.Params, version, now int64) error {
	s0, err := l.read(ctx, id.Of(0))
	if err != nil {
		return err
	}
	if !s0.Exists {
		return errNoShard0
	}
	level := max(s0.Count, s0.Level)
	for level <= id.Shard { // a shard j exists only at a level above j
		level *= 2
	}
	it, _ := shard.Empty(id, params, level, version, now, l.o.TTLMultiplier)
	return l.put(ctx, id, it)
}

// bump doubles the shard count on shard 0 after a shard ran out of write
// budget, and returns the count now in force.
func (l *Limiter) bump(ctx context.Context, b shard.ID, n int) (int, error) {
	if n >= MaxShards {
		return n, nil
	}
	id := b.Of(0)
	st, _, err := l.update(ctx, id, shard.PlanBump(n))
	if err != nil {
		return n, fmt.Errorf("grow shards of %s: %w", id.Bucket(), err)
	}
	if st.Exists {
		l.learnCount(id.Bucket(), st.Count)
	}
	return l.shardCount(id.Bucket()), nil
}
