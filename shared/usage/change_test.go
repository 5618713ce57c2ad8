package usage

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zeroae/zae-limiter-go/shared/bucket"
	"github.com/zeroae/zae-limiter-go/shared/dynamo"
	"github.com/zeroae/zae-limiter-go/shared/schema"
	"github.com/zeroae/zae-limiter-go/shared/shard"
	"github.com/zeroae/zae-limiter-go/shared/stream"
)

var (
	t0  = time.Date(2026, 3, 31, 23, 59, 30, 0, time.UTC)
	hot = shard.ID{Namespace: "ns1", Entity: "key-1", Resource: "gpt-4", Shard: 0}
	cfg = shard.Config{Level: 1, Limits: map[string]bucket.Params{
		"rpm": {Capacity: 100_000, RefillAmount: 100_000, RefillPeriod: 60_000},
		"tpm": {Capacity: 10_000_000, RefillAmount: 10_000_000, RefillPeriod: 60_000},
	}}
)

// item is a shard item (the shard package's own encoding) with the given
// net consumed counters (millitokens) and generation.
func item(id shard.ID, gen int64, tc map[string]int64) dynamo.Item {
	it, _ := shard.Fresh(id, cfg, gen, 7)
	for name, v := range tc {
		it[schema.BucketAttr(name, schema.SuffixConsumed)] = dynamo.N(v)
	}
	return it
}

func rec(kind stream.Kind, seq string, old, new dynamo.Item) stream.Record {
	pos, _ := stream.Position(seq)
	r := stream.Record{Kind: kind, Seq: seq, Position: pos, Stream: "L", Time: t0, Old: old, New: new}
	if img := r.Image(); img != nil {
		r.Keys = dynamo.Item{schema.PK: img[schema.PK], schema.SK: img[schema.SK]}
	}
	return r
}

func TestChangeOf(t *testing.T) {
	gen := t0.UnixMilli()
	zero := map[string]int64{"rpm": 0, "tpm": 0}
	for _, c := range []struct {
		name   string
		r      stream.Record
		ok     bool
		tokens map[string]int64
	}{
		{"the write that creates shard 0 carries the first take", rec(stream.Insert, "1", nil, item(hot, gen, map[string]int64{"rpm": 1000, "tpm": 500_000})),
			true, map[string]int64{"rpm": 1, "tpm": 500}},
		{"a take", rec(stream.Modify, "2", item(hot, gen, map[string]int64{"rpm": 1000, "tpm": 500_000}), item(hot, gen, map[string]int64{"rpm": 2000, "tpm": 700_000})),
			true, map[string]int64{"rpm": 1, "tpm": 200}},
		{"a refund is negative", rec(stream.Modify, "3", item(hot, gen, map[string]int64{"rpm": 2000, "tpm": 700_000}), item(hot, gen, map[string]int64{"rpm": 2000, "tpm": 600_000})),
			true, map[string]int64{"tpm": -100}},
		{"a sub-token change is an event of zero tokens", rec(stream.Modify, "4", item(hot, gen, map[string]int64{"tpm": 1_100}), item(hot, gen, map[string]int64{"tpm": 1_900})),
			true, map[string]int64{}},
		{"crossing a token boundary counts it", rec(stream.Modify, "5", item(hot, gen, map[string]int64{"tpm": 1_900}), item(hot, gen, map[string]int64{"tpm": 2_100})),
			true, map[string]int64{"tpm": 1}},
		{"a twin or recreated shard starts at zero", rec(stream.Insert, "6", nil, item(hot.Of(1), gen, zero)), false, nil},
		{"a split, bump or parameter sync leaves TC", rec(stream.Modify, "7", item(hot, gen, map[string]int64{"tpm": 5_000}), item(hot, gen, map[string]int64{"tpm": 5_000})), false, nil},
		{"an item replaced by a put counts from zero", rec(stream.Modify, "8", item(hot, gen, map[string]int64{"tpm": 9_000}), item(hot, gen+1, map[string]int64{"tpm": 2_000})),
			true, map[string]int64{"tpm": 2}},
		{"a TTL expiry consumes nothing", rec(stream.Expire, "9", item(hot, gen, map[string]int64{"tpm": 9_000}), nil), false, nil},
		{"a delete consumes nothing", rec(stream.Remove, "10", item(hot, gen, map[string]int64{"tpm": 9_000}), nil), false, nil},
		{"not a bucket", rec(stream.Insert, "11", nil, dynamo.Item{schema.PK: dynamo.S("ns1/ENTITY#e"), schema.SK: dynamo.S("#META")}), false, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, ok, err := ChangeOf(c.r)
			require.NoError(t, err)
			require.Equal(t, c.ok, ok)
			if ok {
				assert.Equal(t, c.tokens, got.Tokens)
				assert.Equal(t, hot.Entity, got.Shard.Entity)
				assert.Equal(t, c.r.Position, got.Position)
				assert.Equal(t, "L", got.Stream)
				assert.Equal(t, t0, got.Time)
			}
		})
	}
}

func TestChangeOf_wcuNeverCounts(t *testing.T) {
	old := item(hot, 1, map[string]int64{"tpm": 1000})
	new := item(hot, 1, map[string]int64{"tpm": 1000})
	new[schema.BucketAttr(shard.Budget, schema.SuffixConsumed)] = dynamo.N(5000)
	_, ok, err := ChangeOf(rec(stream.Modify, "1", old, new))
	require.NoError(t, err)
	assert.False(t, ok)
}

func TestChangeOf_errors(t *testing.T) {
	damaged := item(hot, 1, map[string]int64{"tpm": 1000})
	damaged[schema.BucketAttr("tpm", schema.SuffixVirtualTime)] = dynamo.S("nope")
	_, _, err := ChangeOf(rec(stream.Insert, "1", nil, damaged))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "record 1: new image: bucket item")

	_, _, err = ChangeOf(rec(stream.Modify, "2", damaged, item(hot, 1, map[string]int64{"tpm": 2000})))
	assert.ErrorContains(t, err, "record 2: old image")

	badKey := item(hot, 1, map[string]int64{"tpm": 1000})
	r := rec(stream.Insert, "3", nil, badKey)
	r.Keys[schema.PK] = dynamo.S("ns1/BUCKET#only-entity")
	_, _, err = ChangeOf(r)
	assert.ErrorContains(t, err, "record 3: bucket key")

	r = rec(stream.Insert, "4", nil, item(hot, 1, map[string]int64{"tpm": 1000}))
	r.Time = time.Time{}
	_, _, err = ChangeOf(r)
	assert.ErrorIs(t, err, ErrNoTime)
}

func TestTokens_floorsSoDifferencesAddUp(t *testing.T) {
	for milli, want := range map[int64]int64{0: 0, 999: 0, 1000: 1, 1999: 1, -1: -1, -1000: -1, -1001: -2} {
		assert.Equal(t, want, Tokens(milli), "%d", milli)
	}
	// A counter moving by 300 millitokens a record: the per-record whole
	// tokens add up to the counter's whole tokens at every step.
	var tc, sum int64
	for range 1000 {
		next := tc + 300
		sum += Tokens(next) - Tokens(tc)
		tc = next
		require.Equal(t, Tokens(tc), sum)
	}
	assert.Equal(t, int64(300), sum)
}
