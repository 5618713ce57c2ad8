package api

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zeroae/zae-limiter-go/shared/limits"
	"github.com/zeroae/zae-limiter-go/shared/wire"
)

// (A) A pure refund whose bucket write lands but whose answer is lost is
// counted as done and never sent again; the adjust answers 200 with it
// booked, so the client has nothing to retry and no token is minted.
func TestAdjustRefundLostAnswerIs200(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		lost int64 // tokens the bucket never got back
	}{
		{"applied", lostAnswer, 0},
		{"not sent", injected, 300},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			f.setDefaults("", limits.PerMinute("tpm", 10_000, 0))
			f.acquire(wire.AcquireRequest{EntityID: "u", Resource: "r", Consume: map[string]int64{"tpm": 1}})
			before := f.avail("u", "r")
			tok := f.acquire(wire.AcquireRequest{EntityID: "u", Resource: "r", Consume: map[string]int64{"tpm": 1000}}).Lease

			f.db.failWhen(func(op, pk string) error {
				if op == "UpdateItem" && strings.Contains(pk, "/BUCKET#") {
					return tc.err
				}
				return nil
			})
			rec := f.adjust(tok, map[string]int64{"tpm": -300})
			f.db.failWhen(nil)
			require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
			assert.Equal(t, map[string]int64{"tpm": 700}, decode[wire.AdjustResponse](t, rec).Consumed)
			assert.Equal(t, int64(-300_000), adjN(t, f.leaseItem(tok), "a_0_tpm"))
			assert.Equal(t, map[string]int64{"u/tpm": before["u/tpm"] - 700 - tc.lost}, f.avail("u", "r"),
				"the refund reached the bucket at most once")
			assert.Contains(t, f.logs.String(), "counted as done")

			require.Equal(t, http.StatusOK, f.release(tok, true).Code)
			assert.Equal(t, map[string]int64{"u/tpm": before["u/tpm"] - tc.lost}, f.avail("u", "r"),
				"the rollback returns the rest: lost, never minted")
		})
	}
}

// (B) A cascading adjust whose entity bucket takes the deltas and whose
// parent bucket fails, known not applied: the entity's share is given
// back too, so the 503 means nothing changed and the retry charges once.
func TestAdjustMixedFailureTakesAllBack(t *testing.T) {
	f := newFixture(t)
	before := cascade(f)
	tok := f.acquire(wire.AcquireRequest{EntityID: "user-1", Resource: "gpt-4", Consume: map[string]int64{"tpm": 100, "rpm": 1}}).Lease
	taken := minus(before, map[string]int64{"user-1/tpm": 100, "org/tpm": 100, "user-1/rpm": 1, "org/rpm": 1})
	f.db.failWhen(func(op, pk string) error {
		if op == "UpdateItem" && strings.Contains(pk, "/BUCKET#org#") {
			return throttled
		}
		return nil
	})
	errorBody(t, f.adjust(tok, map[string]int64{"tpm": 50, "rpm": -1}), http.StatusServiceUnavailable, wire.CodeUnavailable)
	f.db.failWhen(nil)
	it := f.leaseItem(tok)
	for _, a := range []string{"a_0_tpm", "a_0_rpm", "a_1_tpm", "a_1_rpm"} {
		assert.Equal(t, int64(0), adjN(t, it, a), a)
	}
	assert.Equal(t, taken, f.avail("user-1", "gpt-4"), "a 503 changed nothing")

	rec := f.adjust(tok, map[string]int64{"tpm": 50, "rpm": -1}) // the client's retry
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	assert.Equal(t, map[string]int64{"tpm": 150, "rpm": 0}, decode[wire.AdjustResponse](t, rec).Consumed)
	assert.Equal(t, minus(before, map[string]int64{"user-1/tpm": 150, "org/tpm": 150}), f.avail("user-1", "gpt-4"),
		"charged once")
	require.Equal(t, http.StatusOK, f.release(tok, true).Code)
	assert.Equal(t, before, f.avail("user-1", "gpt-4"))
}

// (B) The taking back itself fails with an unknown outcome. Giving back a
// charge counts as done: nothing stays booked, 503 (the bucket may have
// lost the tokens). Charging back a refund counts as not done: the refund
// stays booked and the answer is 200 with it, so no retry sends it again.
func TestAdjustTakeBackUnknown(t *testing.T) {
	for _, tc := range []struct {
		name     string
		delta    int64
		status   int
		a0       int64
		consumed int64
		user     int64 // user-1's tpm taken after the adjust
	}{
		{"charge", 50, http.StatusServiceUnavailable, 0, 100, 150},
		{"refund", -40, http.StatusOK, -40_000, 60, 60},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			before := cascade(f)
			tok := f.acquire(wire.AcquireRequest{EntityID: "user-1", Resource: "gpt-4", Consume: map[string]int64{"tpm": 100}}).Lease
			var userWrites atomic.Int32
			f.db.failWhen(func(op, pk string) error {
				switch {
				case op != "UpdateItem":
				case strings.Contains(pk, "/BUCKET#org#"):
					return throttled
				case strings.Contains(pk, "/BUCKET#user-1#") && userWrites.Add(1) > 1:
					return injected // the taking back
				}
				return nil
			})
			rec := f.adjust(tok, map[string]int64{"tpm": tc.delta})
			f.db.failWhen(nil)
			require.Equal(t, tc.status, rec.Code, rec.Body.String())
			if tc.status == http.StatusOK {
				assert.Equal(t, map[string]int64{"tpm": tc.consumed}, decode[wire.AdjustResponse](t, rec).Consumed)
			}
			it := f.leaseItem(tok)
			assert.Equal(t, tc.a0, adjN(t, it, "a_0_tpm"))
			assert.Equal(t, int64(0), adjN(t, it, "a_1_tpm"))
			assert.Equal(t, minus(before, map[string]int64{"user-1/tpm": tc.user, "org/tpm": 100}), f.avail("user-1", "gpt-4"))

			require.Equal(t, http.StatusOK, f.release(tok, true).Code)
			lost := tc.user - 100 - tc.a0/milli
			assert.Equal(t, minus(before, map[string]int64{"user-1/tpm": lost}), f.avail("user-1", "gpt-4"),
				"lost, never minted")
		})
	}
}

// (C) An adjust of a closed lease is 409 lease_closed before anything else
// about it: a limit it does not hold, a namespace no longer registered.
// So is a rollback release whose namespace is gone.
func TestClosedLeaseBeforeOtherErrors(t *testing.T) {
	f := newFixture(t)
	f.setDefaults("", limits.PerMinute("tpm", 10_000, 0))
	tok := f.acquire(wire.AcquireRequest{EntityID: "u", Resource: "r", Consume: map[string]int64{"tpm": 10}}).Lease
	open := f.acquire(wire.AcquireRequest{EntityID: "u", Resource: "r", Consume: map[string]int64{"tpm": 10}}).Lease
	require.Equal(t, http.StatusOK, f.release(tok, false).Code)

	errorBody(t, f.adjust(tok, map[string]int64{"nope": 1}), http.StatusConflict, wire.CodeLeaseClosed)
	errorBody(t, f.adjust(tok, map[string]int64{"nope": 1, "tpm": 5}), http.StatusConflict, wire.CodeLeaseClosed)
	errorBody(t, f.adjust(open, map[string]int64{"nope": 1}), http.StatusBadRequest, wire.CodeInvalidRequest)

	f.store.InvalidateCache()
	require.NoError(t, f.store.DeleteNamespace(f.ctx, "default"))
	fresh := f.handler() // no cached limiter for the namespace
	adjust := func(tok string) *httptest.ResponseRecorder {
		return f.do(fresh, http.MethodPost, wire.PathAdjust, wire.AdjustRequest{Lease: tok, Adjust: map[string]int64{"tpm": 5}})
	}
	errorBody(t, adjust(tok), http.StatusConflict, wire.CodeLeaseClosed)
	errorBody(t, adjust(open), http.StatusNotFound, wire.CodeNotFound)
	errorBody(t, f.do(fresh, http.MethodPost, wire.PathRelease, wire.ReleaseRequest{Lease: tok, Rollback: true}),
		http.StatusConflict, wire.CodeLeaseClosed)

	// The read that tells them apart failing is 503.
	f.db.failWhen(func(op, pk string) error {
		if op == "GetItem" && strings.Contains(pk, "/LEASE#") {
			return injected
		}
		return nil
	})
	errorBody(t, f.adjust(tok, map[string]int64{"nope": 1}), http.StatusServiceUnavailable, wire.CodeUnavailable)
}
