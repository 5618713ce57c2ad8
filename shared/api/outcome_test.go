package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zeroae/zae-limiter-go/shared/ddblocal/ddbtest"
	"github.com/zeroae/zae-limiter-go/shared/dynamo"
	"github.com/zeroae/zae-limiter-go/shared/leasestate"
	"github.com/zeroae/zae-limiter-go/shared/limiter"
	"github.com/zeroae/zae-limiter-go/shared/limits"
	"github.com/zeroae/zae-limiter-go/shared/wire"
)

func adjN(t *testing.T, it dynamo.Item, attr string) int64 {
	t.Helper()
	v, _ := dynamo.GetN(it, attr)
	return v
}

// A lease gives back at most what it took, per bucket and limit: a refund
// beyond it is 400 naming the limit and what the lease holds, and writes
// nothing; closed takes precedence.
func TestAdjustRefundBeyondHeld(t *testing.T) {
	f := newFixture(t)
	before := cascade(f)
	tok := f.acquire(wire.AcquireRequest{EntityID: "user-1", Resource: "gpt-4", Consume: map[string]int64{"tpm": 100}}).Lease
	taken := minus(before, map[string]int64{"user-1/tpm": 100, "org/tpm": 100})

	e := errorBody(t, f.adjust(tok, map[string]int64{"tpm": -101}), http.StatusBadRequest, wire.CodeInvalidRequest)
	assert.Contains(t, e.Message, "the lease holds 100 of tpm")
	assert.Nil(t, f.leaseItem(tok), "nothing written")
	assert.Equal(t, taken, f.avail("user-1", "gpt-4"))

	rec := f.adjust(tok, map[string]int64{"tpm": 50})
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	it := f.leaseItem(tok)
	e = errorBody(t, f.adjust(tok, map[string]int64{"tpm": -151, "rpm": 1}), http.StatusBadRequest, wire.CodeInvalidRequest)
	assert.Contains(t, e.Message, "the lease holds 150 of tpm")
	e = errorBody(t, f.adjust(tok, map[string]int64{"rpm": -1}), http.StatusBadRequest, wire.CodeInvalidRequest)
	assert.Contains(t, e.Message, "the lease holds 0 of rpm")
	assert.Equal(t, it, f.leaseItem(tok), "a refused refund writes nothing")

	rec = f.adjust(tok, map[string]int64{"tpm": -150})
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	assert.Equal(t, map[string]int64{"tpm": 0}, decode[wire.AdjustResponse](t, rec).Consumed)
	assert.Equal(t, before, f.avail("user-1", "gpt-4"))
	errorBody(t, f.adjust(tok, map[string]int64{"tpm": -1}), http.StatusBadRequest, wire.CodeInvalidRequest)

	require.Equal(t, http.StatusOK, f.release(tok, true).Code)
	assert.Equal(t, before, f.avail("user-1", "gpt-4"))
	errorBody(t, f.adjust(tok, map[string]int64{"tpm": -1000}), http.StatusConflict, wire.CodeLeaseClosed)
	assert.Equal(t, before, f.avail("user-1", "gpt-4"))
}

// A rollback whose bucket write has an unknown outcome counts it as given
// back: it is never sent again. Nothing being left, the lease stays closed
// and a retried release is told lease_closed. At worst tokens are lost.
func TestRollbackUnknownOutcomeCountsAsGiven(t *testing.T) {
	f := newFixture(t)
	before := cascade(f)
	tok := f.acquire(wire.AcquireRequest{EntityID: "user-1", Resource: "gpt-4", Consume: map[string]int64{"tpm": 100, "rpm": 1}}).Lease
	require.Equal(t, http.StatusOK, f.adjust(tok, map[string]int64{"tpm": 20}).Code)

	f.db.failWhen(func(op, pk string) error {
		if op == "UpdateItem" && strings.Contains(pk, "/BUCKET#org#") {
			return injected // not sent, but the handler cannot know
		}
		return nil
	})
	errorBody(t, f.release(tok, true), http.StatusServiceUnavailable, wire.CodeUnavailable)
	f.db.failWhen(nil)
	it := f.leaseItem(tok)
	assert.True(t, dynamo.GetBool(it, leasestate.AttrClosed))
	assert.True(t, dynamo.GetBool(it, leasestate.AttrRolledBack))
	lost := minus(before, map[string]int64{"org/tpm": 120, "org/rpm": 1})
	assert.Equal(t, lost, f.avail("user-1", "gpt-4"))
	errorBody(t, f.release(tok, true), http.StatusConflict, wire.CodeLeaseClosed)
	assert.Equal(t, lost, f.avail("user-1", "gpt-4"), "not given back twice")
}

// One bucket of a rollback fails known-not-applied, another with an
// unknown outcome: the lease reopens with the unknown one counted as given
// back, and the retry returns only the rest.
func TestRollbackMixedOutcomes(t *testing.T) {
	f := newFixture(t)
	before := cascade(f)
	tok := f.acquire(wire.AcquireRequest{EntityID: "user-1", Resource: "gpt-4", Consume: map[string]int64{"tpm": 100}}).Lease
	f.db.failWhen(func(op, pk string) error {
		switch {
		case op != "UpdateItem":
		case strings.Contains(pk, "/BUCKET#org#"):
			return throttled
		case strings.Contains(pk, "/BUCKET#user-1#"):
			return injected
		}
		return nil
	})
	errorBody(t, f.release(tok, true), http.StatusServiceUnavailable, wire.CodeUnavailable)
	f.db.failWhen(nil)
	it := f.leaseItem(tok)
	assert.False(t, dynamo.GetBool(it, leasestate.AttrClosed), "reopened")
	assert.Equal(t, int64(-100_000), adjN(t, it, "a_0_tpm"), "user-1's refund counted as done")
	assert.Equal(t, int64(0), adjN(t, it, "a_1_tpm"))
	require.Equal(t, http.StatusOK, f.release(tok, true).Code)
	assert.Equal(t, minus(before, map[string]int64{"user-1/tpm": 100}), f.avail("user-1", "gpt-4"),
		"org given back once; user-1's lost refund not sent again")
}

// An adjust refund whose bucket write has an unknown outcome stays booked
// (the bucket may have it) and the answer is 200 with it; when one is
// known not written, the whole adjustment is taken back (user-1's refund
// too) and the answer is 503.
func TestAdjustRefundOutcomes(t *testing.T) {
	for _, tc := range []struct {
		name   string
		err    error
		status int
		a0, a1 int64
		lost   int64
	}{
		{"unknown", injected, http.StatusOK, -40_000, -40_000, 40},
		{"not applied", throttled, http.StatusServiceUnavailable, 0, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			before := cascade(f)
			tok := f.acquire(wire.AcquireRequest{EntityID: "user-1", Resource: "gpt-4", Consume: map[string]int64{"tpm": 100}}).Lease
			f.db.failWhen(func(op, pk string) error {
				if op == "UpdateItem" && strings.Contains(pk, "/BUCKET#org#") {
					return tc.err
				}
				return nil
			})
			rec := f.adjust(tok, map[string]int64{"tpm": -40})
			require.Equal(t, tc.status, rec.Code, rec.Body.String())
			f.db.failWhen(nil)
			it := f.leaseItem(tok)
			assert.Equal(t, tc.a0, adjN(t, it, "a_0_tpm"))
			assert.Equal(t, tc.a1, adjN(t, it, "a_1_tpm"))
			require.Equal(t, http.StatusOK, f.release(tok, true).Code)
			assert.Equal(t, minus(before, map[string]int64{"org/tpm": tc.lost}), f.avail("user-1", "gpt-4"))
		})
	}
}

// An adjust's bucket write fails and so does the undo of its record (an
// unknown outcome): the charge is written to the bucket again, so the
// bucket is charged what the state says.
func TestAdjustUndoFailsRedoes(t *testing.T) {
	f := newFixture(t)
	before := cascade(f)
	tok := f.acquire(wire.AcquireRequest{EntityID: "user-1", Resource: "gpt-4", Consume: map[string]int64{"tpm": 100}}).Lease
	var failed atomic.Bool
	f.db.failWhen(func(op, pk string) error {
		switch {
		case op != "UpdateItem":
		case strings.Contains(pk, "/BUCKET#org#") && failed.CompareAndSwap(false, true):
			return throttled
		case strings.Contains(pk, "/LEASE#") && failed.Load():
			return injected
		}
		return nil
	})
	errorBody(t, f.adjust(tok, map[string]int64{"tpm": 50}), http.StatusServiceUnavailable, wire.CodeUnavailable)
	f.db.failWhen(nil)
	it := f.leaseItem(tok)
	assert.Equal(t, int64(50_000), adjN(t, it, "a_1_tpm"), "the undo did not land")
	assert.Equal(t, minus(before, map[string]int64{"user-1/tpm": 150, "org/tpm": 150}), f.avail("user-1", "gpt-4"))
	assert.Contains(t, f.logs.String(), "writing it to the buckets again")
	require.Equal(t, http.StatusOK, f.release(tok, true).Code)
	assert.Equal(t, before, f.avail("user-1", "gpt-4"), "the books balance")
}

// A concurrent adjust gives back tokens on the strength of a charge whose
// bucket write then fails: the charge cannot be taken back from the state
// (its net would go below zero), so it is written to the bucket again.
func TestAdjustFailureRacingRefund(t *testing.T) {
	f := newFixture(t)
	f.setDefaults("", limits.PerMinute("tpm", 10_000, 0))
	f.acquire(wire.AcquireRequest{EntityID: "u", Resource: "r", Consume: map[string]int64{"tpm": 5000}})
	before := f.avail("u", "r")
	tok := f.acquire(wire.AcquireRequest{EntityID: "u", Resource: "r", Consume: map[string]int64{"tpm": 100}}).Lease

	var once atomic.Bool
	var inner *httptest.ResponseRecorder
	f.db.failWhen(func(op, pk string) error {
		if op == "UpdateItem" && strings.Contains(pk, "/BUCKET#") && once.CompareAndSwap(false, true) {
			inner = f.adjust(tok, map[string]int64{"tpm": -550})
			return injected
		}
		return nil
	})
	rec := f.adjust(tok, map[string]int64{"tpm": 500})
	f.db.failWhen(nil)
	require.NotNil(t, inner)
	require.Equal(t, http.StatusOK, inner.Code, inner.Body.String())
	require.Equal(t, http.StatusServiceUnavailable, rec.Code, rec.Body.String())
	assert.Equal(t, int64(-50_000), adjN(t, f.leaseItem(tok), "a_0_tpm"))
	assert.Equal(t, map[string]int64{"u/tpm": before["u/tpm"] - 50}, f.avail("u", "r"), "charged 100+500-550")
	require.Equal(t, http.StatusOK, f.release(tok, true).Code)
	assert.Equal(t, before, f.avail("u", "r"))
}

// An adjust passes the gate, then its bucket write fails while a release
// with rollback runs in between and reads the gate's record. The rollback
// must not return the adjustment the buckets never got: the adjust, unable
// to take its record back from the closed lease, writes it to the buckets
// again, so the books balance and no token is minted.
func TestAdjustFailureRacingRollback(t *testing.T) {
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

// A gate whose outcome is unknown may have recorded its charges: they go
// to the buckets all the same (here it was not sent: tokens lost, not
// minted). A gate known not to have landed changes nothing.
func TestAdjustGateOutcomes(t *testing.T) {
	for _, tc := range []struct {
		name    string
		err     error
		charged int64
	}{
		{"unknown", injected, 50},
		{"not applied", throttled, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			before := cascade(f)
			tok := f.acquire(wire.AcquireRequest{EntityID: "user-1", Resource: "gpt-4", Consume: map[string]int64{"tpm": 100}}).Lease
			f.db.failWhen(func(op, pk string) error {
				if op == "UpdateItem" && strings.Contains(pk, "/LEASE#") {
					return tc.err
				}
				return nil
			})
			errorBody(t, f.adjust(tok, map[string]int64{"tpm": 50, "rpm": -1}), http.StatusServiceUnavailable, wire.CodeUnavailable)
			f.db.failWhen(nil)
			assert.Nil(t, f.leaseItem(tok))
			n := 100 + tc.charged
			assert.Equal(t, minus(before, map[string]int64{"user-1/tpm": n, "org/tpm": n}), f.avail("user-1", "gpt-4"))
			require.Equal(t, http.StatusOK, f.release(tok, true).Code)
			c := tc.charged
			assert.Equal(t, minus(before, map[string]int64{"user-1/tpm": c, "org/tpm": c}), f.avail("user-1", "gpt-4"))
		})
	}
}

func TestOutcomeOf(t *testing.T) {
	assert.Equal(t, written, outcomeOf(nil))
	assert.Equal(t, unknown, outcomeOf(injected))
	assert.Equal(t, unknown, outcomeOf(context.DeadlineExceeded))
	assert.Equal(t, unknown, outcomeOf(fmt.Errorf("x: %w: %w", limiter.ErrOutcomeUnknown, throttled)))
	assert.Equal(t, notWritten, outcomeOf(fmt.Errorf("x: %w", throttled)))
	assert.Equal(t, notWritten, outcomeOf(fmt.Errorf("x: %w", limiter.ErrContention)))
	assert.Equal(t, notWritten, outcomeOf(limits.Invalid("adjust tpm", "-5", "no")))

	done, not := counted(map[string]int64{"a": 5, "b": -3, "c": 0}, unknown)
	assert.Equal(t, map[string]int64{"b": -3}, done)
	assert.Equal(t, map[string]int64{"a": 5}, not)
}

// Lease-state writes are retried by the SDK only after errors that prove
// nothing was applied.
func TestSendOnceRetryer(t *testing.T) {
	var _ aws.RetryerV2 = knownRetryer{}
	std := retry.NewStandard()
	r := knownRetryer{std}
	require.True(t, std.IsErrorRetryable(throttled))
	assert.True(t, r.IsErrorRetryable(throttled))
	for _, err := range []error{injected, errors.New("connection reset"), &retry.MaxAttemptsError{Err: injected}} {
		assert.False(t, r.IsErrorRetryable(err), "%v", err)
	}
	assert.Equal(t, std.MaxAttempts(), r.MaxAttempts())
	_, err := r.GetAttemptToken(context.Background())
	assert.NoError(t, err)
}

// A lease holds at most limits.MaxTokens of a limit on a bucket, so its
// sums never leave int64 (gap 9: 9,000 adjusts of the largest amount once
// saturated a lease, and its rollback reported success while giving back
// almost nothing). An adjust past the bound is 400 naming the field and
// writes nothing; up to the bound is fine, and the rollback is exact.
func TestAdjustBoundedByMaxTokens(t *testing.T) {
	f := newFixture(t)
	before := cascade(f)
	tok := f.acquire(wire.AcquireRequest{EntityID: "user-1", Resource: "gpt-4", Consume: map[string]int64{"tpm": 1}}).Lease

	e := errorBody(t, f.adjust(tok, map[string]int64{"tpm": limits.MaxTokens}), http.StatusBadRequest, wire.CodeInvalidRequest)
	assert.Equal(t, fmt.Sprintf(`invalid adjust.tpm "%d": the lease holds 1 of tpm on user-1; a lease holds at most %d of a limit`,
		limits.MaxTokens, limits.MaxTokens), e.Message)
	assert.Nil(t, f.leaseItem(tok), "nothing written")
	assert.Equal(t, minus(before, map[string]int64{"user-1/tpm": 1, "org/tpm": 1}), f.avail("user-1", "gpt-4"))

	rec := f.adjust(tok, map[string]int64{"tpm": limits.MaxTokens - 1})
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	assert.Equal(t, map[string]int64{"tpm": limits.MaxTokens}, decode[wire.AdjustResponse](t, rec).Consumed)
	errorBody(t, f.adjust(tok, map[string]int64{"tpm": 1}), http.StatusBadRequest, wire.CodeInvalidRequest)
	assert.Equal(t, map[string]int64{"tpm": limits.MaxTokens}, decode[wire.AdjustResponse](t, f.adjust(tok, map[string]int64{"tpm": 0})).Consumed,
		"the refused adjust changed nothing")

	rec = f.release(tok, true)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	assert.True(t, decode[wire.ReleaseResponse](t, rec).RolledBack)
	assert.Equal(t, before, f.avail("user-1", "gpt-4"), "the rollback gave back exactly what the lease held")
}

// A lease state that cannot be read exactly (an adjustment beyond int64,
// written before adjustments were bounded) is never rolled back as if it
// had been: the release answers 500, gives back nothing and leaves the
// lease open; a commit still closes it.
func TestRollbackOfUnreadableStateIsRefused(t *testing.T) {
	f := newFixture(t)
	before := cascade(f)
	tok := f.acquire(wire.AcquireRequest{EntityID: "user-1", Resource: "gpt-4", Consume: map[string]int64{"tpm": 100}}).Lease
	require.Equal(t, http.StatusOK, f.adjust(tok, map[string]int64{"tpm": 5}).Code)
	it := f.leaseItem(tok)
	it["a_0_tpm"] = &types.AttributeValueMemberN{Value: "10133099161583616000000"}
	_, err := ddbtest.Client(t).PutItem(f.ctx, &dynamodb.PutItemInput{TableName: aws.String(f.table), Item: it})
	require.NoError(t, err)
	taken := f.avail("user-1", "gpt-4")
	require.Equal(t, minus(before, map[string]int64{"user-1/tpm": 105, "org/tpm": 105}), taken)

	e := errorBody(t, f.release(tok, true), http.StatusInternalServerError, wire.CodeInternal)
	assert.Contains(t, e.Message, "cannot be read exactly, so it can be neither adjusted nor rolled back: nothing was given back and the lease stays open")
	assert.Equal(t, taken, f.avail("user-1", "gpt-4"), "nothing given back")
	assert.False(t, dynamo.GetBool(f.leaseItem(tok), leasestate.AttrClosed), "reopened")
	errorBody(t, f.adjust(tok, map[string]int64{"tpm": -1}), http.StatusInternalServerError, wire.CodeInternal)

	rec := f.release(tok, false)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	assert.False(t, decode[wire.ReleaseResponse](t, rec).RolledBack)
	errorBody(t, f.release(tok, true), http.StatusConflict, wire.CodeLeaseClosed)
}
