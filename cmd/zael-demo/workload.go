package main

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zeroae/zae-limiter-go/client"
	"github.com/zeroae/zae-limiter-go/shared/limits"
	"github.com/zeroae/zae-limiter-go/shared/wire"
)

// Workload shapes the LLM-style traffic: each call acquires {rpm: 1,
// tpm: estimate}, "calls the model", then reconciles tpm to the real usage.
type Workload struct {
	Duration time.Duration
	Workers  int
	Seed     uint64
	// Calls, when positive, stops each worker after that many calls, even
	// before Duration has passed (the tests' fixed amount of traffic).
	Calls int
	// Think is the pause between a worker's calls (uniform in [min, max)).
	ThinkMin, ThinkMax time.Duration
	// Model is how long the model call takes (uniform in [min, max)).
	ModelMin, ModelMax time.Duration
	// FailRate is the share of model calls that fail (and roll back).
	FailRate float64
	// MaxBackoff caps how long an entity's workers honour a denial's
	// RetryAfter before trying again.
	MaxBackoff time.Duration
	// Progress, when set, is called every ProgressEvery with the totals.
	Progress      func(Progress)
	ProgressEvery time.Duration
}

// DefaultWorkload is 8 workers at about 35-45 acquires a second in total.
func DefaultWorkload() Workload {
	return Workload{
		Duration: 20 * time.Second, Workers: 8, Seed: 42,
		ThinkMin: 80 * time.Millisecond, ThinkMax: 240 * time.Millisecond,
		ModelMin: 5 * time.Millisecond, ModelMax: 25 * time.Millisecond,
		FailRate: 0.07, MaxBackoff: 500 * time.Millisecond,
		ProgressEvery: 500 * time.Millisecond,
	}
}

// Progress is a running total over every entity.
type Progress struct {
	Elapsed                                          time.Duration
	Attempts, Admitted, Rejected, RolledBack, Errors int64
	Done                                             bool // the last call, after every worker stopped
}

// Tally is what one calling entity saw, built only from what the acquire
// API answered: leases' Consumed on commit and denials' violations.
type Tally struct {
	Attempts, Admitted, Rejected, RolledBack, Errors int64
	// Used is the net consumption of the committed calls (lease.Consumed);
	// rolled-back calls gave everything back.
	Used map[string]int64
	// Overshoot is the tpm added by positive adjustments (calls that used
	// more than estimated): the only consumption not checked on acquire.
	Overshoot int64
	Latencies []time.Duration // of every acquire, admitted or denied
	// BlockedBy counts denials by the violated limit with the longest wait
	// (keyed "entity limit"), or "contention".
	BlockedBy map[string]int64
	FirstErr  error

	mu         sync.Mutex
	coolUntil  time.Time
	retryAfter time.Duration
}

// errModel is the simulated failure of a model call.
var errModel = errors.New("model call failed")

type totals struct{ attempts, admitted, rejected, rolledBack, errors atomic.Int64 }

// Run drives the workload through the acquire API client c until
// w.Duration has passed or ctx is cancelled; the calls in flight then
// finish. Workers take the callers in turn. limitsOf holds every entity's
// limits on resource (parents' too): they tell which violation of a denial
// needs the longest wait. It returns one tally per caller and the elapsed
// time.
func Run(ctx context.Context, c *client.Client, resource string, callers []string, limitsOf map[string][]limits.Limit,
	w Workload) (map[string]*Tally, time.Duration) {
	tallies := map[string]*Tally{}
	for _, id := range callers {
		tallies[id] = &Tally{Used: map[string]int64{}, BlockedBy: map[string]int64{}}
	}
	var tot totals
	stop, cancel := context.WithTimeout(ctx, w.Duration)
	defer cancel()
	start := time.Now()
	progress := func() Progress {
		return Progress{Elapsed: time.Since(start), Attempts: tot.attempts.Load(), Admitted: tot.admitted.Load(),
			Rejected: tot.rejected.Load(), RolledBack: tot.rolledBack.Load(), Errors: tot.errors.Load()}
	}
	var wg sync.WaitGroup
	for i := range w.Workers {
		id := callers[i%len(callers)]
		rng := rand.New(rand.NewPCG(w.Seed, uint64(i)))
		wg.Go(func() { worker(stop, c, resource, id, tallies[id], &tot, rng, limitsOf, w) })
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	if w.Progress != nil && w.ProgressEvery > 0 {
		tick := time.NewTicker(w.ProgressEvery)
		defer tick.Stop()
	loop:
		for {
			select {
			case <-tick.C:
				w.Progress(progress())
			case <-done:
				break loop
			}
		}
	}
	<-done
	elapsed := time.Since(start)
	if w.Progress != nil {
		p := progress()
		p.Done = true
		w.Progress(p)
	}
	return tallies, elapsed
}

// worker calls the model as one entity until stop is done.
func worker(stop context.Context, c *client.Client, resource, id string, t *Tally, tot *totals, rng *rand.Rand,
	limitsOf map[string][]limits.Limit, w Workload) {
	// Calls in flight finish even when the run stops.
	ctx := context.WithoutCancel(stop)
	for n := 0; w.Calls <= 0 || n < w.Calls; n++ {
		if !sleep(stop, t.cooldown()+between(rng, w.ThinkMin, w.ThinkMax)) {
			return
		}
		cl := newCall(rng, w)
		var acquired time.Duration
		var consumed map[string]int64
		start := time.Now()
		err := c.Do(ctx, client.Request{EntityID: id, Resource: resource,
			Consume: map[string]int64{"rpm": 1, "tpm": cl.estimate}},
			func(ctx context.Context, ls *client.Lease) error {
				acquired = time.Since(start)
				time.Sleep(cl.model)
				if cl.fails {
					return errModel
				}
				if d := cl.actual - cl.estimate; d != 0 {
					if err := ls.Adjust(ctx, map[string]int64{"tpm": d}); err != nil {
						return err
					}
				}
				consumed = ls.Consumed()
				return nil
			})
		if acquired == 0 {
			acquired = time.Since(start)
		}
		t.record(err, acquired, consumed, cl, limitsOf, w.MaxBackoff, tot)
	}
}

// call is one simulated model call.
type call struct {
	estimate, actual int64 // tokens: input estimate + max output; real usage
	model            time.Duration
	fails            bool
}

// newCall draws a request: a prompt of 100-900 tokens estimated by a
// heuristic that is off by up to 10%, max_tokens 256 or 512, and an
// answer of 20-100% of max_tokens.
func newCall(rng *rand.Rand, w Workload) call {
	input := 100 + rng.Int64N(800)
	maxOut := int64(256 << rng.IntN(2))
	actualIn := input + int64(float64(input)*(rng.Float64()*0.2-0.1))
	actualOut := int64(float64(maxOut) * (0.2 + 0.8*rng.Float64()))
	return call{
		estimate: input + maxOut,
		actual:   actualIn + actualOut,
		model:    between(rng, w.ModelMin, w.ModelMax),
		fails:    rng.Float64() < w.FailRate,
	}
}

// record counts one call's outcome.
func (t *Tally) record(err error, latency time.Duration, consumed map[string]int64, c call,
	limitsOf map[string][]limits.Limit, maxBackoff time.Duration, tot *totals) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.Attempts++
	tot.attempts.Add(1)
	t.Latencies = append(t.Latencies, latency)
	var denied *client.RateLimitedError
	switch {
	case err == nil:
		t.Admitted++
		tot.admitted.Add(1)
		for k, v := range consumed {
			t.Used[k] += v
		}
		t.Overshoot += max(0, c.actual-c.estimate)
	case errors.As(err, &denied):
		t.Rejected++
		tot.rejected.Add(1)
		t.BlockedBy[blocker(denied.Violations, limitsOf)]++
		// Honour the retry-after a little: this entity's workers pause.
		wait := min(denied.RetryAfter, maxBackoff)
		if until := time.Now().Add(wait); until.After(t.coolUntil) {
			t.coolUntil = until
		}
	case err == errModel: // not wrapped: the rollback succeeded
		t.Admitted++
		t.RolledBack++
		tot.admitted.Add(1)
		tot.rolledBack.Add(1)
	default:
		t.Errors++
		tot.errors.Add(1)
		if t.FirstErr == nil {
			t.FirstErr = err
		}
	}
}

// blocker names the violation that needs the longest wait ("entity
// limit"): its shortfall over its limit's refill rate. A denial without
// violations lost races to other writers ("contention").
func blocker(vs []wire.Violation, limitsOf map[string][]limits.Limit) string {
	best, longest := "contention", -1.0
	for _, v := range vs {
		wait := float64(v.Requested - v.Available)
		for _, l := range limitsOf[v.EntityID] {
			if l.Name == v.Limit {
				wait *= float64(l.RefillPeriodSeconds) / float64(l.RefillAmount)
			}
		}
		if wait > longest {
			best, longest = v.EntityID+" "+v.Limit, wait
		}
	}
	return best
}

func (t *Tally) cooldown() time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	return max(0, time.Until(t.coolUntil))
}

func between(rng *rand.Rand, lo, hi time.Duration) time.Duration {
	if hi <= lo {
		return lo
	}
	return lo + time.Duration(rng.Int64N(int64(hi-lo)))
}

// sleep waits d unless ctx ends first; it reports whether ctx is still live.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
