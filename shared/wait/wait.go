// Package wait has the one wait every retry loop of the project makes: a
// pause that ends early, with the context's error, when the context does.
package wait

import (
	"context"
	"time"
)

// For waits d, or until ctx ends (then it returns ctx.Err()).
func For(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
