package upkeep

import (
	"fmt"

	"github.com/zeroae/zae-limiter-go/shared/schema"
	"github.com/zeroae/zae-limiter-go/shared/shard"
	"github.com/zeroae/zae-limiter-go/shared/stream"
)

// ChangeOf reads a stream record as a Change of a bucket shard. ok is false
// for a record of any other item (the mapping's filter lets only bucket
// shards through; a record of another item is ignored, not failed). An
// error means a bucket shard record whose key or images cannot be read.
//
// Every kind counts: an insert or a modify shows a shard's write budget
// (growing), a removal or a TTL expiry shows a shard going away (shrinking).
func ChangeOf(r stream.Record) (Change, bool, error) {
	k := r.Key()
	if k.SK != schema.SKState {
		return Change{}, false, nil
	}
	id, err := shard.ParseID(k.PK)
	if err != nil {
		return Change{}, false, fmt.Errorf("record %s: %w", r.Seq, err)
	}
	c := Change{ID: id, Seq: r.Seq}
	if r.Old != nil {
		if c.Old, err = shard.Decode(r.Old); err != nil {
			return Change{}, false, fmt.Errorf("record %s: old image: %w", r.Seq, err)
		}
	}
	if r.New != nil {
		if c.New, err = shard.Decode(r.New); err != nil {
			return Change{}, false, fmt.Errorf("record %s: new image: %w", r.Seq, err)
		}
	}
	return c, true, nil
}
