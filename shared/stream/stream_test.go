package stream

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zeroae/zae-limiter-go/shared/dynamo"
	"github.com/zeroae/zae-limiter-go/shared/schema"
)

const arn = "arn:aws:dynamodb:us-east-1:123456789012:table/limiter/stream/2026-01-02T03:04:05.678"

func image(pk string) map[string]events.DynamoDBAttributeValue {
	return map[string]events.DynamoDBAttributeValue{
		"PK": events.NewStringAttribute(pk), "SK": events.NewStringAttribute("#STATE"),
		"n": events.NewNumberAttribute("42"),
	}
}

func record(name, seq string, old, new map[string]events.DynamoDBAttributeValue, who *events.DynamoDBUserIdentity) events.DynamoDBEventRecord {
	return events.DynamoDBEventRecord{
		EventName: name, EventSourceArn: arn, UserIdentity: who,
		Change: events.DynamoDBStreamRecord{
			SequenceNumber: seq, OldImage: old, NewImage: new,
			ApproximateCreationDateTime: events.SecondsEpochTime{Time: time.Unix(1767322800, 0)},
			Keys:                        map[string]events.DynamoDBAttributeValue{"PK": events.NewStringAttribute("p"), "SK": events.NewStringAttribute("#STATE")},
		},
	}
}

func TestDecode_kinds(t *testing.T) {
	ttl := &events.DynamoDBUserIdentity{Type: TTLIdentityType, PrincipalID: TTLIdentityPrincipal}
	caller := &events.DynamoDBUserIdentity{Type: "Service", PrincipalID: "other.amazonaws.com"}
	for _, c := range []struct {
		name string
		rec  events.DynamoDBEventRecord
		want Kind
	}{
		{"insert", record(EventInsert, "1", nil, image("a"), nil), Insert},
		{"modify", record(EventModify, "2", image("a"), image("a"), nil), Modify},
		{"delete by a caller", record(EventRemove, "3", image("a"), nil, nil), Remove},
		{"delete by another service", record(EventRemove, "3", image("a"), nil, caller), Remove},
		{"TTL delete on AWS", record(EventRemove, "4", image("a"), nil, ttl), Expire},
		{"TTL delete on DynamoDB Local", record(EventLocalTTL, "5", image("a"), nil, nil), Expire},
	} {
		t.Run(c.name, func(t *testing.T) {
			r, err := Decode(c.rec)
			require.NoError(t, err)
			assert.Equal(t, c.want, r.Kind)
			assert.Equal(t, c.rec.EventName, r.EventName)
			assert.Equal(t, schema.Key{PK: "p", SK: "#STATE"}, r.Key())
			assert.Equal(t, "2026-01-02T03:04:05.678", r.Stream)
			assert.Equal(t, int64(1767322800), r.Time.Unix())
			assert.Len(t, r.Position, PositionDigits)
		})
	}
}

func TestDecode_rejects(t *testing.T) {
	bad := events.NewNumberAttribute("1")
	for _, c := range []struct {
		name string
		rec  events.DynamoDBEventRecord
		want string
	}{
		{"no sequence number", record(EventInsert, "", nil, image("a"), nil), "no SequenceNumber"},
		{"letters in the sequence number", record(EventInsert, "12x", nil, image("a"), nil), `SequenceNumber "12x"`},
		{"41 digits", record(EventInsert, "12345678901234567890123456789012345678901", nil, image("a"), nil), "want 1 to 40 digits"},
		{"unknown event", record("TRUNCATE", "7", image("a"), nil, nil), `unknown eventName "TRUNCATE"`},
		{"local unknown event keeping an item", record(EventLocalTTL, "7", image("a"), image("a"), nil), "unknown eventName"},
		{"insert without image", record(EventInsert, "8", nil, nil, nil), "INSERT without NewImage"},
		{"modify without old image", record(EventModify, "9", nil, image("a"), nil), "MODIFY without OldImage"},
		{"no key", func() events.DynamoDBEventRecord {
			r := record(EventInsert, "10", nil, map[string]events.DynamoDBAttributeValue{"x": bad}, nil)
			r.Change.Keys = nil
			return r
		}(), "no key"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Decode(c.rec)
			require.Error(t, err)
			assert.Contains(t, err.Error(), c.want)
		})
	}
}

func TestPosition_ordersAsStrings(t *testing.T) {
	seqs := []string{"9", "100000000000000000001", "100000000000000000002", "999999999999999999999", "1000000000000000000000", "4000000000000000000000000000000000000000"}
	prev := ""
	for _, s := range seqs {
		p, err := Position(s)
		require.NoError(t, err)
		assert.Len(t, p, PositionDigits)
		assert.Greater(t, p, prev, "%s", s)
		prev = p
	}
	assert.Equal(t, "", Label("arn:aws:dynamodb:us-east-1:1:table/t"))
}

func TestItem_everyType(t *testing.T) {
	img := map[string]events.DynamoDBAttributeValue{
		"s": events.NewStringAttribute("x"), "n": events.NewNumberAttribute("-12.5"),
		"b": events.NewBinaryAttribute([]byte{1, 2}), "t": events.NewBooleanAttribute(true),
		"z": events.NewNullAttribute(), "ss": events.NewStringSetAttribute([]string{"a", "b"}),
		"ns": events.NewNumberSetAttribute([]string{"1"}), "bs": events.NewBinarySetAttribute([][]byte{{3}}),
		"l": events.NewListAttribute([]events.DynamoDBAttributeValue{events.NewStringAttribute("e")}),
		"m": events.NewMapAttribute(map[string]events.DynamoDBAttributeValue{"k": events.NewNumberAttribute("7")}),
	}
	it, err := Item(img)
	require.NoError(t, err)
	assert.Equal(t, dynamo.Item{
		"s": &types.AttributeValueMemberS{Value: "x"}, "n": &types.AttributeValueMemberN{Value: "-12.5"},
		"b": &types.AttributeValueMemberB{Value: []byte{1, 2}}, "t": &types.AttributeValueMemberBOOL{Value: true},
		"z": &types.AttributeValueMemberNULL{Value: true}, "ss": &types.AttributeValueMemberSS{Value: []string{"a", "b"}},
		"ns": &types.AttributeValueMemberNS{Value: []string{"1"}}, "bs": &types.AttributeValueMemberBS{Value: [][]byte{{3}}},
		"l": &types.AttributeValueMemberL{Value: []types.AttributeValue{&types.AttributeValueMemberS{Value: "e"}}},
		"m": &types.AttributeValueMemberM{Value: dynamo.Item{"k": &types.AttributeValueMemberN{Value: "7"}}},
	}, it)
	none, err := Item(nil)
	require.NoError(t, err)
	assert.Nil(t, none)
}

// A record that does not unmarshal is kept with its error and sequence
// number; the others decode.
func TestEvent_recordByRecord(t *testing.T) {
	good, err := json.Marshal(record(EventModify, "21", image("a"), image("a"), nil))
	require.NoError(t, err)
	doc := `{"Records": [` + string(good) + `,
		{"eventName": "MODIFY", "dynamodb": {"SequenceNumber": "22", "NewImage": {"x": {"Q": "?"}}}},
		{"eventName": "MODIFY", "dynamodb": {"NewImage": {"x": {"N": 5}}}}]}`
	var ev Event
	require.NoError(t, json.Unmarshal([]byte(doc), &ev))
	require.Len(t, ev.Records, 3)
	assert.NoError(t, ev.Records[0].Err)
	r, err := Decode(ev.Records[0].DynamoDBEventRecord)
	require.NoError(t, err)
	assert.Equal(t, Modify, r.Kind)
	require.Error(t, ev.Records[1].Err)
	assert.Equal(t, "22", ev.Records[1].Change.SequenceNumber)
	assert.Contains(t, ev.Records[1].Err.Error(), "record 1 (22)")
	require.Error(t, ev.Records[2].Err)
	assert.Contains(t, ev.Records[2].Err.Error(), "no sequence number")

	back, err := json.Marshal(ev)
	require.NoError(t, err)
	var again events.DynamoDBEvent
	require.NoError(t, json.Unmarshal(back, &again))
	assert.Equal(t, "21", again.Records[0].Change.SequenceNumber)

	assert.Error(t, json.Unmarshal([]byte(`{"Records": 3}`), &ev))
}

func TestFailures(t *testing.T) {
	var f Failures
	resp, err := f.Response()
	require.NoError(t, err)
	assert.Equal(t, []events.DynamoDBBatchItemFailure{}, resp.BatchItemFailures, "an empty list, never null")

	for _, s := range []string{"300000000000000000000", "9", "100000000000000000000", "9"} {
		f.Add(s)
	}
	assert.Equal(t, 3, f.Len())
	assert.True(t, f.Has("9"))
	resp, err = f.Response()
	require.NoError(t, err)
	assert.Equal(t, []events.DynamoDBBatchItemFailure{{ItemIdentifier: "9"},
		{ItemIdentifier: "100000000000000000000"}, {ItemIdentifier: "300000000000000000000"}}, resp.BatchItemFailures)

	f.Add("")
	_, err = f.Response()
	assert.ErrorIs(t, err, ErrUnidentified)
}

func TestLag(t *testing.T) {
	now := time.Unix(1000, 0)
	recs := []Record{{Time: time.Unix(990, 0)}, {}, {Time: time.Unix(995, 0)}}
	assert.Equal(t, 10*time.Second, Lag(recs, now))
	assert.Equal(t, time.Duration(0), Lag(nil, now))
	assert.Equal(t, time.Duration(0), Lag([]Record{{Time: time.Unix(2000, 0)}}, now), "a clock behind the stream is no lag")
}
