package upkeep

import (
	"context"

	"github.com/zeroae/zae-limiter-go/shared/limiter"
	"github.com/zeroae/zae-limiter-go/shared/shard"
)

// Engine is the Limiter upkeep works through: the engine's Grow, and its
// Shrink with the transactions it makes beyond the acquire path's calls.
type Engine struct {
	Lim *limiter.Limiter
	TX  limiter.Transactor
}

// Grow splits bucket b ahead of its writers (limiter.Limiter.Grow).
func (e Engine) Grow(ctx context.Context, b shard.ID, n int) (int, error) {
	return e.Lim.Grow(ctx, b, n)
}

// Shrink merges bucket b back (limiter.Limiter.Shrink).
func (e Engine) Shrink(ctx context.Context, b shard.ID) (int, error) {
	return e.Lim.Shrink(ctx, e.TX, b)
}
