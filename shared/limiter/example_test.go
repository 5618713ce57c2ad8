package limiter_test

import (
	"context"
	"errors"
	"time"

	"github.com/zeroae/zae-limiter-go/shared/awsenv"
	"github.com/zeroae/zae-limiter-go/shared/limiter"
	"github.com/zeroae/zae-limiter-go/shared/limits"
	"github.com/zeroae/zae-limiter-go/shared/store"
)

// callModel stands in for the work the tokens pay for.
func callModel(context.Context) (tokensUsed int64, err error) { return 1500, nil }

// The README's in-process example: acquire an estimate, run the work,
// adjust to the real cost; an error rolls everything back.
func ExampleLimiter_Do() {
	run := func(ctx context.Context) error {
		cfg, err := awsenv.Load(ctx, awsenv.Options{})
		if err != nil {
			return err
		}
		db := awsenv.NewDynamoDB(cfg)
		st := store.New(db, store.Options{Table: "limiter"})
		ns, err := st.Namespace(ctx, "default")
		if err != nil {
			return err
		}
		lim := limiter.New(db, ns, limiter.Options{Table: "limiter", Namespace: ns.ID})

		err = lim.Do(ctx, limiter.Request{EntityID: "key-1", Resource: "gpt-4",
			Consume: map[string]int64{"rpm": 1, "tpm": 2000}}, // an estimate
			func(ctx context.Context, lease *limiter.Lease) error {
				used, err := callModel(ctx)
				if err != nil {
					return err // rolled back: the tokens return to the buckets
				}
				return lease.Adjust(ctx, map[string]int64{"tpm": used - 2000}) // may go into debt
			})
		var denied *limits.ExceededError
		if errors.As(err, &denied) {
			time.Sleep(denied.RetryAfter()) // every limit's status is in denied.Statuses
		}
		return err
	}
	_ = run // needs a table: see `zae-limiter local up`
}
