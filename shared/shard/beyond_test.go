package shard

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zeroae/zae-limiter-go/shared/bucket"
	"github.com/zeroae/zae-limiter-go/shared/dynamo"
	"github.com/zeroae/zae-limiter-go/shared/limits"
	"github.com/zeroae/zae-limiter-go/shared/schema"
)

// Calendar limits are stored with their period code: a calendar day is not
// a continuous day, in the fingerprint and in a write's conditions.
func TestCalendarParams(t *testing.T) {
	cal := limits.PerCalendar("q", 100, limits.CalendarDay)
	cont := limits.PerDay("q", 100, 0)
	assert.Equal(t, bucket.Params{Capacity: 100 * Milli, RefillAmount: 100 * Milli, RefillPeriod: bucket.CalendarDay}, ParamsOf(cal))
	assert.Equal(t, int64(86_400_000), ParamsOf(cont).RefillPeriod)
	assert.NotEqual(t, Fingerprint(map[string]bucket.Params{"q": ParamsOf(cal)}, 1), Fingerprint(map[string]bucket.Params{"q": ParamsOf(cont)}, 1))
	assert.Equal(t, bucket.CalendarMonth, ParamsOf(limits.PerCalendar("q", 1, limits.CalendarMonth)).RefillPeriod)
	assert.Equal(t, bucket.CalendarWeek, ParamsOf(limits.PerCalendar("q", 1, limits.CalendarWeek)).RefillPeriod)

	// A change from continuous to calendar carries the tokens held, never
	// more: 30 taken of a day's 100 stay taken in the calendar day.
	st := stateOf(t, []limits.Limit{cont}, t0, map[string]int64{"q": 30})
	carried := Carry(st, ConfigOf([]limits.Limit{cal}, 1, 0), t0)
	assert.Equal(t, int64(70), level(carried, "q", t0))
	back := Carry(carried, ConfigOf([]limits.Limit{cont}, 1, 0), t0)
	assert.Equal(t, int64(70), level(back, "q", t0), "and back again")

	// The status of a calendar limit names its boundary.
	sts := Statuses("u", "r", []limits.Limit{cal}, carried, map[string]int64{"q": 80 * Milli}, 1, t0)
	require.Len(t, sts, 1)
	next := time.UnixMilli(t0).UTC().Truncate(24 * time.Hour).Add(24 * time.Hour)
	assert.Equal(t, next, sts[0].ResetAt)
	assert.True(t, sts[0].Exceeded)
	assert.Equal(t, next.Sub(time.UnixMilli(t0)), sts[0].RetryAfter, "80 fits at midnight")
}

func shadowed(l limits.Limit) limits.Limit { l.Shadow = true; return l }

// A shadow limit never fails the write: no condition on its W, and one that
// would deny is not taken but counted (SD), with its wait.
func TestPlanTake_shadow(t *testing.T) {
	ls := []limits.Limit{perMin("rpm", 100), shadowed(perMin("new", 10))}
	cfg := ConfigOf(ls, 1, 0)
	st := stateOf(t, ls, t0, map[string]int64{"new": 8})
	w := schema.BucketAttr("new", schema.SuffixVirtualTime)

	plan, v, err := PlanTake(id0, st, cfg, take(map[string]int64{"rpm": 1, "new": 2}, t0))
	require.NoError(t, err)
	require.Equal(t, Write, v)
	assert.Empty(t, plan.Shadowed, "2 of the 2 left fits")
	assert.Equal(t, 1, mentions(plan.Update, w), "a shadow take has its form's condition, no upper bound")
	assert.Equal(t, int64(0), level(plan.Next, "new", t0))

	plan, v, err = PlanTake(id0, st, cfg, take(map[string]int64{"rpm": 1, "new": 5}, t0))
	require.NoError(t, err)
	require.Equal(t, Write, v, "the enforced limit admits: the shadow only reports")
	require.Contains(t, plan.Shadowed, "new")
	assert.InDelta(t, 18_000, plan.Shadowed["new"], 6, "3 more tokens at 10 a minute")
	assert.Equal(t, int64(2), level(plan.Next, "new", t0), "not taken")
	assert.Equal(t, int64(1), plan.Next.Limits["new"].SD)
	assert.Equal(t, st.Limits["new"].TC, plan.Next.Limits["new"].TC, "nothing consumed")
	assert.Contains(t, plan.Update.Expression(), "ADD")

	// Above the shadow's capacity: reported, never Never.
	_, v, err = PlanTake(id0, st, cfg, take(map[string]int64{"new": 50}, t0))
	require.NoError(t, err)
	assert.Equal(t, Write, v)
}

// Credits pay what the bucket cannot take, conditioned on the complement of
// the bucket's bound; a refund goes back where the lease says.
func TestPlanTake_credits(t *testing.T) {
	ls := []limits.Limit{perMin("tpm", 100)}
	cfg := ConfigOf(ls, 1, 0)
	st := stateOf(t, ls, t0, map[string]int64{"tpm": 95})
	l := st.Limits["tpm"]
	l.CR = 500 * Milli
	st.Limits["tpm"] = l

	plan, v, err := PlanTake(id0, st, cfg, take(map[string]int64{"tpm": 5}, t0))
	require.NoError(t, err)
	require.Equal(t, Write, v)
	assert.Empty(t, plan.Credits, "the bucket's own tokens first")

	plan, v, err = PlanTake(id0, st, cfg, take(map[string]int64{"tpm": 6}, t0))
	require.NoError(t, err)
	require.Equal(t, Write, v)
	assert.Equal(t, map[string]int64{"tpm": 6 * Milli}, plan.Credits)
	assert.Equal(t, int64(494*Milli), plan.Next.Limits["tpm"].CR)
	assert.Equal(t, st.Limits["tpm"].W, plan.Next.Limits["tpm"].W, "the bucket is not touched")
	assert.Equal(t, st.Limits["tpm"].TC+6*Milli, plan.Next.Limits["tpm"].TC, "consumption counts either way")
	assert.Contains(t, conditionNames(plan.Update), schema.BucketAttr("tpm", schema.SuffixCredit))

	// Above capacity, credits still pay; beyond them it never can.
	_, v, err = PlanTake(id0, st, cfg, take(map[string]int64{"tpm": 300}, t0))
	require.NoError(t, err)
	assert.Equal(t, Write, v)
	_, v, err = PlanTake(id0, st, cfg, take(map[string]int64{"tpm": 600}, t0))
	require.NoError(t, err)
	assert.Equal(t, Never, v)

	// Judged exact: a request neither can take is denied without a write.
	poor := st.Clone()
	l = poor.Limits["tpm"]
	l.CR = 3 * Milli
	poor.Limits["tpm"] = l
	_, v, err = PlanTake(id0, poor, cfg, Take{Amounts: map[string]int64{"tpm": 6 * Milli}, Now: t0, Judge: poor})
	require.NoError(t, err)
	assert.Equal(t, Deny, v)
	_, v, err = PlanTake(id0, poor, cfg, Take{Amounts: map[string]int64{"tpm": 3 * Milli}, Now: t0, Judge: poor})
	require.NoError(t, err)
	assert.Equal(t, Write, v, "the credits cover 3")

	// A rollback returns the credit-paid part to the credits, the rest to
	// the bucket.
	adj := PlanAdjust(id0, plan.Next, Adjust{Deltas: map[string]int64{"tpm": -10 * Milli}, Credit: map[string]int64{"tpm": 6 * Milli}, Level: 1, Now: t0})
	assert.Equal(t, int64(500*Milli), adj.Next.Limits["tpm"].CR)
	assert.Equal(t, st.Limits["tpm"].W-4*Milli, adj.Next.Limits["tpm"].W)
}

func TestPlanResetGrant(t *testing.T) {
	ls := []limits.Limit{perMin("rpm", 100), perMin("tpm", 1000)}
	st := stateOf(t, ls, t0, map[string]int64{"rpm": 150, "tpm": 400})
	st.Level = 2
	reset := PlanReset(id0, st, []string{"rpm"}, t0, 7)
	assert.Equal(t, int64(50), level(reset.Next, "rpm", t0), "full: half of the limit on a shard at level 2")
	assert.Equal(t, level(st, "tpm", t0), level(reset.Next, "tpm", t0), "other limits untouched")
	cond := reset.Update.Condition()
	assert.Contains(t, conditionNames(reset.Update), schema.BucketAttr("rpm", schema.SuffixRefill))
	assert.Contains(t, conditionNames(reset.Update), schema.AttrShardLevel)
	assert.NotEmpty(t, cond)

	grant := PlanGrant(id0, st, map[string]int64{"tpm": 1000 * Milli}, "g1", t0, 7)
	assert.Equal(t, int64(1000*Milli), grant.Next.Limits["tpm"].CR)
	assert.Contains(t, conditionNames(grant.Update), schema.AttrGrant)
	sts := Statuses("u", "r", ls, grant.Next, nil, 2, t0)
	assert.Equal(t, int64(500), sts[1].Credit, "a shard at level 2 holds half of the grant")
	assert.Greater(t, Expiry(grant.Next, t0, 7), t0/1000+9*366*86400, "credits keep the item")

	it, gst := GrantItem(id0, ConfigOf(ls, 1, 0), map[string]int64{"rpm": 5 * Milli}, "g2", t0, 7)
	back, err := Decode(it)
	require.NoError(t, err)
	assert.Equal(t, "g2", back.GID)
	twinItem, _ := Twin(id0.Of(1), back, t0, 7)
	twin, err := Decode(twinItem)
	require.NoError(t, err)
	assert.Equal(t, "g2", twin.GID, "a twin carries its parent's grants")
	assert.Equal(t, back.Limits["rpm"].CR, twin.Limits["rpm"].CR)
	assert.Equal(t, gst.Limits["rpm"].CR, back.Limits["rpm"].CR)
	assert.Equal(t, int64(100), level(back, "rpm", t0), "a new bucket starts full")
}

// Merging shares credits like W: never more than the two held.
func TestPlanMerge_credits(t *testing.T) {
	ls := []limits.Limit{perMin("tpm", 1000)}
	j := stateOf(t, ls, t0, nil)
	j.Level = 2
	k := j.Clone()
	lj, lk := j.Limits["tpm"], k.Limits["tpm"]
	lj.CR, lk.CR = 301, 100
	j.Limits["tpm"], k.Limits["tpm"] = lj, lk
	_, _, next, ok := PlanMerge(id0, j, k, t0, 7)
	require.True(t, ok)
	// Before: 301/2 + 100/2 = 200.5 tokens' worth; after: CR/1.
	assert.Equal(t, int64(200), next.Limits["tpm"].CR)
	_, _, alone, ok := PlanMerge(id0, j, nil, t0, 7)
	require.True(t, ok)
	assert.Equal(t, int64(150), alone.Limits["tpm"].CR, "a missing twin held none")
}

// conditionNames are the attribute names a write's condition mentions.
func conditionNames(u *dynamo.Update) string {
	cond := u.Condition()
	var out []string
	for alias, name := range u.Names() {
		if strings.Contains(cond, alias) {
			out = append(out, name)
		}
	}
	return strings.Join(out, " ")
}

// mentions counts the times a write's condition names attr.
func mentions(u *dynamo.Update, attr string) int {
	for alias, name := range u.Names() {
		if name == attr {
			return strings.Count(u.Condition(), alias)
		}
	}
	return 0
}
