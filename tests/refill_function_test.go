package tests

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zeroae/zae-limiter-go/shared/schema"
	"github.com/zeroae/zae-limiter-go/shared/upkeep"
)

// The refill function (functions/refill) in template.yaml.
var refill = streamReader{"Refill", "DeployRefill", "DeployRefill"}

func TestTemplateRefillFunction(t *testing.T) {
	t.Parallel()
	tpl := loadTemplate(t)
	r := resource(t, tpl, "RefillFunction")
	require.Equal(t, "AWS::Serverless::Function", r["Type"])
	assert.Equal(t, "DeployRefill", r["Condition"])
	assert.Equal(t, "go1.x", obj(t, r["Metadata"])["BuildMethod"])
	props := obj(t, r["Properties"])
	assert.Equal(t, fn("Sub", "${AWS::StackName}-refill"), props["FunctionName"])
	assert.Equal(t, "functions/refill", props["CodeUri"])
	eff := effectiveFunctionProps(t, tpl, props)
	assert.Equal(t, "provided.al2023", eff["Runtime"])
	assert.Equal(t, []any{"arm64"}, eff["Architectures"])
	assert.Equal(t, map[string]any{"LogFormat": "JSON", "LogGroup": ref("RefillLogGroup")}, eff["LoggingConfig"])
	assert.Equal(t, fn("GetAtt", []any{"RefillFunctionRole", "Arn"}), props["Role"])
	assert.Equal(t, ref("RefillMemorySize"), props["MemorySize"])
	assert.Equal(t, ref("RefillTimeout"), props["Timeout"])

	vars := obj(t, obj(t, props["Environment"])["Variables"])
	var got []string
	for k := range vars {
		got = append(got, k)
	}
	_, read := configEnv(t, "functions/refill")
	assert.ElementsMatch(t, read, got, "refill environment != functions/refill/config.go")
	assert.Equal(t, ref(tableLogicalID), vars["TABLE_NAME"])
	assert.Equal(t, fn("Sub", "${RefillGrowAtPercent}"), vars["GROW_AT_PERCENT"])
	assert.Equal(t, fn("If", []any{"TracingEnabled", "true", "false"}), vars["AWS_XRAY_TRACING_ENABLED"])

	lg := obj(t, resource(t, tpl, "RefillLogGroup")["Properties"])
	assert.Equal(t, fn("Sub", "/aws/lambda/${AWS::StackName}-refill"), lg["LogGroupName"])

	assert.Equal(t, fn("Equals", []any{ref("EnableRefill"), "true"}), obj(t, tpl["Conditions"])["DeployRefill"])
	assert.Equal(t, "true", param(t, tpl, "EnableRefill")["Default"])
	grow := param(t, tpl, "RefillGrowAtPercent")
	assert.Equal(t, 50, grow["Default"], "config.go's default")
	assert.Equal(t, 1, grow["MinValue"])
	assert.Equal(t, 100, grow["MaxValue"])
}

// The mapping lets through every record of a bucket shard item, removals
// (TTL expiries: a quiet shard) included, and nothing else.
func TestTemplateRefillMapping(t *testing.T) {
	t.Parallel()
	pattern := streamReaderMapping(t, refill)
	files, err := filepath.Glob(filepath.Join("..", "events", "refill", "*.json"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	removals := 0
	for _, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		var ev struct{ Records []map[string]any }
		require.NoError(t, json.Unmarshal(b, &ev))
		for _, rec := range ev.Records {
			assert.True(t, matches(pattern, rec), "%s: %s record", filepath.Base(f), rec["eventName"])
			if rec["eventName"] == "REMOVE" {
				removals++
			}
		}
	}
	assert.Positive(t, removals)
	for _, other := range []map[string]any{
		{"eventName": "INSERT", "dynamodb": map[string]any{"Keys": map[string]any{"SK": map[string]any{"S": schema.SKMeta}}}},
		{"eventName": "REMOVE", "dynamodb": map[string]any{"Keys": map[string]any{"SK": map[string]any{"S": schema.SKUsagePrefix + "gpt#hourly#x"}}}},
	} {
		assert.False(t, matches(pattern, other), "%v", other)
	}
}

// The role grants exactly upkeep.Calls on the table (besides the mapping's,
// the queue's and the logs').
func TestTemplateRefillRole(t *testing.T) {
	t.Parallel()
	table := streamReaderRole(t, refill)
	assert.Equal(t, union(upkeep.Calls), table, "table actions != upkeep.Calls")
	assert.Subset(t, iamActions(t, methodNames[upkeep.DB]()), upkeep.Calls, "upkeep.Calls names an action upkeep.DB never makes")
}

func TestTemplateRefillAlarms(t *testing.T) {
	t.Parallel()
	streamReaderAlarms(t, refill)
}

func TestTemplateRefillOutputs(t *testing.T) {
	t.Parallel()
	streamReaderOutputs(t, refill)
}
