package shard

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/zeroae/zae-limiter-go/shared/bucket"
	"github.com/zeroae/zae-limiter-go/shared/dynamo"
	"github.com/zeroae/zae-limiter-go/shared/schema"
)

// Milli is one token in millitokens.
const Milli = bucket.MilliPerToken

// ID names one shard item.
type ID struct {
	Namespace string
	Entity    string
	Resource  string
	Shard     int
}

// PK is the item's partition key.
func (id ID) PK() string { return schema.BucketPK(id.Namespace, id.Entity, id.Resource, id.Shard) }

// Key is the item's primary key.
func (id ID) Key() dynamo.Item {
	return dynamo.Item{schema.PK: dynamo.S(id.PK()), schema.SK: dynamo.S(schema.SKState)}
}

// Bucket is the (entity, resource) pair the shard belongs to.
func (id ID) Bucket() string { return id.Entity + "#" + id.Resource }

// Of is shard j of the same bucket.
func (id ID) Of(j int) ID { id.Shard = j; return id }

// ParseID reads the ID from a shard item's partition key.
func ParseID(pk string) (ID, error) {
	b, err := schema.ParseBucketPK(pk)
	if err != nil {
		return ID{}, err
	}
	return ID{Namespace: b.Namespace, Entity: b.EntityID, Resource: b.Resource, Shard: b.Shard}, nil
}

// Limit is one limit of a shard item as stored.
type Limit struct {
	// Params are the whole limit's (a shard's share shows in the cost of
	// its tokens: taking n on a shard at level L moves W by n*L).
	Params bucket.Params
	// W is the virtual time in millitokens (see package bucket).
	W int64
	// TC is the net consumed in millitokens (never changed by refill).
	TC int64
	// CR is the credit balance (ADR-030) in the unit of W: the shard holds
	// CR/level granted tokens, which an acquire uses once the bucket cannot
	// take it. Splits and merges share it like W.
	CR int64
	// SD counts the requests this limit, shadow (ADR-031), would have
	// denied.
	SD int64
}

// State is one shard item as stored (or as a write is projected to leave
// it). The zero value with Exists false is a missing item.
type State struct {
	Exists bool
	// Level is the shard count the item's share is divided by.
	Level int
	// Count is the target shard count, authoritative on shard 0.
	Count int
	// PV fingerprints the parameters of every limit on the item (dormant
	// ones included) and the level; every write is conditioned on it.
	PV string
	// PE is the config version the parameters came from (0: a request's
	// own limits, which are not ordered).
	PE int64
	// Gen stamps the item's creation (Unix ms).
	Gen int64
	// WT is the latest writer clock the item has seen (Unix ms): the
	// anchor of the write budget, so a writer whose clock lags others never
	// mistakes their bookings for load.
	WT int64
	// TTL is the expiry (epoch seconds), 0 when none.
	TTL int64
	// GID is the id of the last grant written to the item (ADR-030).
	GID string
	// Merged marks a tombstone: the shard was merged back into its sibling
	// (see PlanMerge); for writers it is missing, and it is not recreated.
	Merged bool
	// Limits holds every limit on the item: configured ones, dormant ones
	// and the write budget.
	Limits map[string]Limit
}

// Clone returns a deep copy (nil for nil).
func (s *State) Clone() *State {
	if s == nil {
		return nil
	}
	c := *s
	c.Limits = make(map[string]Limit, len(s.Limits))
	for k, v := range s.Limits {
		c.Limits[k] = v
	}
	return &c
}

// Params are the parameters of every limit on the item.
func (s *State) Params() map[string]bucket.Params {
	out := make(map[string]bucket.Params, len(s.Limits))
	for name, l := range s.Limits {
		out[name] = l.Params
	}
	return out
}

// Decode reads a shard item; a nil item is a missing shard. A number that
// does not fit an int64 is an error: the limiter never writes one, so the
// item was damaged.
func Decode(it dynamo.Item) (*State, error) {
	st := &State{Limits: map[string]Limit{}}
	if it == nil {
		return st, nil
	}
	st.Exists = true
	var errs []string
	num := func(attr string, required bool) int64 {
		v, present := it[attr]
		if !present {
			if required {
				errs = append(errs, attr+" missing")
			}
			return 0
		}
		n, ok := dynamo.GetN(it, attr)
		if !ok {
			errs = append(errs, fmt.Sprintf("%s=%v is not an int64", attr, v))
		}
		return n
	}
	st.Level = max(int(num(schema.AttrShardLevel, false)), 1)
	st.Count = max(int(num(schema.AttrShardCount, false)), 1)
	st.PV = dynamo.GetS(it, schema.AttrParams)
	st.PE = num(schema.AttrParamsEpoch, false)
	st.Gen = num(schema.AttrGeneration, false)
	st.WT = num(schema.AttrWriterTime, false)
	st.TTL = num(schema.TTL, false)
	st.Merged = dynamo.GetBool(it, schema.AttrMerged)
	st.GID = dynamo.GetS(it, schema.AttrGrant)
	for attr := range it {
		name, ok := schema.LimitNameFromAttr(attr, "b_", schema.SuffixVirtualTime)
		if !ok {
			continue
		}
		l := Limit{W: num(attr, true)}
		l.Params.Capacity = num(schema.BucketAttr(name, schema.SuffixCapacity), true)
		l.Params.RefillAmount = num(schema.BucketAttr(name, schema.SuffixRefill), true)
		l.Params.RefillPeriod = num(schema.BucketAttr(name, schema.SuffixPeriod), true)
		l.TC = num(schema.BucketAttr(name, schema.SuffixConsumed), false)
		l.CR = num(schema.BucketAttr(name, schema.SuffixCredit), false)
		l.SD = num(schema.BucketAttr(name, schema.SuffixShadow), false)
		st.Limits[name] = l
	}
	if len(errs) > 0 {
		sort.Strings(errs)
		return st, fmt.Errorf("bucket item %s: %s", dynamo.GetS(it, schema.PK), strings.Join(errs, ", "))
	}
	return st, nil
}

// Fingerprint is the PV of a set of parameters at a level.
func Fingerprint(params map[string]bucket.Params, level int) string {
	names := make([]string, 0, len(params))
	for n := range params {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteString(strconv.Itoa(level))
	for _, n := range names {
		p := params[n]
		b.WriteString("|" + n + ":" + strconv.FormatInt(p.Capacity, 10) + ":" +
			strconv.FormatInt(p.RefillAmount, 10) + ":" + strconv.FormatInt(p.RefillPeriod, 10))
	}
	sum := sha256.Sum256([]byte(b.String()))
	return hex.EncodeToString(sum[:8])
}

// Cost is what taking amt millitokens of a limit moves its virtual time on
// a shard at level: a shard holds 1/level of the limit. The write budget is
// per shard and not divided.
func Cost(name string, amt int64, level int) int64 {
	if name == Budget {
		return amt
	}
	return amt * int64(level)
}

func sortedNames[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
