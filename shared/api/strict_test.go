package api

import (
	"bytes"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zeroae/zae-limiter-go/shared/wire"
)

// The same bad body always gets the same message: with several required
// fields missing, the first in declaration order is named.
func TestStrictRequiredDeterministic(t *testing.T) {
	body := []byte(`{"entity_id":"u","resource":"r","consume":{"rpm":1},"limits":[{"name":"rpm"}]}`)
	msgs := map[string]bool{}
	for range 100 {
		_, err := decodeAcquire(bytes.NewReader(body))
		require.Error(t, err)
		msgs[err.Error()] = true
	}
	assert.Equal(t, map[string]bool{`field "limits[0].capacity" is required`: true}, msgs)
}

// A whole number too large for int64 is a whole number: the message must
// say it is too large (as for any amount above the maximum), not that it is
// not whole.
func TestStrictHugeWholeNumber(t *testing.T) {
	_, err := decodeAcquire(bytes.NewReader([]byte(`{"entity_id":"u","resource":"r","consume":{"rpm":9223372036854775808}}`)))
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "must be a whole number, not 9223372036854775808")
	assert.Contains(t, err.Error(), "must be at most")
}

// Null is accepted only for optional fields (namespace, limits); elsewhere it
// would decode as a zero the client never sent.
func TestStrictNullLimitField(t *testing.T) {
	_, err := decodeAcquire(bytes.NewReader([]byte(`{"entity_id":"u","resource":"r","consume":{"rpm":1},` +
		`"limits":[{"name":"rpm","capacity":null,"refill_amount":5,"refill_period_seconds":60}]}`)))
	require.Error(t, err)
	assert.Contains(t, err.Error(), `field "limits[0].capacity" must not be null`)

	for body, want := range map[string]string{
		`{"entity_id":null,"resource":"r","consume":{"rpm":1}}`: `field "entity_id" must not be null`,
		`{"entity_id":"u","resource":"r","consume":null}`:       `field "consume" must not be null`,
		`null`: `the request body must not be null`,
	} {
		_, err := decodeAcquire(bytes.NewReader([]byte(body)))
		assert.ErrorContains(t, err, want, body)
	}
	// Optional fields may be null: absent.
	req, err := decodeAcquire(bytes.NewReader([]byte(`{"namespace":null,"entity_id":"u","resource":"r","consume":{"rpm":1},"limits":null}`)))
	require.NoError(t, err)
	assert.Nil(t, req.Limits)
	assert.Empty(t, req.Namespace)

	var rel wire.ReleaseRequest
	assert.ErrorContains(t, decodeJSON(bytes.NewReader([]byte(`{"lease":"x","rollback":null}`)), &rel),
		`field "rollback" must not be null`, "a null rollback would quietly commit")
}

// Malformed JSON is reported as such even when a key would also be wrong.
func TestStrictSyntaxFirst(t *testing.T) {
	_, err := decodeAcquire(bytes.NewReader([]byte(`{"Entity_ID":"x"`)))
	assert.ErrorContains(t, err, "truncated")
}

// Messages cut long values without splitting a UTF-8 sequence.
func TestCutKeepsUTF8(t *testing.T) {
	s := strings.Repeat("é", 30) // 60 bytes
	got := cut(s, 41)
	assert.True(t, utf8.ValidString(got), got)
	assert.Equal(t, strings.Repeat("é", 20)+"...", got)
	assert.Equal(t, "short", cut("short", 41))
}
