// Package streamtest reads a table's DynamoDB stream (DynamoDB Local's in
// the tests) into the event shape a stream function receives
// (events.DynamoDBEventRecord), the way an event source mapping would
// deliver it: every shard read from its start, records in order, the
// stream ARN as eventSourceARN.
package streamtest

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"
)

// Reader reads one table's stream from the start, returning each record
// once.
type Reader struct {
	c     *dynamodbstreams.Client
	arn   string
	iters map[string]string // open shards: next iterator ("" = not started)
	done  map[string]bool   // closed shards read to their end
}

// New returns a reader of table's stream through an SDK configuration
// pointing at the DynamoDB that holds it (ddbtest.Config).
func New(t testing.TB, cfg aws.Config, table string) *Reader {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := dynamodb.NewFromConfig(cfg).DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(table)})
	if err != nil {
		t.Fatalf("streamtest: describe table %s: %v", table, err)
	}
	if out.Table.LatestStreamArn == nil {
		t.Fatalf("streamtest: table %s has no stream", table)
	}
	return &Reader{c: dynamodbstreams.NewFromConfig(cfg), arn: *out.Table.LatestStreamArn,
		iters: map[string]string{}, done: map[string]bool{}}
}

// ARN is the stream's ARN.
func (r *Reader) ARN() string { return r.arn }

// Next returns the records written since the last call (possibly none).
func (r *Reader) Next(t testing.TB) []events.DynamoDBEventRecord {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	recs, err := r.next(ctx)
	if err != nil {
		t.Fatalf("streamtest: %v", err)
	}
	return recs
}

// WaitFor reads until at least n records have arrived since the call (the
// stream may lag the writes a little), failing t after timeout.
func (r *Reader) WaitFor(t testing.TB, n int, timeout time.Duration) []events.DynamoDBEventRecord {
	t.Helper()
	var out []events.DynamoDBEventRecord
	deadline := time.Now().Add(timeout)
	for {
		out = append(out, r.Next(t)...)
		if len(out) >= n {
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("streamtest: %d of %d records after %s", len(out), n, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (r *Reader) next(ctx context.Context) ([]events.DynamoDBEventRecord, error) {
	desc, err := r.c.DescribeStream(ctx, &dynamodbstreams.DescribeStreamInput{StreamArn: aws.String(r.arn)})
	if err != nil {
		return nil, fmt.Errorf("describe stream: %w", err)
	}
	// Parents before children: a child's records follow its parent's.
	shards := desc.StreamDescription.Shards
	sort.SliceStable(shards, func(i, j int) bool {
		return aws.ToString(shards[i].SequenceNumberRange.StartingSequenceNumber) <
			aws.ToString(shards[j].SequenceNumberRange.StartingSequenceNumber)
	})
	var out []events.DynamoDBEventRecord
	for _, sh := range shards {
		id := aws.ToString(sh.ShardId)
		if r.done[id] {
			continue
		}
		it := r.iters[id]
		if it == "" {
			got, err := r.c.GetShardIterator(ctx, &dynamodbstreams.GetShardIteratorInput{
				StreamArn: aws.String(r.arn), ShardId: sh.ShardId, ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
			if err != nil {
				return nil, fmt.Errorf("shard iterator %s: %w", id, err)
			}
			it = aws.ToString(got.ShardIterator)
		}
		for it != "" {
			got, err := r.c.GetRecords(ctx, &dynamodbstreams.GetRecordsInput{ShardIterator: aws.String(it)})
			if err != nil {
				return nil, fmt.Errorf("get records %s: %w", id, err)
			}
			for _, rec := range got.Records {
				out = append(out, Event(rec, r.arn))
			}
			next := aws.ToString(got.NextShardIterator)
			if next == "" {
				r.done[id] = true
				delete(r.iters, id)
				break
			}
			r.iters[id] = next
			if len(got.Records) == 0 {
				break // caught up with an open shard
			}
			it = next
		}
	}
	return out, nil
}

// Event converts a record read from the Streams API to the record of a
// Lambda stream event from stream arn.
func Event(rec types.Record, arn string) events.DynamoDBEventRecord {
	out := events.DynamoDBEventRecord{
		AWSRegion:      aws.ToString(rec.AwsRegion),
		EventID:        aws.ToString(rec.EventID),
		EventName:      string(rec.EventName),
		EventSource:    aws.ToString(rec.EventSource),
		EventVersion:   aws.ToString(rec.EventVersion),
		EventSourceArn: arn,
	}
	if id := rec.UserIdentity; id != nil {
		out.UserIdentity = &events.DynamoDBUserIdentity{Type: aws.ToString(id.Type), PrincipalID: aws.ToString(id.PrincipalId)}
	}
	if d := rec.Dynamodb; d != nil {
		out.Change = events.DynamoDBStreamRecord{
			Keys:           image(d.Keys),
			NewImage:       image(d.NewImage),
			OldImage:       image(d.OldImage),
			SequenceNumber: aws.ToString(d.SequenceNumber),
			SizeBytes:      aws.ToInt64(d.SizeBytes),
			StreamViewType: string(d.StreamViewType),
		}
		if d.ApproximateCreationDateTime != nil {
			out.Change.ApproximateCreationDateTime = events.SecondsEpochTime{Time: *d.ApproximateCreationDateTime}
		}
	}
	return out
}

func image(m map[string]types.AttributeValue) map[string]events.DynamoDBAttributeValue {
	if m == nil {
		return nil
	}
	out := make(map[string]events.DynamoDBAttributeValue, len(m))
	for k, v := range m {
		out[k] = value(v)
	}
	return out
}

func value(v types.AttributeValue) events.DynamoDBAttributeValue {
	switch x := v.(type) {
	case *types.AttributeValueMemberS:
		return events.NewStringAttribute(x.Value)
	case *types.AttributeValueMemberN:
		return events.NewNumberAttribute(x.Value)
	case *types.AttributeValueMemberBOOL:
		return events.NewBooleanAttribute(x.Value)
	case *types.AttributeValueMemberB:
		return events.NewBinaryAttribute(x.Value)
	case *types.AttributeValueMemberSS:
		return events.NewStringSetAttribute(x.Value)
	case *types.AttributeValueMemberNS:
		return events.NewNumberSetAttribute(x.Value)
	case *types.AttributeValueMemberBS:
		return events.NewBinarySetAttribute(x.Value)
	case *types.AttributeValueMemberL:
		l := make([]events.DynamoDBAttributeValue, len(x.Value))
		for i, e := range x.Value {
			l[i] = value(e)
		}
		return events.NewListAttribute(l)
	case *types.AttributeValueMemberM:
		return events.NewMapAttribute(image(x.Value))
	}
	return events.NewNullAttribute()
}

// Damaged is rec with every attribute of its new image whose name ends in
// suffix replaced by a number out of int64's range ("1e400"): a record a
// stream function cannot read. It fails t when no attribute matches.
func Damaged(t testing.TB, rec events.DynamoDBEventRecord, suffix string) events.DynamoDBEventRecord {
	t.Helper()
	img := make(map[string]events.DynamoDBAttributeValue, len(rec.Change.NewImage))
	n := 0
	for k, v := range rec.Change.NewImage {
		if strings.HasSuffix(k, suffix) {
			v = events.NewNumberAttribute("1e400")
			n++
		}
		img[k] = v
	}
	if n == 0 {
		t.Fatalf("streamtest: no attribute *%s in the record's new image", suffix)
	}
	rec.Change.NewImage = img
	return rec
}
