package streamtest_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zeroae/zae-limiter-go/shared/ddblocal/ddbtest"
	"github.com/zeroae/zae-limiter-go/shared/dynamo"
	"github.com/zeroae/zae-limiter-go/shared/schema"
	"github.com/zeroae/zae-limiter-go/shared/stream"
	"github.com/zeroae/zae-limiter-go/shared/stream/streamtest"
)

func TestMain(m *testing.M) { ddbtest.Main(m) }

// What DynamoDB Local really sends, decoded by package stream: an insert,
// a modify with both images, a delete, and a TTL delete in DynamoDB
// Local's own form (eventName UNKNOWN_TO_SDK_VERSION, no userIdentity).
func TestReader_localStreamDecodes(t *testing.T) {
	// A table without indexes: DynamoDB Local's TTL sweeper does not expire
	// items of a table with the product's four GSIs.
	table := plainTable(t)
	db := ddbtest.Client(t)
	ctx := context.Background()
	v := int64(0)
	put := func(pk string, ttl int64) {
		v++ // an unchanged item makes no stream record
		it := dynamo.Item{schema.PK: dynamo.S(pk), schema.SK: dynamo.S("#X"), "v": dynamo.N(v)}
		if ttl > 0 {
			it[schema.TTL] = dynamo.N(ttl)
		}
		_, err := db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(table), Item: it})
		require.NoError(t, err)
	}
	put("a", 0)
	put("a", 0)
	_, err := db.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String(table),
		Key: dynamo.Item{schema.PK: dynamo.S("a"), schema.SK: dynamo.S("#X")}})
	require.NoError(t, err)
	put("b", time.Now().Add(-24*time.Hour).Unix()) // expired: the sweeper deletes it within seconds

	r := streamtest.New(t, ddbtest.Config(t), table)
	recs := r.WaitFor(t, 5, time.Minute)
	require.Len(t, recs, 5)
	var kinds []stream.Kind
	prev := ""
	for _, er := range recs {
		rec, err := stream.Decode(er)
		require.NoError(t, err, "%+v", er)
		kinds = append(kinds, rec.Kind)
		assert.Greater(t, rec.Position, prev, "records arrive in order")
		prev = rec.Position
		assert.Equal(t, stream.Label(r.ARN()), rec.Stream)
		// DynamoDB Local rounds the creation time down to the minute (AWS:
		// to the second).
		assert.False(t, rec.Time.After(time.Now()), "%v", rec.Time)
		assert.WithinDuration(t, time.Now(), rec.Time, 5*time.Minute)
	}
	assert.Equal(t, []stream.Kind{stream.Insert, stream.Modify, stream.Remove, stream.Insert, stream.Expire}, kinds)
	assert.Equal(t, stream.EventLocalTTL, recs[4].EventName, "DynamoDB Local's TTL delete (see reference/local-aws.md)")
	assert.Nil(t, recs[4].UserIdentity)
	assert.Empty(t, r.Next(t), "each record is returned once")
}

// plainTable creates a PK/SK table with a stream (both images) and TTL on
// "ttl", deleted with the test.
func plainTable(t *testing.T) string {
	t.Helper()
	db := ddbtest.Client(t)
	ctx := context.Background()
	name := ddbtest.TableName(t.Name(), strconv.FormatInt(time.Now().UnixNano(), 36))
	_, err := db.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName: aws.String(name), BillingMode: types.BillingModePayPerRequest,
		AttributeDefinitions: []types.AttributeDefinition{
			{AttributeName: aws.String(schema.PK), AttributeType: types.ScalarAttributeTypeS},
			{AttributeName: aws.String(schema.SK), AttributeType: types.ScalarAttributeTypeS},
		},
		KeySchema: []types.KeySchemaElement{
			{AttributeName: aws.String(schema.PK), KeyType: types.KeyTypeHash},
			{AttributeName: aws.String(schema.SK), KeyType: types.KeyTypeRange},
		},
		StreamSpecification: &types.StreamSpecification{StreamEnabled: aws.Bool(true), StreamViewType: schema.StreamViewType},
	})
	require.NoError(t, err)
	t.Cleanup(func() {
		_, err := db.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: aws.String(name)})
		assert.NoError(t, err)
	})
	_, err = db.UpdateTimeToLive(ctx, schema.TTLInput(name))
	require.NoError(t, err)
	return name
}
