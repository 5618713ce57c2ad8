package api

import (
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zeroae/zae-limiter-go/shared/dynamo"
	"github.com/zeroae/zae-limiter-go/shared/leasestate"
	"github.com/zeroae/zae-limiter-go/shared/limits"
	"github.com/zeroae/zae-limiter-go/shared/schema"
	"github.com/zeroae/zae-limiter-go/shared/store"
	"github.com/zeroae/zae-limiter-go/shared/wire"
)

// cascade sets limits and a cascading entity user-1 under org, and makes
// both buckets exist (and busy, the clock being frozen), so every later
// write is an exact ADD.
func cascade(f *fixture) map[string]int64 {
	f.t.Helper()
	f.setDefaults("", limits.PerMinute("rpm", 100, 0), limits.PerMinute("tpm", 10_000, 0))
	_, err := f.ns.CreateEntity(f.ctx, store.Entity{ID: "user-1", ParentID: "org", Cascade: true})
	require.NoError(f.t, err)
	f.acquire(wire.AcquireRequest{EntityID: "user-1", Resource: "gpt-4", Consume: map[string]int64{"rpm": 1, "tpm": 1}})
	return f.avail("user-1", "gpt-4")
}

func minus(m map[string]int64, d map[string]int64) map[string]int64 {
	out := map[string]int64{}
	for k, v := range m {
		out[k] = v - d[k]
	}
	return out
}

func (f *fixture) adjust(tok string, d map[string]int64) *httptest.ResponseRecorder {
	f.t.Helper()
	return f.post(wire.PathAdjust, wire.AdjustRequest{Lease: tok, Adjust: d})
}

func (f *fixture) release(tok string, rollback bool) *httptest.ResponseRecorder {
	f.t.Helper()
	return f.post(wire.PathRelease, wire.ReleaseRequest{Lease: tok, Rollback: rollback})
}

func TestLeaseLifecycleRollback(t *testing.T) {
	f := newFixture(t)
	before := cascade(f)
	require.Len(t, before, 4)

	resp := f.acquire(wire.AcquireRequest{EntityID: "user-1", Resource: "gpt-4", Consume: map[string]int64{"rpm": 1, "tpm": 500}})
	tok := resp.Lease
	require.Len(t, payload(t, tok).Entries, 2, "the entity's bucket and the parent's")

	rec := f.adjust(tok, map[string]int64{"tpm": 700})
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	adj := decode[wire.AdjustResponse](t, rec)
	assert.Equal(t, tok, adj.Lease, "the token is stable")
	assert.Equal(t, map[string]int64{"rpm": 1, "tpm": 1200}, adj.Consumed)

	rec = f.adjust(tok, map[string]int64{"tpm": -200, "rpm": 2})
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	adj = decode[wire.AdjustResponse](t, rec)
	assert.Equal(t, tok, adj.Lease)
	assert.Equal(t, map[string]int64{"rpm": 3, "tpm": 1000}, adj.Consumed)

	taken := map[string]int64{"user-1/rpm": 3, "user-1/tpm": 1000, "org/rpm": 3, "org/tpm": 1000}
	assert.Equal(t, minus(before, taken), f.avail("user-1", "gpt-4"), "adjustments are written at once, to both buckets")

	rec = f.release(tok, true)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	assert.Equal(t, wire.ReleaseResponse{Lease: tok, RolledBack: true}, decode[wire.ReleaseResponse](t, rec))
	assert.Equal(t, before, f.avail("user-1", "gpt-4"), "rollback returns the initial amounts and every adjustment")

	// The lease-state item.
	c := payload(t, tok)
	it := f.leaseItem(tok)
	k := schema.LeaseKey(f.ns.ID, c.ID)
	assert.Equal(t, k.PK, dynamo.GetS(it, schema.PK))
	assert.Equal(t, f.ns.ID, dynamo.GetS(it, schema.GSI4PK))
	assert.Equal(t, schema.GSI4SKFor(k), dynamo.GetS(it, schema.GSI4SK))
	ttl, _ := dynamo.GetN(it, schema.TTL)
	assert.Equal(t, f.clock.Now().Add(DefaultLeaseTTL+24*time.Hour).Unix()+1, ttl)
	assert.True(t, dynamo.GetBool(it, leasestate.AttrClosed))
	assert.True(t, dynamo.GetBool(it, leasestate.AttrRolledBack))
	for attr, want := range map[string]int64{"a_0_tpm": 500_000, "a_1_tpm": 500_000, "a_0_rpm": 2000, "a_1_rpm": 2000} {
		got, ok := dynamo.GetN(it, attr)
		assert.True(t, ok, attr)
		assert.Equal(t, want, got, attr)
	}

	// Closed once: a second release and an adjust change nothing.
	errorBody(t, f.release(tok, true), http.StatusConflict, wire.CodeLeaseClosed)
	errorBody(t, f.release(tok, false), http.StatusConflict, wire.CodeLeaseClosed)
	errorBody(t, f.adjust(tok, map[string]int64{"tpm": 5}), http.StatusConflict, wire.CodeLeaseClosed)
	errorBody(t, f.adjust(tok, map[string]int64{"tpm": 0}), http.StatusConflict, wire.CodeLeaseClosed)
	assert.Equal(t, before, f.avail("user-1", "gpt-4"))
	assert.Equal(t, it, f.leaseItem(tok))
}

func TestLeaseCommit(t *testing.T) {
	f := newFixture(t)
	before := cascade(f)
	tok := f.acquire(wire.AcquireRequest{EntityID: "user-1", Resource: "gpt-4", Consume: map[string]int64{"tpm": 100}}).Lease
	require.Equal(t, http.StatusOK, f.adjust(tok, map[string]int64{"tpm": 50}).Code)
	rec := f.release(tok, false)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	assert.Equal(t, wire.ReleaseResponse{Lease: tok}, decode[wire.ReleaseResponse](t, rec))
	after := minus(before, map[string]int64{"user-1/tpm": 150, "org/tpm": 150})
	assert.Equal(t, after, f.avail("user-1", "gpt-4"))
	errorBody(t, f.release(tok, true), http.StatusConflict, wire.CodeLeaseClosed)
	errorBody(t, f.adjust(tok, map[string]int64{"tpm": -150}), http.StatusConflict, wire.CodeLeaseClosed)
	assert.Equal(t, after, f.avail("user-1", "gpt-4"), "nothing changed")
	it := f.leaseItem(tok)
	assert.True(t, dynamo.GetBool(it, leasestate.AttrClosed))
	assert.False(t, dynamo.GetBool(it, leasestate.AttrRolledBack))
}

func TestAdjustIntoDebt(t *testing.T) {
	f := newFixture(t)
	f.setDefaults("", limits.PerMinute("rpm", 10, 0))
	tok := f.acquire(wire.AcquireRequest{EntityID: "u", Resource: "r", Consume: map[string]int64{"rpm": 5}}).Lease
	rec := f.adjust(tok, map[string]int64{"rpm": 20})
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	assert.Equal(t, map[string]int64{"rpm": 25}, decode[wire.AdjustResponse](t, rec).Consumed)
	assert.Equal(t, map[string]int64{"u/rpm": -15}, f.avail("u", "r"))
	errorBody(t, f.post(wire.PathAcquire, wire.AcquireRequest{EntityID: "u", Resource: "r", Consume: map[string]int64{"rpm": 1}}),
		http.StatusTooManyRequests, wire.CodeRateLimited)
}

func TestAdjustValidation(t *testing.T) {
	f := newFixture(t)
	f.setDefaults("", limits.PerMinute("rpm", 10, 0))
	tok := f.acquire(wire.AcquireRequest{EntityID: "u", Resource: "r", Consume: map[string]int64{"rpm": 1}}).Lease
	for _, body := range []string{
		`{"lease": "` + tok + `"}`,
		`{"lease": "` + tok + `", "adjust": {"tpm": 1}}`,
		`{"lease": "` + tok + `", "adjust": {"rpm": 1, "tpm": 1}}`,
		`{"lease": "` + tok + `", "adjust": {"wcu": 1}}`,
		`{"lease": "` + tok + `", "adjust": {"rpm": 1.5}}`,
		`{"lease": "` + tok + `", "adjust": {"rpm": 1}, "rollback": true}`,
		`{"adjust": {"rpm": 1}}`,
		`{"LEASE": "` + tok + `", "adjust": {"rpm": 1}}`,
		`{"lease": "` + tok + `", "Adjust": {"rpm": 1}}`,
		`{"lease": "` + tok + `", "adjust": {"rpm": 1, "rpm": 2}}`,
		`{"lease": "` + tok + `", "adjust": {"rpm": null}}`,
	} {
		errorBody(t, f.post(wire.PathAdjust, body), http.StatusBadRequest, wire.CodeInvalidRequest)
	}
	errorBody(t, f.post(wire.PathRelease, `{"lease": "`+tok+`", "rollback": "yes"}`), http.StatusBadRequest, wire.CodeInvalidRequest)
	errorBody(t, f.post(wire.PathRelease, `{"lease": "`+tok+`", "adjust": {}}`), http.StatusBadRequest, wire.CodeInvalidRequest)
	errorBody(t, f.post(wire.PathRelease, `{"lease": "`+tok+`", "Rollback": true}`), http.StatusBadRequest, wire.CodeInvalidRequest)
	errorBody(t, f.post(wire.PathRelease, `{"lease": "`+tok+`", "rollback": false, "rollback": true}`), http.StatusBadRequest, wire.CodeInvalidRequest)
	assert.Equal(t, 0, f.leaseItems(), "a rejected adjust writes nothing")
	assert.Equal(t, map[string]int64{"u/rpm": 9}, f.avail("u", "r"))
}

func TestNoLeaseStateUntilUsed(t *testing.T) {
	f := newFixture(t)
	f.setDefaults("", limits.PerMinute("rpm", 100, 0))
	var toks []string
	for range 3 {
		toks = append(toks, f.acquire(wire.AcquireRequest{EntityID: "u", Resource: "r", Consume: map[string]int64{"rpm": 1}}).Lease)
	}
	assert.Equal(t, 0, f.leaseItems(), "acquired leases left to expire cost no extra write")
	rec := f.adjust(toks[0], map[string]int64{"rpm": 0})
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	assert.Equal(t, map[string]int64{"rpm": 1}, decode[wire.AdjustResponse](t, rec).Consumed)
	assert.Equal(t, 0, f.leaseItems(), "a zero adjust only reads")
	require.Equal(t, http.StatusOK, f.adjust(toks[0], map[string]int64{"rpm": 1}).Code)
	require.Equal(t, http.StatusOK, f.release(toks[1], false).Code)
	assert.Equal(t, 2, f.leaseItems())
	assert.Nil(t, f.leaseItem(toks[2]))
}

func TestTokenVerification(t *testing.T) {
	f := newFixture(t)
	f.setDefaults("", limits.PerMinute("rpm", 100, 0))
	tok := f.acquire(wire.AcquireRequest{EntityID: "u", Resource: "r", Consume: map[string]int64{"rpm": 1}}).Lease
	p, s, _ := strings.Cut(tok, ".")

	// A payload changed (another entity) keeps its old signature.
	c := payload(t, tok)
	c.Entity = "v"
	forged, _, _ := strings.Cut(sign(c, []byte("another key")), ".")
	flip := []byte(s)
	flip[0] ^= 1
	for _, bad := range []string{
		"garbage", p, p + ".", "." + s, forged + "." + s, p + "." + string(flip), p + "x." + s, p + "." + s + "x",
		sign(c, []byte("another key")), tok + "." + s,
	} {
		errorBody(t, f.adjust(bad, map[string]int64{"rpm": 1}), http.StatusBadRequest, wire.CodeInvalidLease)
		errorBody(t, f.release(bad, true), http.StatusBadRequest, wire.CodeInvalidLease)
	}
	errorBody(t, f.release("", true), http.StatusBadRequest, wire.CodeInvalidRequest)
	assert.Equal(t, 0, f.leaseItems())

	// Expired: 410, after the signature check and before the closed check.
	closed := f.acquire(wire.AcquireRequest{EntityID: "u", Resource: "r", Consume: map[string]int64{"rpm": 1}}).Lease
	require.Equal(t, http.StatusOK, f.release(closed, false).Code)
	f.clock.Advance(DefaultLeaseTTL - time.Millisecond)
	require.Equal(t, http.StatusOK, f.adjust(tok, map[string]int64{"rpm": 1}).Code, "valid until its expiry")
	f.clock.Advance(time.Millisecond)
	errorBody(t, f.adjust(tok, map[string]int64{"rpm": 1}), http.StatusGone, wire.CodeLeaseExpired)
	errorBody(t, f.release(tok, true), http.StatusGone, wire.CodeLeaseExpired)
	errorBody(t, f.release(closed, true), http.StatusGone, wire.CodeLeaseExpired)
	errorBody(t, f.release(p+"."+string(flip), true), http.StatusBadRequest, wire.CodeInvalidLease)
}

func TestKeyRotation(t *testing.T) {
	f := newFixture(t)
	f.setDefaults("", limits.PerMinute("rpm", 100, 0))
	k1, k2 := f.keys[0], []byte("second-key-0123456789abcdef")
	old := f.acquire(wire.AcquireRequest{EntityID: "u", Resource: "r", Consume: map[string]int64{"rpm": 1}}).Lease

	rotated := f.handler(func(o *Options) { o.Keys = [][]byte{k2, k1} })
	rec := f.do(rotated, http.MethodPost, wire.PathAdjust, wire.AdjustRequest{Lease: old, Adjust: map[string]int64{"rpm": 1}})
	require.Equal(t, http.StatusOK, rec.Code, "the old key still verifies: %s", rec.Body.String())
	rec = f.do(rotated, http.MethodPost, wire.PathAcquire, wire.AcquireRequest{EntityID: "u", Resource: "r", Consume: map[string]int64{"rpm": 1}})
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	fresh := decode[wire.AcquireResponse](t, rec).Lease

	// The new key signs: a handler that only knows the old key rejects it.
	errorBody(t, f.adjust(fresh, map[string]int64{"rpm": 1}), http.StatusBadRequest, wire.CodeInvalidLease)
	// A handler with an unknown key rejects both.
	other := f.handler(func(o *Options) { o.Keys = [][]byte{[]byte("unknown-key-0123456789abcdef")} })
	for _, tok := range []string{old, fresh} {
		rec = f.do(other, http.MethodPost, wire.PathRelease, wire.ReleaseRequest{Lease: tok, Rollback: true})
		errorBody(t, rec, http.StatusBadRequest, wire.CodeInvalidLease)
	}
	rec = f.do(rotated, http.MethodPost, wire.PathRelease, wire.ReleaseRequest{Lease: fresh, Rollback: true})
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
}

// A bucket write failing during an adjust: 503, and nothing changed (the
// bucket that got the adjustment gave it back), so a retry is safe.
func TestAdjustBucketFailure(t *testing.T) {
	f := newFixture(t)
	before := cascade(f)
	tok := f.acquire(wire.AcquireRequest{EntityID: "user-1", Resource: "gpt-4", Consume: map[string]int64{"tpm": 100}}).Lease

	f.db.failWhen(func(op, pk string) error {
		if op == "UpdateItem" && strings.Contains(pk, "/BUCKET#org#") {
			return injected
		}
		return nil
	})
	e := errorBody(t, f.adjust(tok, map[string]int64{"tpm": 50}), http.StatusServiceUnavailable, wire.CodeUnavailable)
	assert.NotContains(t, e.Message, "SECRET")
	f.db.failWhen(nil)
	it := f.leaseItem(tok)
	a0, _ := dynamo.GetN(it, "a_0_tpm")
	a1, _ := dynamo.GetN(it, "a_1_tpm")
	assert.Equal(t, int64(0), a0, "the entity's bucket gave the adjustment back")
	assert.Equal(t, int64(0), a1, "the parent's did not get it")
	assert.Equal(t, minus(before, map[string]int64{"user-1/tpm": 100, "org/tpm": 100}), f.avail("user-1", "gpt-4"))

	rec := f.adjust(tok, map[string]int64{"tpm": 10})
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	require.Equal(t, http.StatusOK, f.release(tok, true).Code)
	assert.Equal(t, before, f.avail("user-1", "gpt-4"), "the rollback returns exactly what each bucket took")
}

// A rollback failing part way (a write known not to have landed): 503, the
// lease is open again with what was given back recorded, and a retried
// release returns exactly the rest.
func TestRollbackFailureReopens(t *testing.T) {
	f := newFixture(t)
	before := cascade(f)
	tok := f.acquire(wire.AcquireRequest{EntityID: "user-1", Resource: "gpt-4", Consume: map[string]int64{"tpm": 100, "rpm": 1}}).Lease
	require.Equal(t, http.StatusOK, f.adjust(tok, map[string]int64{"tpm": 20}).Code)

	f.db.failWhen(func(op, pk string) error {
		if op == "UpdateItem" && strings.Contains(pk, "/BUCKET#org#") {
			return throttled
		}
		return nil
	})
	errorBody(t, f.release(tok, true), http.StatusServiceUnavailable, wire.CodeUnavailable)
	f.db.failWhen(nil)
	it := f.leaseItem(tok)
	assert.False(t, dynamo.GetBool(it, leasestate.AttrClosed), "reopened")
	assert.NotContains(t, it, leasestate.AttrRolledBack)
	assert.Equal(t, minus(before, map[string]int64{"org/tpm": 120, "org/rpm": 1}), f.avail("user-1", "gpt-4"))

	rec := f.release(tok, true)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	assert.Equal(t, before, f.avail("user-1", "gpt-4"))
	errorBody(t, f.release(tok, true), http.StatusConflict, wire.CodeLeaseClosed)
}

func TestLeaseNamespaceGone(t *testing.T) {
	f := newFixture(t)
	_, err := f.store.RegisterNamespace(f.ctx, "b")
	require.NoError(t, err)
	tok := f.acquire(wire.AcquireRequest{Namespace: "b", EntityID: "u", Resource: "r", Consume: map[string]int64{"rpm": 1},
		Limits: []wire.Limit{wl(limits.PerMinute("rpm", 5, 0))}}).Lease
	require.NoError(t, f.store.DeleteNamespace(f.ctx, "b"))
	fresh := f.handler() // no cached limiter for the namespace
	rec := f.do(fresh, http.MethodPost, wire.PathRelease, wire.ReleaseRequest{Lease: tok, Rollback: true})
	errorBody(t, rec, http.StatusNotFound, wire.CodeNotFound)
	assert.Equal(t, 0, f.leaseItems())
	// A commit needs no namespace.
	rec = f.do(fresh, http.MethodPost, wire.PathRelease, wire.ReleaseRequest{Lease: tok})
	assert.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
}

func TestTokenFormat(t *testing.T) {
	f := newFixture(t)
	tok := f.acquire(wire.AcquireRequest{EntityID: "u", Resource: "r", Consume: map[string]int64{"rpm": 1},
		Limits: []wire.Limit{wl(limits.PerMinute("rpm", 5, 0))}}).Lease
	p, s, ok := strings.Cut(tok, ".")
	require.True(t, ok)
	sig, err := base64.RawURLEncoding.DecodeString(s)
	require.NoError(t, err)
	assert.Equal(t, mac(f.keys[0], p), sig, "HMAC-SHA256 of the encoded payload")
	c := payload(t, tok)
	assert.Equal(t, 1, c.V)
	id, err := base64.RawURLEncoding.DecodeString(c.ID)
	require.NoError(t, err)
	assert.Len(t, id, 16, "128-bit lease id")
	require.Len(t, c.Entries, 1)
	assert.Positive(t, c.Entries[0].Gen, "the shard item's generation")
	assert.Equal(t, []claimEntry{{Entity: "u", Resource: "r", Shard: 0,
		Limits:  []claimLimit{{Name: "rpm", Capacity: 5, Refill: 5, Period: 60}},
		Initial: map[string]int64{"rpm": 1000}, Gen: c.Entries[0].Gen}}, c.Entries)
}
