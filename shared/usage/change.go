package usage

import (
	"errors"
	"fmt"
	"time"

	"github.com/zeroae/zae-limiter-go/shared/schema"
	"github.com/zeroae/zae-limiter-go/shared/shard"
	"github.com/zeroae/zae-limiter-go/shared/stream"
)

// Change is the consumption one stream record shows on one bucket shard.
type Change struct {
	Shard shard.ID
	// Seq, Position and Stream identify the record (see stream.Record).
	Seq, Position, Stream string
	// Time is when the record was written: it picks the windows.
	Time time.Time
	// Tokens are whole tokens per limit, zero ones left out: for each limit
	// floor(new TC / 1000) - floor(old TC / 1000) (see Tokens).
	Tokens map[string]int64
}

// ErrNoTime: a bucket record without ApproximateCreationDateTime cannot be
// put in a window. (Taking the time of processing instead would put a
// replayed record in another window than the first delivery did.)
var ErrNoTime = errors.New("record has no ApproximateCreationDateTime: its window is unknown")

// ChangeOf returns the consumption change a record shows. ok is false for
// a record that shows none: an item other than a bucket shard, a deletion
// (a TTL expiry or a delete forgets a bucket, it consumes nothing), or a
// write that left every limit's net consumed counter TC as it was (a split,
// a parameter sync, a shard count bump, a twin or recreated shard, whose TC
// starts at 0). An error means a bucket shard record that cannot be read.
//
// The counter TC of a limit is the net consumption of the shard item since
// its creation, in millitokens: every take, adjust, refund and rollback
// moves it, refill never does. So a record's consumption is new TC minus old
// TC; an INSERT counts from 0 (the write that created shard 0 carries the
// first take). An item replaced by a PutItem (its generation changed) is a
// new item: its TC counts from 0 too, never as a refund of the old one's.
func ChangeOf(r stream.Record) (Change, bool, error) {
	k := r.Key()
	if k.SK != schema.SKState {
		return Change{}, false, nil
	}
	if r.Kind != stream.Insert && r.Kind != stream.Modify {
		return Change{}, false, nil
	}
	id, err := shard.ParseID(k.PK)
	if err != nil {
		return Change{}, false, fmt.Errorf("record %s: %w", r.Seq, err)
	}
	cur, err := shard.Decode(r.New)
	if err != nil {
		return Change{}, false, fmt.Errorf("record %s: new image: %w", r.Seq, err)
	}
	prev := &shard.State{}
	if r.Kind == stream.Modify {
		if prev, err = shard.Decode(r.Old); err != nil {
			return Change{}, false, fmt.Errorf("record %s: old image: %w", r.Seq, err)
		}
		if prev.Gen != 0 && cur.Gen != 0 && prev.Gen != cur.Gen {
			prev = &shard.State{}
		}
	}
	c := Change{Shard: id, Seq: r.Seq, Position: r.Position, Stream: r.Stream, Time: r.Time, Tokens: map[string]int64{}}
	changed := false
	for name, l := range cur.Limits {
		if name == shard.Budget {
			continue
		}
		old := prev.Limits[name].TC
		if l.TC == old {
			continue
		}
		changed = true
		if d := Tokens(l.TC) - Tokens(old); d != 0 {
			c.Tokens[name] = d
		}
	}
	if !changed {
		return Change{}, false, nil
	}
	if r.Time.IsZero() {
		return Change{}, false, fmt.Errorf("record %s: %w", r.Seq, ErrNoTime)
	}
	return c, true, nil
}

// Tokens converts a cumulative counter in millitokens to whole tokens,
// rounding down (toward minus infinity). A record counts the difference of
// the counter's whole tokens after and before it; these differences add up
// along a shard's records to the whole tokens of its counter, so no
// remainder is ever lost or counted twice however many records a total
// spans (a window's total is off by less than one token per shard at each
// of its two ends, and exact whenever amounts are whole tokens, as every
// amount the API takes is).
func Tokens(milli int64) int64 {
	q := milli / shard.Milli
	if milli%shard.Milli < 0 {
		q--
	}
	return q
}
