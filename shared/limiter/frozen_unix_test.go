//go:build unix

package limiter_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zeroae/zae-limiter-go/shared/ddblocal/ddbtest"
	"github.com/zeroae/zae-limiter-go/shared/limiter"
	"github.com/zeroae/zae-limiter-go/shared/limits"
	"github.com/zeroae/zae-limiter-go/shared/store"
)

// A DynamoDB that hangs (its process stopped: connections accepted, never
// answered) makes every call end within the limiter's budget (5 s by
// default), config reads included, as "unavailable": the on_unavailable
// policy decides, block or allow.
func TestFrozenDynamoDBAnswersWithinTheBudget(t *testing.T) {
	for _, tc := range []struct {
		policy  limits.OnUnavailable
		timeout time.Duration
	}{
		{limits.Block, 0}, // the default budget
		{limits.Allow, time.Second},
	} {
		t.Run(string(tc.policy), func(t *testing.T) {
			f := ddbtest.Freezable(t)
			ctx := context.Background()
			table := f.NewTable(t)
			st := store.New(f.Client, store.Options{Table: table})
			_, err := st.RegisterNamespace(ctx, "default")
			require.NoError(t, err)
			ns, err := st.Namespace(ctx, "default")
			require.NoError(t, err)
			require.NoError(t, ns.SetSystemDefaults(ctx, []limits.Limit{rpm(100)}, tc.policy))
			lim := limiter.New(f.Client, ns, limiter.Options{Table: table, Namespace: ns.ID, Timeout: tc.timeout})
			budget := tc.timeout
			if budget == 0 {
				budget = limiter.DefaultTimeout
			}
			// Warm the namespace's config and policy caches (and take a lease)
			// with a patient limiter: a loaded machine may be slower than the
			// budget under test.
			warm := limiter.New(f.Client, ns, limiter.Options{Table: table, Namespace: ns.ID, Timeout: time.Minute})
			req := limiter.Request{EntityID: "u", Resource: "r", Consume: map[string]int64{"rpm": 1}}
			held, err := warm.Acquire(ctx, req)
			require.NoError(t, err)
			lease := lim.Resume(req, held.Entries()) // the lease, under the budget under test
			_, err = lim.Acquire(ctx, limiter.Request{EntityID: "w", Resource: "r", Consume: map[string]int64{"rpm": 1}})
			require.NoError(t, err, "a DynamoDB that answers is no outage")

			f.Freeze()
			start := time.Now()
			got, err := lim.Acquire(ctx, limiter.Request{EntityID: "v", Resource: "r", Consume: map[string]int64{"rpm": 1}})
			took := time.Since(start)
			if tc.policy == limits.Block {
				assert.True(t, errors.Is(err, limits.ErrUnavailable), "unavailable, not %v", err)
			} else {
				require.NoError(t, err)
				assert.True(t, got.Degraded(), "allow admits unchecked")
			}
			assert.Less(t, took, budget+3*time.Second, "bounded by the budget (%v)", budget)

			start = time.Now()
			err = lease.Adjust(ctx, map[string]int64{"rpm": 1})
			assert.Error(t, err)
			assert.Less(t, time.Since(start), budget+3*time.Second, "a lease's writes too")
			f.Thaw()
		})
	}
}
