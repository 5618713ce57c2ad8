package api

// Review tests: each demonstrates a suspected bug; a FAIL confirms it.

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zeroae/zae-limiter-go/shared/limits"
	"github.com/zeroae/zae-limiter-go/shared/wire"
)

// A1: an adjust passes the gate, then its bucket write fails; a release
// with rollback that ran in between read the gate's record and returned
// the adjustment the buckets never got. The adjust then "undoes" its
// record on the closed lease, too late: tokens were minted.
func TestReviewAdjustFailureRacingRollback(t *testing.T) {
	f := newFixture(t)
	f.setDefaults("", limits.PerMinute("tpm", 10_000, 0))
	f.acquire(wire.AcquireRequest{EntityID: "u", Resource: "r", Consume: map[string]int64{"tpm": 5000}})
	tok := f.acquire(wire.AcquireRequest{EntityID: "u", Resource: "r", Consume: map[string]int64{"tpm": 500}}).Lease
	before := f.avail("u", "r") // 4500

	var rel *int
	f.db.failWhen(func(op, pk string) error {
		if op == "UpdateItem" && strings.Contains(pk, "/BUCKET#") {
			f.db.failWhen(nil)          // once
			rec := f.release(tok, true) // another caller releases meanwhile
			code := rec.Code
			rel = &code
			return injected
		}
		return nil
	})
	rec := f.adjust(tok, map[string]int64{"tpm": 1000})
	require.NotNil(t, rel)
	require.Equal(t, http.StatusOK, *rel)
	require.Equal(t, http.StatusServiceUnavailable, rec.Code, rec.Body.String())
	// The lease took 500 and its adjustment never reached the bucket: the
	// rollback must give back 500, no more.
	assert.Equal(t, map[string]int64{"u/tpm": before["u/tpm"] + 500}, f.avail("u", "r"))
}

// A2: over HTTP, a lease that took 1 token can give back any amount.
func TestReviewHTTPAdjustBelowZero(t *testing.T) {
	f := newFixture(t)
	f.setDefaults("", limits.PerDay("tpd", 1000, 0))
	f.acquire(wire.AcquireRequest{EntityID: "u", Resource: "r", Consume: map[string]int64{"tpd": 999}})
	tok := f.acquire(wire.AcquireRequest{EntityID: "u", Resource: "r", Consume: map[string]int64{"tpd": 1}}).Lease
	rec := f.adjust(tok, map[string]int64{"tpd": -1000})
	if rec.Code == http.StatusOK {
		assert.LessOrEqual(t, f.avail("u", "r")["u/tpd"], int64(1), "a lease that took 1 token returned 1000")
	}
}
