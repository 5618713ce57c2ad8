// Package provision applies declarative limits (package manifest) to a
// namespace: the engine of `zae-limiter limits plan|apply|diff` and of the
// provisioner function (functions/provisioner).
//
// Plan is a content diff of the manifest against the namespace's managed
// set, the #PROVISIONER record: a create for what the record lacks, an
// update for what it holds with another content hash, a delete for what it
// holds and the manifest dropped. Items never in a manifest are never
// touched, and an unchanged manifest plans nothing and writes nothing.
// Diff compares the manifest with the live config items instead, so edits
// made with the imperative CLI show as drift.
//
// Apply makes the changes through the store's admin calls (package store:
// SetLimits, SetResourceDefaults, SetSystemDefaults and their deletes), so
// a limit applied from a manifest is written, audited and reaches buckets
// exactly as one set with the CLI. Changes run Engine.Concurrency at a
// time under a lock on the record; afterwards the record holds what landed
// and only that: a failed create stays out, a failed update or delete keeps
// its previous entry, and the next apply tries them again.
//
// The record (ADR-013) is one item holding a gzip'd line per managed item
// with a 64-bit content hash, spread over chunk items of a generation when
// it outgrows 350 KB, so it has no practical size limit (5,000 entities
// with 256-character ids on two resources take three chunks).
//
// Handler serves the provisioner function: the CLI event (Event, Response)
// and the CloudFormation custom resource Custom::ZaeLimiterLimits.
package provision
