package upkeep

import (
	"context"
	"time"

	"github.com/zeroae/zae-limiter-go/shared/limiter"
	"github.com/zeroae/zae-limiter-go/shared/shard"
)

// DB is every DynamoDB call the refill function makes: the engine's reads
// and conditional writes (limiter.DynamoDB) and the merge transactions.
type DB interface {
	limiter.DynamoDB
	limiter.Transactor
}

// Calls are the IAM actions of Engine's DynamoDB calls (the function's
// policy): a bucket's shards read in one BatchGetItem, a grow's consistent
// GetItem of each shard, splits as UpdateItem and PutItem, merges as a
// TransactWriteItems of UpdateItem and ConditionCheck (a transaction is
// authorized item by item, by those actions).
var Calls = []string{"dynamodb:BatchGetItem", "dynamodb:ConditionCheckItem", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"}

// Engine is the Limiter upkeep works through: the engine's Grow, and its
// Shrink with the transactions it makes beyond the acquire path's calls.
type Engine struct {
	Lim *limiter.Limiter
	TX  limiter.Transactor
}

// NewEngine builds the engine of a stream reader over every namespace of
// table: a limiter that never acquires (a bucket's id carries its
// namespace, and neither Grow nor Shrink reads limits), so it needs no
// config store. now is its clock (nil: time.Now).
func NewEngine(db DB, table string, now func() time.Time) Engine {
	return Engine{Lim: limiter.New(db, nil, limiter.Options{Table: table, Now: now}), TX: db}
}

// Shards reads bucket b's shards (limiter.Limiter.Shards).
func (e Engine) Shards(ctx context.Context, b shard.ID) ([]*shard.State, error) {
	return e.Lim.Shards(ctx, b)
}

// Grow splits bucket b ahead of its writers (limiter.Limiter.Grow).
func (e Engine) Grow(ctx context.Context, b shard.ID, n int) (int, error) {
	return e.Lim.Grow(ctx, b, n)
}

// Shrink merges bucket b back (limiter.Limiter.Shrink).
func (e Engine) Shrink(ctx context.Context, b shard.ID) (int, error) {
	return e.Lim.Shrink(ctx, e.TX, b)
}
