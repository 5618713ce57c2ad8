package limiter

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/zeroae/zae-limiter-go/shared/bucket"
	"github.com/zeroae/zae-limiter-go/shared/limits"
)

// Available reports what every limit of the entity's bucket (and of its
// parent's, when it cascades) holds now, summed over shards, in whole
// tokens. needed (optional, whole tokens) sets Requested, Exceeded and
// RetryAfter: how long until that much is available. It only reads.
func (l *Limiter) Available(ctx context.Context, entityID, resource string, needed map[string]int64, override []limits.Limit) ([]limits.Status, error) {
	if err := validateRequest(Request{EntityID: entityID, Resource: resource, Consume: needed, Limits: override}); err != nil {
		return nil, err
	}
	ts, err := l.targets(ctx, entityID, resource, override, sortedNames(needed))
	if err != nil {
		return nil, err
	}
	var out []limits.Status
	for _, t := range ts {
		shards, err := l.readShards(ctx, t)
		if err != nil {
			return nil, err
		}
		out = append(out, summarize(t, shards, millis(needed, t.has), l.nowMs())...)
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
func (l *Limiter) readShards(ctx context.Context, t target) ([]*shardState, error) {
	n := l.shardCount(t.key())
	var out []*shardState
	for from := 0; from < n; {
		keys := []map[string]types.AttributeValue{}
		for j := from; j < n && len(keys) < 100; j++ {
			keys = append(keys, key(l.shardOf(t, j).pk))
		}
		got, err := l.batchGet(ctx, keys)
		if err != nil {
			return nil, fmt.Errorf("read buckets of %s: %w", t.key(), err)
		}
		for j := from; j < from+len(keys); j++ {
			s := l.shardOf(t, j)
			st := decodeShard(got[s.pk])
			if st.exists {
				l.observe(s, st)
			}
			out = append(out, st)
		}
		from += len(keys)
		n = max(n, l.shardCount(t.key()))
	}
	return out, nil
}

func (l *Limiter) batchGet(ctx context.Context, keys []map[string]types.AttributeValue) (map[string]map[string]types.AttributeValue, error) {
	out := map[string]map[string]types.AttributeValue{}
	req := map[string]types.KeysAndAttributes{l.o.Table: {Keys: keys}}
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

// summarize adds up what each shard of t holds of every configured limit.
func summarize(t target, shards []*shardState, needed map[string]int64, now int64) []limits.Status {
	out := make([]limits.Status, 0, len(t.limits))
	for _, lm := range t.limits {
		s := limits.Status{EntityID: t.entity, Resource: t.resource, Limit: lm, Requested: needed[lm.Name] / milli}
		var total int64
		seen := false
		var wait int64 = -1
		for _, st := range shards {
			ls, ok := st.limits[lm.Name]
			if !st.exists || !ok {
				continue
			}
			seen = true
			s.Shards = max(s.Shards, st.level) // one acquire can take one shard's share
			level := int64(st.level)
			total += bucket.Level(ls.W, bucket.Clock(ls.P, now), ls.P) / level
			if n := needed[lm.Name]; n > 0 {
				w := bucket.Wait(ls.W, n*level, ls.P, now)
				if wait < 0 || w < wait {
					wait = w
				}
			}
		}
		if !seen {
			total = lm.Capacity * milli
			wait = 0
			if needed[lm.Name] > total {
				p := bucket.Params{Capacity: total, RefillAmount: lm.RefillAmount * milli, RefillPeriod: lm.RefillPeriodSeconds * 1000}
				wait = bucket.Wait(bucket.Clock(p, now), needed[lm.Name], p, now)
			}
		}
		s.Available = bucket.Whole(total)
		if wait > 0 {
			s.Exceeded = true
			s.RetryAfter = msDuration(wait)
		}
		out = append(out, s)
	}
	return out
}
