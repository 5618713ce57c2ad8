package shard

import (
	"time"

	"github.com/zeroae/zae-limiter-go/shared/bucket"
	"github.com/zeroae/zae-limiter-go/shared/limits"
)

// Statuses reports every configured limit ls of bucket (entity, resource)
// as seen on one shard st at level, with the amounts requested
// (millitokens) and whether each could be taken now.
func Statuses(entity, resource string, ls []limits.Limit, st *State, amounts map[string]int64, level int, now int64) []limits.Status {
	level = max(level, 1)
	out := make([]limits.Status, 0, len(ls))
	for _, lm := range ls {
		s := limits.Status{EntityID: entity, Resource: resource, Limit: lm, Requested: amounts[lm.Name] / Milli, Shards: level}
		l, ok := Limit{}, false
		if st != nil {
			l, ok = st.Limits[lm.Name]
		}
		if !ok {
			// Not on the item yet: a new limit starts full.
			p := ParamsOf(lm)
			l = Limit{Params: p, W: bucket.Clock(p, now)}
		}
		c := bucket.Clock(l.Params, now)
		s.Available = bucket.Whole(bucket.Level(l.W, c, l.Params) / int64(level))
		s.Credit = bucket.Whole(l.CR / int64(level))
		s.ResetAt = resetAt(l.Params, now)
		if n := amounts[lm.Name]; n > 0 {
			if _, fits := bucket.Take(l.W, c, n*int64(level), l.Params); !fits && l.CR < n*int64(level) {
				s.Exceeded = true
				s.RetryAfter = msDuration(bucket.Wait(l.W, n*int64(level), l.Params, now))
			}
		}
		out = append(out, s)
	}
	return out
}

// Summarize adds up what every shard of a bucket holds of each configured
// limit (whole tokens), and, for needed amounts (millitokens), how long
// until one shard can take them.
func Summarize(entity, resource string, ls []limits.Limit, shards []*State, needed map[string]int64, now int64) []limits.Status {
	out := make([]limits.Status, 0, len(ls))
	for _, lm := range ls {
		s := limits.Status{EntityID: entity, Resource: resource, Limit: lm, Requested: needed[lm.Name] / Milli}
		var total, credit int64
		seen := false
		var wait int64 = -1
		for _, st := range shards {
			l, ok := st.Limits[lm.Name]
			if !st.Exists || st.Merged || !ok {
				continue
			}
			seen = true
			s.Shards = max(s.Shards, st.Level) // one acquire can take one shard's share
			level := int64(st.Level)
			total += bucket.Level(l.W, bucket.Clock(l.Params, now), l.Params) / level
			credit += l.CR / level
			if n := needed[lm.Name]; n > 0 {
				w := bucket.Wait(l.W, n*level, l.Params, now)
				if l.CR >= n*level {
					w = 0 // its credits pay for it now
				}
				if wait < 0 || w < wait {
					wait = w
				}
			}
		}
		if !seen {
			total = lm.Capacity * Milli
			wait = 0
			if needed[lm.Name] > total {
				p := ParamsOf(lm)
				wait = bucket.Wait(bucket.Clock(p, now), needed[lm.Name], p, now)
			}
		}
		s.Available = bucket.Whole(total)
		s.Credit = bucket.Whole(credit)
		s.ResetAt = resetAt(ParamsOf(lm), now)
		if wait > 0 {
			s.Exceeded = true
			s.RetryAfter = msDuration(wait)
		}
		out = append(out, s)
	}
	return out
}

// resetAt is, for a calendar limit, the next boundary of its period after
// now; the zero time otherwise.
func resetAt(p bucket.Params, now int64) time.Time {
	if !bucket.IsCalendar(p.RefillPeriod) {
		return time.Time{}
	}
	return time.UnixMilli(bucket.Next(p.RefillPeriod, now)).UTC()
}

func msDuration(ms int64) time.Duration {
	if ms > int64(1<<62)/int64(time.Millisecond) {
		return time.Duration(1 << 62)
	}
	return time.Duration(ms) * time.Millisecond
}
