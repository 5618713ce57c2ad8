// Package archive moves audit events from DynamoDB to S3 before they
// expire, and reads them back. It is the archiver Lambda's logic
// (functions/archiver) and what `zae-limiter audit archive` and
// `audit list --archived` call.
//
// # What is due
//
// An event is due when its TTL is within Options.Margin of now (so none
// expires unarchived, even when a few scheduled runs are missed) or, when
// the Request sets an age (OlderThan >= 0), when it is at least that old.
// A Request may narrow the run to one namespace.
//
// # Finding due events
//
// The store indexes every audit event by its UTC day in GSI2
// (_/AUDITDAY#{day}, sorted by event id, a ULID). A run walks those days in
// order, from the checkpoint's day to today, one Query per page. The
// checkpoint (the table-wide item _/SYSTEM# #ARCHIVER) remembers the first
// day that may still hold an event, so a run never walks days already
// emptied; it never moves past yesterday, so an event written late into a
// past day (a writer's clock behind, an index lagging) is still seen.
//
// # Objects
//
// Due events are written as gzip JSON Lines (one Line per event) under
// Hive-style partitions, audit/year=YYYY/month=MM/day=DD/, named after the
// first and last event id they hold: {first}-{last}.jsonl.gz. An object
// never spans two days and holds at most Options.MaxEventsPerObject events.
// Its bytes are a function of its events (gzip without a timestamp), so a
// write repeated for the same events writes the same key and the same bytes.
//
// # Exactly once in effect
//
// Each object goes through: (1) the checkpoint records it as pending (key,
// SHA-256, count); (2) PutObject; (3) GetObject, and the bytes must match the
// SHA-256; (4) its events are deleted from DynamoDB; (5) the pending record is
// cleared. Nothing is deleted from DynamoDB before its object was read back
// intact. A run that stops anywhere (a crash, a timeout, S3 or DynamoDB
// failing) leaves the pending record; the next run first completes it: it
// reads the object back (a missing object means the put never landed, and the
// events are simply still due) and deletes exactly the events the object
// holds. So each event ends up in S3 exactly once, and in DynamoDB until then.
//
// Runs exclude each other with a lease on the checkpoint (owner and expiry,
// renewed on every checkpoint write, every condition checks the owner): a run
// that finds the lease held returns a *BusyError, and a run that lost its
// lease stops before writing again.
//
// # Bounded time
//
// Request.Deadline (the Lambda's) bounds a run: it starts no new object once
// less than Options.Reserve is left, reports Incomplete, and the next run
// carries on from the checkpoint.
package archive
