package clocktest_test

import (
	"sync"
	"testing"
	"time"

	"github.com/zeroae/zae-limiter-go/shared/clocktest"
)

func TestClock(t *testing.T) {
	t0 := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	c := clocktest.New(t0)
	if got := c.Now(); !got.Equal(t0) {
		t.Fatalf("Now() = %v, want %v", got, t0)
	}
	if got := c.Now(); !got.Equal(t0) {
		t.Fatalf("the clock moved by itself: %v", got)
	}
	c.Advance(1500 * time.Millisecond)
	if got, want := c.Now(), t0.Add(1500*time.Millisecond); !got.Equal(want) {
		t.Fatalf("after Advance: %v, want %v", got, want)
	}
	c.Advance(-time.Hour)
	if got, want := c.Now(), t0.Add(1500*time.Millisecond-time.Hour); !got.Equal(want) {
		t.Fatalf("after Advance(-1h): %v, want %v", got, want)
	}
	t1 := time.Date(2030, 1, 2, 3, 4, 5, 6, time.UTC)
	c.Set(t1)
	if got := c.Now(); !got.Equal(t1) {
		t.Fatalf("after Set: %v, want %v", got, t1)
	}
}

func TestClock_concurrent(t *testing.T) {
	t0 := time.Unix(0, 0).UTC()
	c := clocktest.New(t0)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				c.Advance(time.Second)
				_ = c.Now()
			}
		}()
	}
	wg.Wait()
	if got, want := c.Now(), t0.Add(800*time.Second); !got.Equal(want) {
		t.Fatalf("Now() = %v, want %v", got, want)
	}
}
