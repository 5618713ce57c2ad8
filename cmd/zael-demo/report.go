package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/zeroae/zae-limiter-go/shared/dynamo"
	"github.com/zeroae/zae-limiter-go/shared/limits"
	"github.com/zeroae/zae-limiter-go/shared/loadgen"
	"github.com/zeroae/zae-limiter-go/shared/schema"
)

// Row is one entity's line of the final table.
type Row struct {
	ID, Parent string
	Children   []string
	Limits     []limits.Limit // as resolved for the resource
	// Tally is nil for a parent, whose usage is its children's.
	Tally    *Tally
	Used     map[string]int64
	P50, P99 time.Duration
	// Bucket is what the bucket's consumed counters gained over the run
	// (nil when they could not be read).
	Bucket map[string]int64
}

// Report is the outcome of a run.
type Report struct {
	Resource string
	Elapsed  time.Duration
	Rows     []*Row
	// Usage is what the aggregator's snapshots gained over the run (nil:
	// not read); UsageBehind the entities whose snapshots still differed
	// from their buckets' counters when the demo stopped waiting.
	Usage       Counters
	UsageBehind []string
}

// Row returns the row of id, or nil.
func (r *Report) Row(id string) *Row {
	for _, row := range r.Rows {
		if row.ID == id {
			return row
		}
	}
	return nil
}

// Limit returns the limit called name of the row, and whether it has one.
func (r *Row) Limit(name string) (limits.Limit, bool) {
	i := slices.IndexFunc(r.Limits, func(l limits.Limit) bool { return l.Name == name })
	if i < 0 {
		return limits.Limit{}, false
	}
	return r.Limits[i], true
}

// Envelope is the most a limit can admit over d from a full bucket: its
// capacity plus what refills in d.
func Envelope(l limits.Limit, d time.Duration) int64 {
	return l.Capacity + int64(float64(l.RefillAmount)*d.Seconds()/float64(l.RefillPeriodSeconds))
}

// BuildReport puts the tallies together with the limits in force and what
// the buckets' consumed counters gained over the run (nil: unknown).
func BuildReport(s Scenario, limitsOf map[string][]limits.Limit, tallies map[string]*Tally, elapsed time.Duration,
	buckets Counters) *Report {
	rep := &Report{Resource: s.Resource, Elapsed: elapsed}
	for _, e := range s.Entities {
		row := &Row{ID: e.ID, Parent: e.Parent, Children: s.Children(e.ID), Limits: limitsOf[e.ID],
			Tally: tallies[e.ID], Used: map[string]int64{}, Bucket: buckets[e.ID]}
		if t := row.Tally; t != nil {
			row.Used = t.Used
			row.P50, row.P99 = loadgen.Percentile(t.Latencies, 50), loadgen.Percentile(t.Latencies, 99)
		}
		for _, c := range row.Children {
			if t := tallies[c]; t != nil {
				for k, v := range t.Used {
					row.Used[k] += v
				}
			}
		}
		rep.Rows = append(rep.Rows, row)
	}
	return rep
}

// Counters are each entity's net consumption per limit, in whole tokens.
type Counters map[string]map[string]int64

// Delta is c minus before, entity by entity and limit by limit.
func (c Counters) Delta(before Counters) Counters {
	out := Counters{}
	for id, ls := range c {
		out[id] = map[string]int64{}
		for name, n := range ls {
			out[id][name] = n - before[id][name]
		}
	}
	return out
}

// BucketCounters reads the net consumed counter of each named limit in
// every entity's bucket (summed over its shards), in whole tokens.
func BucketCounters(ctx context.Context, db *dynamodb.Client, table, nsID, resource string, ids, names []string) (Counters, error) {
	out := Counters{}
	for _, id := range ids {
		out[id] = map[string]int64{}
		for shard, count := 0, 1; shard < count; shard++ {
			k := schema.BucketKey(nsID, id, resource, shard)
			got, err := db.GetItem(ctx, &dynamodb.GetItemInput{
				TableName:      aws.String(table),
				Key:            dynamo.Item{schema.PK: dynamo.S(k.PK), schema.SK: dynamo.S(k.SK)},
				ConsistentRead: aws.Bool(true),
			})
			if err != nil {
				return nil, err
			}
			if shard == 0 {
				if n, ok := dynamo.GetN(got.Item, schema.AttrShardCount); ok {
					count = int(n)
				}
			}
			for _, name := range names {
				tc, _ := dynamo.GetN(got.Item, schema.BucketAttr(name, schema.SuffixConsumed))
				out[id][name] += tc
			}
		}
		for _, name := range names {
			out[id][name] /= 1000 // millitokens
		}
	}
	return out, nil
}

// Print writes the table and what it means.
func (r *Report) Print(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	usageCol := func(string) string { return "" }
	if r.Usage != nil {
		usageCol = func(id string) string {
			if u, ok := r.Usage[id]; ok {
				return num(u["tpm"]) + "\t"
			}
			return "?\t"
		}
	}
	head := "ENTITY\tADMITTED\tREJECTED\tROLLED BACK\tRPM USED\tTPM USED\tBUCKET TPM\t"
	if r.Usage != nil {
		head += "USAGE TPM\t"
	}
	fmt.Fprintln(tw, head+"P50\tP99\tLIMITS (per min)")
	for _, row := range r.Rows {
		name, adm, rej, rb, p50, p99 := row.ID, "-", "-", "-", "-", "-"
		if row.Parent != "" {
			name = "└ " + name
		}
		if t := row.Tally; t != nil {
			adm, rej, rb = num(t.Admitted), num(t.Rejected), num(t.RolledBack)
			p50, p99 = millis(row.P50), millis(row.P99)
		}
		bucket := "?"
		if row.Bucket != nil {
			bucket = num(row.Bucket["tpm"])
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s%s\t%s\t%s\n", name, adm, rej, rb,
			num(row.Used["rpm"]), num(row.Used["tpm"]), bucket, usageCol(row.ID), p50, p99, perMin(row.Limits))
	}
	_ = tw.Flush()
	fmt.Fprintln(w)
	for _, line := range r.Explain() {
		fmt.Fprintln(w, line)
	}
}

// Explain says in a few lines what happened.
func (r *Report) Explain() []string {
	secs := fmt.Sprintf("%.0fs", r.Elapsed.Seconds())
	var lines, free []string // free: callers never denied
	for _, row := range r.Rows {
		t := row.Tally
		switch {
		case t == nil && len(row.Children) > 0:
			var denied int64
			for _, c := range row.Children {
				if ct := r.Row(c).Tally; ct != nil {
					denied += ct.BlockedBy[row.ID+" tpm"] + ct.BlockedBy[row.ID+" rpm"]
				}
			}
			l, _ := row.Limit("tpm")
			lines = append(lines, fmt.Sprintf("- %s bounded its keys %s together: %s of their denials came from the project's limits, "+
				"and their combined %s tpm stayed within its %s (%s/min burst + %s of refill).",
				row.ID, strings.Join(row.Children, " and "), num(denied), num(row.Used["tpm"]),
				num(Envelope(l, r.Elapsed)), num(l.Capacity), secs))
		case t == nil:
		case t.Rejected == 0:
			free = append(free, row.ID)
		default:
			top, n := "", int64(0)
			for k, v := range t.BlockedBy {
				if v > n || (v == n && k < top) {
					top, n = k, v
				}
			}
			who, lim, _ := strings.Cut(top, " ")
			whose := "its own " + lim + " limit"
			if who != row.ID {
				whose = who + "'s " + lim + " limit"
			}
			lines = append(lines, fmt.Sprintf("- %s was denied %s of %s calls, mostly by %s (%s).",
				row.ID, num(t.Rejected), num(t.Attempts), whose, plural(n, "time")))
		}
	}
	for _, id := range free {
		row := r.Row(id)
		l, _ := row.Limit("tpm")
		lines = append(lines, fmt.Sprintf("- %s never hit a limit: it used %s tpm of the %s its limits allow in %s.",
			id, num(row.Used["tpm"]), num(Envelope(l, r.Elapsed)), secs))
	}
	lines = append(lines, "- Each call acquired {rpm: 1, tpm: input + max_tokens} over HTTP, adjusted tpm to the real usage "+
		"and committed; failed model calls were rolled back and gave everything back, so USED is what the limiter still holds.")
	var off []string
	for _, row := range r.Rows {
		if row.Bucket == nil || row.Bucket["tpm"] != row.Used["tpm"] {
			off = append(off, row.ID)
		}
	}
	if len(off) == 0 {
		lines = append(lines, "- BUCKET TPM, the net consumed counter stored in each bucket, matches TPM USED for every entity.")
	} else {
		lines = append(lines, fmt.Sprintf("- BUCKET TPM, the net consumed counter stored in each bucket, differs from TPM USED for %s.",
			strings.Join(off, ", ")))
	}
	if r.Usage != nil {
		off = off[:0]
		for _, row := range r.Rows {
			if row.Bucket == nil || r.Usage[row.ID]["tpm"] != row.Bucket["tpm"] || r.Usage[row.ID]["rpm"] != row.Bucket["rpm"] {
				off = append(off, row.ID)
			}
		}
		switch {
		case len(off) == 0:
			lines = append(lines, "- USAGE TPM, what the aggregator function counted into its usage snapshots from the table's stream, "+
				"matches the buckets too, requests included: no bucket change was lost or counted twice.")
		case len(r.UsageBehind) > 0:
			lines = append(lines, fmt.Sprintf("- USAGE TPM, the aggregator's usage snapshots, had not caught up with the buckets of %s "+
				"when the demo stopped waiting (see `zae-limiter local status` for its stream mapping).", strings.Join(r.UsageBehind, ", ")))
		default:
			lines = append(lines, fmt.Sprintf("- USAGE TPM, the aggregator's usage snapshots, differs from the buckets for %s.",
				strings.Join(off, ", ")))
		}
	}
	return lines
}

func perMin(ls []limits.Limit) string {
	s := make([]string, 0, len(ls))
	for _, l := range ls {
		v := strconv.FormatInt(l.RefillAmount*60/l.RefillPeriodSeconds, 10)
		if n := l.RefillAmount * 60 / l.RefillPeriodSeconds; n >= 1000 && n%1000 == 0 {
			v = strconv.FormatInt(n/1000, 10) + "k"
		}
		s = append(s, l.Name+" "+v)
	}
	return strings.Join(s, ", ")
}

func millis(d time.Duration) string {
	return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond))
}

// num renders n with thousands separators.
func num(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	if neg {
		s = "-" + s
	}
	return s
}

func plural(n int64, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return num(n) + " " + word + "s"
}
