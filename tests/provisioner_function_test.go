package tests

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zeroae/zae-limiter-go/cli"
	"github.com/zeroae/zae-limiter-go/shared/manifest"
	"github.com/zeroae/zae-limiter-go/shared/provision"
	"github.com/zeroae/zae-limiter-go/shared/store"
)

// The provisioner function (functions/provisioner) in template.yaml.
const (
	provisionerFunctionID = "ProvisionerFunction"
	provisionerRoleID     = "ProvisionerFunctionRole"
	provisionerLogGroupID = "ProvisionerLogGroup"
	provisionerCodeURI    = "functions/provisioner"
)

func TestTemplateProvisionerFunction(t *testing.T) {
	t.Parallel()
	tpl := loadTemplate(t)
	r := resource(t, tpl, provisionerFunctionID)
	require.Equal(t, "AWS::Serverless::Function", r["Type"])
	assert.Equal(t, "go1.x", obj(t, r["Metadata"])["BuildMethod"])
	props := obj(t, r["Properties"])

	// The CLI invokes it by this name.
	assert.Equal(t, fn("Sub", "${AWS::StackName}-provisioner"), props["FunctionName"])
	assert.Equal(t, cli.ProvisionerFunction("${AWS::StackName}"), "${AWS::StackName}-provisioner")
	assert.Equal(t, provisionerCodeURI, props["CodeUri"])
	main, err := os.ReadFile(filepath.Join("..", provisionerCodeURI, "main.go"))
	require.NoError(t, err)
	assert.True(t, strings.Contains(string(main), "\npackage main\n"))
	eff := effectiveFunctionProps(t, tpl, props)
	assert.Equal(t, "provided.al2023", eff["Runtime"])
	assert.Equal(t, []any{"arm64"}, eff["Architectures"])
	assert.Equal(t, "bootstrap", eff["Handler"])
	assert.Equal(t, map[string]any{"LogFormat": "JSON", "LogGroup": ref(provisionerLogGroupID)}, eff["LoggingConfig"])
	assert.Equal(t, 900, props["Timeout"], "Lambda's longest: large manifests take minutes")
	assert.Equal(t, fn("GetAtt", []any{provisionerRoleID, "Arn"}), props["Role"])
	assert.NotContains(t, props, "Policies")

	// The environment is what config.go reads.
	vars := obj(t, obj(t, props["Environment"])["Variables"])
	var got []string
	for k := range vars {
		got = append(got, k)
	}
	_, read := configEnv(t, provisionerCodeURI)
	assert.ElementsMatch(t, read, got, "provisioner environment != functions/provisioner/config.go")
	assert.Equal(t, ref(tableLogicalID), vars["TABLE_NAME"])
	assert.Equal(t, fn("If", []any{"TracingEnabled", "true", "false"}), vars["AWS_XRAY_TRACING_ENABLED"])

	// The export the custom resources import.
	out := obj(t, obj(t, tpl["Outputs"])["ProvisionerArn"])
	assert.Equal(t, fn("GetAtt", []any{provisionerFunctionID, "Arn"}), out["Value"])
	assert.Equal(t, fn("Sub", manifest.ProvisionerExport("${AWS::StackName}")), obj(t, out["Export"])["Name"])
	assert.NotContains(t, out, "Condition")
	name := obj(t, obj(t, tpl["Outputs"])["ProvisionerName"])
	assert.Equal(t, ref(provisionerFunctionID), name["Value"])
	assert.Equal(t, fn("Sub", "${AWS::StackName}-ProvisionerName"), obj(t, name["Export"])["Name"])

	lg := resource(t, tpl, provisionerLogGroupID)
	assert.Equal(t, "AWS::Logs::LogGroup", lg["Type"])
	assert.Equal(t, fn("Sub", "/aws/lambda/${AWS::StackName}-provisioner"), obj(t, lg["Properties"])["LogGroupName"])
}

// TestTemplateProvisionerRole: the role grants exactly the provisioner's
// calls: the store's (store.ProvisionCalls, checked against what reaches
// DynamoDB by store's TestProvisionCalls) and the record's
// (provision.DynamoDB), on the table only, plus its own log group.
func TestTemplateProvisionerRole(t *testing.T) {
	t.Parallel()
	tpl := loadTemplate(t)
	props := obj(t, resource(t, tpl, provisionerRoleID)["Properties"])
	assume := list(t, obj(t, props["AssumeRolePolicyDocument"])["Statement"])
	require.Len(t, assume, 1)
	assert.Equal(t, map[string]any{"Service": "lambda.amazonaws.com"}, obj(t, assume[0])["Principal"])
	assert.Equal(t, []any{fn("If", []any{"TracingEnabled",
		fn("Sub", "arn:${AWS::Partition}:iam::aws:policy/AWSXrayWriteOnlyAccess"), ref("AWS::NoValue")})},
		props["ManagedPolicyArns"])
	var dynamo []string
	for _, p := range list(t, props["Policies"]) {
		for _, s := range list(t, obj(t, obj(t, p)["PolicyDocument"])["Statement"]) {
			st := obj(t, s)
			require.Equal(t, "Allow", st["Effect"])
			actions := statementActions(t, st["Action"])
			switch {
			case strings.HasPrefix(actions[0], "dynamodb:"):
				dynamo = append(dynamo, actions...)
				assert.Equal(t, fn("GetAtt", []any{tableLogicalID, "Arn"}), st["Resource"], "the table only: no index is used")
			case actions[0] == "logs:CreateLogStream":
				assert.ElementsMatch(t, []string{"logs:CreateLogStream", "logs:PutLogEvents"}, actions)
				assert.Equal(t, fn("GetAtt", []any{provisionerLogGroupID, "Arn"}), st["Resource"])
			default:
				t.Errorf("unexpected statement in %s: %v", provisionerRoleID, st)
			}
		}
	}
	want := union(store.ProvisionCalls, iamActions(t, methodNames[provision.DynamoDB]()))
	assert.Equal(t, want, union(dynamo), "provisioner role != store.ProvisionCalls + provision.DynamoDB")
	assert.Subset(t, policyActions(t, tpl, "FullAccessPolicy", "full"), want,
		"FullAccessPolicy (for limits apply --direct) lacks an action of the provisioner")
}
