package stack

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/aws/smithy-go/middleware"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zeroae/zae-limiter-go/shared/mototest"
)

// The deployer's policy in docs/production.md lists exactly the IAM actions
// of the calls this package makes: its interfaces, and the store's calls
// for the version record and the default namespace (observed on moto).

// iamPrefix maps an SDK service id to its IAM prefix.
var iamPrefix = map[string]string{
	"CloudFormation": "cloudformation", "S3": "s3", "Lambda": "lambda", "DynamoDB": "dynamodb",
	"Secrets Manager": "secretsmanager", "SSM": "ssm", "STS": "sts",
}

// iamOf is the IAM action that authorizes an SDK call, where the names
// differ (S3's HEADs are authorized as reads; a DynamoDB transaction as its
// items' actions: the store's namespace registration puts).
var iamOf = map[string]string{
	"s3:HeadBucket": "s3:ListBucket", "s3:HeadObject": "s3:GetObject",
	"s3:PutPublicAccessBlock": "s3:PutBucketPublicAccessBlock", "s3:PutBucketEncryption": "s3:PutEncryptionConfiguration",
	"dynamodb:TransactWriteItems": "dynamodb:PutItem",
}

func iamAction(service, op string) string {
	a := iamPrefix[service] + ":" + op
	if m, ok := iamOf[a]; ok {
		return m
	}
	return a
}

// recorder collects the IAM actions of every call made with a config.
type recorder struct {
	mu      sync.Mutex
	actions map[string]bool
}

func (r *recorder) attach(cfg *aws.Config) {
	r.actions = map[string]bool{}
	cfg.APIOptions = append(cfg.APIOptions, func(st *middleware.Stack) error {
		return st.Initialize.Add(middleware.InitializeMiddlewareFunc("zaelRecordCall",
			func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
				r.mu.Lock()
				r.actions[iamAction(awsmiddleware.GetServiceID(ctx), awsmiddleware.GetOperationName(ctx))] = true
				r.mu.Unlock()
				return next.HandleInitialize(ctx, in)
			}), middleware.After)
	})
}

func (r *recorder) list() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]string, 0, len(r.actions))
	for a := range r.actions {
		out = append(out, a)
	}
	slices.Sort(out)
	return out
}

// interfaceActions are the IAM actions of the interfaces' methods.
func interfaceActions() []string {
	var out []string
	for service, it := range map[string]reflect.Type{
		"CloudFormation": reflect.TypeFor[CloudFormation](), "S3": reflect.TypeFor[S3](), "Lambda": reflect.TypeFor[Lambda](),
		"DynamoDB": reflect.TypeFor[DynamoDB](), "Secrets Manager": reflect.TypeFor[SecretsManager](),
		"SSM": reflect.TypeFor[SSM](), "STS": reflect.TypeFor[STS](),
	} {
		for i := range it.NumMethod() {
			out = append(out, iamAction(service, it.Method(i).Name))
		}
	}
	slices.Sort(out)
	return out
}

// documentedActions reads the policy under "What zae-limiter calls itself".
func documentedActions(t *testing.T) []string {
	t.Helper()
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "production.md"))
	require.NoError(t, err)
	_, rest, ok := bytes.Cut(doc, []byte("### What zae-limiter calls itself"))
	require.True(t, ok, "docs/production.md has no section \"What zae-limiter calls itself\"")
	_, rest, ok = bytes.Cut(rest, []byte("```json\n"))
	require.True(t, ok)
	block, _, ok := bytes.Cut(rest, []byte("```"))
	require.True(t, ok)
	var policy struct {
		Statement []struct {
			Effect string
			Action any
		}
	}
	require.NoError(t, json.Unmarshal(block, &policy), "the deployer's policy is not JSON")
	var out []string
	for _, st := range policy.Statement {
		require.Equal(t, "Allow", st.Effect)
		switch a := st.Action.(type) {
		case string:
			out = append(out, a)
		case []any:
			for _, x := range a {
				out = append(out, x.(string))
			}
		}
	}
	slices.Sort(out)
	return out
}

func TestDeployerPolicyIsDocumented(t *testing.T) {
	t.Parallel()
	endpoint := mototest.Start(t, "the stack on a local CloudFormation")
	ctx := context.Background()
	var rec recorder
	cfg := mototest.Config(endpoint)
	rec.attach(&cfg)
	var out bytes.Buffer
	s, err := New(cfg, "perms", Config{Progress: &out, PollInterval: 50 * time.Millisecond})
	require.NoError(t, err)
	code, _ := fakeCode(t, s.Template(), "v1")
	_, err = ssm.NewFromConfig(mototest.Config(endpoint)).PutParameter(ctx, &ssm.PutParameterInput{
		Name: aws.String("/perms/keys"), Value: aws.String(NewLeaseKey()), Type: ssmtypes.ParameterTypeSecureString})
	require.NoError(t, err)

	params := map[string]string{"LeaseKeysParameterName": "/perms/keys"}
	_, err = s.Ensure(ctx, Options{Code: code, Parameters: params})
	require.NoError(t, err, out.String())
	_, err = s.Ensure(ctx, Options{Code: code, Parameters: params})
	require.NoError(t, err)
	require.NoError(t, s.RotateLeaseKey(ctx, code))
	_, err = s.Status(ctx)
	require.NoError(t, err)
	_, err = List(ctx, cfg)
	require.NoError(t, err)
	_, err = s.Delete(ctx)
	require.NoError(t, err)

	documented := documentedActions(t)
	recorded := rec.list()
	assert.Subset(t, documented, recorded, "calls made on moto that docs/production.md does not grant")
	var want []string
	want = append(want, interfaceActions()...)
	for _, a := range recorded {
		if strings.HasPrefix(a, "dynamodb:") { // the store's calls
			want = append(want, a)
		}
	}
	slices.Sort(want)
	assert.Equal(t, slices.Compact(want), documented, "docs/production.md's deployer policy != the calls shared/stack makes")
}
