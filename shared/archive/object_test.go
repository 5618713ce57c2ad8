package archive

import (
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zeroae/zae-limiter-go/shared/store"
)

func TestObjectKey(t *testing.T) {
	key, err := ObjectKey("2026-03-04", "01A", "01B")
	require.NoError(t, err)
	assert.Equal(t, "audit/year=2026/month=03/day=04/01A-01B.jsonl.gz", key)
	_, err = ObjectKey("2026-3-4", "a", "b")
	assert.ErrorContains(t, err, `"2026-3-4"`)

	for key, want := range map[string]string{
		"audit/year=2026/month=03/day=04/01A-01B.jsonl.gz": "2026-03-04",
		"audit/year=2026/month=02/day=30/x.jsonl.gz":       "", // no such day
		"audit/year=2026/month=3/day=04/x.jsonl.gz":        "",
		"audit/year=2026/month=03/day=04/x.json":           "",
		"other/year=2026/month=03/day=04/x.jsonl.gz":       "",
		"audit/x.jsonl.gz":                                 "",
	} {
		day, ok := parseKey(key)
		assert.Equal(t, want != "", ok, key)
		assert.Equal(t, want, day, key)
	}
}

func TestLocalBucketName(t *testing.T) {
	for stack, want := range map[string]string{
		"limiter":    "limiter-audit-archive",
		"My_Stack.1": "my-stack-1-audit-archive",
		"_x":         "x-audit-archive",
		"__":         "zae-limiter-audit-archive",
	} {
		assert.Equal(t, want, LocalBucketName(stack), stack)
	}
	long := LocalBucketName("a234567890123456789012345678901234567890123456789012345678901234567890")
	assert.Len(t, long, 63)
	assert.Regexp(t, `^[a-z0-9][a-z0-9-]*-audit-archive$`, long)
}

// The same events always make the same key and the same bytes, and the
// lines decode back to the events the store would list.
func TestEncodeObjectDeterministic(t *testing.T) {
	ts := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	recs := []store.AuditRecord{
		{Namespace: "ns1", Event: store.AuditEvent{EventID: "01A", Timestamp: ts, Action: "limits_set", EntityID: "e<1>",
			Principal: "p", Resource: "gpt-4", Details: map[string]any{"limits": []any{"rpm"}}}},
		{Namespace: "ns1", Event: store.AuditEvent{EventID: "01B", Timestamp: ts, Action: "entity_deleted", EntityID: "e2", Principal: "p"}},
	}
	a, err := encodeObject("2026-03-04", recs)
	require.NoError(t, err)
	b, err := encodeObject("2026-03-04", recs)
	require.NoError(t, err)
	assert.Equal(t, a.key, b.key)
	assert.Equal(t, a.body, b.body)
	assert.Equal(t, checksum(a.body), a.sum)
	lines, err := decodeObject(a.body)
	require.NoError(t, err)
	require.Len(t, lines, 2)
	assert.Equal(t, "2026-03-04T05:06:07Z", lines[0].Timestamp)
	assert.Equal(t, map[string]any{}, lines[1].Details, "details is always an object")
	for i, l := range lines {
		ev, err := l.Event()
		require.NoError(t, err)
		assert.Equal(t, recs[i].Event, ev)
		assert.Equal(t, "ns1", l.NamespaceID)
	}
	_, err = decodeObject([]byte("plain"))
	assert.ErrorContains(t, err, "gzip")
}

// Objects are stored as gzip JSON Lines with their content type and
// encoding, under the day's partition.
func TestObjectMetadata(t *testing.T) {
	f := setup(t)
	recs := f.dueSeed(3)
	rep, err := f.archiver(Options{}, nil, nil).Run(f.ctx, Request{OlderThan: -1})
	require.NoError(t, err)
	require.Len(t, rep.Objects, 1)
	key, err := ObjectKey(store.AuditDay(recs[0].Event.Timestamp), recs[0].Event.EventID, recs[2].Event.EventID)
	require.NoError(t, err)
	assert.Equal(t, "s3://"+testBucket+"/"+key, rep.Objects[0])
	head, err := f.s3.Client.HeadObject(f.ctx, &s3.HeadObjectInput{Bucket: aws.String(testBucket), Key: aws.String(key)})
	require.NoError(t, err)
	assert.Equal(t, "application/x-ndjson", aws.ToString(head.ContentType))
	assert.Equal(t, "gzip", aws.ToString(head.ContentEncoding))
	_, lines := f.inS3()
	assert.Equal(t, lineOf(recs[1]), lines[recs[1].Event.EventID])
}
