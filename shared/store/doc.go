// Package store is the in-process admin API over the limiter's single
// DynamoDB table: the table lifecycle and version record, the namespace
// registry, entities, the limits configuration at its four levels (entity
// per resource, entity default, resource defaults, system defaults), the
// cached resolution of that hierarchy for the acquire path, and the audit
// log of every admin change.
//
// Every key and index attribute comes from package schema; this package only
// decides what goes into each item. Expressions use package dynamo's
// positional aliases (#000, :000, ...) so limit names and resources with
// '-', '.' or '/' are safe.
//
// # Errors
//
// Bad input is a *limits.ValidationError (errors.Is(err, limits.ErrInvalid))
// naming the field and value, returned before anything is written. A missing
// object wraps limits.ErrNotFound and a duplicate wraps limits.ErrExists,
// each with the object named, e.g. `create entity "u1": already exists`.
// Namespace operations that meet the wrong lifecycle state return a
// *NamespaceStateError (errors.Is(err, ErrNamespaceState)). Every DynamoDB
// error is wrapped with the operation and object it concerns.
//
// # Caches
//
// A Store caches namespace name to id, and each namespace handle (NS) caches
// entity records and the config levels it resolved, including negative
// results, for Options.CacheTTL (60 s by default; negative disables). Writes
// made through a handle evict what they change in that handle; other
// processes' writes become visible when the entries expire.
package store
