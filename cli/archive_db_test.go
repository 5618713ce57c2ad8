package cli

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zeroae/zae-limiter-go/shared/archive"
	"github.com/zeroae/zae-limiter-go/shared/archive/s3test"
	"github.com/zeroae/zae-limiter-go/shared/mototest"
)

// archiveStack is a fresh table and an S3 server that the CLI reaches
// through AWS_ENDPOINT_URL_S3, holding the bucket the local stack would
// create for the table (archive.LocalBucketName).
func archiveStack(t *testing.T) (string, *s3test.Server) {
	t.Helper()
	table, _ := freshTable(t)
	srv := s3test.Start(t, archive.LocalBucketName(table))
	t.Setenv("AWS_ENDPOINT_URL_S3", srv.URL)
	return table, srv
}

// The issue's acceptance: limits set and deleted for an entity, `audit
// archive --older-than 0s`, then `audit list E` is empty and `audit list E
// --archived` returns every event, field for field as before.
func TestAuditArchiveRoundTrip(t *testing.T) {
	table, srv := archiveStack(t)
	ok(t, table, "entity", "create", "e1")
	ok(t, table, "entity", "set-limits", "e1", "--resource", "gpt-4", "-l", "rpm:100", "-l", "tpm:10000")
	ok(t, table, "entity", "set-limits", "e1", "--resource", "gpt-3", "-l", "rpm:10")
	ok(t, table, "entity", "delete-limits", "e1", "--resource", "gpt-3", "-y")
	ok(t, table, "entity", "delete", "e1", "-y")
	ok(t, table, "system", "set-defaults", "-l", "rpm:5")
	before := ok(t, table, "audit", "list", "e1", "-o", "json").out
	evs := decode[[]auditEventJSON](t, before)
	require.Len(t, evs, 5)
	page := ok(t, table, "audit", "list", "e1", "--limit", "2", "--start-after", evs[1].EventID, "-o", "json").out

	// Nothing is due yet with the default age (90 days).
	r := ok(t, table, "audit", "archive", "-o", "json")
	assert.JSONEq(t, `{"archived": 0, "objects": []}`, r.out)

	r = ok(t, table, "audit", "archive", "--older-than", "0s", "-o", "json")
	res := decode[auditArchiveJSON](t, r.out)
	assert.Equal(t, 6, res.Archived, "e1's five events and the system defaults' one")
	require.Len(t, res.Objects, 1)
	assert.True(t, strings.HasPrefix(res.Objects[0], "s3://"+archive.LocalBucketName(table)+"/audit/year="), res.Objects[0])
	assert.Contains(t, r.errOut, "Archived 6 events in 1 objects")
	assert.Len(t, srv.Objects(t, archive.LocalBucketName(table)), 1)

	assert.JSONEq(t, `[]`, ok(t, table, "audit", "list", "e1", "-o", "json").out, "only DynamoDB without --archived")
	assert.Equal(t, before, ok(t, table, "audit", "list", "e1", "--archived", "-o", "json").out)
	assert.Equal(t, page, ok(t, table, "audit", "list", "e1", "--archived", "--limit", "2", "--start-after", evs[1].EventID, "-o", "json").out)
	assert.Len(t, decode[[]auditEventJSON](t, ok(t, table, "audit", "list", "$SYSTEM", "--archived", "-o", "json").out), 1)

	tbl := lines(ok(t, table, "audit", "list", "e1", "--archived").out)
	require.Len(t, tbl, 6)
	assert.Contains(t, tbl[0], "EVENT ID")

	// Run again: nothing left, nothing written twice.
	r = ok(t, table, "audit", "archive", "--older-than", "0s")
	assert.Empty(t, r.out)
	assert.Contains(t, r.errOut, "No audit events due")
	assert.Len(t, srv.Objects(t, archive.LocalBucketName(table)), 1)
}

// Only the --namespace is archived, unless --all-namespaces; an unknown
// namespace archives nothing and registers nothing.
func TestAuditArchiveNamespaces(t *testing.T) {
	table, _ := archiveStack(t)
	ok(t, table, "entity", "create", "a1")
	ok(t, table, "entity", "create", "b1", "-N", "tenant-b")
	r := ok(t, table, "audit", "archive", "--older-than", "0s", "-N", "tenant-b", "-o", "json")
	assert.Equal(t, 1, decode[auditArchiveJSON](t, r.out).Archived)
	assert.Len(t, decode[[]auditEventJSON](t, ok(t, table, "audit", "list", "a1", "-o", "json").out), 1, "the default namespace is untouched")

	r = ok(t, table, "audit", "archive", "--older-than", "0s", "-N", "nobody", "-o", "json")
	assert.JSONEq(t, `{"archived": 0, "objects": []}`, r.out)
	assert.NotContains(t, ok(t, table, "namespace", "list").out, "nobody")

	r = ok(t, table, "audit", "archive", "--older-than", "0d", "--all-namespaces", "-o", "json")
	assert.Equal(t, 1, decode[auditArchiveJSON](t, r.out).Archived)
	assert.Len(t, decode[[]auditEventJSON](t, ok(t, table, "audit", "list", "b1", "-N", "tenant-b", "--archived", "-o", "json").out), 1)
}

// S3 failing: exit 1 with one line, and every event still in DynamoDB; a
// missing bucket is named.
func TestAuditArchiveFailures(t *testing.T) {
	table, srv := archiveStack(t)
	ok(t, table, "entity", "create", "e1")
	srv.SetDown(true)
	fails(t, exitError, "SlowDown", table, "audit", "archive", "--older-than", "0s", "-o", "json")
	assert.Len(t, decode[[]auditEventJSON](t, ok(t, table, "audit", "list", "e1", "-o", "json").out), 1, "nothing deleted")
	srv.SetDown(false)

	fails(t, exitError, `audit archive bucket "no-such-bucket" not found`, table, "audit", "archive", "--older-than", "0s", "--bucket", "no-such-bucket")
	fails(t, exitError, `audit archive bucket "no-such-bucket" not found`, table, "audit", "list", "e1", "--archived", "--bucket", "no-such-bucket")
	fails(t, exitError, `bucket "Bad_Bucket"`, table, "audit", "archive", "--bucket", "Bad_Bucket")
	fails(t, exitUsage, "--older-than", table, "audit", "archive", "--older-than", "soon")
	fails(t, exitUsage, "--older-than", table, "audit", "archive", "--older-than", "-1h")
	fails(t, exitUsage, "--bucket applies only with --archived", table, "audit", "list", "e1", "--bucket", "b-1")
	assert.Len(t, decode[[]auditEventJSON](t, ok(t, table, "audit", "list", "e1", "-o", "json").out), 1)
}

func TestAgeValue(t *testing.T) {
	for in, want := range map[string]time.Duration{"0s": 0, "90d": 90 * 24 * time.Hour, "36h": 36 * time.Hour, "0d": 0} {
		var a ageValue
		require.NoError(t, a.Set(in), in)
		assert.Equal(t, want, a.d, in)
	}
	for _, bad := range []string{"", "d", "-1d", "1w", "-5s", "x"} {
		var a ageValue
		assert.Error(t, a.Set(bad), bad)
	}
	assert.Equal(t, "90d", (&ageValue{d: 90 * 24 * time.Hour}).String())
	assert.Equal(t, "36h0m0s", (&ageValue{d: 36 * time.Hour}).String())
}

// On AWS (no custom S3 endpoint) the bucket is the stack's output
// AuditArchiveBucketName, read through CloudFormation: moto_server stands
// in for it (on the machine image; skipped where it is missing).
func TestArchiveBucketFromStack(t *testing.T) {
	endpoint := mototest.Start(t, "the stack-output lookup")
	t.Setenv("AWS_ENDPOINT_URL_CLOUDFORMATION", endpoint)
	t.Setenv("AWS_ACCESS_KEY_ID", "dummy")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "dummy")
	t.Setenv("AWS_REGION", "us-east-1")
	cf := cloudformation.New(cloudformation.Options{Region: "us-east-1", BaseEndpoint: aws.String(endpoint),
		Credentials: credentials.NewStaticCredentialsProvider("dummy", "dummy", "")})
	create := func(name, outputs string) {
		body := `{"Resources": {"B": {"Type": "AWS::S3::Bucket"}}` + outputs + `}`
		_, err := cf.CreateStack(context.Background(), &cloudformation.CreateStackInput{StackName: aws.String(name), TemplateBody: aws.String(body)})
		require.NoError(t, err)
	}
	create("with-archive", `, "Outputs": {"AuditArchiveBucketName": {"Value": {"Ref": "B"}}}`)
	create("without-archive", "")

	bucket := func(name string) (string, error) {
		env, _, _ := testEnv(false)
		env.Getenv = func(string) string { return "" }
		env.Name = name
		return env.archiveBucket(context.Background(), "")
	}
	got, err := bucket("with-archive")
	require.NoError(t, err)
	assert.NotEmpty(t, got)
	_, err = bucket("without-archive")
	assert.ErrorContains(t, err, `stack "without-archive" has no audit archive`)
	_, err = bucket("no-stack")
	assert.ErrorContains(t, err, `stack "no-stack" not found`)
}
