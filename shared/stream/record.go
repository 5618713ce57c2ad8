package stream

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/zeroae/zae-limiter-go/shared/dynamo"
	"github.com/zeroae/zae-limiter-go/shared/schema"
)

// Kind is what a record did to its item.
type Kind int

const (
	// Insert: the item was created (NewImage only).
	Insert Kind = iota + 1
	// Modify: the item was changed (OldImage and NewImage).
	Modify
	// Remove: a caller deleted the item (OldImage only).
	Remove
	// Expire: DynamoDB's time to live deleted the item (OldImage only).
	Expire
)

func (k Kind) String() string {
	switch k {
	case Insert:
		return "insert"
	case Modify:
		return "modify"
	case Remove:
		return "remove"
	case Expire:
		return "expire"
	}
	return fmt.Sprintf("kind(%d)", int(k))
}

// Event names of stream records.
const (
	EventInsert = "INSERT"
	EventModify = "MODIFY"
	EventRemove = "REMOVE"
	// EventLocalTTL is the eventName DynamoDB Local gives a TTL delete (the
	// SDK's name for an operation type it does not know).
	EventLocalTTL = "UNKNOWN_TO_SDK_VERSION"
)

// The userIdentity of a TTL delete on AWS.
const (
	TTLIdentityType      = "Service"
	TTLIdentityPrincipal = "dynamodb.amazonaws.com"
)

// Record is one decoded stream record.
type Record struct {
	Kind Kind
	// EventName is the record's eventName as delivered.
	EventName string
	// Seq is the sequence number as delivered: the identifier a batch item
	// failure names.
	Seq string
	// Position is Seq zero-padded to PositionDigits: positions of one stream
	// compare as strings.
	Position string
	// Stream is the label of the stream the record came from (see Label),
	// "" when the record does not name its source.
	Stream string
	// Time is the record's ApproximateCreationDateTime (whole seconds on
	// AWS), the zero time when absent.
	Time time.Time
	// Keys, Old and New are the key and the images (nil when absent).
	Keys, Old, New dynamo.Item
}

// Key is the item's primary key (from Keys, else from an image).
func (r Record) Key() schema.Key {
	for _, it := range []dynamo.Item{r.Keys, r.New, r.Old} {
		if pk := dynamo.GetS(it, schema.PK); pk != "" {
			return schema.Key{PK: pk, SK: dynamo.GetS(it, schema.SK)}
		}
	}
	return schema.Key{}
}

// Image is the item as the record leaves it (New), else as it was (Old).
func (r Record) Image() dynamo.Item {
	if r.New != nil {
		return r.New
	}
	return r.Old
}

// Decode decodes one record of an event. The error names what is wrong: a
// missing or malformed sequence number, an unknown eventName, an image that
// does not convert, or images that do not fit the kind.
func Decode(er events.DynamoDBEventRecord) (Record, error) {
	ch := er.Change
	r := Record{EventName: er.EventName, Seq: ch.SequenceNumber, Stream: Label(er.EventSourceArn), Time: ch.ApproximateCreationDateTime.Time}
	var err error
	if r.Position, err = Position(ch.SequenceNumber); err != nil {
		return r, err
	}
	if r.Keys, err = Item(ch.Keys); err != nil {
		return r, fmt.Errorf("record %s: Keys: %w", r.Seq, err)
	}
	if r.Old, err = Item(ch.OldImage); err != nil {
		return r, fmt.Errorf("record %s: OldImage: %w", r.Seq, err)
	}
	if r.New, err = Item(ch.NewImage); err != nil {
		return r, fmt.Errorf("record %s: NewImage: %w", r.Seq, err)
	}
	if r.Kind, err = classify(er.EventName, er.UserIdentity, r.New != nil); err != nil {
		return r, fmt.Errorf("record %s: %w", r.Seq, err)
	}
	switch {
	case (r.Kind == Insert || r.Kind == Modify) && r.New == nil:
		err = fmt.Errorf("record %s: %s without NewImage (the stream must be NEW_AND_OLD_IMAGES)", r.Seq, er.EventName)
	case r.Kind == Modify && r.Old == nil:
		err = fmt.Errorf("record %s: MODIFY without OldImage (the stream must be NEW_AND_OLD_IMAGES)", r.Seq)
	case r.Key() == (schema.Key{}):
		err = fmt.Errorf("record %s: no key", r.Seq)
	}
	return r, err
}

// classify maps an eventName (and, for deletes, the identity that did it)
// to a Kind.
func classify(name string, who *events.DynamoDBUserIdentity, hasNew bool) (Kind, error) {
	switch name {
	case EventInsert:
		return Insert, nil
	case EventModify:
		return Modify, nil
	case EventRemove:
		if who != nil && who.Type == TTLIdentityType && who.PrincipalID == TTLIdentityPrincipal {
			return Expire, nil
		}
		return Remove, nil
	case EventLocalTTL:
		// DynamoDB Local's TTL delete; any other unknown operation that
		// leaves an item behind is not one.
		if who == nil && !hasNew {
			return Expire, nil
		}
	}
	return 0, fmt.Errorf("unknown eventName %q", name)
}

// PositionDigits is the width of a Position: the longest sequence number
// DynamoDB Streams issues.
const PositionDigits = 40

// Position returns seq left-padded with zeros to PositionDigits, so that
// the positions of one stream compare as strings. seq must be 1 to 40
// decimal digits.
func Position(seq string) (string, error) {
	if seq == "" {
		return "", errors.New("record has no SequenceNumber")
	}
	if len(seq) > PositionDigits || strings.TrimLeft(seq, "0123456789") != "" {
		return "", fmt.Errorf("SequenceNumber %q: want 1 to %d digits", seq, PositionDigits)
	}
	return strings.Repeat("0", PositionDigits-len(seq)) + seq, nil
}

// Label returns the stream label of a stream ARN (the part after
// "/stream/", a time stamp such as 2026-01-02T03:04:05.678): it tells the
// table's streams apart. It is "" for an ARN that names no stream.
func Label(arn string) string {
	_, label, ok := strings.Cut(arn, "/stream/")
	if !ok {
		return ""
	}
	return label
}

// Lag is how long ago the oldest record of recs was written, at now (0
// when no record has a time).
func Lag(recs []Record, now time.Time) time.Duration {
	var oldest time.Time
	for _, r := range recs {
		if !r.Time.IsZero() && (oldest.IsZero() || r.Time.Before(oldest)) {
			oldest = r.Time
		}
	}
	if oldest.IsZero() {
		return 0
	}
	return max(0, now.Sub(oldest))
}
