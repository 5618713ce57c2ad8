package cli

import (
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zeroae/zae-limiter-go/client"
	"github.com/zeroae/zae-limiter-go/shared/awsenv"
	"github.com/zeroae/zae-limiter-go/shared/localstack"
	"github.com/zeroae/zae-limiter-go/shared/usage/usagetest"
)

// Killing the aggregator's processes while they work on batches, under
// real acquire traffic through the Function URL (a cascade, adjustments
// both ways, rollbacks), loses no stream record and counts none twice:
// once the traffic stops, `usage summary` of every entity equals its
// bucket's net consumption and what the client's committed leases
// consumed, exactly, and stays so once the stream mapping is idle; no batch
// went to the failure destination.
func TestLocalAggregatorKilledUnderLoad(t *testing.T) {
	if !localFull() {
		t.Skip("the whole local stack through the CLI: make test-local (ZAEL_TEST_LOCAL=1)")
	}
	name, _, p, endpoint := localSetup(t, "cli-kill")
	r := runCLI("local", "up", "--port", p, "-n", name)
	require.Equal(t, exitOK, r.code, r.errOut)
	st, err := localstack.ReadState(name)
	require.NoError(t, err)
	zl := func(args ...string) string {
		t.Helper()
		r := runCLI(append(args, "--endpoint-url", endpoint, "-n", name)...)
		require.Equal(t, exitOK, r.code, "%v: %s", args, r.errOut)
		return r.out
	}
	status := func() localStatusJSON { return decode[localStatusJSON](t, zl("local", "status", "-o", "json")) }
	aggregator := func(s localStatusJSON) (localstack.FunctionStatus, localstack.MappingStatus) {
		var f localstack.FunctionStatus
		var m localstack.MappingStatus
		for _, x := range s.Functions {
			if x.Name == "aggregator" {
				f = x
			}
		}
		for _, x := range s.Mappings {
			if x.Function == "aggregator" {
				m = x
			}
		}
		return f, m
	}
	zl("resource", "set-defaults", "gpt", "-l", "rpm:1000000", "-l", "tpm:100000000") // nothing is denied
	zl("entity", "create", "org")
	zl("entity", "create", "key-1", "--parent", "org", "--cascade")
	entities := []string{"key-1", "org", "solo", "hot"}
	c, err := client.New(status().AcquireURL)
	require.NoError(t, err)

	// The traffic, and what the committed leases consumed (the parent's
	// is its child's).
	var mu sync.Mutex
	want := map[string]map[string]int64{}
	for _, e := range entities {
		want[e] = map[string]int64{}
	}
	var clientErrs []error
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 4 {
		rng := rand.New(rand.NewPCG(7, uint64(w)))
		callers := []string{"key-1", "solo", "hot"}
		wg.Go(func() {
			ctx := context.Background()
			for {
				select {
				case <-stop:
					return
				default:
				}
				id := callers[rng.IntN(len(callers))]
				rollback := rng.IntN(5) == 0
				var consumed map[string]int64
				err := c.Do(ctx, client.Request{EntityID: id, Resource: "gpt", Consume: map[string]int64{"rpm": 1, "tpm": 300 + rng.Int64N(900)}},
					func(ctx context.Context, l *client.Lease) error {
						if err := l.Adjust(ctx, map[string]int64{"tpm": rng.Int64N(400) - 200}); err != nil {
							return err
						}
						if rollback {
							return errRolledBack
						}
						consumed = l.Consumed()
						return nil
					})
				mu.Lock()
				switch {
				case err == nil:
					for k, v := range consumed {
						want[id][k] += v
						if id == "key-1" {
							want["org"][k] += v
						}
					}
				case !errors.Is(err, errRolledBack):
					clientErrs = append(clientErrs, err)
				}
				mu.Unlock()
			}
		})
	}

	// Kill aggregator processes at work until three invocations died
	// under a batch (each a platform.report with status error: the
	// mapping bisects the batch and delivers it again). The killer polls
	// without pause: a batch takes a few milliseconds of work.
	root, ok := checkout()
	require.True(t, ok)
	killer := newBatchKiller(st.DaemonPID, filepath.Join(root, "dist", "local", "aggregator", "bootstrap"), time.Second)
	f, _ := aggregator(status())
	interrupted := func() int {
		b, _ := os.ReadFile(f.LogFile)
		return strings.Count(string(b), `"status":"error"},"time"`) + strings.Count(string(b), `"status":"timeout"},"time"`)
	}
	killing := make(chan struct{})
	killed := make(chan []int)
	go func() {
		refreshed := time.Time{}
		for {
			select {
			case <-killing:
				killed <- killer.Killed
				return
			default:
			}
			if time.Since(refreshed) > 200*time.Millisecond {
				killer.refresh()
				refreshed = time.Now()
			}
			killer.poll()
		}
	}()
	deadline := time.Now().Add(2 * time.Minute)
	for interrupted() < 3 && time.Now().Before(deadline) {
		time.Sleep(300 * time.Millisecond)
	}
	close(killing)
	kills := <-killed
	close(stop)
	wg.Wait()
	require.GreaterOrEqual(t, interrupted(), 3, "kills that landed during a batch (of %d kills)", len(kills))
	t.Logf("killed %d aggregator processes, %d of them during an invocation", len(kills), interrupted())

	cfg, err := awsenv.Load(context.Background(), awsenv.Options{EndpointURL: endpoint})
	require.NoError(t, err)
	buckets := usagetest.Open(t, awsenv.NewDynamoDB(cfg), name)
	summary := func(entity string) map[string]int64 {
		got := map[string]int64{}
		for _, l := range decode[summaryJSON](t, zl("usage", "summary", "-e", entity, "-r", "gpt", "-w", "hourly", "-o", "json")).Limits {
			got[l.Name] = l.Total
		}
		return got
	}
	counted := func() bool {
		for _, e := range entities {
			if !assert.ObjectsAreEqual(buckets.Consumed(e, "gpt"), summary(e)) {
				return false
			}
		}
		return true
	}
	require.Eventually(t, counted, 2*time.Minute, 200*time.Millisecond, "the snapshots reach the buckets' consumption")
	// Then the mapping goes idle (no batch in flight, no retry pending):
	// the counts stay.
	_, m := aggregator(status())
	require.Eventually(t, func() bool {
		_, now := aggregator(status())
		idle := now.Batches == m.Batches && now.Retries == m.Retries && time.Since(now.LastBatchAt) > 3*time.Second
		m = now
		return idle
	}, 2*time.Minute, time.Second, "the mapping goes idle")
	for _, e := range entities {
		got := summary(e)
		assert.Equal(t, buckets.Consumed(e, "gpt"), got, "%s: usage summary = the bucket's net consumption", e)
		if len(clientErrs) == 0 {
			assert.Equal(t, want[e], got, "%s: usage summary = what the committed leases consumed", e)
		}
	}
	assert.Empty(t, clientErrs, "the traffic itself ran without errors")
	f, m = aggregator(status())
	assert.GreaterOrEqual(t, f.Restarts, len(kills), "the runner replaced every killed process")
	assert.Zero(t, m.Failed, "no batch failed for good")
	for _, d := range status().Destinations {
		assert.Zero(t, d.Messages, "nothing went to %s", d.Name)
	}
}

var errRolledBack = errors.New("the call failed: roll back")

// batchKiller kills a function's bootstrap processes while they work on
// an invocation: a process of the function (a child of the daemon running
// binary) that has sat idle, blocked on the Runtime API's next event, is
// killed as soon as it reads anything (/proc/PID/io rchar grows), that is,
// between receiving an event and answering it. After a kill it waits
// cooldown, so that no batch is failed again and again.
type batchKiller struct {
	daemon   int
	binary   string
	cooldown time.Duration

	pids   []int
	idle   map[int]uint64 // pid → rchar, for processes seen idle twice
	seen   map[int]uint64 // pid → rchar at the last look
	last   time.Time
	Killed []int
}

func newBatchKiller(daemon int, binary string, cooldown time.Duration) *batchKiller {
	return &batchKiller{daemon: daemon, binary: binary, cooldown: cooldown, idle: map[int]uint64{}, seen: map[int]uint64{}}
}

// refresh lists the function's processes again (they change as killed
// ones are replaced).
func (k *batchKiller) refresh() { k.pids = k.processes() }

// poll looks at the function's processes once and kills one that started
// work, unless it killed one less than cooldown ago.
func (k *batchKiller) poll() {
	for _, pid := range k.pids {
		rchar, ok := readRChar(pid)
		if !ok {
			continue
		}
		prev, watched := k.idle[pid]
		switch {
		case watched && rchar != prev && time.Since(k.last) >= k.cooldown:
			if syscall.Kill(pid, syscall.SIGKILL) == nil {
				k.Killed = append(k.Killed, pid)
				k.last = time.Now()
			}
			delete(k.idle, pid)
		case watched && rchar != prev:
			k.idle[pid] = rchar // busy during the cooldown: watch from here
		case !watched && k.seen[pid] == rchar && rchar != 0:
			k.idle[pid] = rchar
		}
		k.seen[pid] = rchar
	}
}

// processes are the daemon's children running the function's binary.
func (k *batchKiller) processes() []int {
	entries, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// "pid (comm) state ppid ...": comm may hold spaces, so cut after ')'.
		i := strings.LastIndexByte(string(stat), ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(stat[i+1:]))
		if len(f) < 2 || f[1] != strconv.Itoa(k.daemon) {
			continue
		}
		if exe, err := os.Readlink(filepath.Join("/proc", e.Name(), "exe")); err == nil && exe == k.binary {
			out = append(out, pid)
		}
	}
	return out
}

// readRChar is the bytes pid has read through read(2) and friends, sockets
// included.
func readRChar(pid int) (uint64, bool) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "io"))
	if err != nil {
		return 0, false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "rchar: "); ok {
			n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
			return n, err == nil
		}
	}
	return 0, false
}
