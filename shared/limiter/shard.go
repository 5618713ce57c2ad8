package limiter

import (
	"context"
	"errors"
	"fmt"
	"math/bits"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

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
	got, ok, err := l.update(ctx, id, shard.PlanSplit(id, st, now).Update)
	if err != nil || !ok {
		return err
	}
	l.stats.splits.Add(1)
	it, _ := shard.Twin(id.Of(id.Shard+st.Level), got, now, l.o.TTLMultiplier)
	return l.put(ctx, id.Of(id.Shard+st.Level), it, shard.TwinAbsent())
}

// put creates a shard item on condition u (a twin or a recreated shard that
// someone else created first is theirs to keep).
func (l *Limiter) put(ctx context.Context, id shard.ID, it dynamo.Item, u *dynamo.Update) error {
	_, err := l.db.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:                 aws.String(l.o.Table),
		Item:                      it,
		ConditionExpression:       aws.String(u.Condition()),
		ExpressionAttributeNames:  u.Names(),
		ExpressionAttributeValues: u.Values(),
	})
	if err != nil && !dynamo.IsCondFailed(err) {
		return fmt.Errorf("create bucket %s shard %d: %w", id.Bucket(), id.Shard, err)
	}
	return nil
}

// errShrank: the shard asked for is at or above the bucket's shard count
// (merged back, or being merged): pick again below the count just learnt.
var errShrank = errors.New("shard count shrank")

// ensure makes shard j of the bucket exist: it is created by splitting
// j - 2^k (k = the highest bit of j) at level 2^k, splitting that one first
// as needed, or recreated empty when it expired long after its split.
func (l *Limiter) ensure(ctx context.Context, id shard.ID, now int64) error {
	for range 4 * bits.Len(uint(MaxShards)) {
		st, err := l.read(ctx, id)
		if err != nil {
			return err
		}
		if st.Exists && !st.Merged {
			return nil
		}
		if id.Shard == 0 {
			return errNoShard0
		}
		s0, err := l.read(ctx, id.Of(0))
		if err != nil {
			return err
		}
		switch {
		case !s0.Exists:
			return errNoShard0
		case id.Shard >= s0.Count || st.Merged:
			return errShrank
		}
		h := 1 << (bits.Len(uint(id.Shard)) - 1)
		parent := id.Of(id.Shard - h)
		if err := l.ensure(ctx, parent, now); err != nil {
			return err
		}
		pst, err := l.read(ctx, parent)
		if err != nil {
			return err
		}
		switch {
		case !pst.Exists || pst.Merged:
			// Raced with an expiry or a merge: look again.
		case pst.Level <= h:
			// The parent still covers this shard: split it (again, until
			// its level is h, when the split creates this very shard).
			if err := l.split(ctx, parent, pst, now); err != nil {
				return err
			}
		default:
			// The parent was split long ago and this shard has since
			// expired (or its creation was interrupted): recreate it.
			if err := l.recreate(ctx, id, pst.Params(), pst.PE, now); err != nil {
				return err
			}
		}
	}
	return fmt.Errorf("bucket %s: shard %d could not be made", id.Bucket(), id.Shard)
}

// home is the shard that holds id's share now: id itself, the sibling it
// was merged into, the shard covering it below a shrunk count, or id made
// again (split from its parent, or recreated empty).
func (l *Limiter) home(ctx context.Context, id shard.ID, now int64) (shard.ID, error) {
	for range 2 * bits.Len(uint(MaxShards)) {
		st, err := l.read(ctx, id)
		if err != nil {
			return id, err
		}
		switch {
		case st.Exists && !st.Merged:
			return id, nil
		case st.Merged:
			id = id.Of(id.Shard - st.Level/2)
			continue
		}
		err = l.ensure(ctx, id, now)
		switch {
		case err == nil:
			return id, nil
		case errors.Is(err, errShrank):
			id = id.Of(id.Shard % l.shardCount(id.Bucket()))
		case errors.Is(err, errNoShard0):
			// The whole bucket expired: shard 0 starts it over (a take
			// creates it).
			l.forgetCount(id.Bucket())
			return id.Of(0), nil
		default:
			return id, fmt.Errorf("bucket %s shard %d: %w", id.Bucket(), id.Shard, err)
		}
	}
	return id, fmt.Errorf("bucket %s: no shard holds shard %d's share", id.Bucket(), id.Shard)
}

// recreate puts back a missing shard j > 0, empty, at the highest level of
// the bucket (shard 0's count, or any shard's level, read consistently): at
// that level it covers its own index alone, so whatever siblings or
// descendants still exist, the shares never add up to more than the limit.
// A level guessed from a cache could cover a live sibling's share too (and
// mint it). It is put only where no item exists: never over a tombstone.
func (l *Limiter) recreate(ctx context.Context, id shard.ID, params map[string]bucket.Params, version, now int64) error {
	keys := make([]map[string]types.AttributeValue, MaxShards)
	for i := range MaxShards {
		keys[i] = id.Of(i).Key()
	}
	got, err := l.batchGet(ctx, keys, true)
	if err != nil {
		return fmt.Errorf("read the shards of %s: %w", id.Bucket(), err)
	}
	level := 1
	for i := range MaxShards {
		st, err := shard.Decode(got[id.Of(i).PK()])
		if err != nil {
			return err
		}
		if st.Exists && !st.Merged {
			level = max(level, st.Level)
			if i == 0 {
				level = max(level, st.Count)
			}
		}
	}
	for level <= id.Shard { // a shard j exists only at a level above j
		level *= 2
	}
	it, _ := shard.Empty(id, params, level, version, now, l.o.TTLMultiplier)
	var absent dynamo.Update // never over a tombstone: see PlanMerge
	absent.IfNotExists(schema.PK)
	return l.put(ctx, id, it, &absent)
}

// bump doubles the shard count on shard 0 after a shard ran out of write
// budget, and returns the count now in force.
func (l *Limiter) bump(ctx context.Context, b shard.ID, n int) (int, error) {
	if n >= MaxShards {
		return n, nil
	}
	id := b.Of(0)
	st, ok, err := l.update(ctx, id, shard.PlanBump(n))
	if err != nil {
		return n, fmt.Errorf("grow shards of %s: %w", id.Bucket(), err)
	}
	if ok {
		l.stats.bumps.Add(1)
	}
	if st.Exists {
		l.learnCount(id.Bucket(), st.Count)
	}
	return l.shardCount(id.Bucket()), nil
}
