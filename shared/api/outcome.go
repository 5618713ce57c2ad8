package api

import (
	"context"
	"errors"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/zeroae/zae-limiter-go/shared/dynamo"
	"github.com/zeroae/zae-limiter-go/shared/limiter"
	"github.com/zeroae/zae-limiter-go/shared/limits"
)

// outcome is what is known of a write that was attempted.
type outcome int

const (
	written    outcome = iota // it took effect
	notWritten                // it provably did not (a failed condition, throttling, a bad request)
	unknown                   // it may have (a timeout, a lost answer, a 5xx)
)

// outcomeOf classifies the error of one write (nil: written).
func outcomeOf(err error) outcome {
	switch {
	case err == nil:
		return written
	case errors.Is(err, limiter.ErrOutcomeUnknown):
		return unknown
	case errors.Is(err, limiter.ErrContention), errors.Is(err, limits.ErrInvalid),
		errors.Is(err, limits.ErrLeaseClosed), dynamo.NotApplied(err):
		return notWritten
	}
	return unknown
}

// counted splits signed millitoken deltas of one write by outcome into
// those booked as done and those booked as not done. An unknown outcome is
// booked the way that lets the lease claim less: a refund as done, a
// charge as not done. Tokens may then be lost, never minted.
func counted(d map[string]int64, o outcome) (done, not map[string]int64) {
	done, not = map[string]int64{}, map[string]int64{}
	for name, v := range d {
		switch {
		case v == 0:
		case o == written, o == unknown && v < 0:
			done[name] = v
		default:
			not[name] = v
		}
	}
	return done, not
}

// parallel runs fn(i) for every i < n at once and returns their errors.
func parallel(n int, fn func(i int) error) []error {
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = fn(i)
		}()
	}
	wg.Wait()
	return errs
}

func firstError(errs []error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// sendOnce is the option of every lease-state write: the SDK retries only
// errors that prove the attempt was not applied (throttling and the like),
// never a timeout, a lost answer or a 5xx, so an ADD is never applied twice.
func sendOnce(o *dynamodb.Options) {
	if o.Retryer != nil {
		o.Retryer = knownRetryer{o.Retryer}
	}
}

// knownRetryer retries what its retryer would, among errors proving the
// attempt was not applied.
type knownRetryer struct{ aws.Retryer }

func (r knownRetryer) IsErrorRetryable(err error) bool {
	return dynamo.NotApplied(err) && r.Retryer.IsErrorRetryable(err)
}

func (r knownRetryer) GetAttemptToken(ctx context.Context) (func(error) error, error) {
	if v2, ok := r.Retryer.(aws.RetryerV2); ok {
		return v2.GetAttemptToken(ctx)
	}
	return r.GetInitialToken(), nil
}
