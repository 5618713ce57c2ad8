package store

import (
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zeroae/zae-limiter-go/shared/limits"
)

// A cold cache under concurrent acquires reads each missing record once.
func TestCacheMissesAreReadOnce(t *testing.T) {
	f := setup(t, Options{})
	_, err := f.ns.CreateEntity(f.ctx, Entity{ID: "e1"})
	require.NoError(t, err)
	require.NoError(t, f.ns.SetLimits(f.ctx, "e1", "gpt-4", []limits.Limit{limits.PerMinute("rpm", 10, 0)}))
	f.ns.InvalidateCache()
	f.db.reset()

	var wg sync.WaitGroup
	start := make(chan struct{})
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			_, found, err := f.ns.CachedEntity(f.ctx, "e1")
			assert.NoError(t, err)
			assert.True(t, found)
			r, err := f.ns.ResolveLimits(f.ctx, "e1", "gpt-4")
			assert.NoError(t, err)
			assert.Equal(t, SourceEntity, r.Source)
		}()
	}
	close(start)
	wg.Wait()
	// Concurrent callers share the reads in flight; a caller arriving after
	// a read finished finds the cache filled. Either way: far fewer than 32.
	assert.LessOrEqual(t, f.db.count("GetItem"), 2, "entity reads")
	assert.LessOrEqual(t, f.db.count("TransactGetItems"), 2, "config reads")
}
