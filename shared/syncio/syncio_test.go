package syncio_test

import (
	"bytes"
	"strings"
	"sync"
	"testing"

	"github.com/zeroae/zae-limiter-go/shared/syncio"
)

// write has 8 goroutines write 100 whole lines each to w.
func write(w interface{ Write([]byte) (int, error) }) {
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			line := []byte(strings.Repeat(string(rune('a'+g)), 64) + "\n")
			for range 100 {
				if n, err := w.Write(line); err != nil || n != len(line) {
					panic("short write")
				}
			}
		}()
	}
	wg.Wait()
}

// checkLines requires 800 lines of 64 equal letters each: no write was
// interleaved with another.
func checkLines(t *testing.T, s string) {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(s, "\n"), "\n")
	if len(lines) != 800 {
		t.Fatalf("%d lines, want 800", len(lines))
	}
	for i, l := range lines {
		if len(l) != 64 || strings.Count(l, l[:1]) != 64 {
			t.Fatalf("line %d interleaved: %q", i, l)
		}
	}
}

func TestWriter(t *testing.T) {
	var out bytes.Buffer
	write(syncio.NewWriter(&out))
	checkLines(t, out.String())
}

func TestBuffer(t *testing.T) {
	var b syncio.Buffer
	if b.String() != "" {
		t.Fatalf("zero Buffer holds %q", b.String())
	}
	done := make(chan struct{})
	go func() { // reads while the writers write
		defer close(done)
		for range 100 {
			_ = b.String()
		}
	}()
	write(&b)
	<-done
	checkLines(t, b.String())
}
