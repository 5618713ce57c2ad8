// Package clocktest gives tests a settable clock: pass its Now where code
// takes a func() time.Time, and move time with Advance or Set. It is safe for
// concurrent use.
package clocktest

import (
	"sync"
	"time"
)

// Clock is a settable clock. Its time moves only when Advance or Set is
// called.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// New returns a clock standing at t0.
func New(t0 time.Time) *Clock { return &Clock{t: t0} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock by d (backwards when d is negative).
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// Set puts the clock at t.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}
