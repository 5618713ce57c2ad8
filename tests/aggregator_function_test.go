package tests

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zeroae/zae-limiter-go/shared/schema"
	"github.com/zeroae/zae-limiter-go/shared/stream"
	"github.com/zeroae/zae-limiter-go/shared/usage"
)

// The aggregator function (functions/aggregator) in template.yaml.
const (
	aggregatorFunctionID = "AggregatorFunction"
	aggregatorRoleID     = "AggregatorFunctionRole"
	aggregatorLogGroupID = "AggregatorLogGroup"
	aggregatorDLQID      = "AggregatorDLQ"
	aggregatorCodeURI    = "functions/aggregator"
)

func TestTemplateAggregatorFunction(t *testing.T) {
	t.Parallel()
	tpl := loadTemplate(t)
	r := resource(t, tpl, aggregatorFunctionID)
	require.Equal(t, "AWS::Serverless::Function", r["Type"])
	assert.Equal(t, "DeployAggregator", r["Condition"])
	assert.Equal(t, "go1.x", obj(t, r["Metadata"])["BuildMethod"])
	props := obj(t, r["Properties"])

	// The seed's name: lambda-export and update-function-code use it.
	assert.Equal(t, fn("Sub", "${AWS::StackName}-aggregator"), props["FunctionName"])
	assert.Equal(t, aggregatorCodeURI, props["CodeUri"])
	main, err := os.ReadFile(filepath.Join("..", aggregatorCodeURI, "main.go"))
	require.NoError(t, err)
	assert.True(t, strings.Contains(string(main), "\npackage main\n"))
	eff := effectiveFunctionProps(t, tpl, props)
	assert.Equal(t, "provided.al2023", eff["Runtime"])
	assert.Equal(t, []any{"arm64"}, eff["Architectures"])
	assert.Equal(t, map[string]any{"LogFormat": "JSON", "LogGroup": ref(aggregatorLogGroupID)}, eff["LoggingConfig"])
	// The stack's role, unless AggregatorRoleArn names one.
	assert.Equal(t, fn("If", []any{"UseStackAggregatorRole", fn("GetAtt", []any{aggregatorRoleID, "Arn"}), ref("AggregatorRoleArn")}), props["Role"])
	assert.NotContains(t, props, "Policies", "with Role set, SAM ignores Policies")
	assert.Equal(t, ref("AggregatorMemorySize"), props["MemorySize"])
	assert.Equal(t, ref("AggregatorTimeout"), props["Timeout"])

	// The environment is what config.go reads.
	vars := obj(t, obj(t, props["Environment"])["Variables"])
	var got []string
	for k := range vars {
		got = append(got, k)
	}
	_, read := configEnv(t, aggregatorCodeURI)
	assert.ElementsMatch(t, read, got, "aggregator environment != functions/aggregator/config.go")
	assert.Equal(t, ref(tableLogicalID), vars["TABLE_NAME"])
	assert.Equal(t, ref("SnapshotWindows"), vars["SNAPSHOT_WINDOWS"])
	assert.Equal(t, fn("Sub", "${SnapshotRetentionDays}"), vars["SNAPSHOT_TTL_DAYS"])
	assert.Equal(t, fn("If", []any{"TracingEnabled", "true", "false"}), vars["AWS_XRAY_TRACING_ENABLED"])

	lg := obj(t, resource(t, tpl, aggregatorLogGroupID)["Properties"])
	assert.Equal(t, fn("Sub", "/aws/lambda/${AWS::StackName}-aggregator"), lg["LogGroupName"])
	assert.Equal(t, ref("LogRetentionDays"), lg["RetentionInDays"])
}

func TestTemplateAggregatorParameters(t *testing.T) {
	t.Parallel()
	tpl := loadTemplate(t)
	assert.Equal(t, fn("Equals", []any{ref("EnableAggregator"), "true"}), obj(t, tpl["Conditions"])["DeployAggregator"])
	assert.Equal(t, "true", param(t, tpl, "EnableAggregator")["Default"])

	w := param(t, tpl, "SnapshotWindows")
	var def []string
	for _, x := range usage.DefaultWindows {
		def = append(def, string(x))
	}
	assert.Equal(t, strings.Join(def, ","), w["Default"], "the function's own default")
	re := regexp.MustCompile(str(t, w["AllowedPattern"]))
	for _, ok := range []string{"hourly", "hourly,daily", "monthly,hourly,daily", "daily,monthly"} {
		assert.True(t, re.MatchString(ok), ok)
		_, err := usage.ParseWindows(ok)
		assert.NoError(t, err, "every value the template allows loads")
	}
	for _, bad := range []string{"", "weekly", "hourly, daily", "hourly,", "hourly,daily,monthly,hourly"} {
		assert.False(t, re.MatchString(bad), bad)
	}

	ret := param(t, tpl, "SnapshotRetentionDays")
	assert.Equal(t, 90, ret["Default"])
	assert.Equal(t, 0, ret["MinValue"], "0 keeps snapshots forever (config.go)")
	assert.Equal(t, 3650, ret["MaxValue"], "config.go accepts at most 3650")
	mem := param(t, tpl, "AggregatorMemorySize")
	assert.Equal(t, 256, mem["Default"])
	assert.Equal(t, 60, param(t, tpl, "AggregatorTimeout")["Default"])

	topic := param(t, tpl, "AlarmSNSTopicArn")
	assert.Equal(t, "", topic["Default"])
	re = regexp.MustCompile(str(t, topic["AllowedPattern"]))
	assert.True(t, re.MatchString("arn:aws:sns:us-east-1:123456789012:ops-alerts"))
	assert.True(t, re.MatchString(""))
	assert.False(t, re.MatchString("arn:aws:sqs:us-east-1:123456789012:q"))

	role := param(t, tpl, "AggregatorRoleArn")
	assert.Equal(t, "", role["Default"])
	re = regexp.MustCompile(str(t, role["AllowedPattern"]))
	for _, ok := range []string{"", "arn:aws:iam::123456789012:role/aggr", "arn:aws-us-gov:iam::123456789012:role/path/aggr"} {
		assert.True(t, re.MatchString(ok), ok)
	}
	for _, bad := range []string{"aggr", "arn:aws:iam::123456789012:policy/aggr", "arn:aws:iam::12345:role/aggr"} {
		assert.False(t, re.MatchString(bad), bad)
	}
	conds := obj(t, tpl["Conditions"])
	assert.Equal(t, fn("Equals", []any{ref("AggregatorRoleArn"), ""}), conds["UseStackAggregatorRole"])
	assert.Equal(t, fn("And", []any{map[string]any{"Condition": "DeployAggregator"}, map[string]any{"Condition": "UseStackAggregatorRole"}}),
		conds["CreateAggregatorRole"])
}

// The mapping is complete and standard (the local stack reads it from
// here): the table's stream, batch size and window, partial batch
// responses, bisection, bounded retries and record age, the failure queue,
// and a filter that lets through exactly the bucket records that can carry
// consumption.
func TestTemplateAggregatorMapping(t *testing.T) {
	t.Parallel()
	pattern := streamReaderMapping(t, aggregator)
	// Every record of the function's sample events that carries
	// consumption passes; deletions and other items do not.
	files, err := filepath.Glob(filepath.Join("..", "events", "aggregator", "*.json"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	passed, stopped := 0, 0
	for _, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		var ev struct{ Records []map[string]any }
		require.NoError(t, json.Unmarshal(b, &ev))
		for _, rec := range ev.Records {
			deletion := rec["eventName"] == stream.EventRemove || rec["eventName"] == stream.EventLocalTTL
			assert.Equal(t, !deletion, matches(pattern, rec), "%s: %s record", filepath.Base(f), rec["eventName"])
			if deletion {
				stopped++
			} else {
				passed++
			}
		}
	}
	assert.Positive(t, passed)
	assert.Positive(t, stopped)
	for _, other := range []map[string]any{
		{"eventName": "INSERT", "dynamodb": map[string]any{"Keys": map[string]any{"PK": map[string]any{"S": "ns/ENTITY#e"}, "SK": map[string]any{"S": schema.SKMeta}}}},
		{"eventName": "MODIFY", "dynamodb": map[string]any{"Keys": map[string]any{"SK": map[string]any{"S": schema.SKUsagePrefix + "gpt#hourly#x"}}}},
	} {
		assert.False(t, matches(pattern, other), "%v", other)
	}
}

// streamReaderMapping checks r's stream mapping (the table's stream, batch
// size and window, one batch per stream shard at a time, partial batch
// responses, bisection, bounded retries and record age, the failure queue)
// and returns its one filter pattern.
func streamReaderMapping(t *testing.T, r streamReader) map[string]any {
	t.Helper()
	tpl := loadTemplate(t)
	evs := obj(t, obj(t, resource(t, tpl, r.Prefix+"Function")["Properties"])["Events"])
	require.Len(t, evs, 1)
	ev := obj(t, evs["Stream"])
	assert.Equal(t, "DynamoDB", ev["Type"])
	p := obj(t, ev["Properties"])
	assert.Equal(t, fn("GetAtt", []any{tableLogicalID, "StreamArn"}), p["Stream"])
	assert.Equal(t, "LATEST", p["StartingPosition"])
	assert.Equal(t, 100, p["BatchSize"])
	assert.Equal(t, 1, p["MaximumBatchingWindowInSeconds"])
	assert.Equal(t, 1, p["ParallelizationFactor"], "one item's records arrive in order (ADR-020)")
	assert.Equal(t, []any{"ReportBatchItemFailures"}, p["FunctionResponseTypes"])
	assert.Equal(t, true, p["BisectBatchOnFunctionError"])
	assert.Equal(t, 3, p["MaximumRetryAttempts"])
	assert.Equal(t, 3600, p["MaximumRecordAgeInSeconds"])
	assert.Equal(t, map[string]any{"Type": "SQS", "Destination": fn("GetAtt", []any{r.Prefix + "DLQ", "Arn"})},
		obj(t, obj(t, p["DestinationConfig"])["OnFailure"]))

	dlq := resource(t, tpl, r.Prefix+"DLQ")
	assert.Equal(t, "AWS::SQS::Queue", dlq["Type"])
	assert.Equal(t, r.Condition, dlq["Condition"])
	assert.Equal(t, 1209600, obj(t, dlq["Properties"])["MessageRetentionPeriod"])

	filters := list(t, obj(t, p["FilterCriteria"])["Filters"])
	require.Len(t, filters, 1)
	var pattern map[string]any
	require.NoError(t, json.Unmarshal([]byte(str(t, obj(t, filters[0])["Pattern"])), &pattern))
	return pattern
}

// matches applies an event filter pattern made of value lists (the only
// form the template uses) to a record: every key of the pattern must be
// present with one of the listed values.
func matches(pattern, rec map[string]any) bool {
	for k, want := range pattern {
		got, ok := rec[k]
		if !ok {
			return false
		}
		switch w := want.(type) {
		case map[string]any:
			m, ok := got.(map[string]any)
			if !ok || !matches(w, m) {
				return false
			}
		case []any:
			found := false
			for _, v := range w {
				found = found || v == got
			}
			if !found {
				return false
			}
		default:
			panic("unsupported pattern")
		}
	}
	return true
}

// TestTemplateAggregatorRole: the role grants exactly the function's calls
// (usage.DynamoDB on the table, no index), the mapping's
// (stream.MappingCalls on the stream; ListStreams has no resource), the
// failure queue and its own log group.
func TestTemplateAggregatorRole(t *testing.T) {
	t.Parallel()
	table := streamReaderRole(t, aggregator)
	assert.Equal(t, iamActions(t, methodNames[usage.DynamoDB]()), table, "table actions != usage.DynamoDB")
}

// The alarms: iterator age, errors and the failure queue's depth, each
// notifying the optional topic.
func TestTemplateAggregatorAlarms(t *testing.T) {
	t.Parallel()
	streamReaderAlarms(t, aggregator)
}

func TestTemplateAggregatorOutputs(t *testing.T) {
	t.Parallel()
	streamReaderOutputs(t, aggregator)
}

// streamReader names the resources of a function reading the table's
// stream (the aggregator, refill): Prefix+"Function", +"FunctionRole",
// +"LogGroup", +"DLQ", the alarms and outputs, under Condition (the role
// under RoleCondition, the alarms under Condition+"Alarms").
type streamReader struct{ Prefix, Condition, RoleCondition string }

var aggregator = streamReader{"Aggregator", "DeployAggregator", "CreateAggregatorRole"}

// streamReaderRole checks r's role: assumed by Lambda, X-Ray with tracing,
// stream.MappingCalls on the stream (ListStreams on *), sqs:SendMessage on
// its failure queue, logs on its log group, and nothing else but actions
// on the table, which it returns.
func streamReaderRole(t *testing.T, r streamReader) []string {
	t.Helper()
	tpl := loadTemplate(t)
	role := resource(t, tpl, r.Prefix+"FunctionRole")
	assert.Equal(t, r.RoleCondition, role["Condition"])
	props := obj(t, role["Properties"])
	assume := list(t, obj(t, props["AssumeRolePolicyDocument"])["Statement"])
	require.Len(t, assume, 1)
	assert.Equal(t, map[string]any{"Service": "lambda.amazonaws.com"}, obj(t, assume[0])["Principal"])
	assert.Equal(t, []any{fn("If", []any{"TracingEnabled",
		fn("Sub", "arn:${AWS::Partition}:iam::aws:policy/AWSXrayWriteOnlyAccess"), ref("AWS::NoValue")})},
		props["ManagedPolicyArns"])
	var table, streamActions []string
	for _, p := range list(t, props["Policies"]) {
		for _, s := range list(t, obj(t, obj(t, p)["PolicyDocument"])["Statement"]) {
			st := obj(t, s)
			require.Equal(t, "Allow", st["Effect"])
			actions := statementActions(t, st["Action"])
			switch res := st["Resource"]; {
			case assert.ObjectsAreEqual(fn("GetAtt", []any{tableLogicalID, "Arn"}), res):
				table = append(table, actions...)
			case assert.ObjectsAreEqual(fn("GetAtt", []any{tableLogicalID, "StreamArn"}), res):
				streamActions = append(streamActions, actions...)
			case res == "*":
				assert.Equal(t, []string{"dynamodb:ListStreams"}, actions, "only an action without a resource may have *")
				streamActions = append(streamActions, actions...)
			case assert.ObjectsAreEqual(fn("GetAtt", []any{r.Prefix + "DLQ", "Arn"}), res):
				assert.Equal(t, []string{"sqs:SendMessage"}, actions)
			case assert.ObjectsAreEqual(fn("GetAtt", []any{r.Prefix + "LogGroup", "Arn"}), res):
				assert.ElementsMatch(t, []string{"logs:CreateLogStream", "logs:PutLogEvents"}, actions)
			default:
				t.Errorf("unexpected statement in %sFunctionRole: %v", r.Prefix, st)
			}
		}
	}
	assert.Equal(t, union(stream.MappingCalls), union(streamActions), "stream actions != stream.MappingCalls")
	return union(table)
}

// streamReaderAlarms checks r's alarms (iterator age, errors, throttles, the
// failure queue's depth), with EnableAlarms and the function; duration, and
// notifying the topic, are every function's (TestFunctionAlarms).
func streamReaderAlarms(t *testing.T, r streamReader) {
	t.Helper()
	tpl := loadTemplate(t)
	assert.Equal(t, fn("And", []any{map[string]any{"Condition": "DeployAlarms"}, map[string]any{"Condition": r.Condition}}),
		obj(t, tpl["Conditions"])[r.Condition+"Alarms"])
	for id, want := range map[string]struct {
		namespace, metric, dim string
		dimValue               any
	}{
		r.Prefix + "IteratorAgeAlarm": {"AWS/Lambda", "IteratorAge", "FunctionName", ref(r.Prefix + "Function")},
		r.Prefix + "ErrorsAlarm":      {"AWS/Lambda", "Errors", "FunctionName", ref(r.Prefix + "Function")},
		r.Prefix + "ThrottlesAlarm":   {"AWS/Lambda", "Throttles", "FunctionName", ref(r.Prefix + "Function")},
		r.Prefix + "DLQAlarm":         {"AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", fn("GetAtt", []any{r.Prefix + "DLQ", "QueueName"})},
	} {
		res := resource(t, tpl, id)
		assert.Equal(t, "AWS::CloudWatch::Alarm", res["Type"], id)
		assert.Equal(t, r.Condition+"Alarms", res["Condition"], id)
		p := obj(t, res["Properties"])
		assert.Equal(t, want.namespace, p["Namespace"], id)
		assert.Equal(t, want.metric, p["MetricName"], id)
		assert.Equal(t, []any{map[string]any{"Name": want.dim, "Value": want.dimValue}}, p["Dimensions"], id)
	}
	// Nothing may GetAtt an alarm: moto's CloudFormation skips alarms.
	raw, err := os.ReadFile(templatePath(t))
	require.NoError(t, err)
	assert.NotRegexp(t, `GetAtt\s+\w*Alarm\.`, string(raw))
}

// streamReaderOutputs checks r's outputs: its function's name and its
// failure queue's URL, exported under the stack's name.
func streamReaderOutputs(t *testing.T, r streamReader) {
	t.Helper()
	outputs := obj(t, loadTemplate(t)["Outputs"])
	for name, value := range map[string]any{
		r.Prefix + "FunctionName": ref(r.Prefix + "Function"),
		r.Prefix + "DLQUrl":       ref(r.Prefix + "DLQ"),
	} {
		o := obj(t, outputs[name])
		assert.Equal(t, r.Condition, o["Condition"], name)
		assert.Equal(t, value, o["Value"], name)
		assert.Equal(t, fn("Sub", "${AWS::StackName}-"+name), obj(t, o["Export"])["Name"], name)
	}
}
