package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/zeroae/zae-limiter-go/client"
	"github.com/zeroae/zae-limiter-go/shared/wire"
)

// The examples talk to newStandIn, a small in-memory stand-in for
// `zae-limiter serve` (see standin_test.go); point New at the Function URL or
// at `zae-limiter serve --addr ...` instead.
var exampleLimits = []wire.Limit{
	{Name: "rpm", Capacity: 10, RefillAmount: 10, RefillPeriodSeconds: 60},
	{Name: "tpm", Capacity: 1000, RefillAmount: 1000, RefillPeriodSeconds: 60},
}

// Acquire before the call, adjust to the real usage once it is known, then
// commit.
func Example() {
	srv := newStandIn(exampleLimits...)
	defer srv.Close()
	ctx := context.Background()

	c, err := client.New(srv.URL) // + client.WithDefaultCredentials() for an AWS_IAM Function URL
	if err != nil {
		log.Fatal(err)
	}
	lease, err := c.Acquire(ctx, client.Request{
		EntityID: "user-1",
		Resource: "gpt-4",
		Consume:  map[string]int64{"rpm": 1, "tpm": 500}, // the estimate
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("acquired:", lease.Consumed())

	// The call used 700 tokens, not 500: take 200 more (this may go into debt).
	if err := lease.Adjust(ctx, map[string]int64{"tpm": 200}); err != nil {
		log.Fatal(err)
	}
	fmt.Println("adjusted:", lease.Consumed())

	if err := lease.Commit(ctx); err != nil {
		log.Fatal(err)
	}
	// A lease closes once; this is answered without a request.
	fmt.Println("second commit closed:", errors.Is(lease.Commit(ctx), client.ErrLeaseClosed))

	limits, err := c.Available(ctx, "user-1", "gpt-4")
	if err != nil {
		log.Fatal(err)
	}
	for _, l := range limits {
		fmt.Printf("%s: %d of %d left\n", l.Name, l.Available, l.Capacity)
	}
	// Output:
	// acquired: map[rpm:1 tpm:500]
	// adjusted: map[rpm:1 tpm:700]
	// second commit closed: true
	// rpm: 9 of 10 left
	// tpm: 300 of 1000 left
}

// Do commits when the function succeeds and rolls back when it fails (or
// panics), so a failed call costs nothing.
func ExampleClient_Do() {
	srv := newStandIn(exampleLimits...)
	defer srv.Close()
	ctx := context.Background()
	c, err := client.New(srv.URL)
	if err != nil {
		log.Fatal(err)
	}
	req := client.Request{EntityID: "user-1", Resource: "gpt-4", Consume: map[string]int64{"rpm": 1, "tpm": 100}}

	err = c.Do(ctx, req, func(ctx context.Context, l *client.Lease) error {
		return l.Release(ctx, map[string]int64{"tpm": 40}) // used only 60
	})
	fmt.Println("first call:", err)

	errUpstream := errors.New("upstream failed")
	err = c.Do(ctx, req, func(ctx context.Context, l *client.Lease) error {
		return errUpstream // rolled back: nothing is consumed
	})
	fmt.Println("second call:", err)

	limits, err := c.Available(ctx, "user-1", "gpt-4")
	if err != nil {
		log.Fatal(err)
	}
	for _, l := range limits {
		fmt.Printf("%s: %d left\n", l.Name, l.Available)
	}
	// Output:
	// first call: <nil>
	// second call: upstream failed
	// rpm: 9 left
	// tpm: 940 left
}

// A denial is a *RateLimitedError: errors.As gives the violated limits,
// when to retry and whether retrying can help at all (1500 tokens never fit
// a limit of capacity 1000).
func ExampleRateLimitedError() {
	srv := newStandIn(exampleLimits...)
	defer srv.Close()
	ctx := context.Background()
	c, err := client.New(srv.URL)
	if err != nil {
		log.Fatal(err)
	}

	_, err = c.Acquire(ctx, client.Request{EntityID: "user-1", Resource: "gpt-4", Consume: map[string]int64{"tpm": 1500}})
	var rl *client.RateLimitedError
	if errors.As(err, &rl) {
		fmt.Println("retry after:", rl.RetryAfter, "retryable:", rl.Retryable())
		for _, v := range rl.Violations {
			fmt.Printf("%s: requested %d, available %d\n", v.Limit, v.Requested, v.Available)
		}
	}
	fmt.Println("is ErrRateLimited:", errors.Is(err, client.ErrRateLimited))
	// Output:
	// retry after: 30s retryable: false
	// tpm: requested 1500, available 1000
	// is ErrRateLimited: true
}
