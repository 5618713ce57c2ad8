package api

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// FuzzDecodeAcquire: any body decodes without panicking; a body that is
// accepted round-trips through its JSON encoding unchanged.
func FuzzDecodeAcquire(f *testing.F) {
	for _, s := range []string{
		`{"entity_id":"u","resource":"gpt-4","consume":{"rpm":1,"tpm":500}}`,
		`{"namespace":"t-a","entity_id":"u","resource":"r","consume":{},"limits":[{"name":"rpm","capacity":10,"refill_amount":10,"refill_period_seconds":60}]}`,
		`{"entity_id":"u","resource":"r","consume":{"rpm":-1}}`,
		`{"entity_id":"u","resource":"r","consume":{"rpm":1.5}}`,
		`{"entity_id":"u","resource":"r","consume":{"rpm":1},"x":1}`,
		`{"entity_id":"u","resource":"r","consume":{"rpm":1},"limits":[]}`,
		`{} {}`, `null`, `[`, ``, `"\ud800"`, `{"entity_id":"\u0000"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		req, err := decodeAcquire(bytes.NewReader(b))
		if err != nil {
			return
		}
		js, err := json.Marshal(req)
		require.NoError(t, err)
		again, err := decodeAcquire(bytes.NewReader(js))
		require.NoError(t, err, "%s", js)
		assert.Equal(t, req, again)
	})
}
