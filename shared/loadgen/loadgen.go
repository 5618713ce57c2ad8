// Package loadgen drives a bounded load of operations from concurrent
// workers and summarises their latencies. The bench command uses it for the
// in-process limiter, the HTTP client and the baselines it is compared with.
package loadgen

import (
	"context"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// Op is one operation; admitted false is a rate-limit denial (not an error).
type Op struct {
	Name string
	Do   func(ctx context.Context) (admitted bool, err error)
}

// Options bound a run: it stops after Requests rounds in total or after
// Duration, whichever comes first (at least one must be set).
type Options struct {
	Concurrency int
	Requests    int
	Duration    time.Duration
	// Progress, when set, is called about every ProgressEvery (default
	// 500ms) with the counts so far of the first op.
	Progress      func(Progress)
	ProgressEvery time.Duration
}

// Progress is a running count.
type Progress struct {
	Done, Admitted, Rejected, Errors int64
	Elapsed                          time.Duration
}

// Result summarises one op over a run.
type Result struct {
	Name      string
	Acquires  int64
	Admitted  int64
	Rejected  int64
	Errors    int64
	P50, P99  time.Duration
	Mean      time.Duration
	Elapsed   time.Duration
	PerSecond float64
	FirstErr  error
}

type series struct {
	mu        sync.Mutex
	lat       []time.Duration
	admitted  atomic.Int64
	rejected  atomic.Int64
	errors    atomic.Int64
	firstErr  error
	firstOnce sync.Once
}

// Run executes the ops round-robin in each worker (so that alternating ops
// see the same conditions) and returns one Result per op. A "round" runs
// every op once.
func Run(ctx context.Context, o Options, ops ...Op) []Result {
	if o.Concurrency < 1 {
		o.Concurrency = 1
	}
	if o.ProgressEvery <= 0 {
		o.ProgressEvery = 500 * time.Millisecond
	}
	if o.Duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.Duration)
		defer cancel()
	}
	ss := make([]*series, len(ops))
	for i := range ss {
		ss[i] = &series{}
	}
	var issued atomic.Int64
	start := time.Now()
	stop := make(chan struct{})
	var pwg sync.WaitGroup
	if o.Progress != nil {
		pwg.Add(1)
		go func() {
			defer pwg.Done()
			t := time.NewTicker(o.ProgressEvery)
			defer t.Stop()
			for {
				select {
				case <-stop:
					return
				case <-t.C:
					o.Progress(progress(ss[0], start))
				}
			}
		}()
	}
	var wg sync.WaitGroup
	for range o.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				if o.Requests > 0 && issued.Add(1) > int64(o.Requests) {
					return
				}
				for i, op := range ops {
					t0 := time.Now()
					ok, err := op.Do(ctx)
					d := time.Since(t0)
					if err != nil && ctx.Err() != nil {
						return // cut off by the deadline: not a sample
					}
					s := ss[i]
					switch {
					case err != nil:
						s.errors.Add(1)
						s.firstOnce.Do(func() { s.firstErr = err })
					case ok:
						s.admitted.Add(1)
					default:
						s.rejected.Add(1)
					}
					s.mu.Lock()
					s.lat = append(s.lat, d)
					s.mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	pwg.Wait()
	elapsed := time.Since(start)
	out := make([]Result, len(ops))
	for i, s := range ss {
		out[i] = summarize(ops[i].Name, s, elapsed)
	}
	if o.Progress != nil {
		o.Progress(progress(ss[0], start))
	}
	return out
}

func progress(s *series, start time.Time) Progress {
	a, r, e := s.admitted.Load(), s.rejected.Load(), s.errors.Load()
	return Progress{Done: a + r + e, Admitted: a, Rejected: r, Errors: e, Elapsed: time.Since(start)}
}

func summarize(name string, s *series, elapsed time.Duration) Result {
	s.mu.Lock()
	lat := append([]time.Duration(nil), s.lat...)
	s.mu.Unlock()
	r := Result{Name: name, Admitted: s.admitted.Load(), Rejected: s.rejected.Load(), Errors: s.errors.Load(),
		Elapsed: elapsed, FirstErr: s.firstErr}
	r.Acquires = r.Admitted + r.Rejected + r.Errors
	if elapsed > 0 {
		r.PerSecond = float64(r.Acquires) / elapsed.Seconds()
	}
	r.P50, r.P99 = Percentile(lat, 50), Percentile(lat, 99)
	if len(lat) > 0 {
		var sum time.Duration
		for _, d := range lat {
			sum += d
		}
		r.Mean = sum / time.Duration(len(lat))
	}
	return r
}

// Percentile returns the p-th percentile (nearest rank) of ds.
func Percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	rank := int(p/100*float64(len(s))+0.999999) - 1
	rank = max(0, min(rank, len(s)-1))
	return s[rank]
}
