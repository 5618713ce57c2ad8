// Package shard owns the bucket shard item: its key, its codec (Decode and
// the items of Twin, Empty and Fresh) and a pure planner of every write the
// product sends to it (PlanTake, PlanAdjust, PlanSplit, PlanBump). Nothing
// else reads or writes a bucket item's attributes: the limiter orchestrates
// (which shard, retries, its cache, leases), the stream functions decode
// images through Decode.
//
// # The item
//
// One item holds every limit of one (entity, resource, shard) in the GCRA
// form of package bucket: per limit its whole-limit parameters and a virtual
// time W (ADR-001). A shard at level L holds 1/L of each limit: taking n on
// it moves W by n*L (ADR-002). Besides the configured limits an item keeps
// dormant limits (configured once, not now: kept so that their tokens carry
// over if they come back) and the write budget (Budget, per shard, the
// trigger for growing the shard count).
//
// # What every write is conditioned on
//
//   - PlanTake: the fingerprint PV of every limit's parameters on the item
//     (dormant ones and the level included) and, per limit taken from, the
//     form predicted from the planner's state (busy: W ahead of the booking
//     instant, ADD n bounded above by clock+capacity-n; idle: W at or behind
//     it, SET instant+n). A change of parameters is written in the same
//     request, each limit carrying its tokens (Carry), conditioned on the
//     form of that carry. The budget is judged at the latest writer clock
//     the item has seen (WT), so clock skew is never taken for load.
//   - PlanAdjust: existence, the shard level, per limit charged its refill
//     parameters (the clock's units) and the debt bound, per limit refunded
//     its existence, and for a refund the generation taken from.
//   - PlanSplit: PV and the level; twins and recreated shards are put only
//     where no item exists; PlanBump: the shard count it doubles.
//   - PlanReset and PlanGrant (ADR-030): existence, not merged, the level;
//     a reset per limit its refill parameters (the units of the clock it
//     sets W to), a grant another grant id than its own (so a retried one
//     is not added twice).
//
// A take from a shadow limit (ADR-031) has its form's condition but no
// upper bound, so it never denies; a take paid from a limit's credits (ADR-030)
// is conditioned on the complement of the bucket's bound and on the
// credits covering it. A calendar limit (ADR-029) differs from a continuous
// one only in its period code (b_{L}_rp), so every condition and
// fingerprint over parameters covers it.
//
// Every condition is on stored values the planner argued from, so a write
// either does what was planned or changes nothing and returns the item
// (ALL_OLD) to plan again from.
package shard
