package archive

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/zeroae/zae-limiter-go/shared/dynamo"
	"github.com/zeroae/zae-limiter-go/shared/schema"
)

// The checkpoint item (schema.ArchiverKey) and its attributes. This file is
// its only codec.
const (
	attrDay           = "day"            // first day the next run walks (YYYY-MM-DD)
	attrOwner         = "owner"          // run id holding the lease
	attrLeaseUntil    = "lease_until"    // lease expiry, epoch ms
	attrPendingKey    = "pending_key"    // object being written (write-ahead)
	attrPendingSum    = "pending_sha256" // its SHA-256 (hex)
	attrPendingCount  = "pending_count"  // its number of events
	attrArchivedTotal = "archived_total" // events archived since the table began
	attrLastRun       = "last_run"       // when the last run finished (RFC 3339)
)

// ErrBusy matches a *BusyError.
var ErrBusy = errors.New("archive: another archival run holds the lease")

// ErrLeaseLost is returned by a run whose lease another run took over (it
// ran past the lease without renewing it); it stops before writing again.
var ErrLeaseLost = errors.New("archive: the run lost its lease to another run")

// BusyError reports that another run holds the archiver's lease.
type BusyError struct {
	Owner string
	Until time.Time
}

func (e *BusyError) Error() string {
	return fmt.Sprintf("another archival run (%s) holds the lease until %s", e.Owner, e.Until.UTC().Format(time.RFC3339))
}

func (e *BusyError) Is(target error) bool { return target == ErrBusy }

// pending is the write-ahead record of one object.
type pending struct {
	Key   string
	Sum   string
	Count int
}

// checkpoint is the item's state as a run sees it.
type checkpoint struct {
	Day     string
	Pending *pending
}

func checkpointKey() dynamo.Item {
	k := schema.ArchiverKey()
	return dynamo.Item{schema.PK: dynamo.S(k.PK), schema.SK: dynamo.S(k.SK)}
}

func decodeCheckpoint(it dynamo.Item) checkpoint {
	cp := checkpoint{Day: dynamo.GetS(it, attrDay)}
	if key := dynamo.GetS(it, attrPendingKey); key != "" {
		n, _ := dynamo.GetN(it, attrPendingCount)
		cp.Pending = &pending{Key: key, Sum: dynamo.GetS(it, attrPendingSum), Count: int(n)}
	}
	return cp
}

// lease is one run's hold on the checkpoint.
type lease struct {
	db       DynamoDB
	table    string
	owner    string
	duration time.Duration
	now      func() time.Time
	renewed  time.Time // when the lease was last extended
}

// acquire takes the lease when it is free or expired and returns the
// checkpoint.
func (l *lease) acquire(ctx context.Context) (checkpoint, error) {
	now := l.now()
	var u dynamo.Update
	l.extend(&u, now)
	k := schema.ArchiverKey()
	u.Set(schema.GSI4PK, schema.NamespaceGSI4PK(schema.TableNS)).Set(schema.GSI4SK, schema.GSI4SKFor(k))
	u.If("attribute_not_exists($) OR $ < ?", attrLeaseUntil, attrLeaseUntil, now.UnixMilli())
	out, err := l.db.UpdateItem(ctx, u.Input(l.table, checkpointKey()))
	if err != nil {
		if it, ok := dynamo.CondFailedItem(err); ok {
			until, _ := dynamo.GetN(it, attrLeaseUntil)
			return checkpoint{}, &BusyError{Owner: dynamo.GetS(it, attrOwner), Until: time.UnixMilli(until)}
		}
		return checkpoint{}, fmt.Errorf("take the archiver lease: %w", err)
	}
	l.renewed = now
	return decodeCheckpoint(out.Attributes), nil
}

// extend sets the owner and a fresh expiry on u.
func (l *lease) extend(u *dynamo.Update, now time.Time) {
	u.Set(attrOwner, l.owner).Set(attrLeaseUntil, now.Add(l.duration).UnixMilli())
}

// write applies u to the checkpoint while this run holds the lease, and
// extends the lease.
func (l *lease) write(ctx context.Context, what string, u *dynamo.Update) error {
	now := l.now()
	l.extend(u, now)
	u.If("$ = ?", attrOwner, l.owner)
	if _, err := l.db.UpdateItem(ctx, u.Input(l.table, checkpointKey())); err != nil {
		if dynamo.IsCondFailed(err) {
			return fmt.Errorf("%s: %w", what, ErrLeaseLost)
		}
		return fmt.Errorf("%s: %w", what, err)
	}
	l.renewed = now
	return nil
}

// renew extends the lease when a third of it has passed since the last
// write, so long walks without objects keep it.
func (l *lease) renew(ctx context.Context) error {
	if l.now().Sub(l.renewed) < l.duration/3 {
		return nil
	}
	return l.write(ctx, "renew the archiver lease", &dynamo.Update{})
}

// setPending records an object before it is written.
func (l *lease) setPending(ctx context.Context, o object) error {
	var u dynamo.Update
	u.Set(attrPendingKey, o.key).Set(attrPendingSum, o.sum).Set(attrPendingCount, len(o.events))
	return l.write(ctx, "record pending object "+o.key, &u)
}

// clearPending records that the pending object's events left DynamoDB.
func (l *lease) clearPending(ctx context.Context, p pending) error {
	var u dynamo.Update
	u.Remove(attrPendingKey).Remove(attrPendingSum).Remove(attrPendingCount)
	u.Add(attrArchivedTotal, p.Count)
	u.If("$ = ?", attrPendingKey, p.Key)
	return l.write(ctx, "clear pending object "+p.Key, &u)
}

// release ends the run: it stores the next run's first day (when day is
// not empty) and frees the lease.
func (l *lease) release(ctx context.Context, day string) error {
	var u dynamo.Update
	if day != "" {
		u.Set(attrDay, day)
	}
	u.Set(attrLastRun, l.now().UTC().Format(time.RFC3339))
	u.If("$ = ?", attrOwner, l.owner)
	u.Remove(attrOwner).Remove(attrLeaseUntil)
	if _, err := l.db.UpdateItem(ctx, u.Input(l.table, checkpointKey())); err != nil {
		if dynamo.IsCondFailed(err) {
			return fmt.Errorf("release the archiver lease: %w", ErrLeaseLost)
		}
		return fmt.Errorf("release the archiver lease: %w", err)
	}
	return nil
}
