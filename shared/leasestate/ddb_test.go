package leasestate

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zeroae/zae-limiter-go/shared/ddblocal/ddbtest"
	"github.com/zeroae/zae-limiter-go/shared/dynamo"
	"github.com/zeroae/zae-limiter-go/shared/limits"
)

func TestMain(m *testing.M) { ddbtest.Main(m) }

// The planner's conditions mean what Check says, as DynamoDB evaluates
// them: for random states and requests around every bound, a gate is
// written exactly when Check allows it, the written item decodes to
// Apply's projection, and a refused one is left as it was (and explained
// by Check from the ALL_OLD item). Undo is written exactly when the item
// exists and Check allows its deltas. LEASESTATE_SEED replays a run.
func TestConditionsAgreeWithCheck(t *testing.T) {
	table, db, ctx := ddbtest.NewTable(t), ddbtest.Client(t), context.Background()
	seed := uint64(7)
	if v := os.Getenv("LEASESTATE_SEED"); v != "" {
		var err error
		seed, err = strconv.ParseUint(v, 10, 64)
		require.NoError(t, err)
	}
	t.Logf("seed %d (LEASESTATE_SEED=%d replays it)", seed, seed)
	rnd := rand.New(rand.NewPCG(seed, 0))

	written, refused := 0, 0
	for n := range 150 {
		l, s, exists := randomLease(rnd, n), State{}, rnd.IntN(4) > 0
		if exists {
			s = randomState(rnd, l)
			_, err := db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(table), Item: l.Item(s)})
			require.NoError(t, err)
		} else {
			s.Adj = make([]map[string]int64, len(l.Buckets))
		}
		r := Request{Adds: randomAdds(rnd, l, s), Release: rnd.IntN(5) == 0, RolledBack: rnd.IntN(2) == 0}
		what := fmt.Sprintf("case %d: state %+v (exists %v), request %+v", n, s, exists, r)

		if rnd.IntN(3) == 0 {
			// Undo instead of a gate.
			_, err := db.UpdateItem(ctx, Undo(l, r.Adds).Input(table, l.Key()))
			want := exists && l.Check(s, Request{Adds: r.Adds}) == nil
			if Empty(r.Adds) {
				continue // Undo of nothing is never sent
			}
			assert.Equal(t, want, err == nil, "undo %s: %v", what, err)
			if err != nil {
				assert.True(t, dynamo.IsCondFailed(err), "%s: %v", what, err)
			}
			continue
		}
		out, err := db.UpdateItem(ctx, Gate(l, r).Input(table, l.Key()))
		check := l.Check(s, r)
		require.Equal(t, check == nil, err == nil, "gate %s: check %v, DynamoDB %v", what, check, err)
		if err == nil {
			written++
			got, derr := Decode(out.Attributes, len(l.Buckets))
			require.NoError(t, derr)
			assert.Equal(t, s.Apply(r), got, "written %s", what)
			continue
		}
		refused++
		old, ok := dynamo.CondFailedItem(err)
		require.True(t, ok, "%s: %v", what, err)
		if exists {
			got, derr := Decode(old, len(l.Buckets))
			require.NoError(t, derr)
			assert.Equal(t, s, got, "refused %s", what)
			assert.Equal(t, check, l.Check(got, r), "the old item explains the refusal")
		}
	}
	t.Logf("%d gates written, %d refused", written, refused)
	assert.Positive(t, written)
	assert.Positive(t, refused)
}

var names = []string{"tpm", "rpm", "my_limit.v2"}

// randomLease has one or two buckets (a cascade), each with some of names.
func randomLease(rnd *rand.Rand, n int) Lease {
	l := Lease{NS: "ns1", ID: "L" + strconv.Itoa(n), Entity: "user-1", Resource: "gpt-4", Expires: 1_800_000_000_000}
	for b := range 1 + rnd.IntN(2) {
		init := map[string]int64{}
		for _, name := range names {
			if rnd.IntN(3) > 0 {
				init[name] = rnd.Int64N(3) * rnd.Int64N(limits.MaxTokens) * milli / 2
			}
		}
		l.Buckets = append(l.Buckets, Bucket{Entity: "e" + strconv.Itoa(b), Initial: init})
	}
	return l
}

// randomState: open or closed, each held limit adjusted anywhere its net
// amount may be (or not at all).
func randomState(rnd *rand.Rand, l Lease) State {
	s := State{Closed: rnd.IntN(6) == 0, Adj: make([]map[string]int64, len(l.Buckets))}
	s.RolledBack = s.Closed && rnd.IntN(2) == 0
	for i, b := range l.Buckets {
		s.Adj[i] = map[string]int64{}
		for _, name := range slices.Sorted(maps.Keys(b.Initial)) {
			if rnd.IntN(3) > 0 {
				s.Adj[i][name] = rnd.Int64N(MaxNet+1) - b.Initial[name]
			}
		}
	}
	return s
}

// randomAdds picks, per held limit, a delta at, just inside or just past a
// bound, or anywhere, or none.
func randomAdds(rnd *rand.Rand, l Lease, s State) []map[string]int64 {
	net := l.Net(s)
	adds := make([]map[string]int64, len(l.Buckets))
	for i, b := range l.Buckets {
		adds[i] = map[string]int64{}
		for _, name := range slices.Sorted(maps.Keys(b.Initial)) {
			held := net[i][name]
			switch rnd.IntN(7) {
			case 0:
				adds[i][name] = -held // all of it back
			case 1:
				adds[i][name] = -held - 1 // one millitoken too many
			case 2:
				adds[i][name] = MaxNet - held // up to the bound
			case 3:
				adds[i][name] = MaxNet - held + 1
			case 4:
				adds[i][name] = rnd.Int64N(MaxNet+1) - held
			case 5:
				adds[i][name] = (rnd.Int64N(2001) - 1000) * milli
			}
		}
	}
	return adds
}
