package store

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zeroae/zae-limiter-go/shared/ddblocal/ddbtest"
	"github.com/zeroae/zae-limiter-go/shared/dynamo"
	"github.com/zeroae/zae-limiter-go/shared/limits"
	"github.com/zeroae/zae-limiter-go/shared/schema"
)

func TestCreateTableIsIdempotent(t *testing.T) {
	ctx := context.Background()
	client := ddbtest.Client(t)
	name := fmt.Sprintf("store-create-%d", time.Now().UnixNano())
	t.Cleanup(func() {
		_, _ = client.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: aws.String(name)})
	})
	st := New(client, Options{Table: name})

	created, err := st.CreateTable(ctx)
	require.NoError(t, err)
	assert.True(t, created)
	created, err = st.CreateTable(ctx)
	require.NoError(t, err)
	assert.False(t, created)

	out, err := client.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(name)})
	require.NoError(t, err)
	assert.Equal(t, types.TableStatusActive, out.Table.TableStatus)
	assert.Len(t, out.Table.GlobalSecondaryIndexes, len(schema.Indexes))
	ttl, err := client.DescribeTimeToLive(ctx, &dynamodb.DescribeTimeToLiveInput{TableName: aws.String(name)})
	require.NoError(t, err)
	assert.Equal(t, types.TimeToLiveStatusEnabled, ttl.TimeToLiveDescription.TimeToLiveStatus)
	assert.Equal(t, schema.TTL, aws.ToString(ttl.TimeToLiveDescription.AttributeName))
	require.NoError(t, st.Ping(ctx))
}

func TestPingFailsWithoutTable(t *testing.T) {
	st := New(ddbtest.Client(t), Options{Table: "no-such-table"})
	err := st.Ping(context.Background())
	require.Error(t, err)
	assert.Contains(t, err.Error(), `ping table "no-such-table"`)
}

func TestVersionRecord(t *testing.T) {
	f := setup(t, Options{})
	_, err := f.st.Version(f.ctx)
	require.ErrorIs(t, err, limits.ErrNotFound)

	require.NoError(t, f.st.EnsureVersion(f.ctx, "client:test"))
	rec, err := f.st.Version(f.ctx)
	require.NoError(t, err)
	assert.Equal(t, schema.Version, rec.SchemaVersion)
	assert.Equal(t, "0.0.0", rec.ClientMinVersion)
	assert.Equal(t, "client:test", rec.UpdatedBy)
	assert.False(t, rec.UpdatedAt.IsZero())

	it := f.get(schema.VersionKey())
	assert.Equal(t, schema.TableNS, dynamo.GetS(it, schema.GSI4PK))
	assert.Equal(t, schema.GSI4SKFor(schema.VersionKey()), dynamo.GetS(it, schema.GSI4SK))

	// Idempotent: a second call keeps the first record.
	require.NoError(t, f.st.EnsureVersion(f.ctx, "client:other"))
	rec, err = f.st.Version(f.ctx)
	require.NoError(t, err)
	assert.Equal(t, "client:test", rec.UpdatedBy)

	require.NoError(t, f.st.PutVersion(f.ctx, VersionRecord{SchemaVersion: "2.0.0", LambdaVersion: "2.0.1"}))
	err = f.st.EnsureVersion(f.ctx, "client:test")
	require.ErrorIs(t, err, ErrIncompatibleSchema)
	assert.Contains(t, err.Error(), "2.0.0")
}
