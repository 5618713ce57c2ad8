package limiter

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/zeroae/zae-limiter-go/shared/limits"
	"github.com/zeroae/zae-limiter-go/shared/shard"
)

// Available reports what every limit of the entity's bucket (and of its
// parent's, when it cascades) holds now under the limits in force, summed
// over shards, in whole tokens. needed (optional, whole tokens) sets Requested, Exceeded and
// RetryAfter: how long until that much is available. It only reads.
func (l *Limiter) Available(ctx context.Context, entityID, resource string, needed map[string]int64, override []limits.Limit) ([]limits.Status, error) {
	if err := validateRequest(Request{EntityID: entityID, Resource: resource, Consume: needed, Limits: override}); err != nil {
		return nil, err
	}
	ctx, cancel := l.budget(ctx)
	defer cancel()
	ts, err := l.targets(ctx, entityID, resource, override, sortedNames(needed), false)
	if err != nil {
		return nil, err
	}
	var out []limits.Status
	for i := range ts {
		t := &ts[i]
		shards, err := l.readShards(ctx, t)
		if err != nil {
			return nil, err
		}
		now := l.nowMs()
		for i, st := range shards {
			// What the next acquire would see: the limits in force, each
			// limit's tokens carried over (a shard not written since a
			// change still carries the old parameters).
			if cfg := shard.ConfigOf(t.limits, st.Level, t.version); st.Exists && cfg.Differs(st) {
				shards[i] = shard.Carry(st, cfg, now)
			}
		}
		out = append(out, shard.Summarize(t.entity, t.resource, t.limits, shards, millis(needed, t.has), now)...)
	}
	return out, nil
}

// TimeUntilAvailable is the longest wait over the limits in needed.
func (l *Limiter) TimeUntilAvailable(ctx context.Context, entityID, resource string, needed map[string]int64, override []limits.Limit) (float64, error) {
	sts, err := l.Available(ctx, entityID, resource, needed, override)
	if err != nil {
		return 0, err
	}
	var wait float64
	for _, s := range sts {
		wait = max(wait, s.RetryAfter.Seconds())
	}
	return wait, nil
}

// readShards reads every shard of t (eventually consistent).
func (l *Limiter) readShards(ctx context.Context, t *target) ([]*shard.State, error) {
	b := l.bucketID(t)
	n := l.shardCount(b.Bucket())
	var out []*shard.State
	for from := 0; from < n; {
		var keys []map[string]types.AttributeValue
		for j := from; j < n && len(keys) < 100; j++ {
			keys = append(keys, b.Of(j).Key())
		}
		got, err := l.batchGet(ctx, keys, false)
		if err != nil {
			return nil, fmt.Errorf("read buckets of %s: %w", b.Bucket(), err)
		}
		for j := from; j < from+len(keys); j++ {
			id := b.Of(j)
			st, err := shard.Decode(got[id.PK()])
			if err != nil {
				return nil, err
			}
			if st.Exists {
				l.observe(id, st)
			}
			out = append(out, st)
		}
		from += len(keys)
		n = max(n, l.shardCount(b.Bucket()))
	}
	return out, nil
}

func (l *Limiter) batchGet(ctx context.Context, keys []map[string]types.AttributeValue, consistent bool) (map[string]map[string]types.AttributeValue, error) {
	out := map[string]map[string]types.AttributeValue{}
	req := map[string]types.KeysAndAttributes{l.o.Table: {Keys: keys, ConsistentRead: aws.Bool(consistent)}}
	for attempt := 0; len(req) > 0; attempt++ {
		if attempt > 8 {
			return nil, fmt.Errorf("batch get: unprocessed keys after %d attempts", attempt)
		}
		res, err := l.db.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: req})
		if err != nil {
			return nil, err
		}
		for _, it := range res.Responses[l.o.Table] {
			if pk, ok := it["PK"].(*types.AttributeValueMemberS); ok {
				out[pk.Value] = it
			}
		}
		req = res.UnprocessedKeys
	}
	return out, nil
}
