package client

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A Rollback whose answer was lost landed; the next call is a Commit, told
// lease_closed: the lease was rolled back, so it holds nothing, and the
// Commit says it did not keep the tokens.
func TestRelease_rollbackLandedThenCommit409(t *testing.T) {
	s := newServer(t, answer(200, acquireOK), drop, answer(409, `{"error":"lease_closed","message":"closed"}`))
	c := newTestClient(t, s, WithRetry(0, 0))
	l, err := c.Acquire(context.Background(), testRequest)
	require.NoError(t, err)

	require.Error(t, l.Rollback(context.Background()))
	err = l.Commit(context.Background())
	assert.ErrorIs(t, err, ErrLeaseClosed)
	assert.ErrorContains(t, err, "an earlier rollback whose answer was lost closed it")
	assert.True(t, l.Closed())
	assert.Equal(t, map[string]int64{"rpm": 0, "tpm": 0}, l.Consumed(),
		"the rollback that landed returned everything")
}

// A Commit whose answer was lost landed; the next call is a Rollback, told
// lease_closed: the tokens were kept, so Rollback must not report success
// nor claim the lease holds nothing.
func TestRelease_commitLandedThenRollback409(t *testing.T) {
	s := newServer(t, answer(200, acquireOK), drop, answer(409, `{"error":"lease_closed","message":"closed"}`))
	c := newTestClient(t, s, WithRetry(0, 0))
	l, err := c.Acquire(context.Background(), testRequest)
	require.NoError(t, err)

	require.Error(t, l.Commit(context.Background()))
	rerr := l.Rollback(context.Background())
	assert.Equal(t, map[string]int64{"rpm": 1, "tpm": 500}, l.Consumed(),
		"the commit that landed kept the tokens")
	assert.ErrorIs(t, rerr, ErrLeaseClosed, "nothing was rolled back")
	assert.ErrorContains(t, rerr, "an earlier commit whose answer was lost closed it")
}

// Both kinds may have landed: which closed the lease is unknown, so
// neither call claims success and Consumed is left alone.
func TestRelease_bothKindsMayHaveLanded409(t *testing.T) {
	s := newServer(t, answer(200, acquireOK), drop, drop, answer(409, `{"error":"lease_closed","message":"closed"}`))
	c := newTestClient(t, s, WithRetry(0, 0))
	l, err := c.Acquire(context.Background(), testRequest)
	require.NoError(t, err)

	require.Error(t, l.Commit(context.Background()))
	require.Error(t, l.Rollback(context.Background()))
	err = l.Rollback(context.Background())
	assert.ErrorIs(t, err, ErrLeaseClosed)
	assert.ErrorContains(t, err, "which one is unknown")
	assert.Equal(t, map[string]int64{"rpm": 1, "tpm": 500}, l.Consumed())
}
