package schedule

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zeroae/zae-limiter-go/shared/lambdarun"
)

func TestParseRate(t *testing.T) {
	for expr, want := range map[string]time.Duration{
		"rate(1 minute)": time.Minute, "rate(5 minutes)": 5 * time.Minute, "rate(1 hour)": time.Hour,
		"rate(12 hours)": 12 * time.Hour, "rate(1 day)": 24 * time.Hour, " rate(2 days) ": 48 * time.Hour,
	} {
		got, err := ParseRate(expr)
		require.NoError(t, err, expr)
		assert.Equal(t, want, got, expr)
	}
	for expr, msg := range map[string]string{
		"cron(0 12 * * ? *)": "cron schedules", "rate(5 minute)": `wants "5 minutes"`, "rate(1 minutes)": `wants "1 minute"`,
		"rate(0 minutes)": "positive", "rate(5 weeks)": `unit "weeks"`, "every 5 minutes": "want rate(",
	} {
		_, err := ParseRate(expr)
		assert.ErrorContains(t, err, msg, expr)
	}
	_, err := ParseRate("cron(0 12 * * ? *)")
	assert.ErrorIs(t, err, ErrCron)
}

// fakeClock hands the rule a timer the test fires.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	waits   []time.Duration
	fire    chan time.Time
	waiting chan struct{}
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	c.waits = append(c.waits, d)
	c.mu.Unlock()
	c.waiting <- struct{}{}
	return c.fire
}

// advance moves the clock once the rule waits, and wakes it.
func (c *fakeClock) advance(d time.Duration) {
	<-c.waiting
	c.mu.Lock()
	c.now = c.now.Add(d)
	t := c.now
	c.mu.Unlock()
	c.fire <- t
}

type fn struct {
	mu       sync.Mutex
	payloads [][]byte
	fail     int
	called   chan struct{}
}

func (f *fn) Invoke(_ context.Context, p []byte) (lambdarun.Result, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.payloads = append(f.payloads, p)
	defer func() { f.called <- struct{}{} }()
	if f.fail > 0 {
		f.fail--
		return lambdarun.Result{Err: &lambdarun.FunctionError{Type: "Error", Message: "boom"}}, nil
	}
	return lambdarun.Result{Payload: []byte("null")}, nil
}

func TestRuleFiresEveryPeriodWithTheScheduledEvent(t *testing.T) {
	start := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	clock := &fakeClock{now: start, fire: make(chan time.Time), waiting: make(chan struct{}, 1)}
	f := &fn{called: make(chan struct{}, 10), fail: 1}
	r, err := New(Options{RuleName: "dev-ArchiverSchedule", Every: 5 * time.Minute, Function: f, FunctionName: "archiver",
		Now: clock.Now, After: clock.After, RetryDelays: []time.Duration{0, 0}})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()

	clock.advance(5 * time.Minute)
	<-f.called // failed
	<-f.called // retried
	clock.advance(5 * time.Minute)
	<-f.called
	<-clock.waiting // the third wait
	cancel()
	<-done

	assert.Equal(t, []time.Duration{5 * time.Minute, 5 * time.Minute, 5 * time.Minute}, clock.waits)
	require.Len(t, f.payloads, 3)
	var ev events.EventBridgeEvent
	require.NoError(t, json.Unmarshal(f.payloads[0], &ev))
	assert.Equal(t, "Scheduled Event", ev.DetailType)
	assert.Equal(t, "aws.events", ev.Source)
	assert.Equal(t, start.Add(5*time.Minute), ev.Time)
	assert.Equal(t, []string{"arn:aws:events:us-east-1:123456789012:rule/dev-ArchiverSchedule"}, ev.Resources)
	assert.Equal(t, f.payloads[0], f.payloads[1], "a retry sends the same event")
	require.NoError(t, json.Unmarshal(f.payloads[2], &ev))
	assert.Equal(t, start.Add(10*time.Minute), ev.Time)
	assert.Equal(t, Stats{Fired: 2, LastFired: start.Add(10 * time.Minute), Next: start.Add(15 * time.Minute)}, r.Stats())
}

func TestRuleInput(t *testing.T) {
	r, err := New(Options{Every: time.Minute, Input: `{"older_than":"0s"}`, Function: &fn{}})
	require.NoError(t, err)
	assert.JSONEq(t, `{"older_than":"0s"}`, string(r.Payload(time.Now())))
	_, err = New(Options{Every: 0, Function: &fn{}})
	assert.True(t, errors.Is(err, err))
	assert.Error(t, err)
}
