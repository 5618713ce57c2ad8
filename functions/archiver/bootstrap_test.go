package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/oklog/ulid/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zeroae/zae-limiter-go/shared/archive/s3test"
	"github.com/zeroae/zae-limiter-go/shared/ddblocal/ddbtest"
	"github.com/zeroae/zae-limiter-go/shared/lambdarun"
	"github.com/zeroae/zae-limiter-go/shared/store"
	"github.com/zeroae/zae-limiter-go/shared/syncio"
)

func TestMain(m *testing.M) { ddbtest.Main(m) }

const (
	eventFile = "../../events/archiver/scheduled.json"
	bucket    = "limiter-audit-archive"
)

// TestBootstrap builds the real function and runs it behind the Lambda
// Runtime API against DynamoDB Local and an in-process S3, with the
// scheduled event of events/archiver.
func TestBootstrap(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "archiver", "bootstrap")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	require.NoError(t, lambdarun.Build(ctx, lambdarun.BuildOptions{Package: ".", Output: bin}))

	table := ddbtest.NewTable(t)
	db := ddbtest.Client(t)
	st := store.New(db, store.Options{Table: table})
	ns, err := st.RegisterNamespace(ctx, "default")
	require.NoError(t, err)
	s3srv := s3test.Start(t, bucket)
	env := []string{
		"TABLE_NAME=" + table,
		"ARCHIVE_BUCKET_NAME=" + bucket,
		"AUDIT_RETENTION_DAYS=90",
		"ARCHIVE_SCHEDULE=rate(1 hour)",
		"AWS_ENDPOINT_URL_DYNAMODB=" + ddbtest.Endpoint(t),
		"AWS_ENDPOINT_URL_S3=" + s3srv.URL,
		"AWS_ACCESS_KEY_ID=dummy",
		"AWS_SECRET_ACCESS_KEY=dummy",
		"AWS_LAMBDA_LOG_FORMAT=JSON",
	}

	ev, err := os.ReadFile(eventFile)
	require.NoError(t, err)
	var sched events.EventBridgeEvent
	require.NoError(t, json.Unmarshal(ev, &sched), "a real EventBridge event")
	assert.Equal(t, "Scheduled Event", sched.DetailType)
	assert.Equal(t, "aws.events", sched.Source)
	assert.NotEmpty(t, sched.Resources)

	// Events due by the real clock: their TTL is two days away.
	due := seed(t, db, table, ns.ID, 40, time.Now().Add(-88*24*time.Hour), 90*24*time.Hour)
	recent := seed(t, db, table, ns.ID, 3, time.Now().Add(-time.Hour), 90*24*time.Hour)

	out := &syncio.Buffer{}
	r, err := lambdarun.Start(ctx, lambdarun.Options{Binary: bin, Env: env, Output: out, Timeout: time.Minute})
	require.NoError(t, err)
	t.Cleanup(func() {
		_ = r.Close()
		if t.Failed() {
			t.Logf("function output:\n%s", out.String())
		}
	})

	res, got := invoke(t, r, ev)
	require.Nil(t, res.Err, "function error: %s", res.Payload)
	assert.Equal(t, len(due), got.Archived)
	require.Len(t, got.Objects, 1)
	assert.True(t, strings.HasPrefix(got.Objects[0], "s3://"+bucket+"/audit/year="), got.Objects[0])
	assert.Len(t, s3srv.Objects(t, bucket), 1)
	left := inTable(t, db, table)
	assert.Len(t, left, len(recent), "only the recent events stay")
	for _, id := range recent {
		assert.True(t, left[id])
	}
	summary := summaryLine(t, out.String(), res.RequestID)
	assert.Equal(t, "archive run completed", summary["message"])
	assert.EqualValues(t, len(due), summary["events_archived"])
	assert.EqualValues(t, len(due), summary["EventsArchived"], "embedded metric")
	assert.EqualValues(t, 1, summary["ObjectsWritten"])
	emf, _ := summary["_aws"].(map[string]any)
	require.NotNil(t, emf, "embedded metric format metadata")
	cw := emf["CloudWatchMetrics"].([]any)[0].(map[string]any)
	assert.Equal(t, metricsNamespace, cw["Namespace"])
	assert.Equal(t, "archiver", summary["FunctionName"])

	// The schedule firing again (a replay, or the next period) changes nothing.
	res, got = invoke(t, r, ev)
	require.Nil(t, res.Err)
	assert.Zero(t, got.Archived)
	assert.Len(t, s3srv.Objects(t, bucket), 1)

	// S3 failing: the invocation fails (the Errors alarm sees it), nothing
	// is deleted, the summary line says why.
	more := seed(t, db, table, ns.ID, 5, time.Now().Add(-time.Minute), 48*time.Hour) // due by their TTL
	s3srv.SetDown(true)
	res, _ = invoke(t, r, ev)
	require.NotNil(t, res.Err)
	assert.Contains(t, res.Err.Message, "write s3://"+bucket)
	left = inTable(t, db, table)
	for _, id := range more {
		assert.True(t, left[id], "nothing deleted while S3 fails")
	}
	failed := summaryLine(t, out.String(), res.RequestID)
	assert.Equal(t, "archive run failed", failed["message"])
	assert.EqualValues(t, 1, failed["ArchiveRunFailed"])

	s3srv.SetDown(false)
	res, got = invoke(t, r, ev)
	require.Nil(t, res.Err, "%s", res.Payload)
	assert.Equal(t, len(more), got.Archived)
}

func TestBootstrapInitError(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "archiver", "bootstrap")
	require.NoError(t, lambdarun.Build(context.Background(), lambdarun.BuildOptions{Package: ".", Output: bin}))
	out := &syncio.Buffer{}
	_, err := lambdarun.Start(context.Background(), lambdarun.Options{Binary: bin, Output: out,
		Env: []string{"TABLE_NAME=limiter", "AWS_LAMBDA_LOG_FORMAT=JSON"}})
	var ie *lambdarun.InitError
	require.True(t, errors.As(err, &ie), "got %v", err)
	assert.Contains(t, out.String(), "ARCHIVE_BUCKET_NAME is required")
}

func invoke(t *testing.T, r *lambdarun.Runner, ev []byte) (lambdarun.Result, result) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := r.Invoke(ctx, ev)
	require.NoError(t, err)
	var got result
	if res.Err == nil {
		require.NoError(t, json.Unmarshal(res.Payload, &got), "%s", res.Payload)
	}
	return res, got
}

// summaryLine returns the one summary log record of an invocation.
func summaryLine(t *testing.T, logs, requestID string) map[string]any {
	t.Helper()
	var found []map[string]any
	sc := bufio.NewScanner(strings.NewReader(logs))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var rec map[string]any
		if json.Unmarshal(sc.Bytes(), &rec) != nil || rec["requestId"] != requestID {
			continue
		}
		found = append(found, rec)
	}
	require.Len(t, found, 1, "one log line per invocation %s:\n%s", requestID, logs)
	return found[0]
}

// seed writes n audit events through the store's codec and returns their ids.
func seed(t *testing.T, db *dynamodb.Client, table, nsID string, n int, start time.Time, retention time.Duration) []string {
	t.Helper()
	entropy := ulid.Monotonic(rand.Reader, 0)
	ids := make([]string, n)
	for i := range ids {
		ts := start.Add(time.Duration(i) * time.Millisecond)
		rec := store.AuditRecord{Namespace: nsID, Expires: ts.Add(retention), Event: store.AuditEvent{
			EventID: ulid.MustNew(ulid.Timestamp(ts), entropy).String(), Timestamp: ts.Truncate(time.Second),
			Action: store.ActionEntityCreated, EntityID: "user-1", Principal: "tester",
		}}
		it, err := rec.Item()
		require.NoError(t, err)
		_, err = db.PutItem(context.Background(), &dynamodb.PutItemInput{TableName: aws.String(table), Item: it})
		require.NoError(t, err)
		ids[i] = rec.Event.EventID
	}
	return ids
}

// inTable returns the ids of the audit events left in the table.
func inTable(t *testing.T, db *dynamodb.Client, table string) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	p := dynamodb.NewScanPaginator(db, &dynamodb.ScanInput{TableName: aws.String(table)})
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		require.NoError(t, err)
		for _, it := range page.Items {
			if rec, ok := store.DecodeAuditRecord(it); ok {
				out[rec.Event.EventID] = true
			}
		}
	}
	return out
}
