package usage

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/zeroae/zae-limiter-go/shared/dynamo"
	"github.com/zeroae/zae-limiter-go/shared/schema"
)

// Querier lists the calls the usage reads make (Query on the table and on
// GSI2). *dynamodb.Client satisfies it.
type Querier = dynamo.Querier

// Filter selects snapshots.
type Filter struct {
	// Namespace is the namespace id.
	Namespace string
	// EntityID and Resource: at least one; both narrow together.
	EntityID, Resource string
	// Windows to list (nil: every window).
	Windows []Window
	// From and To bound the time: a snapshot is listed when its window
	// overlaps [From, To] (a zero bound is open).
	From, To time.Time
}

// ErrNoSubject: a filter must name an entity or a resource.
var ErrNoSubject = errors.New("usage: name an entity, a resource or both")

// List returns the snapshots that match f, oldest window first (then by
// window, resource and entity). With an entity it queries the entity's
// partition (narrowed to the resource, window and time range when given);
// with a resource alone it queries GSI2 by resource, window and time.
func List(ctx context.Context, db Querier, table string, f Filter) ([]Snapshot, error) {
	if f.EntityID == "" && f.Resource == "" {
		return nil, ErrNoSubject
	}
	windows := f.Windows
	if len(windows) == 0 {
		windows = Windows
	}
	var ins []*dynamodb.QueryInput
	switch {
	case f.EntityID != "" && f.Resource == "":
		// Every snapshot of the entity: SKs "#USAGE#{res}#..." ('~' sorts
		// after every character a resource, window or time holds).
		ins = append(ins, keyQuery(table, "", schema.PK, schema.EntityPK(f.Namespace, f.EntityID), schema.SK,
			schema.SKUsagePrefix, schema.SKUsagePrefix+"~"))
	default:
		for _, w := range windows {
			lo, hi := "", "~"
			if !f.From.IsZero() {
				lo = formatStart(w.Start(f.From))
			}
			if !f.To.IsZero() {
				hi = formatStart(w.Start(f.To))
			}
			if f.EntityID != "" {
				p := schema.UsageKey(f.Namespace, f.EntityID, f.Resource, string(w), "").SK
				ins = append(ins, keyQuery(table, "", schema.PK, schema.EntityPK(f.Namespace, f.EntityID), schema.SK, p+lo, p+hi))
			} else {
				p := schema.UsageGSI2SK(string(w), "", "")
				p = p[:len(p)-1] // "USAGE#{win}#": the key ends "{start}#{entity}"
				if hi != "~" {
					hi += "$" // past "{hi}#{any entity}"
				}
				ins = append(ins, keyQuery(table, schema.GSI2, schema.GSI2PK, schema.ResourceGSI2PK(f.Namespace, f.Resource),
					schema.GSI2SK, p+lo, p+hi))
			}
		}
	}
	var out []Snapshot
	for _, in := range ins {
		err := dynamo.QueryAll(ctx, db, in, func(it dynamo.Item) error {
			s, err := Decode(it)
			if err != nil {
				return err
			}
			if f.matches(s, windows) {
				out = append(out, s)
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("query usage snapshots: %w", err)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		switch {
		case !a.Start.Equal(b.Start):
			return a.Start.Before(b.Start)
		case a.Window != b.Window:
			return windowRank(a.Window) < windowRank(b.Window)
		case a.Resource != b.Resource:
			return a.Resource < b.Resource
		}
		return a.EntityID < b.EntityID
	})
	return out, nil
}

// matches applies the whole filter to a snapshot a query returned (a key
// range cannot tell resource "a#hourly" from resource "a" and window
// hourly, nor express the time overlap on every path).
func (f Filter) matches(s Snapshot, windows []Window) bool {
	switch {
	case s.Namespace != f.Namespace,
		f.EntityID != "" && s.EntityID != f.EntityID,
		f.Resource != "" && s.Resource != f.Resource,
		windowRank(s.Window) < 0 || !contains(windows, s.Window),
		!f.From.IsZero() && !s.End().After(f.From),
		!f.To.IsZero() && s.Start.After(f.To):
		return false
	}
	return true
}

func contains(ws []Window, w Window) bool {
	for _, x := range ws {
		if x == w {
			return true
		}
	}
	return false
}

func windowRank(w Window) int {
	for i, x := range Windows {
		if x == w {
			return i
		}
	}
	return -1
}

// keyQuery queries partition pk of an index ("" for the table) for sort
// keys between lo and hi.
func keyQuery(table, index, pkAttr, pk, skAttr, lo, hi string) *dynamodb.QueryInput {
	in := &dynamodb.QueryInput{
		TableName:                aws.String(table),
		KeyConditionExpression:   aws.String("#pk = :pk AND #sk BETWEEN :lo AND :hi"),
		ExpressionAttributeNames: map[string]string{"#pk": pkAttr, "#sk": skAttr},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":pk": dynamo.S(pk), ":lo": dynamo.S(lo), ":hi": dynamo.S(hi),
		},
	}
	if index != "" {
		in.IndexName = aws.String(index)
	}
	return in
}

// Summary adds up the snapshots of one window.
type Summary struct {
	Window    Window
	Snapshots int
	// Limits are sorted by name.
	Limits []LimitTotal
	// From and To are the first window's start and the last window's end.
	From, To time.Time
}

// LimitTotal is one limit's total over a summary's snapshots and its
// average per snapshot (rounded to two decimals).
type LimitTotal struct {
	Name    string
	Total   int64
	Average float64
}

// Summarize adds up the snapshots of window w (the others are left out:
// windows of different lengths overlap and would count usage twice).
func Summarize(snaps []Snapshot, w Window) Summary {
	s := Summary{Window: w}
	totals := map[string]int64{}
	for _, sn := range snaps {
		if sn.Window != w {
			continue
		}
		s.Snapshots++
		if s.From.IsZero() || sn.Start.Before(s.From) {
			s.From = sn.Start
		}
		if end := sn.End(); end.After(s.To) {
			s.To = end
		}
		for name, n := range sn.Counters {
			totals[name] += n
		}
	}
	for _, name := range sortedKeys(totals) {
		avg := float64(totals[name]) / float64(s.Snapshots)
		s.Limits = append(s.Limits, LimitTotal{Name: name, Total: totals[name], Average: math.Round(avg*100) / 100})
	}
	return s
}

// Finest is the finest window among snaps ("" when there are none): what
// a summary of every window sums by default.
func Finest(snaps []Snapshot) Window {
	best := -1
	for _, s := range snaps {
		if r := windowRank(s.Window); r >= 0 && (best < 0 || r < best) {
			best = r
		}
	}
	if best < 0 {
		return ""
	}
	return Windows[best]
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
