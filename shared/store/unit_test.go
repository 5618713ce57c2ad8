package store

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zeroae/zae-limiter-go/shared/dynamo"
	"github.com/zeroae/zae-limiter-go/shared/limits"
)

// Tests in this file need no DynamoDB.

func TestNamespaceIDShape(t *testing.T) {
	seen := map[string]bool{}
	for range 5000 {
		id := newNamespaceID()
		require.Len(t, id, 11)
		assert.NotEqual(t, byte('-'), id[0], id)
		assert.NoError(t, validateNamespaceID(id))
		assert.False(t, seen[id], "duplicate id %s", id)
		seen[id] = true
	}
	for _, bad := range []string{"", "a#b", "a/b", "has space", strings.Repeat("a", 65)} {
		var ve *limits.ValidationError
		require.ErrorAs(t, validateNamespaceID(bad), &ve, bad)
		assert.Equal(t, "namespace_id", ve.Field)
	}
}

func TestEventIDsStrictlyIncrease(t *testing.T) {
	c := newClock()
	s := New(nil, Options{Now: c.Now})
	prev := ""
	for i := range 3000 {
		switch i {
		case 1000:
			c.Advance(-time.Hour) // clock steps back: ids must still increase
		case 2000:
			c.Advance(2 * time.Hour)
		}
		id := s.newEventID(c.Now())
		require.Len(t, id, 26)
		_, err := ulid.ParseStrict(id)
		require.NoError(t, err)
		require.Greater(t, id, prev, "event %d", i)
		prev = id
	}
}

func TestLimitsRoundTripThroughAttributes(t *testing.T) {
	ls := []limits.Limit{
		{Name: "x_cp", Capacity: 1, RefillAmount: 2, RefillPeriodSeconds: 3},
		{Name: "rpm", Capacity: 100, RefillAmount: 100, RefillPeriodSeconds: 60},
		{Name: "gpt-3.5", Capacity: 7, RefillAmount: 5, RefillPeriodSeconds: 86400},
		{Name: "x", Capacity: 9, RefillAmount: 8, RefillPeriodSeconds: 1},
	}
	it := dynamo.Item{}
	putLimits(it, ls)
	assert.Len(t, it, 12)
	got := decodeLimits(it)
	want := []limits.Limit{ls[2], ls[1], ls[3], ls[0]} // sorted by name
	assert.Equal(t, want, got)
	assert.Nil(t, decodeLimits(nil))
}

func TestExprUsesPositionalAliases(t *testing.T) {
	var e dynamo.Expr
	a := e.Name("l_gpt-3.5_cp")
	b := e.Name("status")
	assert.Equal(t, "#000", a)
	assert.Equal(t, "#001", b)
	assert.Equal(t, a, e.Name("l_gpt-3.5_cp"), "same name, same alias")
	assert.Equal(t, ":000", e.Value(dynamo.S("x")))
	assert.Equal(t, ":001", e.Value(dynamo.S("x")))
	assert.Equal(t, map[string]string{"#000": "l_gpt-3.5_cp", "#001": "status"}, e.Names())
	var empty dynamo.Expr
	assert.Nil(t, empty.Names())
	assert.Nil(t, empty.Values())
}

func TestMajorVersion(t *testing.T) {
	assert.Equal(t, "1", major("1.0.0"))
	assert.Equal(t, "2", major("v2.3.4"))
	assert.Equal(t, "0", major("0.10.0"))
}

func TestPrincipalResolution(t *testing.T) {
	ctx := context.Background()
	p, err := New(nil, Options{}).Principal(ctx)
	require.NoError(t, err)
	assert.Equal(t, UnknownPrincipal, p)

	calls := 0
	s := New(nil, Options{PrincipalFunc: func(context.Context) (string, error) {
		calls++
		return "arn:aws:iam::123456789012:user/alice", nil
	}})
	for range 3 {
		p, err = s.Principal(ctx)
		require.NoError(t, err)
	}
	assert.Equal(t, "arn:aws:iam::123456789012:user/alice", p)
	assert.Equal(t, 1, calls, "resolved once")

	p, err = New(nil, Options{PrincipalFunc: func(context.Context) (string, error) {
		return "", errors.New("sts down")
	}}).Principal(ctx)
	require.NoError(t, err)
	assert.Equal(t, UnknownPrincipal, p)

	_, err = New(nil, Options{Principal: "user#admin"}).Principal(ctx)
	var ve *limits.ValidationError
	require.ErrorAs(t, err, &ve)
	assert.Equal(t, "principal", ve.Field)
}

func TestCacheTTLOption(t *testing.T) {
	assert.Equal(t, DefaultCacheTTL, New(nil, Options{}).cacheTTL())
	assert.Equal(t, time.Second, New(nil, Options{CacheTTL: time.Second}).cacheTTL())
	assert.Zero(t, New(nil, Options{CacheTTL: -1}).cacheTTL())
}

func TestNamespaceStateErrorNamesTheState(t *testing.T) {
	err := error(&NamespaceStateError{Op: "purge", Name: "t1", ID: "abc", State: StatusActive})
	assert.ErrorIs(t, err, ErrNamespaceState)
	assert.Contains(t, err.Error(), "active")
	assert.Contains(t, err.Error(), `"t1"`)
	err = &NamespaceStateError{Op: "recover", Name: "t1", ID: "abc", State: StatusReRegistered}
	assert.Contains(t, err.Error(), "registered again")
}
