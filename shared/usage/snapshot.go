package usage

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/zeroae/zae-limiter-go/shared/dynamo"
	"github.com/zeroae/zae-limiter-go/shared/schema"
)

// Attributes of a usage snapshot item (schema.UsageKey). Counters and
// positions are flat attributes named after their limit and source, so
// one UpdateItem ADDs to any of them.
const (
	AttrWindow      = "window"
	AttrWindowStart = "window_start"
	// AttrEvents counts the bucket changes (stream records) folded in.
	AttrEvents = "events"
	// counterPrefix + limit: the limit's net consumption in whole tokens.
	counterPrefix = "c_"
	// positionPrefix + shard [+ "@" + stream label]: the position of the
	// last record of that bucket shard (of that stream) folded in.
	positionPrefix = "at_"
)

// CounterAttr is the attribute of a limit's counter.
func CounterAttr(limit string) string { return counterPrefix + limit }

// PositionAttr is the attribute holding the position of the last record
// of bucket shard j, read from the stream labelled stream, folded into a
// snapshot. Positions of different streams are not comparable, so each
// stream has its own.
func PositionAttr(j int, stream string) string {
	a := positionPrefix + strconv.Itoa(j)
	if stream != "" {
		a += "@" + stream
	}
	return a
}

// SnapshotID names one snapshot: a bucket (namespace, entity, resource)
// and a window.
type SnapshotID struct {
	Namespace string
	EntityID  string
	Resource  string
	Window    Window
	Start     time.Time
}

// Key is the snapshot's primary key.
func (id SnapshotID) Key() schema.Key {
	return schema.UsageKey(id.Namespace, id.EntityID, id.Resource, string(id.Window), formatStart(id.Start))
}

// End is the end (exclusive) of the snapshot's window.
func (id SnapshotID) End() time.Time { return id.Window.End(id.Start) }

// Snapshot is one usage snapshot as stored.
type Snapshot struct {
	SnapshotID
	// Counters are the net consumption per limit in whole tokens (refunds
	// and rollbacks subtracted; may be negative in a window that only
	// refunded).
	Counters map[string]int64
	// Events is the number of bucket changes folded in.
	Events int64
	// TTL is the expiry (epoch seconds), 0 when none.
	TTL int64
}

// Limits are the counter names, sorted.
func (s Snapshot) Limits() []string {
	out := make([]string, 0, len(s.Counters))
	for n := range s.Counters {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Decode reads a snapshot item. The namespace comes from the key.
func Decode(it dynamo.Item) (Snapshot, error) {
	pk := dynamo.GetS(it, schema.PK)
	ns, _, ok := schema.SplitNamespace(pk)
	if !ok || !strings.HasPrefix(dynamo.GetS(it, schema.SK), schema.SKUsagePrefix) {
		return Snapshot{}, fmt.Errorf("usage snapshot %s %s: not a snapshot key", pk, dynamo.GetS(it, schema.SK))
	}
	s := Snapshot{Counters: map[string]int64{}}
	s.Namespace = ns
	s.EntityID = dynamo.GetS(it, schema.AttrEntityID)
	s.Resource = dynamo.GetS(it, schema.AttrResource)
	var errs []string
	w, err := ParseWindow(dynamo.GetS(it, AttrWindow))
	if err != nil {
		errs = append(errs, err.Error())
	}
	s.Window = w
	if s.Start, err = time.Parse(TimeLayout, dynamo.GetS(it, AttrWindowStart)); err != nil {
		errs = append(errs, fmt.Sprintf("window_start %q is not %s", dynamo.GetS(it, AttrWindowStart), TimeLayout))
	}
	for attr := range it {
		name, ok := strings.CutPrefix(attr, counterPrefix)
		if !ok {
			continue
		}
		n, ok := dynamo.GetN(it, attr)
		if !ok {
			errs = append(errs, attr+" is not an integer")
		}
		s.Counters[name] = n
	}
	s.Events, _ = dynamo.GetN(it, AttrEvents)
	s.TTL, _ = dynamo.GetN(it, schema.TTL)
	if s.EntityID == "" || s.Resource == "" {
		errs = append(errs, "entity_id or resource missing")
	}
	if len(errs) > 0 {
		sort.Strings(errs)
		return s, fmt.Errorf("usage snapshot %s %s: %s", pk, dynamo.GetS(it, schema.SK), strings.Join(errs, ", "))
	}
	return s, nil
}
