// Package bucket is the token-bucket arithmetic of the limiter: pure
// functions over plain values, with no clock, no I/O and no locks. The
// bucket state itself lives in DynamoDB (package shard owns the item); this
// package only says what a state becomes at a given instant.
//
// # Units
//
// Every amount is an int64 count of millitokens (1 token = MilliPerToken =
// 1000 millitokens) and every instant an int64 count of Unix epoch
// milliseconds. Integers rather than floats keep a bucket shared by many
// processes exact and reproducible: two writers that read the same item
// and use the same instant compute the same result, bit for bit.
//
// Time is always a parameter (now). Nothing here calls time.Now, so the
// callers decide which clock to trust and tests replay exact instants.
//
// # What runs: the GCRA form (clock.go)
//
// A limit has Params (Capacity, and RefillAmount millitokens per
// RefillPeriod milliseconds) and a clock that counts the millitokens its
// refill has produced since Epoch:
//
//	Clock(p, now) = floor((now - Epoch) * RefillAmount / RefillPeriod)
//
// The stored state is one number per limit, its virtual time W, in the
// same unit. The bucket holds Level(W, c, p) = Capacity - max(0, W - c)
// millitokens at clock c: W at or behind the clock means full, a
// consumption pushes W forward, refill is the clock catching up. Take(W, c,
// n, p) admits n iff max(W, c) + n <= c + Capacity, and returns the new
// virtual time. Wait is how long until n fits; ClockTime inverts Clock;
// Quantum and CeilTo put bookings on a grid. A calendar limit (RefillPeriod
// CalendarDay, CalendarWeek or CalendarMonth, calendar.go) has a step clock
// instead: the refill of every UTC calendar period begun since Epoch, so
// it is full again at each boundary, less the debt it carries, and Wait is
// the time to the boundary that fits. There is no refill timestamp
// to share between limits or writers, which is what lets a store apply a
// take with one conditional write (ADR-001).
//
// # Invariants
//
// For Valid Params and any int64 inputs (the arithmetic saturates rather
// than wraps; products are computed in 128 bits, math/bits):
//
//   - Refill is never credited for time that has not passed: Clock is
//     monotone in now and a state's level never exceeds Capacity.
//   - Take is exact: it admits n iff the level at c is at least n, and two
//     takes in a row admit what one take of their sum would.
//   - A wait returned by Wait is sufficient and the shortest one to the
//     millisecond: Take admits n at Clock(p, now+Wait), not a millisecond
//     earlier.
//
// # The oracle (tests only)
//
// The classic token bucket (tokens plus a refill timestamp, with drift
// compensation: the fraction of a millitoken left over by a refill is kept
// as time and paid out later) lives in this package's tests
// (oracle_test.go). It is not what runs; the GCRA form is checked against
// it request for request by table tests and fuzzers, so both admit exactly
// the same consumption. It also documents the difference from the Python
// reference, whose refill advances its timestamp to the latest instant that
// accounts for fewer millitokens than it added, so that a second refill at
// the same instant mints more (close to twice the rate for a bucket
// refilled every millisecond at 100 000 tokens a minute).
package bucket
