package limiter

import (
	"crypto/sha256"
	"encoding/hex"
	"sort"
	"strconv"
	"strings"

	"github.com/zeroae/zae-limiter-go/shared/bucket"
	"github.com/zeroae/zae-limiter-go/shared/dynamo"
	"github.com/zeroae/zae-limiter-go/shared/limits"
	"github.com/zeroae/zae-limiter-go/shared/schema"
)

const milli = bucket.MilliPerToken

// wcu is the hidden per-shard write-pressure limit: 1000 writes a second,
// the write ceiling of one DynamoDB partition. It is not divided by shards.
const wcu = limits.ReservedLimitName

// Its burst is two seconds of writes, not one: a writer checks the budget
// against its own clock, and one whose clock is a second behind another
// writer's (or whose request took a second) would otherwise find a budget
// that writer booked ahead already spent, and double the shards of a
// bucket that sees a few writes a second.
var wcuParams = bucket.Params{Capacity: 2000 * milli, RefillAmount: 1000 * milli, RefillPeriod: 1000}

// wcuCost is what one write takes of wcu, in millitokens.
const wcuCost = milli

// limitState is one limit of a bucket shard as stored.
type limitState struct {
	P  bucket.Params
	W  int64 // virtual time, millitokens
	TC int64 // net consumed, millitokens
}

// shardState is the last known state of one bucket shard item.
type shardState struct {
	exists bool
	level  int // shard count the parameters are divided by
	count  int // target shard count (authoritative on shard 0)
	pv     string
	pe     int64
	gen    int64                 // creation stamp (0 on items older than it)
	limits map[string]limitState // includes wcu and dormant limits
}

func (s *shardState) clone() *shardState {
	c := *s
	c.limits = make(map[string]limitState, len(s.limits))
	for k, v := range s.limits {
		c.limits[k] = v
	}
	return &c
}

// decodeShard reads a bucket shard item; a nil item is a missing shard.
func decodeShard(it dynamo.Item) *shardState {
	st := &shardState{limits: map[string]limitState{}}
	if it == nil {
		return st
	}
	st.exists = true
	lv, _ := dynamo.GetN(it, schema.AttrShardLevel)
	st.level = max(int(lv), 1)
	c, _ := dynamo.GetN(it, schema.AttrShardCount)
	st.count = max(int(c), 1)
	st.pv = dynamo.GetS(it, schema.AttrParams)
	st.pe, _ = dynamo.GetN(it, schema.AttrParamsEpoch)
	st.gen, _ = dynamo.GetN(it, schema.AttrGeneration)
	for attr := range it {
		name, ok := schema.LimitNameFromAttr(attr, "b_", schema.SuffixVirtualTime)
		if !ok {
			continue
		}
		var ls limitState
		ls.W, _ = dynamo.GetN(it, attr)
		ls.P.Capacity, _ = dynamo.GetN(it, schema.BucketAttr(name, schema.SuffixCapacity))
		ls.P.RefillAmount, _ = dynamo.GetN(it, schema.BucketAttr(name, schema.SuffixRefill))
		ls.P.RefillPeriod, _ = dynamo.GetN(it, schema.BucketAttr(name, schema.SuffixPeriod))
		ls.TC, _ = dynamo.GetN(it, schema.BucketAttr(name, schema.SuffixConsumed))
		st.limits[name] = ls
	}
	return st
}

// paramSet is the parameters a bucket shard should carry: every limit's
// share at a shard level, plus wcu, with their fingerprint.
type paramSet struct {
	level  int
	params map[string]bucket.Params
	pv     string
	epoch  int64
}

func newParamSet(ls []limits.Limit, level int, epoch int64) paramSet {
	ps := paramSet{level: level, params: make(map[string]bucket.Params, len(ls)+1), epoch: epoch}
	for _, lm := range ls {
		// Whole-limit parameters: a shard's share shows in the cost of its
		// tokens (see cost), not in its parameters.
		ps.params[lm.Name] = bucket.Params{
			Capacity:     lm.Capacity * milli,
			RefillAmount: lm.RefillAmount * milli,
			RefillPeriod: lm.RefillPeriodSeconds * 1000,
		}
	}
	ps.params[wcu] = wcuParams
	ps.pv = fingerprint(ps.params, level)
	return ps
}

// paramSetOf is the parameter set an item carries.
func paramSetOf(st *shardState) paramSet {
	ps := paramSet{level: st.level, params: make(map[string]bucket.Params, len(st.limits)), pv: st.pv, epoch: st.pe}
	for name, ls := range st.limits {
		ps.params[name] = ls.P
	}
	return ps
}

func fingerprint(ps map[string]bucket.Params, level int) string {
	names := make([]string, 0, len(ps))
	for n := range ps {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteString(strconv.Itoa(level))
	for _, n := range names {
		p := ps[n]
		b.WriteString("|" + n + ":" + strconv.FormatInt(p.Capacity, 10) + ":" +
			strconv.FormatInt(p.RefillAmount, 10) + ":" + strconv.FormatInt(p.RefillPeriod, 10))
	}
	sum := sha256.Sum256([]byte(b.String()))
	return hex.EncodeToString(sum[:8])
}

// expiry is the ttl (epoch seconds) a write sets on a bucket, 0 when TTL is
// disabled: the multiplier times the slowest fill time of every limit on it
// (configured or dormant), at least an hour, and never before any debt is
// repaid (a limit's virtual time back at its clock) plus an hour: an expired
// bucket starts over full, so expiring earlier would forgive tokens.
func (l *Limiter) expiry(ps paramSet, st *shardState, now int64) int64 {
	if l.o.TTLMultiplier < 0 {
		return 0
	}
	var fill int64
	for _, p := range ps.params {
		fill = max(fill, bucket.FillTime(p))
	}
	repaid := now
	if st != nil {
		for _, ls := range st.limits {
			fill = max(fill, bucket.FillTime(ls.P))
			if ls.P.Valid() {
				repaid = max(repaid, bucket.ClockTime(ls.P, ls.W))
			}
		}
	}
	at := max(now/1000+max(fill/1000*int64(l.o.TTLMultiplier), 3600), repaid/1000+3600)
	return min(at, now/1000+10*366*86400) // a sanity cap: ten years
}

// cached returns a copy of the last known state of a shard, nil if unknown.
func (l *Limiter) cached(pk string) *shardState {
	l.mu.Lock()
	defer l.mu.Unlock()
	if st, ok := l.items[pk]; ok {
		return st.clone()
	}
	return nil
}

func (l *Limiter) remember(pk string, st *shardState) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.items[pk] = st
}

// merge caches a state that came back from DynamoDB without losing what
// concurrent writers of this process projected: with the same parameters a
// limit's cached virtual time only moves forward.
func (l *Limiter) merge(pk string, got *shardState) {
	l.mu.Lock()
	defer l.mu.Unlock()
	st := got.clone()
	old, ok := l.items[pk]
	if ok && old.exists && old.pv == st.pv && old.level == st.level {
		for name, ls := range st.limits {
			if o, had := old.limits[name]; had && o.W > ls.W {
				ls.W = o.W
				st.limits[name] = ls
			}
		}
	}
	l.items[pk] = st
}

func (l *Limiter) forget(pk string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.items, pk)
}

// shardCount is the known shard count of a bucket (1 until learnt).
func (l *Limiter) shardCount(key string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return max(l.count[key], 1)
}

// forgetCount drops the known shard count (the bucket is gone).
func (l *Limiter) forgetCount(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.count, key)
}

// learnCount raises the known shard count (counts only ever grow).
func (l *Limiter) learnCount(key string, n int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if n > l.count[key] {
		l.count[key] = n
	}
}

func sortedParams(m map[string]bucket.Params) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
