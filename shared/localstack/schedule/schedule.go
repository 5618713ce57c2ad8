// Package schedule fires a function on a Schedule event's rate, as an
// EventBridge rule does: the first time one period after the rule starts,
// then every period, with the scheduled event (or the rule's constant
// Input) as payload, invoked asynchronously (a failure is retried twice).
// Only rate(...) expressions are run; cron(...) is refused with a clear
// error (the local stack says so and leaves the rule idle).
//
// Local-only tooling: no Lambda imports it.
package schedule

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/zeroae/zae-limiter-go/shared/localstack/invokeapi"
)

// ErrCron is returned by ParseRate for cron expressions.
var ErrCron = errors.New("cron schedules are not run by the local stack (use rate(...), or invoke the function yourself)")

// ParseRate reads "rate(N unit)": minute(s), hour(s), day(s), as
// EventBridge spells them (1 minute, 5 minutes).
func ParseRate(expr string) (time.Duration, error) {
	e := strings.TrimSpace(expr)
	if strings.HasPrefix(e, "cron(") {
		return 0, fmt.Errorf("schedule %q: %w", expr, ErrCron)
	}
	if !strings.HasPrefix(e, "rate(") || !strings.HasSuffix(e, ")") {
		return 0, fmt.Errorf("schedule %q: want rate(N minutes|hours|days)", expr)
	}
	fields := strings.Fields(e[len("rate(") : len(e)-1])
	if len(fields) != 2 {
		return 0, fmt.Errorf("schedule %q: want rate(N unit)", expr)
	}
	n, err := strconv.Atoi(fields[0])
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("schedule %q: the rate must be a positive whole number", expr)
	}
	units := map[string]time.Duration{"minute": time.Minute, "hour": time.Hour, "day": 24 * time.Hour}
	unit := fields[1]
	singular := strings.TrimSuffix(unit, "s")
	d, ok := units[singular]
	if !ok {
		return 0, fmt.Errorf("schedule %q: unit %q: want minute(s), hour(s) or day(s)", expr, unit)
	}
	if (n == 1) != (unit == singular) {
		return 0, fmt.Errorf("schedule %q: EventBridge wants %q", expr, map[bool]string{true: "1 " + singular, false: fields[0] + " " + singular + "s"}[n == 1])
	}
	return time.Duration(n) * d, nil
}

// Options configure a Rule.
type Options struct {
	// RuleName names the rule in the event's resources.
	RuleName string
	Every    time.Duration
	// Input, when set, is the payload instead of the scheduled event.
	Input    string
	Function invokeapi.Invoker
	// FunctionName is for logs.
	FunctionName string
	// RetryDelays before each retry of a failed invocation (default 1 s, 2 s).
	RetryDelays []time.Duration
	// Now and After are the clock (default time.Now and time.After).
	Now   func() time.Time
	After func(time.Duration) <-chan time.Time
	Log   *slog.Logger
}

// Rule is one running schedule.
type Rule struct {
	o  Options
	mu sync.Mutex
	st Stats
}

// Stats tell what a rule did.
type Stats struct {
	Fired     int       `json:"fired"`
	Failed    int       `json:"failed"`
	LastFired time.Time `json:"last_fired,omitzero"`
	Next      time.Time `json:"next,omitzero"`
}

// New returns a rule.
func New(o Options) (*Rule, error) {
	if o.Every <= 0 || o.Function == nil {
		return nil, errors.New("schedule: Every and Function are required")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.After == nil {
		o.After = time.After
	}
	if o.RetryDelays == nil {
		o.RetryDelays = []time.Duration{time.Second, 2 * time.Second}
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	return &Rule{o: o}, nil
}

// Stats returns what the rule did so far.
func (r *Rule) Stats() Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.st
}

// Run fires the rule until ctx ends.
func (r *Rule) Run(ctx context.Context) {
	next := r.o.Now().Add(r.o.Every)
	for {
		r.mu.Lock()
		r.st.Next = next
		r.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-r.o.After(next.Sub(r.o.Now())):
		}
		ok := invokeapi.InvokeAsync(ctx, r.o.Function, r.o.FunctionName, r.Payload(next), r.o.RetryDelays, r.o.Log)
		r.mu.Lock()
		r.st.Fired++
		r.st.LastFired = next
		if !ok {
			r.st.Failed++
		}
		r.mu.Unlock()
		next = next.Add(r.o.Every)
		for !next.After(r.o.Now()) { // a run longer than the period skips missed times, as a rule does
			next = next.Add(r.o.Every)
		}
	}
}

// Payload is what the rule sends for the time at.
func (r *Rule) Payload(at time.Time) []byte {
	if r.o.Input != "" {
		return []byte(r.o.Input)
	}
	var id [16]byte
	_, _ = rand.Read(id[:])
	h := hex.EncodeToString(id[:])
	b, _ := json.Marshal(map[string]any{
		"version":     "0",
		"id":          h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:],
		"detail-type": "Scheduled Event",
		"source":      "aws.events",
		"account":     "123456789012",
		"time":        at.UTC().Format(time.RFC3339),
		"region":      "us-east-1",
		"resources":   []string{"arn:aws:events:us-east-1:123456789012:rule/" + r.o.RuleName},
		"detail":      map[string]any{},
	})
	return b
}
