package leasestate

import (
	"errors"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zeroae/zae-limiter-go/shared/dynamo"
	"github.com/zeroae/zae-limiter-go/shared/limits"
	"github.com/zeroae/zae-limiter-go/shared/schema"
)

const k = milli // one token in millitokens

// cascade is a lease on a child (tpm 100, rpm 1) cascading to its parent
// (tpm 100 only: the parent has no rpm limit).
var cascade = Lease{NS: "ns1", ID: "L1", Entity: "user-1", Resource: "gpt-4", Expires: 1_800_000_000_000,
	Buckets: []Bucket{
		{Entity: "user-1", Initial: map[string]int64{"tpm": 100 * k, "rpm": 1 * k}},
		{Entity: "org", Initial: map[string]int64{"tpm": 100 * k}},
	}}

func adj(child, parent map[string]int64) []map[string]int64 { return []map[string]int64{child, parent} }

func TestCheck(t *testing.T) {
	for _, tc := range []struct {
		name  string
		state State
		req   Request
		field string // "" = allowed; "closed" = lease_closed
		want  string // in the message
	}{
		{name: "a charge on a fresh lease", req: Request{Adds: adj(map[string]int64{"tpm": 50 * k}, map[string]int64{"tpm": 50 * k})}},
		{name: "a refund of all it holds", req: Request{Adds: adj(map[string]int64{"tpm": -100 * k}, map[string]int64{"tpm": -100 * k})}},
		{name: "a refund beyond what it holds", req: Request{Adds: adj(map[string]int64{"tpm": -101 * k}, nil)},
			field: "adjust.tpm", want: "the lease holds 100 of tpm on user-1; it cannot give back more than it holds"},
		{name: "a refund beyond the parent's share", state: State{Adj: adj(map[string]int64{"tpm": 50 * k}, map[string]int64{"tpm": -20 * k})},
			req:   Request{Adds: adj(map[string]int64{"tpm": -90 * k}, map[string]int64{"tpm": -90 * k})},
			field: "adjust.tpm", want: "the lease holds 80 of tpm on org"},
		{name: "fractions are shown", state: State{Adj: adj(map[string]int64{"rpm": -500}, nil)},
			req: Request{Adds: adj(map[string]int64{"rpm": -1 * k}, nil)}, field: "adjust.rpm", want: "the lease holds 0.5 of rpm"},
		{name: "a charge up to the bound", req: Request{Adds: adj(map[string]int64{"tpm": MaxNet - 100*k}, nil)}},
		{name: "a charge past the bound", req: Request{Adds: adj(map[string]int64{"tpm": MaxNet - 99*k}, nil)},
			field: "adjust.tpm", want: "a lease holds at most 1125899906842 of a limit"},
		{name: "recorded charges count toward the bound", state: State{Adj: adj(nil, map[string]int64{"tpm": MaxNet - 100*k})},
			req: Request{Adds: adj(nil, map[string]int64{"tpm": 1 * k})}, field: "adjust.tpm", want: "the lease holds 1125899906842 of tpm on org"},
		{name: "closed first", state: State{Closed: true}, req: Request{Adds: adj(map[string]int64{"tpm": -1000 * k}, nil)}, field: "closed"},
		{name: "a release of an open lease", state: State{Adj: adj(map[string]int64{"tpm": 5 * k}, nil)}, req: Request{Release: true, RolledBack: true}},
		{name: "a release of a closed one", state: State{Closed: true}, req: Request{Release: true}, field: "closed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := cascade.Check(tc.state, tc.req)
			switch tc.field {
			case "":
				assert.NoError(t, err)
			case "closed":
				assert.ErrorIs(t, err, limits.ErrLeaseClosed)
			default:
				var ve *limits.ValidationError
				require.True(t, errors.As(err, &ve), "%v", err)
				assert.Equal(t, tc.field, ve.Field)
				assert.Contains(t, err.Error(), tc.want)
			}
		})
	}
}

func TestApply(t *testing.T) {
	s := State{Adj: adj(map[string]int64{"tpm": 5 * k}, nil)}
	got := s.Apply(Request{Adds: adj(map[string]int64{"tpm": -2 * k, "rpm": 0}, map[string]int64{"tpm": 3 * k})})
	assert.Equal(t, State{Adj: adj(map[string]int64{"tpm": 3 * k}, map[string]int64{"tpm": 3 * k})}, got)
	assert.Equal(t, map[string]int64{"tpm": 5 * k}, s.Adj[0], "s is not changed")
	got = got.Apply(Request{Release: true, RolledBack: true})
	assert.True(t, got.Closed)
	assert.True(t, got.RolledBack)
	assert.Equal(t, adj(map[string]int64{"tpm": 103 * k, "rpm": 1 * k}, map[string]int64{"tpm": 103 * k}), cascade.Net(got))
}

func TestDecode(t *testing.T) {
	it := dynamo.Item{
		schema.PK: dynamo.S("ns1/LEASE#L1"), AttrClosed: dynamo.Bool(true), AttrRolledBack: dynamo.Bool(false),
		"a_0_tpm": dynamo.N(-5000), "a_1_tpm": dynamo.N(7), "a_0_my_limit.v2": dynamo.N(3),
		"a_2_tpm": dynamo.N(1), "a_x_tpm": dynamo.N(1), "a_0_": dynamo.N(1), AttrEntity: dynamo.S("user-1"),
	}
	s, err := Decode(it, 2)
	require.NoError(t, err)
	assert.Equal(t, State{Closed: true, Adj: adj(map[string]int64{"tpm": -5000, "my_limit.v2": 3}, map[string]int64{"tpm": 7})}, s,
		"names with underscores parse; other buckets and malformed names are ignored")

	s, err = Decode(nil, 2)
	require.NoError(t, err)
	assert.Equal(t, State{Adj: adj(map[string]int64{}, map[string]int64{})}, s, "no item: open, nothing adjusted")

	// Beyond int64 (an item written before adjustments were bounded): an
	// error, never 0, with the flags still read.
	it["a_1_tpm"] = &types.AttributeValueMemberN{Value: "10133099161583616000"}
	s, err = Decode(it, 2)
	assert.ErrorIs(t, err, ErrUnreadable)
	assert.Contains(t, err.Error(), "a_1_tpm")
	assert.True(t, s.Closed)
}

// The rendered gate: each rule once per delta, a bound an absent
// attribute meets allows attribute_not_exists, and the item's bookkeeping
// is set once.
func TestGateExpression(t *testing.T) {
	u := Gate(cascade, Request{Adds: adj(map[string]int64{"tpm": -150 * k, "rpm": 2 * k}, map[string]int64{"tpm": -150 * k}), Release: false})
	assert.Equal(t, "SET #000 = if_not_exists(#000, :000), #001 = if_not_exists(#001, :001), #002 = if_not_exists(#002, :002), "+
		"#003 = if_not_exists(#003, :003), #004 = if_not_exists(#004, :004) ADD #005 :005, #006 :006, #007 :007", u.Expression())
	n := u.Names()
	assert.Equal(t, []string{schema.GSI4PK, schema.GSI4SK, schema.TTL, AttrEntity, AttrResource, "a_0_rpm", "a_0_tpm", "a_1_tpm", AttrClosed},
		[]string{n["#000"], n["#001"], n["#002"], n["#003"], n["#004"], n["#005"], n["#006"], n["#007"], n["#008"]})
	assert.Equal(t, "(attribute_not_exists(#008) OR #008 = :008) AND "+
		"(#005 <= :009 OR attribute_not_exists(#005)) AND "+
		"(#006 >= :010) AND (#006 <= :011 OR attribute_not_exists(#006)) AND "+
		"(#007 >= :012) AND (#007 <= :013 OR attribute_not_exists(#007))", u.Condition())
	v := u.Values()
	assert.Equal(t, dynamo.N(1_800_000_000+1+86400), v[":002"], "ttl: token expiry + a day, epoch seconds")
	assert.Equal(t, dynamo.N(50*k), v[":010"], "a >= -100 - (-150)")
	assert.Equal(t, dynamo.N(MaxNet+50*k), v[":011"], "a <= MaxNet - 100 + 150")

	rel := Gate(cascade, Request{Release: true, RolledBack: true})
	assert.Contains(t, rel.Expression(), "#005 = :005, #006 = :006")
	assert.NotContains(t, rel.Expression(), "ADD")
	assert.Equal(t, "attribute_not_exists(#005) OR #005 = :007", rel.Condition())

	re := Reopen(adj(map[string]int64{"tpm": -100 * k}, nil))
	assert.Equal(t, "SET #000 = :000 ADD #002 :001 REMOVE #001", re.Expression())
	assert.Equal(t, "#000 = :002", re.Condition())
}

func TestKeyAndTokens(t *testing.T) {
	assert.Equal(t, dynamo.Item{schema.PK: dynamo.S("ns1/LEASE#L1"), schema.SK: dynamo.S(schema.SKLease)}, cascade.Key())
	assert.Equal(t, "a_3_tpm", AdjAttr(3, "tpm"))
	assert.Equal(t, "12", Tokens(12*k))
	assert.Equal(t, "-0.25", Tokens(-250))
	assert.True(t, Empty(adj(map[string]int64{"tpm": 0}, nil)))
	assert.False(t, Empty(adj(nil, map[string]int64{"tpm": -1})))
}

// The planner's cost per adjust of a cascading lease (two buckets, two
// deltas): rendering the gate and its input.
func BenchmarkGate(b *testing.B) {
	r := Request{Adds: adj(map[string]int64{"tpm": 700 * k, "rpm": -1 * k}, map[string]int64{"tpm": 700 * k})}
	b.ReportAllocs()
	for b.Loop() {
		_ = Gate(cascade, r).Input("limiter", cascade.Key())
	}
}
