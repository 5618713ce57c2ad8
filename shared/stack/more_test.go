package stack

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation/types"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zeroae/zae-limiter-go/shared/limits"
	"github.com/zeroae/zae-limiter-go/shared/mototest"
	"github.com/zeroae/zae-limiter-go/shared/store"
)

// A template over the inline limit goes through the artifacts bucket.
func TestEnsureLargeTemplateByURL(t *testing.T) {
	t.Parallel()
	s := startMotoStack(t, "big")
	code, out := s.code, s.out
	res, err := s.Ensure(context.Background(), Options{Code: code, MaxTemplateBody: 1000, ArtifactsBucket: "my-artifacts"})
	require.NoError(t, err, out.String())
	assert.Equal(t, "CREATE_COMPLETE", res.Status)
	assert.Equal(t, "my-artifacts", res.Parameters[CodeBucketParameter])
	assert.Contains(t, out.String(), "Creating the artifacts bucket my-artifacts")
}

// --no-wait returns once the change set runs; the version record waits for
// the next Ensure, which finds nothing to change and writes it.
func TestEnsureNoWait(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := startMotoStack(t, "nowait")
	code, out := s.code, s.out
	res, err := s.Ensure(ctx, Options{Code: code, NoWait: true})
	require.NoError(t, err, out.String())
	assert.True(t, res.Changed)
	assert.Contains(t, out.String(), "Not waiting (--no-wait)")
	_, err = s.store().Version(ctx)
	assert.ErrorIs(t, err, limits.ErrNotFound, "no version record without waiting")

	res, err = s.Ensure(ctx, Options{Code: code})
	require.NoError(t, err, out.String())
	assert.False(t, res.Changed)
	rec, err := s.store().Version(ctx)
	require.NoError(t, err)
	assert.Equal(t, "v1.2.3", rec.LambdaVersion)
}

// A table of another schema major is never deployed over.
func TestEnsureRefusesIncompatibleSchema(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := startMotoStack(t, "old")
	code, out := s.code, s.out
	_, err := s.Ensure(ctx, Options{Code: code})
	require.NoError(t, err, out.String())
	require.NoError(t, s.store().PutVersion(ctx, store.VersionRecord{SchemaVersion: "2.0.0"}))

	_, err = s.Ensure(ctx, Options{Code: code, Parameters: map[string]string{"LogRetentionDays": "90"}})
	require.ErrorIs(t, err, store.ErrIncompatibleSchema)
	assert.Contains(t, err.Error(), "nothing was changed")
	st, err := s.Status(ctx)
	require.NoError(t, err)
	assert.Equal(t, "30", st.Stack.Parameters["LogRetentionDays"])
}

func TestEnsureNeedsCodeAndGoodTags(t *testing.T) {
	s, err := New(mototest.Config("http://127.0.0.1:1"), "limiter", Config{})
	require.NoError(t, err)
	_, err = s.Ensure(context.Background(), Options{})
	assert.ErrorContains(t, err, "Options.Code is required")
	for _, tt := range []struct {
		tags map[string]string
		want string
	}{
		{map[string]string{"aws:cost": "x"}, "aws:"},
		{map[string]string{"ManagedBy": "me"}, "sets this tag itself"},
		{map[string]string{"": "x"}, "1 to 128"},
		{map[string]string{"k": strings.Repeat("v", 257)}, "at most 256"},
	} {
		_, err := s.tags(tt.tags)
		assert.ErrorContains(t, err, tt.want)
	}
	many := map[string]string{}
	for i := range maxUserTags + 1 {
		many[string(rune('a'+i%26))+strings.Repeat("x", i)] = "v"
	}
	_, err = s.tags(many)
	assert.ErrorContains(t, err, "at most 44 tags")
	tags, err := s.tags(map[string]string{"team": "platform"})
	require.NoError(t, err)
	got := map[string]string{}
	for _, tg := range tags {
		got[aws.ToString(tg.Key)] = aws.ToString(tg.Value)
	}
	assert.Equal(t, map[string]string{"team": "platform", TagManagedBy: "zae-limiter", TagName: "limiter", TagType: "limiter",
		TagVersion: "dev", TagLambdaVersion: "dev", TagSchemaVersion: "1.0.0"}, got)
}

// The first failed resource is the cause; the ones cancelled because of it
// are not.
func TestFailureNamesTheCause(t *testing.T) {
	ev := func(id, typ string, status types.ResourceStatus, reason string) types.StackEvent {
		return types.StackEvent{LogicalResourceId: aws.String(id), ResourceType: aws.String(typ), ResourceStatus: status,
			ResourceStatusReason: aws.String(reason)}
	}
	events := []types.StackEvent{
		ev("demo", "AWS::CloudFormation::Stack", types.ResourceStatusCreateInProgress, "User Initiated"),
		ev("AcquireLogGroup", "AWS::Logs::LogGroup", types.ResourceStatusCreateFailed, "Resource creation cancelled"),
		ev("RateLimitsTable", "AWS::DynamoDB::Table", types.ResourceStatusCreateFailed, "demo already exists"),
		ev("demo", "AWS::CloudFormation::Stack", types.ResourceStatusCreateFailed, "The following resource(s) failed to create"),
	}
	st := &types.Stack{StackStatus: types.StackStatusRollbackComplete, StackStatusReason: aws.String("rolled back")}
	e := failure("demo", "create", st, events)
	assert.Equal(t, "RateLimitsTable", e.LogicalID)
	assert.Equal(t, "create of stack demo failed: RateLimitsTable (AWS::DynamoDB::Table) CREATE_FAILED: demo already exists; the stack is ROLLBACK_COMPLETE",
		e.Error())
	var fe *FailedError
	assert.True(t, errors.As(error(e), &fe))

	e = failure("demo", "create", st, events[:2])
	assert.Equal(t, "AcquireLogGroup", e.LogicalID, "only cancellations: the first")
	e = failure("demo", "update", st, nil)
	assert.Equal(t, "update of stack demo failed: ROLLBACK_COMPLETE (rolled back)", e.Error())
}

func TestElapsed(t *testing.T) {
	assert.Equal(t, "[   0.0s]", elapsed(0))
	assert.Equal(t, "[  12.3s]", elapsed(12300*time.Millisecond))
	assert.Equal(t, "[ 2m05.0s]", elapsed(125*time.Second))
}

// An upgrade keeps the user's tags and sets its own anew.
func TestUserTags(t *testing.T) {
	st := &types.Stack{Tags: []types.Tag{
		{Key: aws.String("team"), Value: aws.String("platform")},
		{Key: aws.String(TagManagedBy), Value: aws.String(TagManagedByName)},
		{Key: aws.String(TagVersion), Value: aws.String("v0.9.0")},
	}}
	assert.Equal(t, map[string]string{"team": "platform"}, userTags(st))
}

func TestStatusVerdicts(t *testing.T) {
	for status, failed := range map[string]bool{
		"CREATE_COMPLETE": false, "UPDATE_COMPLETE": false, "UPDATE_IN_PROGRESS": false,
		"ROLLBACK_COMPLETE": true, "UPDATE_ROLLBACK_COMPLETE": true, "CREATE_FAILED": true, "DELETE_FAILED": true,
	} {
		assert.Equal(t, failed, Failed(status), status)
	}
	st := &Status{Stack: &StackInfo{Status: "UPDATE_COMPLETE"}, Connectivity: Connectivity{Available: true}}
	assert.True(t, st.Healthy())
	st.Stack.Status = "UPDATE_ROLLBACK_COMPLETE"
	assert.False(t, st.Healthy())
}

// TestRotateLeaseKey: two steps, each a new key list and a stack update
// with the next revision (every other parameter kept). moto's
// CloudFormation creates no secret: the stack's own secret is rotated
// through one made with the API, and a stack deployed with
// LeaseKeysParameterName end to end.
func TestRotateLeaseKey(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := startMotoStack(t, "keys")
	endpoint, code, out := s.endpoint, s.code, s.out
	_, err := s.Ensure(ctx, Options{Code: code, Parameters: map[string]string{"LogRetentionDays": "90"}})
	require.NoError(t, err, out.String())
	assert.ErrorContains(t, s.RotateLeaseKey(ctx, code), "has no lease-keys secret and no LeaseKeysParameterName")

	old := NewLeaseKey()
	sm := secretsmanager.NewFromConfig(mototest.Config(endpoint))
	sec, err := sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("keys-lease"), SecretString: aws.String(old + ",older")})
	require.NoError(t, err)
	fresh := NewLeaseKey()
	require.NoError(t, s.rotate(ctx, secretKeys{sm: sm, id: aws.ToString(sec.ARN)}, fresh, code), out.String())

	st, err := s.Status(ctx)
	require.NoError(t, err)
	assert.Equal(t, "3", st.Stack.Parameters["LeaseKeysRevision"], "two updates, each replacing the instances")
	assert.Equal(t, "90", st.Stack.Parameters["LogRetentionDays"], "every other parameter kept")
	v, err := sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: sec.ARN})
	require.NoError(t, err)
	assert.Equal(t, fresh+","+old, aws.ToString(v.SecretString), "the new key signs, the old verifies, the older is gone")
	assert.Contains(t, out.String(), "Rotation step 1 of 2: the new key verifies")
	assert.Contains(t, out.String(), "Rotation step 2 of 2")

	// A later deploy keeps the revision (state, not an option).
	res, err := s.Ensure(ctx, Options{Code: code, Parameters: map[string]string{"LogRetentionDays": "90"}})
	require.NoError(t, err)
	assert.Equal(t, "3", res.Parameters["LeaseKeysRevision"])

	// Your own SSM parameter, found through the stack's parameters.
	sc := ssm.NewFromConfig(mototest.Config(endpoint))
	_, err = sc.PutParameter(ctx, &ssm.PutParameterInput{Name: aws.String("/keys/lease"), Value: aws.String(old),
		Type: ssmtypes.ParameterTypeSecureString})
	require.NoError(t, err)
	p := newTestStack(t, endpoint, "ownkeys", out)
	_, err = p.Ensure(ctx, Options{Code: code, Parameters: map[string]string{"LeaseKeysParameterName": "/keys/lease"}})
	require.NoError(t, err, out.String())
	require.NoError(t, p.RotateLeaseKey(ctx, code), out.String())
	pv, err := sc.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String("/keys/lease"), WithDecryption: aws.Bool(true)})
	require.NoError(t, err)
	first, second, _ := strings.Cut(aws.ToString(pv.Parameter.Value), ",")
	assert.Len(t, first, 64)
	assert.Equal(t, old, second)
	assert.Equal(t, ssmtypes.ParameterTypeSecureString, pv.Parameter.Type)
	st, err = p.Status(ctx)
	require.NoError(t, err)
	assert.Equal(t, "3", st.Stack.Parameters["LeaseKeysRevision"])
}

func TestNewLeaseKey(t *testing.T) {
	a, b := NewLeaseKey(), NewLeaseKey()
	assert.Len(t, a, 64)
	assert.NotEqual(t, a, b)
	assert.Regexp(t, `^[A-Za-z0-9]{64}$`, a, "no comma: keys are a comma-separated list")
}

// With AggregatorRoleArn the aggregator runs under that role and the stack
// makes none for it; the other functions keep theirs.
func TestEnsureExternalAggregatorRole(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := startMotoStack(t, "extrole")
	// The role comes first, made the way an organisation might: a stack
	// of its own (moto's Lambda wants the role to exist).
	const role = "arn:aws:iam::123456789012:role/platform/my-aggr"
	_, err := cloudformation.NewFromConfig(mototest.Config(s.endpoint)).CreateStack(ctx, &cloudformation.CreateStackInput{
		StackName: aws.String("platform-roles"),
		TemplateBody: aws.String(`{"Resources": {"Role": {"Type": "AWS::IAM::Role", "Properties": {
			"RoleName": "my-aggr", "Path": "/platform/", "AssumeRolePolicyDocument": {"Version": "2012-10-17",
			"Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}}}}}`),
	})
	require.NoError(t, err)
	res, err := s.Ensure(ctx, Options{Code: s.code, Parameters: map[string]string{"AggregatorRoleArn": role}})
	require.NoError(t, err, s.out.String())
	assert.Equal(t, "CREATE_COMPLETE", res.Status)
	f, err := lambda.NewFromConfig(mototest.Config(s.endpoint)).GetFunction(ctx,
		&lambda.GetFunctionInput{FunctionName: aws.String("extrole-aggregator")})
	require.NoError(t, err)
	assert.Equal(t, role, aws.ToString(f.Configuration.Role))
	st, err := s.Status(ctx)
	require.NoError(t, err)
	assert.NotContains(t, st.Roles, "AggregatorFunction")
	assert.Equal(t, "arn:aws:iam::123456789012:role/extrole-acquire", st.Roles["AcquireFunction"])

	// Back to the stack's own role.
	res, err = s.Ensure(ctx, Options{Code: s.code})
	require.NoError(t, err, s.out.String())
	assert.Equal(t, "", res.Parameters["AggregatorRoleArn"])
}
