package provision

import (
	"crypto/rand"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zeroae/zae-limiter-go/shared/dynamo"
	"github.com/zeroae/zae-limiter-go/shared/limits"
	"github.com/zeroae/zae-limiter-go/shared/manifest"
	"github.com/zeroae/zae-limiter-go/shared/schema"
)

// randomID is an entity id of n random letters and digits: the worst case
// for compression.
func randomID(n int) string {
	const chars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	b := make([]byte, n)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = chars[int(b[i])%len(chars)]
	}
	return string(b)
}

// bigRecord has entities entity configs on two resources each.
func bigRecord(entities, idLen int) Record {
	rec := Record{Entries: map[manifest.Target]string{manifest.SystemTarget: "0123456789abcdef"},
		LastApplied: time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC), AppliedBy: "ci", ManifestHash: "sha256:x"}
	for range entities {
		id := randomID(idLen)
		for _, r := range []string{"gpt-4", limits.DefaultResource} {
			rec.Entries[manifest.EntityTarget(id, r)] = fmt.Sprintf("%016x", len(rec.Entries))
		}
	}
	return rec
}

func TestEntriesRoundTrip(t *testing.T) {
	rec := bigRecord(50, 20)
	rec.Entries[manifest.ResourceTarget("a/b.c")] = "ffffffffffffffff"
	got, err := decodeEntries(encodeEntries(rec.Entries))
	require.NoError(t, err)
	assert.Equal(t, rec.Entries, got)
	_, err = decodeEntries([]byte("not gzip"))
	assert.Error(t, err)
}

// The worst case of the issue: 5,000 entities with the longest ids (256
// random characters) on two resources each. The state spreads over chunk
// items, each well below DynamoDB's 400 KB, and reads back whole.
func TestRecordAt5000EntitiesWithLongIDs(t *testing.T) {
	f := setup(t)
	rec := bigRecord(5000, 256)
	blob := encodeEntries(rec.Entries)
	t.Logf("10,001 entries with 256-character ids: %d bytes gzip'd (%d chunks of %d)",
		len(blob), (len(blob)+maxInline-1)/maxInline, maxInline)
	require.Greater(t, len(blob), maxInline, "the case needs chunks")

	rs := f.eng.records("nsid1")
	require.NoError(t, rs.lock(f.ctx, "default", 0, "me", time.Now().Add(time.Minute)))
	require.NoError(t, rs.write(f.ctx, 0, rec, "me"))
	back, lk, err := rs.read(f.ctx)
	require.NoError(t, err)
	assert.Empty(t, lk.id, "the write released the lock")
	assert.Equal(t, int64(1), back.Generation)
	assert.Equal(t, rec.Entries, back.Entries)
	assert.Equal(t, rec.ManifestHash, back.ManifestHash)
	assert.Equal(t, rec.LastApplied, back.LastApplied)
	assert.True(t, rs.hadChunks)

	// Small again: the state goes back inline and the chunks are deleted.
	small := bigRecord(2, 10)
	require.NoError(t, rs.lock(f.ctx, "default", 1, "me", time.Now().Add(time.Minute)))
	require.NoError(t, rs.write(f.ctx, 1, small, "me"))
	back, _, err = rs.read(f.ctx)
	require.NoError(t, err)
	assert.Equal(t, small.Entries, back.Entries)
	assert.Equal(t, []string{schema.SKProvisioner}, f.provisionerItems("nsid1"))
}

// Chunks of an older generation left by a crash between the chunk writes
// and the head's switch are deleted by the next chunked write, and never
// read.
func TestRecordChunkGenerations(t *testing.T) {
	defer func(n int) { maxInline = n }(maxInline)
	maxInline = 200
	f := setup(t)
	rs := f.eng.records("nsid2")
	rec := bigRecord(40, 30)
	require.NoError(t, rs.lock(f.ctx, "default", 0, "me", time.Now().Add(time.Minute)))
	require.NoError(t, rs.write(f.ctx, 0, rec, "me"))
	n := len(f.provisionerItems("nsid2")) - 1
	require.Greater(t, n, 2)

	// A crashed generation 2: chunks written, head never switched.
	orphan := chunkKey("nsid2", 2, 0)
	_, err := f.db.PutItem(f.ctx, &dynamodb.PutItemInput{TableName: aws.String(f.table),
		Item: indexed("nsid2", orphan, keyItem(orphan))})
	require.NoError(t, err)
	back, _, err := rs.read(f.ctx)
	require.NoError(t, err)
	assert.Equal(t, rec.Entries, back.Entries, "the head still names generation 1")

	rec2 := bigRecord(40, 30)
	require.NoError(t, rs.lock(f.ctx, "default", 1, "me", time.Now().Add(time.Minute)))
	require.NoError(t, rs.write(f.ctx, 1, rec2, "me"))
	back, _, err = rs.read(f.ctx)
	require.NoError(t, err)
	assert.Equal(t, rec2.Entries, back.Entries)
	for _, sk := range f.provisionerItems("nsid2")[1:] {
		assert.True(t, strings.HasPrefix(sk, fmt.Sprintf("%s%010d#", chunkPrefix, 2)), "only generation 2's chunks remain: %s", sk)
	}

	// A damaged chunk is an error, never a silently shorter managed set.
	_, err = f.db.DeleteItem(f.ctx, &dynamodb.DeleteItemInput{TableName: aws.String(f.table),
		Key: keyItem(chunkKey("nsid2", 2, 1))})
	require.NoError(t, err)
	_, _, err = rs.read(f.ctx)
	assert.ErrorContains(t, err, "chunk 2 of")
}

// provisionerItems lists the sort keys of a namespace's record items.
func (f *fixture) provisionerItems(ns string) []string {
	f.t.Helper()
	var e dynamo.Expr
	out, err := f.db.Query(f.ctx, &dynamodb.QueryInput{
		TableName: aws.String(f.table),
		KeyConditionExpression: aws.String(e.Name(schema.PK) + " = " + e.Value(dynamo.S(schema.SystemPK(ns))) +
			" AND begins_with(" + e.Name(schema.SK) + ", " + e.Value(dynamo.S(schema.SKProvisioner)) + ")"),
		ExpressionAttributeNames: e.Names(), ExpressionAttributeValues: e.Values(),
	})
	require.NoError(f.t, err)
	var sks []string
	for _, it := range out.Items {
		sks = append(sks, dynamo.GetS(it, schema.SK))
	}
	return sks
}
