// Package manifest reads declarative limits: one namespace's system, resource
// and entity limits in a YAML file (the seed's format), in the same document
// as JSON (the provisioner function's CLI event), or as the properties of a
// Custom::ZaeLimiterLimits CloudFormation resource.
//
// The file format:
//
//	namespace: default          # optional: else the CLI's -N
//	system:                     # optional: the system level is managed only when present
//	  on_unavailable: block     # optional: block or allow
//	  limits:
//	    rpm: {capacity: 1000}
//	resources:
//	  gpt-4:
//	    limits:
//	      rpm: {capacity: 500, refill_amount: 100, refill_period: 12}
//	      tpm: 50000/min:75000  # the CLI's rate[/period][:burst]
//	entities:
//	  user-premium:
//	    resources:
//	      gpt-4:                # or _default_: the entity's limits for every resource
//	        limits:
//	          rpm: {capacity: 1000}
//
// Top-level keys starting with "x-" are ignored: a place for YAML anchors
// (`x-standard: &standard {rpm: 100}`, then `limits: *standard`).
//
// A limit is a mapping or the CLI's shorthand. In the mapping, capacity (the
// bucket ceiling) is required; refill_amount defaults to capacity and
// refill_period (whole seconds, or [N]sec|min|hour|day) to 60 seconds. burst,
// as in the shorthand, makes capacity the amount refilled per period and
// burst the ceiling, so `{capacity: 100, burst: 150}` is `100/min:150`;
// burst and refill_amount together are rejected (capacity would mean nothing).
//
// Reading is strict: unknown keys, duplicate keys, numbers that are not
// positive whole numbers, reserved or malformed names and empty limit sets
// are problems, each named by file, line and field path. Every problem is
// reported (up to a bound) as one *Error; a manifest with problems is never
// returned, so a bad file changes nothing.
package manifest
