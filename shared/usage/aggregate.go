package usage

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"golang.org/x/sync/errgroup"

	"github.com/zeroae/zae-limiter-go/shared/dynamo"
	"github.com/zeroae/zae-limiter-go/shared/schema"
)

// DynamoDB lists exactly the calls the aggregator makes (one conditional
// UpdateItem per snapshot write, on the table only). *dynamodb.Client
// satisfies it; the aggregator function's role grants exactly these.
type DynamoDB interface {
	UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
}

// DefaultConcurrency is Aggregator.Concurrency's default.
const DefaultConcurrency = 8

// maxAttempts bounds the conditional attempts of one write: a write loses
// its condition only to a delivery of the same records, so the second
// attempt (narrowed to what the snapshot lacks) normally settles it.
const maxAttempts = 4

// Aggregator folds bucket consumption changes into usage snapshots.
type Aggregator struct {
	DB    DynamoDB
	Table string
	// Windows are the snapshot windows to write (nil: DefaultWindows).
	Windows []Window
	// Retention is how long a snapshot is kept after its window ends (its
	// ttl); 0 keeps it forever.
	Retention time.Duration
	// Concurrency bounds the writes in flight (0: DefaultConcurrency).
	Concurrency int
}

// Outcome is what applying one batch of changes did.
type Outcome struct {
	// Written counts snapshot writes that folded changes in; Replayed those
	// the snapshot already held entirely (a redelivery); Failed those that
	// did not complete.
	Written, Replayed, Failed int
	// FailedSeqs are the records of the failed writes, with Errors their
	// causes (one per failed write).
	FailedSeqs []string
	Errors     []error
}

// Apply writes the snapshots of changes, every write conditioned on the
// positions of its sources (see Write.Update), so that a batch applied any
// number of times, whole, in parts or in overlapping parts, counts each
// record once. Writes run concurrently (at most Concurrency); a write that
// fails reports its records in FailedSeqs, which the caller must report as
// batch item failures: they are retried, and what they already did is not
// done twice.
func (a *Aggregator) Apply(ctx context.Context, changes []Change) Outcome {
	windows := a.Windows
	if len(windows) == 0 {
		windows = DefaultWindows
	}
	writes := Plan(changes, windows)
	var (
		mu  sync.Mutex
		out Outcome
	)
	limit := a.Concurrency
	if limit <= 0 {
		limit = DefaultConcurrency
	}
	var g errgroup.Group
	g.SetLimit(limit)
	for _, w := range writes {
		g.Go(func() error {
			// A failed write does not cancel the others: each reports its
			// own records.
			replayed, err := a.write(ctx, w)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil:
				out.Failed++
				out.FailedSeqs = append(out.FailedSeqs, w.Seqs()...)
				out.Errors = append(out.Errors, err)
			case replayed:
				out.Replayed++
			default:
				out.Written++
			}
			return nil
		})
	}
	_ = g.Wait()
	return out
}

// write sends one snapshot write; when its condition fails it narrows the
// write to what the snapshot (returned with the failure) lacks and sends
// that, until nothing is left. replayed reports that the snapshot already
// held every change (nothing was written).
func (a *Aggregator) write(ctx context.Context, w Write) (replayed bool, err error) {
	for range maxAttempts {
		in := w.Update(a.Retention).Input(a.Table, keyItem(w.Snapshot))
		in.ReturnValues = types.ReturnValueNone
		_, err := a.DB.UpdateItem(ctx, in)
		if err == nil {
			return false, nil
		}
		stored, ok := dynamo.CondFailedItem(err)
		if !ok {
			return false, fmt.Errorf("snapshot %s %s: %w", w.Snapshot.Key().PK, w.Snapshot.Key().SK, err)
		}
		w = w.Pending(stored)
		if len(w.Sources) == 0 {
			return true, nil
		}
	}
	return false, fmt.Errorf("snapshot %s %s: %w", w.Snapshot.Key().PK, w.Snapshot.Key().SK, errBusy)
}

// errBusy: the snapshot's positions kept moving under the write (another
// delivery of the same records was writing it at the same time).
var errBusy = errors.New("snapshot kept changing under every attempt")

func keyItem(id SnapshotID) dynamo.Item {
	k := id.Key()
	return dynamo.Item{schema.PK: dynamo.S(k.PK), schema.SK: dynamo.S(k.SK)}
}
