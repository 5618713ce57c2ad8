package limiter_test

// Correctness under contention: goroutines, processes, cascades, leases
// and clocks that disagree.

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zeroae/zae-limiter-go/shared/ddblocal/ddbtest"
	"github.com/zeroae/zae-limiter-go/shared/limiter"
	"github.com/zeroae/zae-limiter-go/shared/limits"
	"github.com/zeroae/zae-limiter-go/shared/store"
)

// fifty is the bucket of the contention tests: 50 a day, so that within a
// test (seconds) refill adds far less than one token and exactly 50 can be
// admitted, whatever the clock.
var fifty = []limits.Limit{limits.PerDay("rpd", 50, 0)}

// hammer runs goroutines x attempts acquires of one token, spread over the
// limiters, and returns how many were admitted and denied. Any other
// outcome fails the test.
func hammer(t *testing.T, lims []*limiter.Limiter, goroutines, attempts int, req limiter.Request) (admitted, denied int64) {
	var ok, no atomic.Int64
	var wg sync.WaitGroup
	start := make(chan struct{})
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lim := lims[g%len(lims)]
			<-start
			for range attempts {
				_, err := lim.Acquire(context.Background(), req)
				if err == nil {
					ok.Add(1)
					continue
				}
				var ex *limits.ExceededError
				if assert.ErrorAs(t, err, &ex) {
					no.Add(1)
				}
			}
		}()
	}
	close(start)
	wg.Wait()
	return ok.Load(), no.Load()
}

// (a) 32 goroutines in 4 limiters (each its own cache, as processes) on one
// bucket of 50 with the real clock admit exactly 50.
func TestContentionGoroutinesAdmitExactlyCapacity(t *testing.T) {
	e := newEnv(t, limiter.Options{})
	lims := make([]*limiter.Limiter, 4)
	for i := range lims {
		lims[i] = e.newLimiter(limiter.Options{Now: time.Now})
	}
	req := limiter.Request{EntityID: "u", Resource: "r", Consume: map[string]int64{"rpd": 1}, Limits: fifty}
	e.count.Reset()
	admitted, denied := hammer(t, lims, 32, 5, req)
	t.Logf("admitted %d, denied %d, requests %v", admitted, denied, e.count.Snapshot())
	assert.Equal(t, int64(50), admitted)
	assert.Equal(t, int64(32*5-50), denied)
	assert.Equal(t, int64(50_000), e.tc("u", "r", "rpd"))
	assert.Equal(t, map[string]int64{"u/rpd": 0}, e.avail(lims[0], "u", "r", fifty))
	assert.Nil(t, e.item("u", "r", 1), "no shard doubling")
}

// Helper-process environment (multi-process test).
const (
	helperEnv      = "ZAEL_LIMITER_HELPER"
	helperTableEnv = "ZAEL_LIMITER_HELPER_TABLE"
	helperNSEnv    = "ZAEL_LIMITER_HELPER_NS"
	helperWorkers  = 16
	helperAttempts = 5
)

// TestHelperProcess is not a test: it is the body of the processes that
// TestContentionProcessesAdmitExactlyCapacity starts (the test binary run
// again). It prints READY, waits for a line on stdin, runs its goroutines
// with its own limiter and the real clock, and prints ADMITTED n DENIED m.
func TestHelperProcess(t *testing.T) {
	if os.Getenv(helperEnv) != "1" {
		t.Skip("helper process for TestContentionProcessesAdmitExactlyCapacity")
	}
	ctx := context.Background()
	db := ddbtest.Client(t) // AWS_ENDPOINT_URL_DYNAMODB: the parent's DynamoDB
	st := store.New(db, store.Options{Table: os.Getenv(helperTableEnv)})
	ns, err := st.Namespace(ctx, "default")
	require.NoError(t, err)
	require.Equal(t, os.Getenv(helperNSEnv), ns.ID)
	lim := limiter.New(db, ns, limiter.Options{Table: st.Table(), Namespace: ns.ID})
	req := limiter.Request{EntityID: "u", Resource: "r", Consume: map[string]int64{"rpd": 1}, Limits: fifty}
	_, _, err = ns.CachedEntity(ctx, "u") // warm the entity cache before the start
	require.NoError(t, err)

	fmt.Println("READY")
	_, err = bufio.NewReader(os.Stdin).ReadString('\n')
	require.NoError(t, err)
	admitted, denied := hammer(t, []*limiter.Limiter{lim}, helperWorkers, helperAttempts, req)
	fmt.Printf("ADMITTED %d DENIED %d\n", admitted, denied)
}

// (b) Three OS processes of 16 goroutines each (this test binary re-run as
// TestHelperProcess) on one bucket of 50 admit exactly 50 in total.
func TestContentionProcessesAdmitExactlyCapacity(t *testing.T) {
	e := newEnv(t, limiter.Options{})
	const procs = 3
	type child struct {
		cmd   *exec.Cmd
		stdin io.WriteCloser
		out   *bufio.Scanner
		lines []string
	}
	children := make([]*child, procs)
	for i := range children {
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1", "-test.v=false")
		cmd.Env = append(os.Environ(),
			helperEnv+"=1",
			ddbtest.EndpointEnv+"="+ddbtest.Endpoint(t),
			helperTableEnv+"="+e.table,
			helperNSEnv+"="+e.ns.ID,
		)
		cmd.Stderr = os.Stderr
		stdin, err := cmd.StdinPipe()
		require.NoError(t, err)
		stdout, err := cmd.StdoutPipe()
		require.NoError(t, err)
		require.NoError(t, cmd.Start())
		c := &child{cmd: cmd, stdin: stdin, out: bufio.NewScanner(stdout)}
		children[i] = c
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	}
	// Start them together once every one is ready.
	for i, c := range children {
		ready := false
		for c.out.Scan() {
			c.lines = append(c.lines, c.out.Text())
			if c.out.Text() == "READY" {
				ready = true
				break
			}
		}
		require.True(t, ready, "helper %d never got ready: %v", i, c.lines)
	}
	for _, c := range children {
		_, err := io.WriteString(c.stdin, "go\n")
		require.NoError(t, err)
	}
	var total, denied int64
	for i, c := range children {
		for c.out.Scan() {
			c.lines = append(c.lines, c.out.Text())
		}
		require.NoError(t, c.cmd.Wait(), "helper %d: %v", i, c.lines)
		found := false
		for _, l := range c.lines {
			if f := strings.Fields(l); len(f) == 4 && f[0] == "ADMITTED" {
				a, err1 := strconv.ParseInt(f[1], 10, 64)
				d, err2 := strconv.ParseInt(f[3], 10, 64)
				require.NoError(t, err1)
				require.NoError(t, err2)
				t.Logf("process %d admitted %d, denied %d", i, a, d)
				total += a
				denied += d
				found = true
			}
		}
		require.True(t, found, "helper %d printed no count: %v", i, c.lines)
	}
	assert.Equal(t, int64(50), total)
	assert.Equal(t, int64(procs*helperWorkers*helperAttempts-50), denied)
	assert.Equal(t, int64(50_000), e.tc("u", "r", "rpd"))
}

// (c) Cascade: 8 children of one parent, 32 goroutines in 2 limiters. The
// parent (20) is the bottleneck: exactly 20 are admitted, every denial
// names the parent alone, and every child was given back what the parent
// refused (its counter is exactly what it was admitted).
func TestContentionCascadeNeverExceedsParent(t *testing.T) {
	e := newEnv(t, limiter.Options{})
	const kids = 8
	require.NoError(t, e.ns.SetLimits(e.ctx, "parent", "r", []limits.Limit{limits.PerDay("rpd", 20, 0)}))
	for i := range kids {
		id := fmt.Sprintf("kid-%d", i)
		_, err := e.ns.CreateEntity(e.ctx, store.Entity{ID: id, ParentID: "parent", Cascade: true})
		require.NoError(t, err)
		require.NoError(t, e.ns.SetLimits(e.ctx, id, "r", []limits.Limit{limits.PerDay("rpd", 100, 0)}))
	}
	lims := []*limiter.Limiter{e.newLimiter(limiter.Options{Now: time.Now}), e.newLimiter(limiter.Options{Now: time.Now})}
	var perKid [kids]atomic.Int64
	var total, denied atomic.Int64
	var wg sync.WaitGroup
	start := make(chan struct{})
	for g := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for a := range 4 {
				k := (g + a) % kids
				req := limiter.Request{EntityID: fmt.Sprintf("kid-%d", k), Resource: "r", Consume: map[string]int64{"rpd": 1}}
				_, err := lims[g%2].Acquire(context.Background(), req)
				if err == nil {
					perKid[k].Add(1)
					total.Add(1)
					continue
				}
				var ex *limits.ExceededError
				if assert.ErrorAs(t, err, &ex) {
					denied.Add(1)
					assert.Equal(t, []string{"parent/rpd"}, names(ex.Violations()))
				}
			}
		}()
	}
	close(start)
	wg.Wait()
	assert.Equal(t, int64(20), total.Load())
	assert.Equal(t, int64(32*4-20), denied.Load())
	assert.Equal(t, int64(20_000), e.tc("parent", "r", "rpd"))
	for k := range kids {
		id := fmt.Sprintf("kid-%d", k)
		n := perKid[k].Load()
		assert.Equal(t, n*1000, e.tc(id, "r", "rpd"), "%s", id)
		assert.Equal(t, map[string]int64{id + "/rpd": 100 - n, "parent/rpd": 0}, e.avail(lims[0], id, "r", nil))
	}
}

// (d) Leases under concurrency: 32 goroutines in 4 limiters, each 3 times:
// acquire {rpm 10, tpm 100}, lease.Consume {rpm 1}, Adjust {tpm +50},
// Release {tpm 20}, then commit or roll back (half of them, some through
// Do's error path). The clock is frozen and the booking grid exact so the
// arithmetic is exact: committed leases keep rpm 11 and tpm 130 each,
// rolled back ones nothing.
func TestContentionLeasesAreExact(t *testing.T) {
	e := newEnv(t, exact)
	ls := []limits.Limit{limits.PerDay("rpm", 10_000, 0), limits.PerDay("tpm", 1_000_000, 0)}
	lims := []*limiter.Limiter{e.lim, e.newLimiter(exact), e.newLimiter(exact), e.newLimiter(exact)}
	req := limiter.Request{EntityID: "u", Resource: "r", Consume: map[string]int64{"rpm": 10, "tpm": 100}, Limits: ls}
	work := func(ctx context.Context, l *limiter.Lease) error {
		if err := l.Consume(ctx, map[string]int64{"rpm": 1}); err != nil {
			return err
		}
		if err := l.Adjust(ctx, map[string]int64{"tpm": 50}); err != nil {
			return err
		}
		return l.Release(ctx, map[string]int64{"tpm": 20})
	}
	errRollback := fmt.Errorf("roll back")
	var commits atomic.Int64
	var wg sync.WaitGroup
	start := make(chan struct{})
	for g := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lim := lims[g%len(lims)]
			<-start
			for round := range 3 {
				switch (g + round) % 4 {
				case 0, 1: // by hand
					lease, err := lim.Acquire(e.ctx, req)
					if !assert.NoError(t, err) {
						continue
					}
					assert.NoError(t, work(e.ctx, lease))
					assert.Equal(t, map[string]int64{"rpm": 11, "tpm": 130}, lease.Consumed())
					if (g+round)%4 == 0 {
						assert.NoError(t, lease.Commit(e.ctx))
						commits.Add(1)
					} else {
						assert.NoError(t, lease.Rollback(e.ctx))
					}
				case 2: // Do, committed
					assert.NoError(t, lim.Do(e.ctx, req, work))
					commits.Add(1)
				case 3: // Do, the work fails
					err := lim.Do(e.ctx, req, func(ctx context.Context, l *limiter.Lease) error {
						if err := work(ctx, l); err != nil {
							return err
						}
						return errRollback
					})
					assert.ErrorIs(t, err, errRollback)
				}
			}
		}()
	}
	close(start)
	wg.Wait()
	n := commits.Load()
	assert.Equal(t, int64(48), n)
	assert.Equal(t, map[string]int64{"u/rpm": 10_000 - 11*n, "u/tpm": 1_000_000 - 130*n}, e.avail(e.lim, "u", "r", ls))
	assert.Equal(t, 11_000*n, e.tc("u", "r", "rpm"))
	assert.Equal(t, 130_000*n, e.tc("u", "r", "tpm"))
}

// (e) Two limiters whose clocks differ by one second take turns on one
// bucket (capacity 10, refill 10 a second). A write is admitted only if the
// virtual time it leaves is within capacity of its writer's clock, and the
// virtual time never decreases (no rollback here), so the total admitted
// can never exceed
//
//	capacity + rate x (latest instant of the fastest clock - the instant of
//	the first write, on its writer's clock)
//
// i.e. the limiter mints nothing beyond what the fastest clock has seen.
// Taking turns in both orders, the total reaches that bound and stays there.
func TestContentionSkewedClocksNeverMint(t *testing.T) {
	e := newEnv(t, limiter.Options{})
	ls := []limits.Limit{limits.PerSecond("rps", 10, 0)}
	slow, fast := newClock(), newClock()
	fast.Advance(time.Second)
	a := e.newLimiter(limiter.Options{Now: slow.Now})
	b := e.newLimiter(limiter.Options{Now: fast.Now})
	drain := func(lim *limiter.Limiter) int64 {
		var n int64
		for {
			_, err := lim.Acquire(e.ctx, limiter.Request{EntityID: "u", Resource: "r", Consume: map[string]int64{"rps": 1}, Limits: ls})
			if err != nil {
				exceeded(t, err)
				return n
			}
			n++
			require.Less(t, n, int64(1000))
		}
	}
	first := slow.Now() // a writes first
	var total int64
	const rounds = 30
	for r := range rounds {
		if r > 0 {
			slow.Advance(100 * time.Millisecond)
			fast.Advance(100 * time.Millisecond)
		}
		if r%3 == 2 {
			total += drain(b)
			total += drain(a)
		} else {
			total += drain(a)
			total += drain(b)
		}
		bound := 10 + 10*fast.Now().Sub(first).Milliseconds()/1000
		require.LessOrEqual(t, total, bound, "round %d", r)
	}
	bound := 10 + 10*fast.Now().Sub(first).Milliseconds()/1000
	lower := 10 + 10*slow.Now().Sub(first).Milliseconds()/1000
	t.Logf("admitted %d; bound %d (fastest clock), %d on the slowest", total, bound, lower)
	assert.GreaterOrEqual(t, total, lower, "nothing lost either")
}

// Two processes whose clocks differ by a second, each writing a few times a
// second, are far below the write ceiling of a shard: the hidden write
// budget must not see the slower one's writes as a burst and double the
// shards (each doubling is for good and halves what a shard can grant).
func TestSkewedClocksDoNotShard(t *testing.T) {
	e := newEnv(t, limiter.Options{})
	slow, fast := newClock(), newClock()
	fast.Advance(time.Second)
	a := e.newLimiter(limiter.Options{Now: slow.Now})
	b := e.newLimiter(limiter.Options{Now: fast.Now})
	req := limiter.Request{EntityID: "u", Resource: "r", Consume: map[string]int64{"rpd": 1}, Limits: []limits.Limit{limits.PerDay("rpd", 1_000_000, 0)}}
	for range 20 {
		slow.Advance(50 * time.Millisecond)
		fast.Advance(50 * time.Millisecond)
		for _, lim := range []*limiter.Limiter{b, a} {
			_, err := lim.Acquire(e.ctx, req)
			require.NoError(t, err)
		}
	}
	t.Logf("requests: %v", e.count.Snapshot())
	it := e.item("u", "r", 0)
	assert.Equal(t, int64(1), e.num(it, "shard_count"))
	assert.Equal(t, int64(40_000), e.num(it, "b_rpd_tc"))
	assert.Nil(t, e.item("u", "r", 1))
	assert.Zero(t, e.count.Count("PutItem"))
}
