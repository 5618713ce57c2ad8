// Package limiter is the acquire engine: it admits or denies consumption
// against the token buckets of an entity (and its parent, when the entity
// cascades), hands out leases whose later adjustments and rollback are
// written at once, and spreads hot buckets over shards.
//
// # One request per acquire
//
// A bucket shard is one DynamoDB item holding every limit of an (entity,
// resource) pair in GCRA form (package bucket): per limit a virtual time w in
// millitokens. An acquire is a single conditional UpdateItem with no read
// before it:
//
//   - busy limit (w ahead of the limit's clock): ADD n to w, on condition
//     that w is still ahead and w+n stays within capacity of the clock. ADDs
//     commute, so any number of concurrent writers are admitted exactly up to
//     the capacity, without retries;
//   - idle limit (w at or behind the clock): SET w to the booking instant +
//     n, on condition that w is still at or behind it. Booking instants sit on
//     a grid (Options.Tick) so that concurrent writers of one grid step share
//     it and all but the first take the busy form.
//
// The form is predicted from the last state this process saw of the item
// (cached from the ALL_NEW of its previous write). A wrong prediction, a
// denial and every other surprise come back as the item's current state
// (ReturnValuesOnConditionCheckFailure ALL_OLD), so the next attempt is
// exact and a denial costs one request. Neither form ever credits refill
// that has not accrued: the busy form is exact, the idle form books at the
// grid instant or later, so the limiter never admits more than the limits
// allow, whatever the contention.
//
// Writes are also conditioned on the item's parameter fingerprint, so a
// change of limits at any level reaches existing buckets on their next
// acquire (the tokens held are carried over, clamped to the new capacity),
// and on the shard level, so a shard is split before it is written at a
// higher shard count.
//
// # Shards
//
// Every write also takes one token of the hidden "wcu" limit (1000 a second
// per shard, the partition's write ceiling). When it runs out, the shard
// count on shard 0 doubles; each shard is split in two when first written at
// the new count, in a transaction that hands half its tokens to its twin, so
// the sum over shards never exceeds the configured limit.
package limiter
