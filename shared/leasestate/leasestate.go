// Package leasestate owns the HTTP lease-state item: what changes about a
// lease of the acquire HTTP API after its token was signed (its net
// adjustments per bucket and limit, and whether it is closed). It holds the
// item's key, its codec (item <-> State) and a pure planner that turns a
// lease, a request and what the item holds into the conditional write that
// applies it, and tells why such a write was refused. It makes no DynamoDB
// call: package api sends the writes and reads (once, see api's sendOnce).
//
// The item (schema.LeaseKey; written only by a lease's first adjust or
// release):
//
//	PK       {ns id}/LEASE#{lease id}
//	SK       #LEASE
//	GSI4PK   {ns id}                  GSI4SK  #LEASE|LEASE#{lease id}
//	ttl      token expiry + StateTTL (epoch seconds)
//	entity_id, resource               for people reading the table
//	a_{i}_{limit}  N                  net adjustment of bucket i and limit, millitokens
//	closed         BOOL               released
//	rolled_back    BOOL               the release gave everything back
//
// # Rules the planner writes into every condition
//
//   - A closed lease changes no more (409 lease_closed).
//   - Per bucket and limit, the lease's net amount (initial + adjustments)
//     stays within [0, MaxNet]: a lease gives back at most what it took,
//     and holds at most limits.MaxTokens of a limit, so its sums never leave
//     int64 and a rollback can always give back exactly what it holds.
//
// Check evaluates the same rules on a known State; a test holds it to what
// DynamoDB decides for the rendered conditions.
package leasestate

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/zeroae/zae-limiter-go/shared/bucket"
	"github.com/zeroae/zae-limiter-go/shared/dynamo"
	"github.com/zeroae/zae-limiter-go/shared/limits"
	"github.com/zeroae/zae-limiter-go/shared/schema"
)

// Attributes of the item besides its keys, GSI4 and ttl.
const (
	AttrClosed     = "closed"      // BOOL: released (committed or rolled back)
	AttrRolledBack = "rolled_back" // BOOL: the release gave everything back
	AttrEntity     = "entity_id"   // for people reading the table
	AttrResource   = "resource"
	adjPrefix      = "a_" // a_{bucket}_{limit}: net adjustment, millitokens
)

// StateTTL is how long the item outlives the token.
const StateTTL = 24 * time.Hour

// milli is millitokens per token.
const milli = bucket.MilliPerToken

// MaxNet is the most a lease may hold of one limit on one bucket
// (initial + adjustments), in millitokens: limits.MaxTokens tokens.
const MaxNet = limits.MaxTokens * milli

// AdjAttr is the attribute of bucket i's net adjustment of a limit.
func AdjAttr(i int, name string) string { return adjPrefix + strconv.Itoa(i) + "_" + name }

// Lease is what the item depends on of a lease (all of it from the token).
type Lease struct {
	NS, ID           string
	Entity, Resource string
	// Expires is the token's expiry, unix milliseconds.
	Expires int64
	// Buckets are the bucket shards the lease holds, in token order.
	Buckets []Bucket
}

// Bucket is one bucket shard of a lease.
type Bucket struct {
	Entity string
	// Initial is what the acquire took, millitokens by limit name.
	Initial map[string]int64
}

// Key is the item's key.
func Key(nsID, leaseID string) dynamo.Item {
	k := schema.LeaseKey(nsID, leaseID)
	return dynamo.Item{schema.PK: dynamo.S(k.PK), schema.SK: dynamo.S(k.SK)}
}

// Key is the item's key of this lease.
func (l Lease) Key() dynamo.Item { return Key(l.NS, l.ID) }

// State is what the item holds.
type State struct {
	Closed, RolledBack bool
	// Adj are the net adjustments per bucket (as Lease.Buckets),
	// millitokens by limit name; absent means 0.
	Adj []map[string]int64
}

// ErrUnreadable: an adjustment attribute is not an integer that fits an
// int64 (an item written before adjustments were bounded). The lease
// cannot be given back exactly.
var ErrUnreadable = errors.New("lease state: adjustment not readable exactly")

// Decode reads the item (nil: none yet) for a lease of n buckets.
// Attributes of buckets beyond n are ignored; an adjustment that is not an
// exact int64 is ErrUnreadable, never read as 0 (the state returned with it
// has its flags read, its adjustments in part).
func Decode(it dynamo.Item, n int) (State, error) {
	s := State{Closed: dynamo.GetBool(it, AttrClosed), RolledBack: dynamo.GetBool(it, AttrRolledBack), Adj: make([]map[string]int64, n)}
	for i := range s.Adj {
		s.Adj[i] = map[string]int64{}
	}
	for attr := range it {
		i, name, ok := parseAdj(attr)
		if !ok || i >= n {
			continue
		}
		v, ok := dynamo.GetN(it, attr)
		if !ok {
			return s, fmt.Errorf("%w: %s", ErrUnreadable, attr)
		}
		s.Adj[i][name] = v
	}
	return s, nil
}

// Item is the whole item holding s, as the gates that led to s left it
// (the inverse of Decode). The writes never put whole items; tools and
// tests that need one do.
func (l Lease) Item(s State) dynamo.Item {
	it := l.Key()
	for _, m := range l.meta() {
		it[m.attr] = m.v
	}
	it[AttrClosed] = dynamo.Bool(s.Closed)
	if s.Closed {
		it[AttrRolledBack] = dynamo.Bool(s.RolledBack)
	}
	for i, m := range s.Adj {
		for name, v := range m {
			it[AdjAttr(i, name)] = dynamo.N(v)
		}
	}
	return it
}

// meta are the attributes every item of the lease carries, set by its
// first write: the GSI4 keys, the ttl and, for people, entity and resource.
func (l Lease) meta() []struct {
	attr string
	v    types.AttributeValue
} {
	return []struct {
		attr string
		v    types.AttributeValue
	}{
		{schema.GSI4PK, dynamo.S(schema.NamespaceGSI4PK(l.NS))},
		{schema.GSI4SK, dynamo.S(schema.GSI4SKFor(schema.LeaseKey(l.NS, l.ID)))},
		{schema.TTL, dynamo.N(l.Expires/1000 + 1 + int64(StateTTL/time.Second))},
		{AttrEntity, dynamo.S(l.Entity)},
		{AttrResource, dynamo.S(l.Resource)},
	}
}

// parseAdj splits "a_{i}_{name}".
func parseAdj(attr string) (int, string, bool) {
	rest, ok := strings.CutPrefix(attr, adjPrefix)
	if !ok {
		return 0, "", false
	}
	num, name, ok := strings.Cut(rest, "_")
	if !ok || name == "" {
		return 0, "", false
	}
	i, err := strconv.Atoi(num)
	if err != nil || i < 0 {
		return 0, "", false
	}
	return i, name, true
}

// Net is the lease's net amount per bucket and limit in s: initial plus
// adjustments, millitokens.
func (l Lease) Net(s State) []map[string]int64 {
	out := make([]map[string]int64, len(l.Buckets))
	for i, b := range l.Buckets {
		out[i] = maps.Clone(b.Initial)
		if out[i] == nil {
			out[i] = map[string]int64{}
		}
		if i < len(s.Adj) {
			for name, v := range s.Adj[i] {
				out[i][name] += v
			}
		}
	}
	return out
}

// Request is one change to the item.
type Request struct {
	// Adds are deltas per bucket (as Lease.Buckets), millitokens by limit.
	Adds []map[string]int64
	// Release closes the lease; RolledBack records how.
	Release    bool
	RolledBack bool
}

// Gate plans the close-once gate of an adjust or release: on condition
// that the lease is open and that every delta keeps its net amount within
// [0, MaxNet], ADD the deltas and, for a release, close the lease. It
// creates the item on first use. Sent with dynamo.Update.Input it returns
// the item either way (ALL_NEW, or ALL_OLD when refused: see Check).
func Gate(l Lease, r Request) *dynamo.Update {
	u := &dynamo.Update{}
	for _, m := range l.meta() {
		u.SetExpr(m.attr, "if_not_exists($, ?)", m.attr, m.v)
	}
	if r.Release {
		u.Set(AttrClosed, true).Set(AttrRolledBack, r.RolledBack)
	}
	add(u, r.Adds)
	ifOpen(u)
	l.bounds(u, r.Adds)
	return u
}

// Undo plans taking back deltas a gate recorded (undo holds them negated):
// on condition that the item exists, the lease is open and the net amounts
// stay within bounds. A refusal means the lease was closed meanwhile or a
// concurrent adjust relies on the deltas.
func Undo(l Lease, undo []map[string]int64) *dynamo.Update {
	u := &dynamo.Update{}
	add(u, undo)
	u.IfExists(schema.PK)
	ifOpen(u)
	l.bounds(u, undo)
	return u
}

// Reopen plans reopening a lease whose rollback failed part way, with what
// was given back recorded as adjustments (back, negative deltas), on
// condition that it is closed.
func Reopen(back []map[string]int64) *dynamo.Update {
	u := &dynamo.Update{}
	u.Set(AttrClosed, false).Remove(AttrRolledBack)
	add(u, back)
	u.If("$ = ?", AttrClosed, true)
	return u
}

// add ADDs every non-zero delta, in bucket and name order.
func add(u *dynamo.Update, per []map[string]int64) {
	for i, m := range per {
		for _, name := range slices.Sorted(maps.Keys(m)) {
			if d := m[name]; d != 0 {
				u.Add(AdjAttr(i, name), d)
			}
		}
	}
}

// Empty reports deltas that are all zero.
func Empty(per []map[string]int64) bool {
	for _, m := range per {
		for _, v := range m {
			if v != 0 {
				return false
			}
		}
	}
	return true
}

func ifOpen(u *dynamo.Update) {
	u.If("attribute_not_exists($) OR $ = ?", AttrClosed, AttrClosed, false)
}

// bounds adds, for every non-zero delta d of bucket i and limit n, the
// conditions that initial + a + d stays within [0, MaxNet], where a is the
// recorded adjustment (absent: 0): a >= -initial - d for a refund, and
// a <= MaxNet - initial - d always. A bound an absent a satisfies allows
// attribute_not_exists.
func (l Lease) bounds(u *dynamo.Update, per []map[string]int64) {
	for i, m := range per {
		for _, name := range slices.Sorted(maps.Keys(m)) {
			d := m[name]
			if d == 0 {
				continue
			}
			a, init := AdjAttr(i, name), l.initial(i, name)
			if floor := -init - d; d < 0 {
				if floor <= 0 {
					u.If("$ >= ? OR attribute_not_exists($)", a, floor, a)
				} else {
					u.If("$ >= ?", a, floor)
				}
			}
			if ceil := MaxNet - init - d; ceil >= 0 {
				u.If("$ <= ? OR attribute_not_exists($)", a, ceil, a)
			} else {
				u.If("$ <= ?", a, ceil)
			}
		}
	}
}

func (l Lease) initial(i int, name string) int64 {
	if i < len(l.Buckets) {
		return l.Buckets[i].Initial[name]
	}
	return 0
}

// Check reports whether Gate(l, r) may apply to the item holding s: nil, or
// why not: limits.ErrLeaseClosed when closed, else a *limits.ValidationError
// naming the first delta (bucket, then name order) that would take a net
// amount below zero (a refund beyond what the lease holds) or above MaxNet.
// It is the gate's condition evaluated in Go: use it on the item DynamoDB
// returns with a refused gate.
func (l Lease) Check(s State, r Request) error {
	if s.Closed {
		return limits.ErrLeaseClosed
	}
	net := l.Net(s)
	for i, m := range r.Adds {
		for _, name := range slices.Sorted(maps.Keys(m)) {
			d := m[name]
			if d == 0 || i >= len(net) {
				continue
			}
			held, field, value := net[i][name], "adjust."+name, strconv.FormatInt(d/milli, 10)
			switch {
			case held+d < 0:
				return limits.Invalid(field, value, fmt.Sprintf("the lease holds %s of %s on %s; it cannot give back more than it holds",
					Tokens(held), name, l.Buckets[i].Entity))
			case held+d > MaxNet:
				return limits.Invalid(field, value, fmt.Sprintf("the lease holds %s of %s on %s; a lease holds at most %d of a limit",
					Tokens(held), name, l.Buckets[i].Entity, limits.MaxTokens))
			}
		}
	}
	return nil
}

// Apply is s after the gate of r (when Check allows it): the projected
// state, as the written item (ALL_NEW) holds it.
func (s State) Apply(r Request) State {
	out := State{Closed: s.Closed, RolledBack: s.RolledBack, Adj: make([]map[string]int64, max(len(s.Adj), len(r.Adds)))}
	for i := range out.Adj {
		out.Adj[i] = map[string]int64{}
		if i < len(s.Adj) {
			maps.Copy(out.Adj[i], s.Adj[i])
		}
		if i < len(r.Adds) {
			for name, d := range r.Adds[i] {
				if d != 0 {
					out.Adj[i][name] += d
				}
			}
		}
	}
	if r.Release {
		out.Closed, out.RolledBack = true, r.RolledBack
	}
	return out
}

// Tokens renders millitokens as whole tokens (with decimals if need be).
func Tokens(m int64) string {
	if m%milli == 0 {
		return strconv.FormatInt(m/milli, 10)
	}
	return strconv.FormatFloat(float64(m)/float64(milli), 'f', -1, 64)
}
