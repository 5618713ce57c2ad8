package store

import (
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zeroae/zae-limiter-go/shared/limits"
)

// Concurrent writers and readers through one Store (and a second one, as
// another process would) keep the registry exact and the caches race-free.
func TestConcurrentConfigWritesAndResolution(t *testing.T) {
	f := setup(t, Options{})
	other := New(f.raw, Options{Table: f.table})
	ons, err := other.Namespace(f.ctx, "default")
	require.NoError(t, err)
	require.NoError(t, f.ns.SetSystemDefaults(f.ctx, rpm(1), ""))

	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for w := range 8 {
		ns := f.ns
		if w%2 == 1 {
			ns = ons
		}
		wg.Go(func() {
			for i := range 5 {
				// Every worker sets the same shared config and its own one.
				if err := ns.SetLimits(f.ctx, "shared", "gpt-4", rpm(int64(10+i))); err != nil {
					errs <- err
				}
				if err := ns.SetLimits(f.ctx, fmt.Sprintf("w%d", w), "gpt-4", rpm(int64(i+1))); err != nil {
					errs <- err
				}
				if _, err := ns.ResolveLimits(f.ctx, "shared", "gpt-4"); err != nil {
					errs <- err
				}
				if _, _, err := ns.CachedEntity(f.ctx, "shared"); err != nil {
					errs <- err
				}
			}
		})
	}
	for range 4 {
		wg.Go(func() {
			_, err := f.st.RegisterNamespace(f.ctx, "raced")
			if err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}

	reg, err := f.ns.ConfigRegistry(f.ctx)
	require.NoError(t, err)
	assert.EqualValues(t, 9, reg["gpt-4"], "shared + w0..w7, each counted once")
	ids, err := f.ns.EntitiesWithCustomLimits(f.ctx, "gpt-4")
	require.NoError(t, err)
	assert.Len(t, ids, 9)

	list, err := f.st.ListNamespaces(f.ctx)
	require.NoError(t, err)
	assert.Equal(t, []string{"default", "raced"}, names(list), "one registration despite the race")
	orphans, err := f.st.ListOrphanNamespaces(f.ctx)
	require.NoError(t, err)
	assert.Empty(t, orphans, "no stray reverse records")

	// Deleting concurrently: exactly one delete of a config wins.
	var deleted sync.WaitGroup
	results := make(chan error, 6)
	for range 6 {
		deleted.Go(func() { results <- f.ns.DeleteLimits(f.ctx, "shared", "gpt-4") })
	}
	deleted.Wait()
	close(results)
	wins := 0
	for err := range results {
		if err == nil {
			wins++
		} else {
			require.ErrorIs(t, err, limits.ErrNotFound)
		}
	}
	assert.Equal(t, 1, wins)
	reg, err = f.ns.ConfigRegistry(f.ctx)
	require.NoError(t, err)
	assert.EqualValues(t, 8, reg["gpt-4"])
}
