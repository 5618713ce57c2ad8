package tests

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zeroae/zae-limiter-go/shared/limiter"
	"github.com/zeroae/zae-limiter-go/shared/schema"
	"github.com/zeroae/zae-limiter-go/shared/store"
)

// tableLogicalID is the template's DynamoDB table.
const tableLogicalID = "RateLimitsTable"

func TestTemplateTableMatchesSchema(t *testing.T) {
	t.Parallel()
	props := tableProps(t, loadTemplate(t))

	assert.Equal(t, ref("AWS::StackName"), props["TableName"], "TableName must be the stack name")

	got := &dynamodb.CreateTableInput{
		TableName:   aws.String("x"),
		BillingMode: types.BillingMode(str(t, props["BillingMode"])),
		KeySchema:   keySchema(t, props["KeySchema"]),
	}
	for _, a := range list(t, props["AttributeDefinitions"]) {
		m := obj(t, a)
		got.AttributeDefinitions = append(got.AttributeDefinitions, types.AttributeDefinition{
			AttributeName: aws.String(str(t, m["AttributeName"])),
			AttributeType: types.ScalarAttributeType(str(t, m["AttributeType"])),
		})
	}
	for _, g := range list(t, props["GlobalSecondaryIndexes"]) {
		m := obj(t, g)
		p := obj(t, m["Projection"])
		proj := &types.Projection{ProjectionType: types.ProjectionType(str(t, p["ProjectionType"]))}
		for _, a := range list(t, p["NonKeyAttributes"]) {
			proj.NonKeyAttributes = append(proj.NonKeyAttributes, str(t, a))
		}
		got.GlobalSecondaryIndexes = append(got.GlobalSecondaryIndexes, types.GlobalSecondaryIndex{
			IndexName:  aws.String(str(t, m["IndexName"])),
			KeySchema:  keySchema(t, m["KeySchema"]),
			Projection: proj,
		})
	}
	if s, ok := props["StreamSpecification"]; ok {
		got.StreamSpecification = &types.StreamSpecification{
			StreamEnabled:  aws.Bool(true),
			StreamViewType: types.StreamViewType(str(t, obj(t, s)["StreamViewType"])),
		}
	}

	// Every field of CreateTableInput that the schema sets and the mapping
	// above does not read makes this comparison fail, so a new schema field
	// (LSIs, SSE, table class...) cannot be forgotten in the template.
	want := schema.CreateTableInput("x")
	normalizeTable(want)
	normalizeTable(got)
	assert.Equal(t, want, got, "template.yaml %s differs from schema.CreateTableInput", tableLogicalID)
	assert.Equal(t, schema.StreamViewType, got.StreamSpecification.StreamViewType)

	// Properties outside CreateTableInput: a property the template gains
	// without this test knowing it (e.g. LocalSecondaryIndexes) fails here.
	known := map[string]bool{
		"TableName": true, "BillingMode": true, "KeySchema": true, "AttributeDefinitions": true,
		"GlobalSecondaryIndexes": true, "StreamSpecification": true, "TimeToLiveSpecification": true,
		"PointInTimeRecoverySpecification": true, "DeletionProtectionEnabled": true, "Tags": true,
	}
	for k := range props {
		assert.True(t, known[k], "table property %s is not compared with shared/schema", k)
	}

	pitr := obj(t, props["PointInTimeRecoverySpecification"])
	assert.Equal(t, true, pitr["PointInTimeRecoveryEnabled"])
	assert.Equal(t, fn("If", []any{"UsePITRRecoveryPeriod", ref("PITRRecoveryPeriodDays"), ref("AWS::NoValue")}),
		pitr["RecoveryPeriodInDays"])
	assert.Equal(t, fn("If", []any{"EnableTableDeletionProtection", true, false}), props["DeletionProtectionEnabled"])
	assert.Contains(t, list(t, props["Tags"]), map[string]any{"Key": "Application", "Value": "zae-limiter"})
}

func TestTemplateTTLMatchesSchema(t *testing.T) {
	t.Parallel()
	props := tableProps(t, loadTemplate(t))
	spec := obj(t, props["TimeToLiveSpecification"])
	want := schema.TTLInput("x").TimeToLiveSpecification
	got := &types.TimeToLiveSpecification{
		AttributeName: aws.String(str(t, spec["AttributeName"])),
		Enabled:       aws.Bool(spec["Enabled"] == true),
	}
	assert.Equal(t, want, got)
}

func TestTemplateParameterDefaults(t *testing.T) {
	t.Parallel()
	params := obj(t, loadTemplate(t)["Parameters"])
	for name, def := range map[string]string{
		"PITRRecoveryPeriodDays":   "",
		"EnableDeletionProtection": "false",
		"EnableIAM":                "true",
		"EnableTracing":            "false",
		"AcquireOnlyPolicyName":    "",
		"FullAccessPolicyName":     "",
		"ReadOnlyPolicyName":       "",
		"AcquireUrlAuthType":       "AWS_IAM",
		"LeaseKeysParameterName":   "",
	} {
		p, ok := params[name]
		if assert.True(t, ok, "parameter %s missing", name) {
			assert.Equal(t, def, obj(t, p)["Default"], "default of %s", name)
		}
	}
}

func TestTemplateFunctionGlobals(t *testing.T) {
	t.Parallel()
	g := obj(t, obj(t, loadTemplate(t)["Globals"])["Function"])
	assert.Equal(t, "provided.al2023", g["Runtime"])
	assert.Equal(t, []any{"arm64"}, g["Architectures"])
	assert.Equal(t, "bootstrap", g["Handler"])
	assert.Equal(t, fn("If", []any{"TracingEnabled", "Active", "PassThrough"}), g["Tracing"])
	assert.Equal(t, "JSON", obj(t, g["LoggingConfig"])["LogFormat"])
}

// TestTemplateAcquireOnlyPolicyParity is DECISIONS §3.11: the acquire-only
// policy grants exactly the calls of the acquire path, no more, no less.
func TestTemplateAcquireOnlyPolicyParity(t *testing.T) {
	t.Parallel()
	got := policyActions(t, loadTemplate(t), "AcquireOnlyPolicy", "acq")
	want := union(limiter.Calls, store.AcquireCalls)
	assert.Equal(t, want, got, "AcquireOnlyPolicy actions != limiter.Calls + store.AcquireCalls")
}

// TestTemplateFullAccessPolicyParity: the full-access policy grants exactly
// the IAM actions of every DynamoDB call the store and the limiter can make
// on a deployed table (store.DynamoDB minus the local-table setup calls).
func TestTemplateFullAccessPolicyParity(t *testing.T) {
	t.Parallel()
	storeCalls := iamActions(t, methodNames[store.DynamoDB](), "CreateTable", "UpdateTimeToLive")
	limiterCalls := iamActions(t, methodNames[limiter.DynamoDB]())
	want := union(storeCalls, limiterCalls, limiter.Calls)
	got := policyActions(t, loadTemplate(t), "FullAccessPolicy", "full")
	assert.Equal(t, want, got, "FullAccessPolicy actions != IAM actions of store.DynamoDB + limiter.DynamoDB")
}

// limiter.Calls documents the limiter.DynamoDB interface as IAM actions.
func TestLimiterCallsMatchInterface(t *testing.T) {
	t.Parallel()
	assert.Equal(t, union(iamActions(t, methodNames[limiter.DynamoDB]())), union(limiter.Calls))
}

func TestTemplateReadOnlyPolicy(t *testing.T) {
	t.Parallel()
	tpl := loadTemplate(t)
	got := policyActions(t, tpl, "ReadOnlyPolicy", "read")
	assert.Equal(t, union([]string{"dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query", "dynamodb:DescribeTable"}), got)
	full := policyActions(t, tpl, "FullAccessPolicy", "full")
	assert.Subset(t, full, got, "ReadOnlyPolicy grants more than FullAccessPolicy")
	assert.Subset(t, full, policyActions(t, tpl, "AcquireOnlyPolicy", "acq"), "AcquireOnlyPolicy grants more than FullAccessPolicy")
}

func TestTemplateOutputs(t *testing.T) {
	t.Parallel()
	outputs := obj(t, loadTemplate(t)["Outputs"])
	for name, cond := range map[string]string{
		"TableName": "", "TableArn": "", "StreamArn": "",
		"AcquireOnlyPolicyArn": "DeployIAM", "FullAccessPolicyArn": "DeployIAM", "ReadOnlyPolicyArn": "DeployIAM",
		"AcquireFunctionArn": "", "AcquireFunctionName": "", "AcquireUrl": "HasAcquireUrlOutput",
	} {
		o, ok := outputs[name]
		if !assert.True(t, ok, "output %s missing", name) {
			continue
		}
		m := obj(t, o)
		assert.Equal(t, fn("Sub", "${AWS::StackName}-"+name), obj(t, m["Export"])["Name"], "export of %s", name)
		if cond == "" {
			assert.NotContains(t, m, "Condition", "output %s", name)
		} else {
			assert.Equal(t, cond, m["Condition"], "condition of output %s", name)
		}
	}
	assert.Equal(t, ref(tableLogicalID), obj(t, outputs["TableName"])["Value"])
	assert.Equal(t, fn("GetAtt", []any{tableLogicalID, "Arn"}), obj(t, outputs["TableArn"])["Value"])
	assert.Equal(t, fn("GetAtt", []any{tableLogicalID, "StreamArn"}), obj(t, outputs["StreamArn"])["Value"])
	assert.Equal(t, fn("GetAtt", []any{acquireFunctionID, "Arn"}), obj(t, outputs["AcquireFunctionArn"])["Value"])
	assert.Equal(t, ref(acquireFunctionID), obj(t, outputs["AcquireFunctionName"])["Value"])
	// AcquireFunctionUrl is the AWS::Lambda::Url SAM generates for FunctionUrlConfig.
	assert.Equal(t, fn("GetAtt", []any{acquireFunctionID + "Url", "FunctionUrl"}), obj(t, outputs["AcquireUrl"])["Value"])
}

// --- template access -------------------------------------------------------

func loadTemplate(t *testing.T) map[string]any {
	t.Helper()
	data, err := os.ReadFile(templatePath(t))
	require.NoError(t, err)
	tpl, err := decodeCFN(data)
	require.NoError(t, err, "parse template.yaml")
	return obj(t, tpl)
}

func templatePath(t *testing.T) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("..", "template.yaml"))
	require.NoError(t, err)
	return p
}

func resource(t *testing.T, tpl map[string]any, id string) map[string]any {
	t.Helper()
	r, ok := obj(t, tpl["Resources"])[id]
	require.True(t, ok, "resource %s missing from template.yaml", id)
	return obj(t, r)
}

func tableProps(t *testing.T, tpl map[string]any) map[string]any {
	t.Helper()
	r := resource(t, tpl, tableLogicalID)
	require.Equal(t, "AWS::DynamoDB::Table", r["Type"])
	return obj(t, r["Properties"])
}

// policyActions returns the sorted, de-duplicated actions of a managed
// policy's Allow statements, after checking the policy's shape: created only
// when EnableIAM is true, named {stack}-<suffix> by default, and scoped to
// the table and its indexes.
func policyActions(t *testing.T, tpl map[string]any, id, suffix string) []string {
	t.Helper()
	r := resource(t, tpl, id)
	require.Equal(t, "AWS::IAM::ManagedPolicy", r["Type"], id)
	assert.Equal(t, "DeployIAM", r["Condition"], "%s condition", id)
	props := obj(t, r["Properties"])
	assert.Equal(t, fn("If", []any{"HasCustom" + id + "Name", ref(id + "Name"), fn("Sub", "${AWS::StackName}-"+suffix)}),
		props["ManagedPolicyName"], "%s name", id)
	wantResources := []any{fn("GetAtt", []any{tableLogicalID, "Arn"}), fn("Sub", "${"+tableLogicalID+".Arn}/index/*")}
	var actions []string
	for _, s := range list(t, obj(t, props["PolicyDocument"])["Statement"]) {
		st := obj(t, s)
		require.Equal(t, "Allow", st["Effect"], "%s: only Allow statements are expected", id)
		assert.ElementsMatch(t, wantResources, list(t, st["Resource"]), "%s resources", id)
		switch a := st["Action"].(type) {
		case string:
			actions = append(actions, a)
		default:
			for _, v := range list(t, a) {
				actions = append(actions, str(t, v))
			}
		}
	}
	return union(actions)
}

// --- Go side ----------------------------------------------------------------

// methodNames lists the methods of interface type I.
func methodNames[I any]() []string {
	it := reflect.TypeOf((*I)(nil)).Elem()
	names := make([]string, 0, it.NumMethod())
	for i := range it.NumMethod() {
		names = append(names, it.Method(i).Name)
	}
	return names
}

// iamActions maps SDK operation names to the IAM actions that authorize them,
// leaving out the names in skip. Most map one to one; IAM has no action for a
// transaction as such: each item operation inside it is authorized on its
// own (Put/Update/Delete as PutItem/UpdateItem/DeleteItem, ConditionCheck as
// ConditionCheckItem, Get as GetItem).
func iamActions(t *testing.T, ops []string, skip ...string) []string {
	t.Helper()
	var out []string
	for _, op := range ops {
		switch {
		case contains(skip, op):
		case op == "TransactWriteItems":
			out = append(out, "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem")
			if usesConditionCheck(t) {
				out = append(out, "dynamodb:ConditionCheckItem")
			}
		case op == "TransactGetItems":
			out = append(out, "dynamodb:GetItem")
		default:
			out = append(out, "dynamodb:"+op)
		}
	}
	return union(out)
}

// usesConditionCheck reports whether the non-test code of shared/ builds a
// transaction ConditionCheck, which needs dynamodb:ConditionCheckItem.
func usesConditionCheck(t *testing.T) bool {
	t.Helper()
	found := false
	err := filepath.WalkDir(filepath.Join("..", "shared"), func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return err
		}
		b, err := os.ReadFile(p)
		if err == nil && (bytes.Contains(b, []byte("ConditionCheck:")) || bytes.Contains(b, []byte("types.ConditionCheck{"))) {
			found = true
		}
		return err
	})
	require.NoError(t, err)
	return found
}

// --- helpers ----------------------------------------------------------------

func normalizeTable(in *dynamodb.CreateTableInput) {
	sort.Slice(in.AttributeDefinitions, func(i, j int) bool {
		return aws.ToString(in.AttributeDefinitions[i].AttributeName) < aws.ToString(in.AttributeDefinitions[j].AttributeName)
	})
	sort.Slice(in.GlobalSecondaryIndexes, func(i, j int) bool {
		return aws.ToString(in.GlobalSecondaryIndexes[i].IndexName) < aws.ToString(in.GlobalSecondaryIndexes[j].IndexName)
	})
}

func keySchema(t *testing.T, v any) []types.KeySchemaElement {
	t.Helper()
	var out []types.KeySchemaElement
	for _, k := range list(t, v) {
		m := obj(t, k)
		out = append(out, types.KeySchemaElement{
			AttributeName: aws.String(str(t, m["AttributeName"])),
			KeyType:       types.KeyType(str(t, m["KeyType"])),
		})
	}
	return out
}

func union(lists ...[]string) []string {
	set := map[string]bool{}
	for _, l := range lists {
		for _, s := range l {
			set[s] = true
		}
	}
	out := make([]string, 0, len(set))
	for s := range set {
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

func obj(t *testing.T, v any) map[string]any {
	t.Helper()
	m, ok := v.(map[string]any)
	require.True(t, ok, "want a mapping, got %T (%v)", v, v)
	return m
}

func list(t *testing.T, v any) []any {
	t.Helper()
	if v == nil {
		return nil
	}
	l, ok := v.([]any)
	require.True(t, ok, "want a list, got %T (%v)", v, v)
	return l
}

func str(t *testing.T, v any) string {
	t.Helper()
	s, ok := v.(string)
	require.True(t, ok, "want a string, got %T (%v)", v, v)
	return s
}

// samconfig.toml: the default stack is "limiter" (the CLI's default name),
// deploys may create the named IAM policies, and builds are never cached
// (STYLE §4.8).
func TestSAMConfig(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile(filepath.Join("..", "samconfig.toml"))
	require.NoError(t, err)
	settings := map[string]string{}
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(line, "#") {
			settings[strings.TrimSpace(k)] = strings.Trim(strings.TrimSpace(v), `"`)
		}
	}
	assert.Equal(t, "limiter", settings["stack_name"])
	assert.ElementsMatch(t, []string{"CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"}, strings.Fields(settings["capabilities"]))
	assert.NotEqual(t, "true", settings["cached"], "samconfig.toml must not cache builds")
}
