package limiter

import (
	"context"
	"errors"
	"fmt"
	"math/bits"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/zeroae/zae-limiter-go/shared/bucket"
	"github.com/zeroae/zae-limiter-go/shared/dynamo"
	"github.com/zeroae/zae-limiter-go/shared/schema"
)

// errNoShard0: the bucket's shard 0 does not exist, so the bucket does not
// (a split shard 0 never expires): the next acquire creates it afresh.
var errNoShard0 = errors.New("no shard 0")

// MaxShards caps shard doubling.
const MaxShards = 256

// reconcile brings a shard whose level differs from ps's before it is
// written: a higher level means this process's shard count is stale; a
// lower one means the shard must be split first. (Other parameter changes
// are made by the acquire's own write; see resync.)
func (l *Limiter) reconcile(ctx context.Context, s shard, ps paramSet, st *shardState, now int64) (writeResult, error) {
	if st.level > ps.level {
		l.learnCount(s.t.key(), st.level)
		return writeResult{kind: again}, nil
	}
	return writeResult{kind: again}, l.split(ctx, s, st, now)
}

// conditional sends one conditional update of shard s and caches what comes
// back either way; a failed condition is not an error.
func (l *Limiter) conditional(ctx context.Context, s shard, cond, update string, e *dynamo.Expr) (writeResult, error) {
	out, err := l.update(ctx, s, cond, update, e)
	if err == nil {
		st := decodeShard(out.Attributes)
		l.observe(s, st)
		return writeResult{kind: admitted, st: st}, nil
	}
	if old, ok := dynamo.CondFailedItem(err); ok {
		st := decodeShard(old)
		if st.exists {
			l.observe(s, st)
		} else {
			l.forget(s.pk)
		}
		return writeResult{kind: again, st: st}, nil
	}
	l.forget(s.pk)
	return writeResult{}, fmt.Errorf("update bucket %s shard %d: %w", s.t.key(), s.j, err)
}

// update sends one conditional UpdateItem to shard s that returns the item
// either way: ALL_NEW when written, ALL_OLD with a failed condition.
func (l *Limiter) update(ctx context.Context, s shard, cond, update string, e *dynamo.Expr) (*dynamodb.UpdateItemOutput, error) {
	return l.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                           aws.String(l.o.Table),
		Key:                                 key(s.pk),
		ConditionExpression:                 aws.String(cond),
		UpdateExpression:                    aws.String(update),
		ExpressionAttributeNames:            e.Names(),
		ExpressionAttributeValues:           e.Values(),
		ReturnValues:                        types.ReturnValueAllNew,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
}

// split divides shard s (at level L) into itself and its twin s+L, both at
// level 2L. Virtual times are in whole-limit units, so a shard's tokens halve
// when its level doubles with w unchanged; the twin is created with the very
// w the first write returned, so the two halves together hold exactly what s
// held. Neither write needs a lock on the tokens.
func (l *Limiter) split(ctx context.Context, s shard, st *shardState, now int64) error {
	level := st.level * 2
	ps := paramSetOf(st)
	ps.level = level
	ps.pv = fingerprint(ps.params, level)
	e := &dynamo.Expr{}
	cond := e.Name(schema.AttrParams) + " = " + e.Value(dynamo.S(st.pv)) + " AND " +
		e.Name(schema.AttrShardLevel) + " = " + e.Num(int64(st.level))
	update := "SET " + e.Name(schema.AttrShardLevel) + " = " + e.Num(int64(level)) + ", " +
		e.Name(schema.AttrParams) + " = " + e.Value(dynamo.S(ps.pv))
	if s.j == 0 {
		update += " REMOVE " + e.Name(schema.TTL) // see consume: a split shard 0 never expires
	}
	res, err := l.conditional(ctx, s, cond, update, e)
	if err != nil || res.kind != admitted {
		return err
	}
	twin := l.shardOf(s.t, s.j+st.level)
	return l.createShard(ctx, twin, ps, res.st, now)
}

// createShard puts a new shard item at ps's level whose limits have the
// virtual times of from (nil: empty, the conservative choice when the twin
// of an already split shard is missing). Its write budget starts full.
func (l *Limiter) createShard(ctx context.Context, s shard, ps paramSet, from *shardState, now int64) error {
	it := dynamo.Item{
		schema.PK:              dynamo.S(s.pk),
		schema.SK:              dynamo.S(schema.SKState),
		schema.AttrEntityID:    dynamo.S(s.t.entity),
		schema.AttrResource:    dynamo.S(s.t.resource),
		schema.AttrShard:       dynamo.N(int64(s.j)),
		schema.AttrShardLevel:  dynamo.N(int64(ps.level)),
		schema.AttrShardCount:  dynamo.N(int64(ps.level)),
		schema.AttrParams:      dynamo.S(ps.pv),
		schema.AttrParamsEpoch: dynamo.N(ps.epoch),
		schema.GSI3PK:          dynamo.S(schema.BucketGSI3PK(l.o.Namespace, s.t.entity)),
		schema.GSI3SK:          dynamo.S(schema.BucketGSI3SK(s.t.resource, s.j)),
		schema.GSI4PK:          dynamo.S(schema.NamespaceGSI4PK(l.o.Namespace)),
		schema.GSI4SK:          dynamo.S(schema.BucketGSI4SK(s.t.resource, s.t.entity, s.j)),
	}
	it[schema.AttrGeneration] = dynamo.N(now)
	if at := l.expiry(ps, from, now); at > 0 {
		it[schema.TTL] = dynamo.N(at)
	}
	for name, p := range ps.params {
		w := bucket.Clock(p, now) + p.Capacity // empty
		switch {
		case name == wcu:
			w = bucket.Clock(p, now)
		case from != nil:
			w = from.limits[name].W
		}
		it[schema.BucketAttr(name, schema.SuffixVirtualTime)] = dynamo.N(w)
		it[schema.BucketAttr(name, schema.SuffixCapacity)] = dynamo.N(p.Capacity)
		it[schema.BucketAttr(name, schema.SuffixRefill)] = dynamo.N(p.RefillAmount)
		it[schema.BucketAttr(name, schema.SuffixPeriod)] = dynamo.N(p.RefillPeriod)
		if name != wcu {
			it[schema.BucketAttr(name, schema.SuffixConsumed)] = dynamo.N(0)
		}
	}
	e := &dynamo.Expr{}
	_, err := l.db.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:                aws.String(l.o.Table),
		Item:                     it,
		ConditionExpression:      aws.String("attribute_not_exists(" + e.Name(schema.PK) + ")"),
		ExpressionAttributeNames: e.Names(),
	})
	if err != nil && !dynamo.IsCondFailed(err) {
		return fmt.Errorf("create bucket %s shard %d: %w", s.t.key(), s.j, err)
	}
	return nil
}

// read fetches a shard item with a strongly consistent read (split path only).
func (l *Limiter) read(ctx context.Context, s shard) (*shardState, error) {
	out, err := l.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: aws.String(l.o.Table), Key: key(s.pk), ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return nil, fmt.Errorf("read bucket %s shard %d: %w", s.t.key(), s.j, err)
	}
	st := decodeShard(out.Item)
	if st.exists {
		l.observe(s, st)
	} else {
		l.forget(s.pk)
	}
	return st, nil
}

// ensure makes shard j of t exist at a level of at least n, splitting the
// shards it descends from as needed. Shard j is created by splitting
// j - 2^k (k = the highest bit of j) from level 2^k to 2^(k+1).
func (l *Limiter) ensure(ctx context.Context, t target, j, n int, now int64) error {
	for range 2 * bits.Len(uint(MaxShards)) {
		s := l.shardOf(t, j)
		st, err := l.read(ctx, s)
		if err != nil {
			return err
		}
		switch {
		case st.exists && st.level >= n:
			return nil
		case st.exists:
			if err := l.split(ctx, s, st, now); err != nil {
				return err
			}
		case j == 0:
			return errNoShard0
		default:
			h := 1 << (bits.Len(uint(j)) - 1)
			parent := l.shardOf(t, j-h)
			if err := l.ensure(ctx, t, j-h, h, now); err != nil {
				return err
			}
			pst, err := l.read(ctx, parent)
			if err != nil {
				return err
			}
			if !pst.exists {
				if j-h == 0 {
					return errNoShard0
				}
				return nil // raced with an expiry: the caller tries again
			}
			if pst.level == h {
				if err := l.split(ctx, parent, pst, now); err != nil {
					return err
				}
				continue
			}
			// The parent was split long ago and this shard has since
			// expired (or its creation was interrupted): recreate it empty.
			ps := paramSetOf(pst)
			if err := l.createShard(ctx, s, ps, nil, now); err != nil {
				return err
			}
		}
	}
	return fmt.Errorf("bucket %s: shard %d could not be brought to %d shards", t.key(), j, n)
}

// bump doubles the shard count on shard 0 after a shard ran out of write
// budget, and returns the count now in force.
func (l *Limiter) bump(ctx context.Context, t target, n int) (int, error) {
	if n >= MaxShards {
		return n, nil
	}
	s := l.shardOf(t, 0)
	e := &dynamo.Expr{}
	sc := e.Name(schema.AttrShardCount)
	res, err := l.conditional(ctx, s, sc+" = "+e.Num(int64(n)), "SET "+sc+" = "+e.Num(int64(2*n)), e)
	if err != nil {
		return n, err
	}
	if res.st != nil && res.st.exists {
		l.learnCount(t.key(), res.st.count)
	}
	return l.shardCount(t.key()), nil
}

func msDuration(ms int64) time.Duration {
	if ms > int64(1<<62)/int64(time.Millisecond) {
		return time.Duration(1 << 62)
	}
	return time.Duration(ms) * time.Millisecond
}
