package tests

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zeroae/zae-limiter-go/shared/archive"
	"github.com/zeroae/zae-limiter-go/shared/store"
)

// The audit archiver (functions/archiver) and its bucket in template.yaml.
const (
	archiverFunctionID  = "ArchiverFunction"
	archiverRoleID      = "ArchiverFunctionRole"
	archiverLogGroupID  = "ArchiverLogGroup"
	archiverCodeURI     = "functions/archiver"
	archiveBucketID     = "AuditArchiveBucket"
	archiveConditionID  = "DeployAuditArchive"
	archiveAlarmID      = "ArchiverErrorsAlarm"
	archiveScheduleName = "AuditArchiveSchedule"
)

// archiverEnv is what the template sets on the archiver: every variable
// functions/archiver/config.go reads.
var archiverEnv = []string{
	"TABLE_NAME",
	"ARCHIVE_BUCKET_NAME",
	"AUDIT_RETENTION_DAYS",
	"ARCHIVE_SCHEDULE",
	"AWS_XRAY_TRACING_ENABLED",
}

func TestTemplateArchiverFunction(t *testing.T) {
	t.Parallel()
	tpl := loadTemplate(t)
	r := resource(t, tpl, archiverFunctionID)
	require.Equal(t, "AWS::Serverless::Function", r["Type"])
	assert.Equal(t, archiveConditionID, r["Condition"])
	assert.Equal(t, "go1.x", obj(t, r["Metadata"])["BuildMethod"])
	props := obj(t, r["Properties"])
	assert.Equal(t, fn("Sub", "${AWS::StackName}-archiver"), props["FunctionName"])
	assert.Equal(t, archiverCodeURI, props["CodeUri"])
	main, err := os.ReadFile(filepath.Join("..", archiverCodeURI, "main.go"))
	require.NoError(t, err)
	assert.Contains(t, string(main), "\npackage main\n")

	eff := effectiveFunctionProps(t, tpl, props)
	assert.Equal(t, "provided.al2023", eff["Runtime"])
	assert.Equal(t, []any{"arm64"}, eff["Architectures"])
	assert.Equal(t, "bootstrap", eff["Handler"])
	assert.Equal(t, map[string]any{"LogFormat": "JSON", "LogGroup": ref(archiverLogGroupID)}, eff["LoggingConfig"],
		"JSON logs: the summary line's embedded metrics need them")
	assert.Equal(t, 300, props["Timeout"])
	assert.Greater(t, time.Duration(props["Timeout"].(int))*time.Second, 4*archive.DefaultReserve,
		"the timeout leaves room for work beyond the reserve")
	assert.Equal(t, fn("GetAtt", []any{archiverRoleID, "Arn"}), props["Role"])
	assert.NotContains(t, props, "Policies")

	// The schedule: a rate expression from the parameter the function reads too.
	evs := obj(t, props["Events"])
	require.Len(t, evs, 1)
	sched := obj(t, evs["Schedule"])
	assert.Equal(t, "Schedule", sched["Type"])
	assert.Equal(t, ref(archiveScheduleName), obj(t, sched["Properties"])["Schedule"])
	p := param(t, tpl, archiveScheduleName)
	assert.Equal(t, "rate(1 hour)", p["Default"])
	re := regexp.MustCompile(str(t, p["AllowedPattern"]))
	for _, ok := range []string{"rate(1 hour)", "rate(1 minute)", "rate(30 minutes)", "rate(2 days)", "rate(1 day)"} {
		assert.True(t, re.MatchString(ok), ok)
	}
	for _, bad := range []string{"rate(1 hours)", "rate(0 hours)", "rate(2 hour)", "cron(0 * * * ? *)", "hourly", ""} {
		assert.False(t, re.MatchString(bad), bad)
	}
}

// TestTemplateArchiverEnvironment: the template sets exactly the variables
// config.go reads, from the parameters and resources the function needs.
func TestTemplateArchiverEnvironment(t *testing.T) {
	t.Parallel()
	tpl := loadTemplate(t)
	props := obj(t, resource(t, tpl, archiverFunctionID)["Properties"])
	vars := obj(t, obj(t, props["Environment"])["Variables"])
	got := make([]string, 0, len(vars))
	for k := range vars {
		got = append(got, k)
	}
	assert.ElementsMatch(t, archiverEnv, got)
	src, read := configEnv(t, archiverCodeURI)
	for _, name := range archiverEnv {
		assert.Contains(t, src, strconv.Quote(name))
	}
	assert.ElementsMatch(t, archiverEnv, read, "functions/archiver/config.go and the template disagree")

	assert.Equal(t, ref(tableLogicalID), vars["TABLE_NAME"])
	assert.Equal(t, ref(archiveBucketID), vars["ARCHIVE_BUCKET_NAME"])
	assert.Equal(t, fn("Sub", "${AuditRetentionDays}"), vars["AUDIT_RETENTION_DAYS"])
	assert.Equal(t, ref(archiveScheduleName), vars["ARCHIVE_SCHEDULE"])
	assert.Equal(t, fn("If", []any{"TracingEnabled", "true", "false"}), vars["AWS_XRAY_TRACING_ENABLED"])

	ret := param(t, tpl, "AuditRetentionDays")
	assert.Equal(t, int(store.DefaultAuditRetention/(24*time.Hour)), ret["Default"], "the store's default TTL")
	assert.Equal(t, 1, ret["MinValue"])
	assert.Equal(t, 3650, ret["MaxValue"], "config.go accepts 1 to 3650")
}

// TestTemplateArchiverRole: the role grants exactly the calls the archiver
// declares (archive.DynamoDB, archive.S3), on the table and on the
// archive's objects, plus its own log group and X-Ray when tracing.
func TestTemplateArchiverRole(t *testing.T) {
	t.Parallel()
	tpl := loadTemplate(t)
	r := resource(t, tpl, archiverRoleID)
	require.Equal(t, "AWS::IAM::Role", r["Type"])
	assert.Equal(t, archiveConditionID, r["Condition"])
	props := obj(t, r["Properties"])
	assume := list(t, obj(t, props["AssumeRolePolicyDocument"])["Statement"])
	require.Len(t, assume, 1)
	assert.Equal(t, map[string]any{"Service": "lambda.amazonaws.com"}, obj(t, assume[0])["Principal"])
	assert.Equal(t, []any{fn("If", []any{"TracingEnabled",
		fn("Sub", "arn:${AWS::Partition}:iam::aws:policy/AWSXrayWriteOnlyAccess"), ref("AWS::NoValue")})},
		props["ManagedPolicyArns"])

	tableResources := []any{fn("GetAtt", []any{tableLogicalID, "Arn"}), fn("Sub", "${"+tableLogicalID+".Arn}/index/*")}
	var dynamo, s3 []string
	for _, p := range list(t, props["Policies"]) {
		for _, s := range list(t, obj(t, obj(t, p)["PolicyDocument"])["Statement"]) {
			st := obj(t, s)
			require.Equal(t, "Allow", st["Effect"])
			actions := statementActions(t, st["Action"])
			switch {
			case strings.HasPrefix(actions[0], "dynamodb:"):
				dynamo = append(dynamo, actions...)
				assert.ElementsMatch(t, tableResources, list(t, st["Resource"]))
			case strings.HasPrefix(actions[0], "s3:"):
				s3 = append(s3, actions...)
				assert.Equal(t, fn("Sub", "${"+archiveBucketID+".Arn}/"+archive.Prefix+"*"), st["Resource"],
					"S3: the archive's objects only")
			case strings.HasPrefix(actions[0], "logs:"):
				assert.ElementsMatch(t, []string{"logs:CreateLogStream", "logs:PutLogEvents"}, actions)
				assert.Equal(t, fn("GetAtt", []any{archiverLogGroupID, "Arn"}), st["Resource"])
			default:
				t.Errorf("unexpected statement in %s: %v", archiverRoleID, st)
			}
		}
	}
	assert.Equal(t, iamActions(t, methodNames[archive.DynamoDB]()), union(dynamo),
		"archiver DynamoDB actions != archive.DynamoDB")
	var wantS3 []string
	for _, m := range methodNames[archive.S3]() {
		wantS3 = append(wantS3, "s3:"+m)
	}
	assert.Equal(t, union(wantS3), union(s3), "archiver S3 actions != archive.S3")

	lg := obj(t, resource(t, tpl, archiverLogGroupID)["Properties"])
	assert.Equal(t, fn("Sub", "/aws/lambda/${AWS::StackName}-archiver"), lg["LogGroupName"])
	assert.Equal(t, ref("LogRetentionDays"), lg["RetentionInDays"])
}

// TestTemplateArchiveBucket: encrypted, never public, TLS only, kept when
// the stack goes, and moved to Glacier Instant Retrieval after the
// parameter's days.
func TestTemplateArchiveBucket(t *testing.T) {
	t.Parallel()
	tpl := loadTemplate(t)
	r := resource(t, tpl, archiveBucketID)
	require.Equal(t, "AWS::S3::Bucket", r["Type"])
	assert.Equal(t, archiveConditionID, r["Condition"])
	assert.Equal(t, "Retain", r["DeletionPolicy"])
	assert.Equal(t, "Retain", r["UpdateReplacePolicy"])
	props := obj(t, r["Properties"])
	assert.NotContains(t, props, "BucketName", "a generated name: bucket names are global")
	sse := obj(t, list(t, obj(t, props["BucketEncryption"])["ServerSideEncryptionConfiguration"])[0])
	assert.Equal(t, "AES256", obj(t, sse["ServerSideEncryptionByDefault"])["SSEAlgorithm"])
	pab := obj(t, props["PublicAccessBlockConfiguration"])
	for _, k := range []string{"BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"} {
		assert.Equal(t, true, pab[k], k)
	}
	var glacier map[string]any
	for _, rule := range list(t, obj(t, props["LifecycleConfiguration"])["Rules"]) {
		if tr, ok := obj(t, rule)["Transitions"]; ok {
			glacier = obj(t, rule)
			assert.Equal(t, []any{map[string]any{"StorageClass": "GLACIER_IR", "TransitionInDays": ref("AuditArchiveGlacierDays")}}, tr)
		}
	}
	require.NotNil(t, glacier, "a transition rule")
	assert.Equal(t, "Enabled", glacier["Status"])
	assert.Equal(t, archive.Prefix, glacier["Prefix"])
	g := param(t, tpl, "AuditArchiveGlacierDays")
	assert.Equal(t, 90, g["Default"])

	pol := resource(t, tpl, "AuditArchiveBucketPolicy")
	assert.Equal(t, archiveConditionID, pol["Condition"])
	pp := obj(t, pol["Properties"])
	assert.Equal(t, ref(archiveBucketID), pp["Bucket"])
	sts := list(t, obj(t, pp["PolicyDocument"])["Statement"])
	require.Len(t, sts, 1)
	st := obj(t, sts[0])
	assert.Equal(t, "Deny", st["Effect"])
	assert.Equal(t, "s3:*", st["Action"])
	assert.Equal(t, map[string]any{"Bool": map[string]any{"aws:SecureTransport": "false"}}, st["Condition"])
	assert.ElementsMatch(t, []any{fn("GetAtt", []any{archiveBucketID, "Arn"}), fn("Sub", "${"+archiveBucketID+".Arn}/*")}, st["Resource"])
}

// TestTemplateArchivalSwitch: EnableAuditArchival (default on) creates every
// archival resource and output, and nothing refers to the alarm (moto's
// CloudFormation skips alarms: a reference to one fails its create).
func TestTemplateArchivalSwitch(t *testing.T) {
	t.Parallel()
	tpl := loadTemplate(t)
	en := param(t, tpl, "EnableAuditArchival")
	assert.Equal(t, "true", en["Default"])
	assert.ElementsMatch(t, []any{"true", "false"}, en["AllowedValues"])
	assert.Equal(t, fn("Equals", []any{ref("EnableAuditArchival"), "true"}), obj(t, tpl["Conditions"])[archiveConditionID])
	// Its alarms exist with archival and alarms both on.
	assert.Equal(t, fn("And", []any{map[string]any{"Condition": "DeployAlarms"}, map[string]any{"Condition": archiveConditionID}}),
		obj(t, tpl["Conditions"])["DeployArchiverAlarms"])
	for id, v := range obj(t, tpl["Resources"]) {
		if strings.HasPrefix(id, "Archive") || strings.HasPrefix(id, "AuditArchive") {
			want := archiveConditionID
			if obj(t, v)["Type"] == "AWS::CloudWatch::Alarm" {
				want = "DeployArchiverAlarms"
			}
			assert.Equal(t, want, obj(t, v)["Condition"], "resource %s", id)
		}
	}
	alarm := obj(t, resource(t, tpl, archiveAlarmID)["Properties"])
	assert.Equal(t, "Errors", alarm["MetricName"])
	assert.Equal(t, "AWS/Lambda", alarm["Namespace"])
	assert.Equal(t, []any{map[string]any{"Name": "FunctionName", "Value": ref(archiverFunctionID)}}, alarm["Dimensions"])

	outputs := obj(t, tpl["Outputs"])
	for name, val := range map[string]any{
		"AuditArchiveBucketName": ref(archiveBucketID),
		"AuditArchiveBucketArn":  fn("GetAtt", []any{archiveBucketID, "Arn"}),
		"ArchiverFunctionArn":    fn("GetAtt", []any{archiverFunctionID, "Arn"}),
		"ArchiverFunctionName":   ref(archiverFunctionID),
	} {
		o := obj(t, outputs[name])
		assert.Equal(t, archiveConditionID, o["Condition"], name)
		assert.Equal(t, val, o["Value"], name)
		assert.Equal(t, fn("Sub", "${AWS::StackName}-"+name), obj(t, o["Export"])["Name"], name)
	}
	for name, o := range outputs {
		assert.NotContains(t, strings.Join(strings.Fields(toString(o)), ""), archiveAlarmID, "output %s refers to the alarm", name)
	}
}

func toString(v any) string {
	switch x := v.(type) {
	case map[string]any:
		var b strings.Builder
		for k, e := range x {
			b.WriteString(k + " " + toString(e) + " ")
		}
		return b.String()
	case []any:
		var b strings.Builder
		for _, e := range x {
			b.WriteString(toString(e) + " ")
		}
		return b.String()
	case string:
		return x
	}
	return ""
}
