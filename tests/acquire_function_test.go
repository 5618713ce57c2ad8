package tests

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zeroae/zae-limiter-go/shared/api"
	"github.com/zeroae/zae-limiter-go/shared/limiter"
	"github.com/zeroae/zae-limiter-go/shared/localstack/samtpl"
	"github.com/zeroae/zae-limiter-go/shared/store"
)

// The acquire function (functions/acquire) in template.yaml.
const (
	acquireFunctionID = "AcquireFunction"
	acquireRoleID     = "AcquireFunctionRole"
	acquireLogGroupID = "AcquireLogGroup"
	acquireCodeURI    = "functions/acquire"
)

// acquireEnv is what the template sets on the acquire function: every
// variable functions/acquire/config.go reads except acquireEnvNotSet.
var acquireEnv = []string{
	"TABLE_NAME",
	"DEFAULT_NAMESPACE",
	"LEASE_KEYS_PARAMETER",
	"LEASE_KEYS_SECRET",
	"LEASE_KEYS_REVISION",
	"LEASE_TTL",
	"CONFIG_CACHE_TTL",
	"REQUEST_TIMEOUT",
	"DENIAL_CACHE",
	"AWS_XRAY_TRACING_ENABLED",
}

// acquireEnvNotSet: LEASE_KEYS is the local alternative to
// LEASE_KEYS_PARAMETER and LEASE_KEYS_SECRET (setting two is a config
// error); a deployed stack keeps its keys in Secrets Manager or SSM, never
// in the function's environment.
var acquireEnvNotSet = []string{"LEASE_KEYS"}

// cloudWatchRetentionDays are the values AWS::Logs::LogGroup RetentionInDays
// accepts.
var cloudWatchRetentionDays = []int{1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731,
	1096, 1827, 2192, 2557, 2922, 3288, 3653}

func TestTemplateAcquireFunction(t *testing.T) {
	t.Parallel()
	tpl := loadTemplate(t)
	r := resource(t, tpl, acquireFunctionID)
	require.Equal(t, "AWS::Serverless::Function", r["Type"])
	assert.Equal(t, "go1.x", obj(t, r["Metadata"])["BuildMethod"], "SAM's Go builder")
	props := obj(t, r["Properties"])

	assert.Equal(t, fn("Sub", "${AWS::StackName}-acquire"), props["FunctionName"])
	assert.Equal(t, acquireCodeURI, props["CodeUri"])
	main, err := os.ReadFile(filepath.Join("..", acquireCodeURI, "main.go"))
	require.NoError(t, err, "CodeUri must be the acquire function's package")
	assert.True(t, strings.Contains(string(main), "\npackage main\n"), "CodeUri must hold a main package")

	eff := effectiveFunctionProps(t, tpl, props)
	assert.Equal(t, "provided.al2023", eff["Runtime"])
	assert.Equal(t, []any{"arm64"}, eff["Architectures"], "Architectures (Globals and function lists are concatenated)")
	assert.Equal(t, "bootstrap", eff["Handler"])
	assert.Equal(t, fn("If", []any{"TracingEnabled", "Active", "PassThrough"}), eff["Tracing"])
	assert.Equal(t, map[string]any{"LogFormat": "JSON", "LogGroup": ref(acquireLogGroupID)}, eff["LoggingConfig"])

	assert.Equal(t, ref("AcquireMemorySize"), props["MemorySize"])
	assert.Equal(t, 10, props["Timeout"])
	mem := param(t, tpl, "AcquireMemorySize")
	assert.Equal(t, "Number", mem["Type"])
	assert.Equal(t, 256, mem["Default"])
	assert.Equal(t, 128, mem["MinValue"])
	assert.Equal(t, 10240, mem["MaxValue"])

	assert.Equal(t, fn("GetAtt", []any{acquireRoleID, "Arn"}), props["Role"])
	assert.NotContains(t, props, "Policies", "with Role set, SAM ignores Policies: put them in "+acquireRoleID)
}

// TestTemplateAcquireEnvironment: the template sets exactly the variables
// config.go reads (minus LEASE_KEYS), so a renamed or new variable fails.
func TestTemplateAcquireEnvironment(t *testing.T) {
	t.Parallel()
	tpl := loadTemplate(t)
	props := obj(t, resource(t, tpl, acquireFunctionID)["Properties"])
	vars := obj(t, obj(t, props["Environment"])["Variables"])
	got := make([]string, 0, len(vars))
	for k := range vars {
		got = append(got, k)
	}
	assert.ElementsMatch(t, acquireEnv, got, "acquire function environment")

	src, read := configEnv(t, acquireCodeURI)
	for _, name := range acquireEnv {
		assert.True(t, strings.Contains(src, strconv.Quote(name)), "functions/acquire/config.go no longer reads %s", name)
	}
	assert.ElementsMatch(t, union(acquireEnv, acquireEnvNotSet), read,
		"functions/acquire/config.go reads variables the template does not know about (or no longer reads some)")

	assert.Equal(t, ref(tableLogicalID), vars["TABLE_NAME"])
	assert.Equal(t, api.DefaultNamespace, vars["DEFAULT_NAMESPACE"])
	// Exactly one key source is set: the stack's secret, or the parameter.
	assert.Equal(t, ref("LeaseKeysParameterName"), vars["LEASE_KEYS_PARAMETER"])
	assert.Equal(t, fn("If", []any{"CreateLeaseKeysSecret", ref("LeaseKeysSecret"), ""}), vars["LEASE_KEYS_SECRET"])
	conds := obj(t, tpl["Conditions"])
	assert.Equal(t, fn("Equals", []any{ref("LeaseKeysParameterName"), ""}), conds["CreateLeaseKeysSecret"])
	assert.Equal(t, fn("Not", []any{fn("Equals", []any{ref("LeaseKeysParameterName"), ""})}), conds["HasLeaseKeysParameter"])
	secret := resource(t, tpl, "LeaseKeysSecret")
	assert.Equal(t, "AWS::SecretsManager::Secret", secret["Type"])
	assert.Equal(t, "CreateLeaseKeysSecret", secret["Condition"])
	gen := obj(t, obj(t, secret["Properties"])["GenerateSecretString"])
	assert.GreaterOrEqual(t, gen["PasswordLength"], 32, "keys are at least 32 bytes (functions/acquire MinKeyLen)")
	assert.Equal(t, true, gen["ExcludePunctuation"], "no comma: the value is a comma-separated list")
	assert.Equal(t, ref("LeaseKeysRevision"), vars["LEASE_KEYS_REVISION"], "a new revision replaces the instances")
	assert.Equal(t, fn("Sub", "${LeaseTTLSeconds}"), vars["LEASE_TTL"])
	assert.Equal(t, fn("Sub", "${AcquireRequestTimeoutSeconds}"), vars["REQUEST_TIMEOUT"])
	assert.Equal(t, fn("If", []any{"TracingEnabled", "true", "false"}), vars["AWS_XRAY_TRACING_ENABLED"],
		"X-Ray instrumentation must follow EnableTracing")

	ttl := param(t, tpl, "LeaseTTLSeconds")
	assert.Equal(t, "Number", ttl["Type"])
	assert.Equal(t, int(api.DefaultLeaseTTL/time.Second), ttl["Default"], "LeaseTTLSeconds default != api.DefaultLeaseTTL")
	assert.Equal(t, 1, ttl["MinValue"])
	assert.Equal(t, int(24*time.Hour/time.Second), ttl["MaxValue"], "config.go accepts at most 24h")

	assert.Equal(t, fn("Sub", "${ConfigCacheTTLSeconds}"), vars["CONFIG_CACHE_TTL"])
	cache := param(t, tpl, "ConfigCacheTTLSeconds")
	assert.Equal(t, "Number", cache["Type"])
	assert.Equal(t, int(store.DefaultCacheTTL/time.Second), cache["Default"], "ConfigCacheTTLSeconds default != store.DefaultCacheTTL")
	assert.Equal(t, 0, cache["MinValue"], "0 turns the cache off")
	assert.Equal(t, int(store.MaxCacheTTL/time.Second), cache["MaxValue"], "config.go accepts at most store.MaxCacheTTL")

	keys := param(t, tpl, "LeaseKeysParameterName")
	assert.Equal(t, "String", keys["Type"])
	assert.Equal(t, "", keys["Default"], "the stack creates the key unless told otherwise")
	re := regexp.MustCompile(str(t, keys["AllowedPattern"]))
	for _, good := range []string{"", "/zae-limiter/lease-keys", "/k"} {
		assert.True(t, re.MatchString(good), "AllowedPattern must accept %q", good)
	}
	for _, bad := range []string{"lease-keys", "/", "/a b", "/a//b", "/a/"} {
		assert.False(t, re.MatchString(bad), "AllowedPattern must reject %q (the ARN is parameter<name>)", bad)
	}
}

// TestTemplateAcquireRole is DECISIONS §3.11 for the function: its DynamoDB
// actions are exactly the acquire path's, and nothing else is granted
// beyond its log group, its lease-keys parameter and X-Ray when tracing.
func TestTemplateAcquireRole(t *testing.T) {
	t.Parallel()
	tpl := loadTemplate(t)
	r := resource(t, tpl, acquireRoleID)
	require.Equal(t, "AWS::IAM::Role", r["Type"])
	props := obj(t, r["Properties"])
	assume := list(t, obj(t, props["AssumeRolePolicyDocument"])["Statement"])
	require.Len(t, assume, 1)
	assert.Equal(t, map[string]any{"Service": "lambda.amazonaws.com"}, obj(t, assume[0])["Principal"])
	assert.Equal(t, "sts:AssumeRole", obj(t, assume[0])["Action"])

	// X-Ray write access only when tracing.
	assert.Equal(t, []any{fn("If", []any{"TracingEnabled",
		fn("Sub", "arn:${AWS::Partition}:iam::aws:policy/AWSXrayWriteOnlyAccess"), ref("AWS::NoValue")})},
		props["ManagedPolicyArns"])

	paramARN := fn("Sub", "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter${LeaseKeysParameterName}")
	tableResources := []any{fn("GetAtt", []any{tableLogicalID, "Arn"}), fn("Sub", "${"+tableLogicalID+".Arn}/index/*")}
	var dynamo []string
	var keyConds []string
	for _, p := range list(t, props["Policies"]) {
		doc := obj(t, obj(t, p)["PolicyDocument"])
		for _, s := range list(t, doc["Statement"]) {
			st := obj(t, s)
			// A key-source statement exists only with its source:
			// !If [Condition, statement, !Ref AWS::NoValue].
			if c, ok := st["Fn::If"]; ok {
				l := list(t, c)
				require.Len(t, l, 3)
				assert.Equal(t, ref("AWS::NoValue"), l[2])
				keyConds = append(keyConds, str(t, l[0]))
				st = obj(t, l[1])
			}
			require.Equal(t, "Allow", st["Effect"])
			actions := statementActions(t, st["Action"])
			require.NotEmpty(t, actions)
			switch {
			case strings.HasPrefix(actions[0], "dynamodb:"):
				for _, a := range actions {
					require.True(t, strings.HasPrefix(a, "dynamodb:"), "mixed statement: %v", actions)
				}
				dynamo = append(dynamo, actions...)
				assert.ElementsMatch(t, tableResources, list(t, st["Resource"]), "DynamoDB resources")
				assert.NotContains(t, st, "Condition")
			case actions[0] == "logs:CreateLogStream" || actions[0] == "logs:PutLogEvents":
				assert.ElementsMatch(t, []string{"logs:CreateLogStream", "logs:PutLogEvents"}, actions)
				assert.Equal(t, fn("GetAtt", []any{acquireLogGroupID, "Arn"}), st["Resource"], "logs: own log group only")
			case actions[0] == "secretsmanager:GetSecretValue":
				assert.Equal(t, []string{"secretsmanager:GetSecretValue"}, actions)
				assert.Equal(t, ref("LeaseKeysSecret"), st["Resource"], "secretsmanager: the stack's lease-keys secret only")
				assert.Equal(t, "CreateLeaseKeysSecret", keyConds[len(keyConds)-1])
			case actions[0] == "ssm:GetParameter":
				assert.Equal(t, []string{"ssm:GetParameter"}, actions)
				assert.Equal(t, paramARN, st["Resource"], "ssm: the lease-keys parameter only")
			case actions[0] == "kms:Decrypt":
				assert.Equal(t, []string{"kms:Decrypt"}, actions)
				assert.Equal(t, fn("Sub", "arn:${AWS::Partition}:kms:${AWS::Region}:${AWS::AccountId}:key/*"), st["Resource"])
				assert.Equal(t, map[string]any{"StringEquals": map[string]any{
					"kms:ViaService":                      fn("Sub", "ssm.${AWS::Region}.amazonaws.com"),
					"kms:EncryptionContext:PARAMETER_ARN": paramARN,
				}}, st["Condition"], "kms:Decrypt only through SSM, only for the lease-keys parameter")
			default:
				t.Errorf("unexpected statement in %s: %v", acquireRoleID, st)
			}
		}
	}
	assert.Equal(t, []string{"CreateLeaseKeysSecret", "HasLeaseKeysParameter", "HasLeaseKeysParameter"}, keyConds,
		"the key-source statements: the secret's, the parameter's (ssm, kms)")
	got := union(dynamo)
	assert.Equal(t, union(api.Calls, limiter.Calls, store.AcquireCalls), got,
		"acquire function DynamoDB actions != api.Calls + limiter.Calls + store.AcquireCalls")
	assert.Subset(t, got, iamActions(t, methodNames[api.DynamoDB]()), "api.DynamoDB makes calls the role does not allow")
	assert.Equal(t, policyActions(t, tpl, "AcquireOnlyPolicy", "acq"), got, "the function and AcquireOnlyPolicy differ")
}

func TestTemplateAcquireFunctionURL(t *testing.T) {
	t.Parallel()
	tpl := loadTemplate(t)
	props := obj(t, resource(t, tpl, acquireFunctionID)["Properties"])
	url := obj(t, props["FunctionUrlConfig"])
	assert.Equal(t, ref("AcquireUrlAuthType"), url["AuthType"])
	// BUFFERED: main.go answers through the funcurl adapter; lambdaurl
	// would need RESPONSE_STREAM (STYLE §4.8).
	assert.Equal(t, "BUFFERED", url["InvokeMode"])
	main, err := os.ReadFile(filepath.Join("..", acquireCodeURI, "main.go"))
	require.NoError(t, err)
	assert.True(t, strings.Contains(string(main), "funcurl.Handler("), "functions/acquire/main.go must serve through funcurl.Handler")
	assert.False(t, strings.Contains(string(main), "lambdaurl"), "functions/acquire/main.go must not use lambdaurl")

	auth := param(t, tpl, "AcquireUrlAuthType")
	assert.Equal(t, "AWS_IAM", auth["Default"])
	assert.ElementsMatch(t, []any{"AWS_IAM", "NONE"}, auth["AllowedValues"])

	// SAM adds the public permissions only for a literal AuthType NONE.
	cond := obj(t, tpl["Conditions"])["PublicAcquireUrl"]
	assert.Equal(t, fn("Equals", []any{ref("AcquireUrlAuthType"), "NONE"}), cond)
	perms := map[string]map[string]any{}
	for id, v := range obj(t, tpl["Resources"]) {
		r := obj(t, v)
		if r["Type"] == "AWS::Lambda::Permission" {
			assert.Equal(t, "PublicAcquireUrl", r["Condition"], "permission %s", id)
			p := obj(t, r["Properties"])
			assert.Equal(t, ref(acquireFunctionID), p["FunctionName"], "permission %s", id)
			assert.Equal(t, "*", p["Principal"], "permission %s", id)
			perms[str(t, p["Action"])] = p
		}
	}
	require.Len(t, perms, 2)
	assert.Equal(t, "NONE", perms["lambda:InvokeFunctionUrl"]["FunctionUrlAuthType"])
	assert.Equal(t, true, perms["lambda:InvokeFunction"]["InvokedViaFunctionUrl"])
}

func TestTemplateAcquireLogGroup(t *testing.T) {
	t.Parallel()
	tpl := loadTemplate(t)
	r := resource(t, tpl, acquireLogGroupID)
	require.Equal(t, "AWS::Logs::LogGroup", r["Type"])
	assert.Equal(t, "Delete", r["DeletionPolicy"])
	props := obj(t, r["Properties"])
	name := str(t, obj(t, obj(t, resource(t, tpl, acquireFunctionID)["Properties"])["FunctionName"])["Fn::Sub"])
	assert.Equal(t, fn("Sub", "/aws/lambda/"+name), props["LogGroupName"], "the log group Lambda writes to by default")
	assert.Equal(t, ref("LogRetentionDays"), props["RetentionInDays"])

	ret := param(t, tpl, "LogRetentionDays")
	assert.Equal(t, "Number", ret["Type"])
	assert.Equal(t, 30, ret["Default"])
	var allowed []int
	for _, v := range list(t, ret["AllowedValues"]) {
		n, ok := v.(int)
		require.True(t, ok, "LogRetentionDays value %v", v)
		allowed = append(allowed, n)
	}
	assert.Equal(t, cloudWatchRetentionDays, allowed)
}

// --- helpers ----------------------------------------------------------------

func param(t *testing.T, tpl map[string]any, name string) map[string]any {
	t.Helper()
	p, ok := obj(t, tpl["Parameters"])[name]
	require.True(t, ok, "parameter %s missing", name)
	return obj(t, p)
}

// effectiveFunctionProps applies Globals.Function to a function's properties
// the way SAM does: the function's scalars win, maps merge, lists concatenate.
func effectiveFunctionProps(t *testing.T, tpl map[string]any, props map[string]any) map[string]any {
	t.Helper()
	var globals map[string]any
	if g, ok := tpl["Globals"]; ok {
		if f, ok := obj(t, g)["Function"]; ok {
			globals = obj(t, f)
		}
	}
	return samtpl.MergeGlobals(globals, props)
}

func statementActions(t *testing.T, v any) []string {
	t.Helper()
	if s, ok := v.(string); ok {
		return []string{s}
	}
	var out []string
	for _, a := range list(t, v) {
		out = append(out, str(t, a))
	}
	return out
}

// configEnv returns the config.go source of the function at codeURI and the
// values of its env* string constants: the variables the function reads.
func configEnv(t *testing.T, codeURI string) (string, []string) {
	t.Helper()
	path := filepath.Join("..", codeURI, "config.go")
	src, err := os.ReadFile(path)
	require.NoError(t, err)
	f, err := parser.ParseFile(token.NewFileSet(), path, src, 0)
	require.NoError(t, err)
	var names []string
	for _, d := range f.Decls {
		gd, ok := d.(*ast.GenDecl)
		if !ok || gd.Tok != token.CONST {
			continue
		}
		for _, s := range gd.Specs {
			vs := s.(*ast.ValueSpec)
			for i, id := range vs.Names {
				if !strings.HasPrefix(id.Name, "env") || i >= len(vs.Values) {
					continue
				}
				lit, ok := vs.Values[i].(*ast.BasicLit)
				if !ok || lit.Kind != token.STRING {
					continue
				}
				v, err := strconv.Unquote(lit.Value)
				require.NoError(t, err)
				names = append(names, v)
			}
		}
	}
	require.NotEmpty(t, names, "no env* constants in %s", path)
	return string(src), names
}
