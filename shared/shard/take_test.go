package shard

import (
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zeroae/zae-limiter-go/shared/bucket"
	"github.com/zeroae/zae-limiter-go/shared/dynamo"
	"github.com/zeroae/zae-limiter-go/shared/limits"
	"github.com/zeroae/zae-limiter-go/shared/schema"
)

// t0 is the tests' instant (Unix ms).
const t0 int64 = 1_790_000_000_000

var id0 = ID{Namespace: "ns", Entity: "u", Resource: "r"}

func perMin(name string, n int64) limits.Limit { return limits.PerMinute(name, n, 0) }

// item returns the state a bucket would have after its creation at level 1
// with ls at now, minus the tokens in taken (whole tokens).
func stateOf(t *testing.T, ls []limits.Limit, now int64, taken map[string]int64) *State {
	t.Helper()
	cfg := ConfigOf(ls, 1, 0)
	_, st := Fresh(id0, cfg, now, 7)
	for name, n := range taken {
		l := st.Limits[name]
		l.W += n * Milli
		l.TC += n * Milli
		st.Limits[name] = l
	}
	return st
}

// level is what limit name of st holds at now, whole tokens.
func level(st *State, name string, now int64) int64 {
	l := st.Limits[name]
	return bucket.Whole(bucket.Level(l.W, bucket.Clock(l.Params, now), l.Params) / int64(st.Level))
}

func take(amounts map[string]int64, now int64) Take {
	m := map[string]int64{}
	for k, v := range amounts {
		m[k] = v * Milli
	}
	return Take{Amounts: m, Budget: true, Now: now, TTLMultiplier: 7}
}

func TestPlanTake_verdicts(t *testing.T) {
	ls := []limits.Limit{perMin("rpm", 100)}
	full := stateOf(t, ls, t0, nil)
	drained := stateOf(t, ls, t0, map[string]int64{"rpm": 100})
	split := full.Clone()
	split.Level = 2
	newer := full.Clone()
	newer.PE = 9
	spentBudget := full.Clone()
	b := spentBudget.Limits[Budget]
	b.W = bucket.Clock(BudgetParams, t0) + BudgetParams.Capacity
	spentBudget.Limits[Budget] = b

	for _, tc := range []struct {
		name  string
		st    *State
		cfg   Config
		tk    Take
		want  Verdict
		check func(t *testing.T, p Plan)
	}{
		{"unknown shard 0 is created by the write", nil, ConfigOf(ls, 1, 0), take(map[string]int64{"rpm": 1}, t0), Write,
			func(t *testing.T, p Plan) {
				assert.True(t, strings.HasPrefix(p.Update.Condition(), "attribute_not_exists("), p.Update.Condition())
				assert.Contains(t, p.Update.Expression(), "if_not_exists(")
			}},
		{"a cached full bucket is written", full, ConfigOf(ls, 1, 0), take(map[string]int64{"rpm": 1}, t0), Write,
			func(t *testing.T, p Plan) { assert.Equal(t, int64(99), level(p.Next, "rpm", t0)) }},
		{"a cached drained bucket is still written: the cache may be stale", drained, ConfigOf(ls, 1, 0),
			take(map[string]int64{"rpm": 1}, t0), Write, nil},
		{"the exact state of a failed write denies without a write", drained, ConfigOf(ls, 1, 0),
			func() Take { tk := take(map[string]int64{"rpm": 1}, t0); tk.Judge = drained; return tk }(), Deny,
			func(t *testing.T, p Plan) { assert.Nil(t, p.Update) }},
		{"above the capacity is never admissible", full, ConfigOf(ls, 1, 0), take(map[string]int64{"rpm": 101}, t0), Never, nil},
		{"above a shard's share is never admissible on it", split, ConfigOf(ls, 2, 0), take(map[string]int64{"rpm": 51}, t0), Never, nil},
		{"a shard is written at its own level, whatever the writer's count", split, ConfigOf(ls, 1, 0), take(map[string]int64{"rpm": 30}, t0), Write,
			func(t *testing.T, p Plan) {
				assert.Equal(t, 2, p.Next.Level)
				assert.Equal(t, int64(20), level(p.Next, "rpm", t0), "30 of its 50")
			}},
		{"a newer config on the item makes an older writer read again", newer, ConfigOf([]limits.Limit{perMin("rpm", 50)}, 1, 3),
			func() Take { tk := take(map[string]int64{"rpm": 1}, t0); tk.Ordered = true; return tk }(), Newer, nil},
		{"unordered (refreshed) writers rewrite it", newer, ConfigOf([]limits.Limit{perMin("rpm", 50)}, 1, 3),
			take(map[string]int64{"rpm": 1}, t0), Write, nil},
		{"the same parameters at an older version need nothing", newer, ConfigOf(ls, 1, 3),
			func() Take { tk := take(map[string]int64{"rpm": 1}, t0); tk.Ordered = true; return tk }(), Write, nil},
		{"a spent write budget (exact) grows the shards", spentBudget, ConfigOf(ls, 1, 0),
			func() Take { tk := take(map[string]int64{"rpm": 1}, t0); tk.Judge = spentBudget; return tk }(), OutOfBudget, nil},
		{"a raised limit whose carried tokens do not fit writes the parameters alone", drained,
			ConfigOf([]limits.Limit{perMin("rpm", 1000)}, 1, 0), take(map[string]int64{"rpm": 500}, t0), SyncOnly,
			func(t *testing.T, p Plan) {
				assert.Equal(t, int64(0), level(p.Next, "rpm", t0), "a capacity increase does not fill")
				assert.Equal(t, drained.Limits["rpm"].TC, p.Next.Limits["rpm"].TC, "nothing is taken")
				assert.Equal(t, int64(1000*Milli), p.Next.Limits["rpm"].Params.Capacity)
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, v, err := PlanTake(id0, tc.st, tc.cfg, tc.tk)
			require.NoError(t, err)
			assert.Equal(t, tc.want, v, "verdict %v", v)
			if tc.check != nil {
				tc.check(t, p)
			}
		})
	}
}

// The two forms of a take on a known item: busy (virtual time ahead of the
// booking instant) adds, bounded above; idle sets it from the booking
// instant. Both are conditioned on the fingerprint.
func TestPlanTake_forms(t *testing.T) {
	ls := []limits.Limit{perMin("rpm", 100)}
	busy := stateOf(t, ls, t0, map[string]int64{"rpm": 10})
	p, v, err := PlanTake(id0, busy, ConfigOf(ls, 1, 0), take(map[string]int64{"rpm": 5}, t0))
	require.NoError(t, err)
	require.Equal(t, Write, v)
	w := busy.Limits["rpm"].W
	assert.Equal(t, Mark{Add: 5 * Milli}, p.Marks["rpm"])
	assert.Equal(t, w+5*Milli, p.Next.Limits["rpm"].W)
	assert.Equal(t, int64(85), level(p.Next, "rpm", t0))
	assert.Contains(t, p.Update.Condition(), "AND")

	idle := stateOf(t, ls, t0-60_000, map[string]int64{"rpm": 10}) // a minute ago: full again
	p, _, err = PlanTake(id0, idle, ConfigOf(ls, 1, 0), take(map[string]int64{"rpm": 5}, t0))
	require.NoError(t, err)
	c := bucket.Clock(ParamsOf(ls[0]), t0)
	assert.Equal(t, Mark{Set: c + 5*Milli}, p.Marks["rpm"], "booked from the clock, nothing absorbed")
	assert.Equal(t, int64(95), level(p.Next, "rpm", t0))
}

// A change of parameters carries each limit's tokens over, clamped to the
// new capacity, never adding any; a new limit starts full; a dropped one
// stays on the item (dormant) and in the fingerprint.
func TestCarry(t *testing.T) {
	ls := []limits.Limit{perMin("rpm", 100), perMin("x", 1000)}
	st := stateOf(t, ls, t0, map[string]int64{"rpm": 30, "x": 400})
	for _, tc := range []struct {
		name string
		to   []limits.Limit
		want map[string]int64 // rpm, x, y
	}{
		{"lowered: clamped", []limits.Limit{perMin("rpm", 50), perMin("x", 1000)}, map[string]int64{"rpm": 50, "x": 600}},
		{"lowered below the tokens held", []limits.Limit{perMin("rpm", 80), perMin("x", 1000)}, map[string]int64{"rpm": 70, "x": 600}},
		{"raised: the count is kept", []limits.Limit{perMin("rpm", 500), perMin("x", 1000)}, map[string]int64{"rpm": 70, "x": 600}},
		{"a new limit starts full; a dropped one is kept", []limits.Limit{perMin("rpm", 100), perMin("y", 7)}, map[string]int64{"rpm": 70, "x": 600, "y": 7}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := Carry(st, ConfigOf(tc.to, 1, 4), t0)
			for name, want := range tc.want {
				assert.Equal(t, want, level(out, name, t0), name)
			}
			assert.Contains(t, out.Limits, "x", "dormant limits stay")
			assert.Equal(t, Fingerprint(out.Params(), 1), out.PV, "the fingerprint covers every limit on the item")
			assert.Equal(t, int64(4), out.PE)
		})
	}
	back := Carry(Carry(st, ConfigOf([]limits.Limit{perMin("rpm", 10)}, 1, 0), t0), ConfigOf(ls, 1, 0), t0)
	assert.Equal(t, int64(10), level(back, "rpm", t0), "down and back up never adds tokens")
}

// Dormant limits are in the fingerprint: two items that differ only in a
// dormant limit's parameters have different fingerprints (so a write
// conditioned on one fails on the other).
func TestFingerprintCoversDormantLimits(t *testing.T) {
	a := stateOf(t, []limits.Limit{perMin("rpm", 10), perMin("x", 1000)}, t0, nil)
	b := stateOf(t, []limits.Limit{perMin("rpm", 10), limits.PerDay("x", 1000, 0)}, t0, nil)
	only := ConfigOf([]limits.Limit{perMin("rpm", 10)}, 1, 0)
	assert.False(t, only.Differs(a))
	assert.False(t, only.Differs(b))
	assert.NotEqual(t, a.PV, b.PV)
}

// The write budget is judged at the latest writer clock the item has seen:
// bookings by a writer whose clock runs ahead do not look like load to one
// whose clock lags, unless the item's time is beyond MaxSkew (a broken
// clock), in which case the budget starts over at the writer's own.
func TestBudgetAnchor(t *testing.T) {
	st := stateOf(t, []limits.Limit{perMin("rpm", 10)}, t0, nil)
	ahead := st.Clone()
	ahead.WT = t0 + 3000
	b := ahead.Limits[Budget]
	b.W = bucket.Clock(BudgetParams, ahead.WT) + BudgetCost*10 // 10 writes booked on the ahead clock
	ahead.Limits[Budget] = b
	assert.True(t, budgetFits(ahead, t0), "3 s of lag is not load")
	at, rebase := budgetAnchor(ahead, t0)
	assert.Equal(t, t0+3000, at)
	assert.False(t, rebase)

	spent := ahead.Clone()
	b.W = bucket.Clock(BudgetParams, ahead.WT) + BudgetParams.Capacity
	spent.Limits[Budget] = b
	assert.False(t, budgetFits(spent, t0), "spent on the leading clock is spent")

	broken := ahead.Clone()
	broken.WT = t0 + 2*3600_000
	_, rebase = budgetAnchor(broken, t0)
	assert.True(t, rebase)
	p, v, err := PlanTake(id0, broken, ConfigOf([]limits.Limit{perMin("rpm", 10)}, 1, 0), take(map[string]int64{"rpm": 1}, t0))
	require.NoError(t, err)
	require.Equal(t, Write, v)
	assert.Equal(t, t0, p.Next.WT, "the budget starts over at the writer's clock")
	assert.Equal(t, bucket.Clock(BudgetParams, t0)+BudgetCost, p.Next.Limits[Budget].W)
}

// The largest write the limiter sends (a bucket created with MaxLimits
// limits of the longest names, or all of them changed at once) stays
// within DynamoDB's expression limit.
func TestLargestWriteFitsDynamoDB(t *testing.T) {
	var old, neu []limits.Limit
	amounts := map[string]int64{}
	for i := range limits.MaxLimits {
		name := fmt.Sprintf("%02d", i) + strings.Repeat("n", 62)
		old = append(old, perMin(name, 1000))
		neu = append(neu, limits.PerHour(name, 5000, 0))
		amounts[name] = 1
	}
	created, v, err := PlanTake(id0, nil, ConfigOf(old, 1, 0), take(amounts, t0))
	require.NoError(t, err)
	require.Equal(t, Write, v)
	synced, v, err := PlanTake(id0, created.Next, ConfigOf(neu, 1, 0), take(amounts, t0))
	require.NoError(t, err)
	require.Equal(t, Write, v)
	for _, p := range []Plan{created, synced} {
		assert.Less(t, p.Update.Size(), dynamo.MaxExpressionSize*3/5, "room to spare")
	}
}

// Expiry renews the ttl from the slowest limit (dormant ones included),
// never before debt is repaid, and never earlier than the item's own ttl
// (a writer whose clock lags must not expire a bucket early).
func TestExpiry(t *testing.T) {
	st := stateOf(t, []limits.Limit{perMin("rpm", 10)}, t0, nil)
	base := Expiry(st, t0, 7)
	assert.Equal(t, t0/1000+3600, base, "at least an hour")
	debt := st.Clone()
	l := debt.Limits["rpm"]
	l.W += 10_000 * Milli // 9990 tokens of debt: 999 minutes
	debt.Limits["rpm"] = l
	assert.GreaterOrEqual(t, Expiry(debt, t0, 7), t0/1000+999*60+3600)
	lagging := st.Clone()
	lagging.TTL = base + 7200
	assert.Equal(t, base+7200, Expiry(lagging, t0-2*3600_000, 7))
	assert.Zero(t, Expiry(st, t0, -1), "disabled")
	split := &State{Exists: true, Level: 2, Limits: st.Limits}
	p, _, err := PlanTake(id0, split, ConfigOf([]limits.Limit{perMin("rpm", 10)}, 2, 0), take(map[string]int64{"rpm": 1}, t0))
	require.NoError(t, err)
	for _, n := range p.Update.Names() {
		assert.NotEqual(t, schema.TTL, n, "a split shard 0 never expires")
	}
}

func TestDecodeRefusesNumbersBeyondInt64(t *testing.T) {
	it, _ := Fresh(id0, ConfigOf([]limits.Limit{perMin("rpm", 10)}, 1, 0), t0, 7)
	st, err := Decode(it)
	require.NoError(t, err)
	assert.True(t, st.Exists)
	it[schema.BucketAttr("rpm", schema.SuffixVirtualTime)] = &types.AttributeValueMemberN{Value: "99999999999999999999999"}
	_, err = Decode(it)
	assert.ErrorContains(t, err, "b_rpm_w")
}
