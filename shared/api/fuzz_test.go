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

// BenchmarkDecodeAcquire: the cost of reading an acquire body strictly
// (the exact-case, duplicate and null walk, then the decode), against
// encoding/json's decode alone.
func BenchmarkDecodeAcquire(b *testing.B) {
	body := []byte(`{"entity_id":"key-acme-1","resource":"gpt-4","consume":{"rpm":1,"tpm":500},` +
		`"limits":[{"name":"rpm","capacity":100,"refill_amount":100,"refill_period_seconds":60},` +
		`{"name":"tpm","capacity":50000,"refill_amount":50000,"refill_period_seconds":60}]}`)
	b.Run("strict", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := decodeAcquire(bytes.NewReader(body)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var req struct {
				EntityID string           `json:"entity_id"`
				Resource string           `json:"resource"`
				Consume  map[string]int64 `json:"consume"`
				Limits   []map[string]any `json:"limits"`
			}
			if err := json.Unmarshal(body, &req); err != nil {
				b.Fatal(err)
			}
		}
	})
}
