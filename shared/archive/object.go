package archive

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/zeroae/zae-limiter-go/shared/store"
)

// Prefix is where every archive object lives in the bucket (the Athena
// table's LOCATION is s3://BUCKET/audit/).
const Prefix = "audit/"

// Object content type and encoding, as the reference writes them.
const (
	contentType     = "application/x-ndjson"
	contentEncoding = "gzip"
	objectSuffix    = ".jsonl.gz"
)

// Line is one archived event: one JSON object per line of an object. Its
// fields are the columns of the Athena table in docs/audit-archive.md.
type Line struct {
	// NamespaceID is the opaque id of the event's namespace (`namespace
	// list` maps names to ids).
	NamespaceID string `json:"namespace_id"`
	EventID     string `json:"event_id"`
	// Timestamp is RFC 3339, UTC, to the second, as stored.
	Timestamp string `json:"timestamp"`
	Action    string `json:"action"`
	EntityID  string `json:"entity_id"`
	Principal string `json:"principal"`
	Resource  string `json:"resource,omitempty"`
	// Details is always an object ({} when the event has none).
	Details map[string]any `json:"details"`
}

func lineOf(rec store.AuditRecord) Line {
	ev := rec.Event
	d := ev.Details
	if d == nil {
		d = map[string]any{}
	}
	return Line{
		NamespaceID: rec.Namespace, EventID: ev.EventID, Timestamp: ev.Timestamp.UTC().Format(time.RFC3339),
		Action: ev.Action, EntityID: ev.EntityID, Principal: ev.Principal, Resource: ev.Resource, Details: d,
	}
}

// Event returns the line as the store's AuditEvent (details nil when empty,
// as the store reads them).
func (l Line) Event() (store.AuditEvent, error) {
	ts, err := time.Parse(time.RFC3339, l.Timestamp)
	if err != nil {
		return store.AuditEvent{}, fmt.Errorf("event %s: timestamp %q: %w", l.EventID, l.Timestamp, err)
	}
	ev := store.AuditEvent{
		EventID: l.EventID, Timestamp: ts.UTC(), Action: l.Action, EntityID: l.EntityID,
		Principal: l.Principal, Resource: l.Resource,
	}
	if len(l.Details) > 0 {
		ev.Details = l.Details
	}
	return ev, nil
}

// object is one archive object, encoded.
type object struct {
	key    string
	body   []byte
	sum    string // hex SHA-256 of body
	events []store.AuditRecord
}

// encodeObject renders the records of one day (in event id order) as gzip
// JSON Lines. The bytes depend only on the records: gzip's header carries
// no name and no time.
func encodeObject(day string, recs []store.AuditRecord) (object, error) {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	enc := json.NewEncoder(zw)
	enc.SetEscapeHTML(false)
	for _, r := range recs {
		if err := enc.Encode(lineOf(r)); err != nil {
			return object{}, fmt.Errorf("encode event %s: %w", r.Event.EventID, err)
		}
	}
	if err := zw.Close(); err != nil {
		return object{}, fmt.Errorf("compress archive object: %w", err)
	}
	key, err := ObjectKey(day, recs[0].Event.EventID, recs[len(recs)-1].Event.EventID)
	if err != nil {
		return object{}, err
	}
	return object{key: key, body: buf.Bytes(), sum: checksum(buf.Bytes()), events: recs}, nil
}

func checksum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// ObjectKey names the object holding the events first..last (event ids) of
// day ("2006-01-02"): audit/year=YYYY/month=MM/day=DD/{first}-{last}.jsonl.gz.
func ObjectKey(day, first, last string) (string, error) {
	d, err := time.Parse(time.DateOnly, day)
	if err != nil {
		return "", fmt.Errorf("archive day %q: want YYYY-MM-DD", day)
	}
	return PartitionPrefix(d) + first + "-" + last + objectSuffix, nil
}

// PartitionPrefix is the Hive-style prefix of a UTC day's objects.
func PartitionPrefix(day time.Time) string {
	day = day.UTC()
	return fmt.Sprintf("%syear=%04d/month=%02d/day=%02d/", Prefix, day.Year(), int(day.Month()), day.Day())
}

// parseKey returns the day of an archive object key; ok is false for any
// other key.
func parseKey(key string) (day string, ok bool) {
	var y, m, d int
	rest, found := strings.CutPrefix(key, Prefix)
	if !found || !strings.HasSuffix(key, objectSuffix) {
		return "", false
	}
	if n, err := fmt.Sscanf(rest, "year=%4d/month=%2d/day=%2d/", &y, &m, &d); n != 3 || err != nil {
		return "", false
	}
	t := time.Date(y, time.Month(m), d, 0, 0, 0, 0, time.UTC)
	if t.Year() != y || int(t.Month()) != m || t.Day() != d {
		return "", false
	}
	if !strings.HasPrefix(key, PartitionPrefix(t)) {
		return "", false
	}
	return t.Format(time.DateOnly), true
}

// decodeObject reads the lines of a (gzip) object body.
func decodeObject(body []byte) ([]Line, error) {
	zr, err := gzip.NewReader(bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("not a gzip object: %w", err)
	}
	var out []Line
	sc := bufio.NewScanner(zr)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for n := 1; sc.Scan(); n++ {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		var l Line
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		if l.NamespaceID == "" || l.EntityID == "" || l.EventID == "" {
			return nil, fmt.Errorf("line %d: namespace_id, entity_id and event_id are required", n)
		}
		out = append(out, l)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read object: %w", err)
	}
	if err := zr.Close(); err != nil && err != io.EOF {
		return nil, fmt.Errorf("read object: %w", err)
	}
	return out, nil
}
