package api

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zeroae/zae-limiter-go/shared/limits"
	"github.com/zeroae/zae-limiter-go/shared/wire"
)

// The JSON of a limit is one shape everywhere (DECISIONS §4.1): the wire's
// request type and the limits vocabulary the CLI prints encode alike, and
// limitsOf converts between them field for field.
func TestLimitJSONIsTheWireShape(t *testing.T) {
	l := limits.Limit{Name: "tpm", Capacity: 15_000, RefillAmount: 10_000, RefillPeriodSeconds: 60}
	w := wire.Limit{Name: "tpm", Capacity: 15_000, RefillAmount: 10_000, RefillPeriodSeconds: 60}
	lj, err := json.Marshal(l)
	require.NoError(t, err)
	wj, err := json.Marshal(w)
	require.NoError(t, err)
	assert.JSONEq(t, string(wj), string(lj))
	assert.Equal(t, []limits.Limit{l}, limitsOf([]wire.Limit{w}))
}

// Denial and LimitState render the engine's statuses in the wire types the
// HTTP API and the CLI both print.
func TestDenialAndLimitState(t *testing.T) {
	within := limits.Status{EntityID: "u", Resource: "r", Limit: limits.PerMinute("rpm", 10, 0), Available: 0, Requested: 1,
		Exceeded: true, RetryAfter: 6*time.Second + 1500*time.Microsecond}
	above := limits.Status{EntityID: "p", Resource: "r", Limit: limits.PerMinute("tpm", 100, 0), Available: 100, Requested: 500,
		Exceeded: true, RetryAfter: 4 * time.Minute}
	ok := limits.Status{EntityID: "u", Resource: "r", Limit: limits.PerMinute("tpm", 1000, 0), Available: 700, Requested: 500}

	d := Denial(limits.NewExceeded([]limits.Status{within, ok}))
	assert.Equal(t, wire.CodeRateLimited, d.Code)
	assert.Equal(t, 6.001, d.RetryAfterSeconds, "millisecond precision")
	require.NotNil(t, d.Retryable)
	assert.True(t, *d.Retryable)
	assert.Equal(t, []wire.Violation{{EntityID: "u", Resource: "r", Limit: "rpm", Available: 0, Requested: 1}}, d.Violations)
	assert.Equal(t, "rate limit exceeded for u/r: [u/rpm]; retry after 6.0s", d.Message)

	d = Denial(limits.NewExceeded([]limits.Status{within, above}))
	assert.False(t, *d.Retryable)
	assert.Equal(t, 240.0, d.RetryAfterSeconds, "the wait stays finite")
	assert.Equal(t, "rate limit exceeded for p/r, and the request can never be admitted at the current limits "+
		"(p/tpm: requested 500 exceeds the capacity 100); do not retry it", d.Message)

	assert.Equal(t, wire.LimitState{EntityID: "u", Name: "tpm", Available: 700, Capacity: 1000}, LimitState(ok))
}
