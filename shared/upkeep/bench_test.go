package upkeep_test

import (
	"testing"
	"time"
)

// BenchmarkHandle: one batch of 100 stream records of ordinary (not hot)
// buckets through the handler: decoding, the policy, the log line. Such a
// batch reads nothing; ns/op / 100 is the cost of one record.
//
//	go test ./shared/upkeep -run '^$' -bench Handle -benchtime 200x
func BenchmarkHandle(b *testing.B) {
	e := newEnv(b, cheap)
	for _, who := range []string{"a", "b", "c", "d"} {
		e.load(who, 50, 500*time.Millisecond)
	}
	recs := e.records()
	if len(recs) < 100 {
		b.Fatalf("%d records", len(recs))
	}
	recs = recs[:100]
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if failed := e.deliver(recs); len(failed) > 0 {
			b.Fatal(failed)
		}
	}
	b.ReportMetric(float64(b.N*len(recs))/b.Elapsed().Seconds(), "records/s")
}
