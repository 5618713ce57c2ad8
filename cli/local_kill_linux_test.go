package cli

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

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

	idle   map[int]uint64 // pid → rchar, for processes seen idle twice
	seen   map[int]uint64 // pid → rchar at the last look
	last   time.Time
	Killed []int
}

func newBatchKiller(daemon int, binary string, cooldown time.Duration) *batchKiller {
	return &batchKiller{daemon: daemon, binary: binary, cooldown: cooldown, idle: map[int]uint64{}, seen: map[int]uint64{}}
}

// poll looks at the function's processes once and kills one that started
// work, unless it killed one less than cooldown ago.
func (k *batchKiller) poll() {
	for _, pid := range k.processes() {
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
