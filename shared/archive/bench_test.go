package archive

import (
	"flag"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

var benchPerObject = flag.Int("archive.per-object", DefaultMaxEventsPerObject, "events per object in BenchmarkArchive10k")

// BenchmarkArchive10k archives 10,000 due audit events in one run against
// DynamoDB Local and the in-process S3 (docs/performance.md):
//
//	go test -run='^$' -bench=Archive10k -benchtime=1x ./shared/archive
//	go test -run='^$' -bench=Archive10k -benchtime=1x ./shared/archive -archive.per-object=1000
//
// Each iteration seeds a fresh table (not timed), then times one Run. Run
// one iteration per process: DynamoDB Local slows down as stream records
// accumulate in it, so later iterations measure that instead.
func BenchmarkArchive10k(b *testing.B) {
	const n = 10_000
	b.StopTimer()
	for range b.N {
		f := setup(b)
		recs := f.seed(f.ns.ID, n, t0.Add(-88*day), 100*time.Millisecond, 90*day)
		a := f.archiver(Options{MaxEventsPerObject: *benchPerObject}, nil, nil)
		start := time.Now()
		b.StartTimer()
		rep, err := a.Run(f.ctx, Request{OlderThan: -1})
		b.StopTimer()
		elapsed := time.Since(start)
		require.NoError(b, err)
		require.Equal(b, n, rep.Archived)
		b.ReportMetric(float64(len(rep.Objects)), "objects")
		b.ReportMetric(float64(n)/elapsed.Seconds(), "events/s")
		require.Empty(b, f.inTable())
		counts, _ := f.inS3()
		require.Len(b, counts, len(recs))
	}
}
