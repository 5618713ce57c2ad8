// Package usage owns the usage snapshot item: its codec (Decode, the
// attributes), the aggregation that turns the table's stream into
// snapshots (ChangeOf, Plan, Aggregator, Handler; the aggregator function
// is Handler behind a Lambda), and the reads of the usage commands (List,
// Summarize).
//
// # What is counted
//
// A snapshot is a bucket's (namespace, entity, resource) net consumption
// in one window (hourly, daily or monthly, aligned in UTC), per limit, in
// whole tokens, plus the number of bucket changes folded in (events). Its
// source is the net consumed counter TC every bucket shard item keeps per
// limit: every take, adjustment, refund and rollback moves it, refill
// never does, and a twin or recreated shard starts it at 0. A stream
// record's consumption is new TC minus old TC (ChangeOf); every shard
// counts, and a cascading acquire counts on the parent's bucket as it is
// written there. Deletions (a TTL expiry, an entity deleted) and writes
// that move no TC (splits, shard count bumps, parameter syncs, twins) are
// not consumption. The hidden write budget (wcu) is never counted.
//
// Whole tokens: a record counts floor(new TC/1000) - floor(old TC/1000),
// so the counts of a shard's records add up to its counter's whole tokens
// and no millitoken remainder is lost or counted twice over any number of
// records (see Tokens). The API takes whole tokens only, so in practice
// every total is exact.
//
// A record's windows come from its ApproximateCreationDateTime, never from
// the time it is processed, so a redelivered record lands in the same
// snapshots.
//
// # Exactly once in effect (ADR-020)
//
// Every snapshot stores, per source (bucket shard and stream), the
// position of the last record it folded in (PositionAttr: the record's
// sequence number, zero-padded to compare as a string). A write folds in
// records of a source only when the stored position is below the first of
// them (Write.Update), in one UpdateItem with the ADDs. The records of one
// item arrive in order, so a record already folded in is always at or
// below the stored position: a batch delivered twice, retried, bisected or
// retried with more records changes nothing it already changed. A write
// whose condition fails gets the stored item back and is narrowed to the
// records past the stored positions (Write.Pending), then sent again.
//
// One batch makes one write per snapshot (up to 24 sources each), all
// limits and sources of that snapshot in one UpdateItem; writes run
// concurrently (Aggregator.Concurrency). A record that cannot be read, or
// whose write fails, is reported as a batch item failure; the mapping
// retries from the lowest one.
package usage
