package stack

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"regexp"
	"testing"
	"testing/fstest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zeroae/zae-limiter-go/shared/mototest"
	"github.com/zeroae/zae-limiter-go/shared/schema"
)

// fakeCode gives each function a distinct small zip: moto stores function
// code but never runs it (the real build is TestBuildCode's).
func fakeCode(t *testing.T, tpl *Template, tag string) (FSCode, map[string][]byte) {
	t.Helper()
	fs := fstest.MapFS{}
	zips := map[string][]byte{}
	for _, name := range tpl.FunctionNames() {
		z, err := ZipBootstrap([]byte("#!/bin/sh\n# " + name + " " + tag + "\n"))
		require.NoError(t, err)
		fs[name+".zip"] = &fstest.MapFile{Data: z}
		zips[name] = z
	}
	return FSCode{FS: fs, Where: "the test"}, zips
}

func newTestStack(t *testing.T, endpoint, name string, out *bytes.Buffer) *Stack {
	t.Helper()
	s, err := New(mototest.Config(endpoint), name, Config{Progress: out, Version: "v1.2.3", UpdatedBy: "test:v1.2.3",
		PollInterval: 50 * time.Millisecond})
	require.NoError(t, err)
	return s
}

// motoStack is a stack named name on its own moto_server, with fake code
// and its progress in out.
type motoStack struct {
	*Stack
	endpoint string
	code     FSCode
	zips     map[string][]byte
	out      *bytes.Buffer
}

func startMotoStack(t *testing.T, name string) *motoStack {
	t.Helper()
	m := &motoStack{endpoint: mototest.Start(t, "the stack on a local CloudFormation"), out: &bytes.Buffer{}}
	m.Stack = newTestStack(t, m.endpoint, name, m.out)
	m.code, m.zips = fakeCode(t, m.Template(), "v1")
	return m
}

// TestStackLifecycle is deploy, deploy again (no changes, then a changed
// parameter), status, list and delete against moto's CloudFormation.
func TestStackLifecycle(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := startMotoStack(t, "demo")
	endpoint, code, zips, out := s.endpoint, s.code, s.zips, s.out

	res, err := s.Ensure(ctx, Options{Code: code, Tags: map[string]string{"team": "platform"}})
	require.NoError(t, err, out.String())
	assert.True(t, res.Created)
	assert.True(t, res.Changed)
	assert.Equal(t, "CREATE_COMPLETE", res.Status)
	assert.Equal(t, "false", res.Parameters["AcquireUrlOutput"], "moto has no function URLs: the output is left out")
	// Live progress with the elapsed time (moto reports the stack's own
	// events only; AWS reports every resource's too).
	assert.Regexp(t, `(?m)^\[ *\d+\.\ds\]  CREATE_COMPLETE +AWS::CloudFormation::Stack +demo$`, out.String())
	assert.Contains(t, out.String(), "Creating stack demo (change set zae-limiter-")
	assert.Contains(t, out.String(), "Creating the artifacts bucket zae-limiter-artifacts-us-east-1")

	// Every function runs the zip deploy uploaded.
	lc := lambda.NewFromConfig(mototest.Config(endpoint))
	for name, z := range zips {
		f, err := lc.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("demo-" + name)})
		require.NoError(t, err, name)
		sum := sha256.Sum256(z)
		assert.Equal(t, base64.StdEncoding.EncodeToString(sum[:]), aws.ToString(f.Configuration.CodeSha256), name)
	}
	// The table is ready for the first acquire.
	rec, err := s.store().Version(ctx)
	require.NoError(t, err)
	assert.Equal(t, schema.Version, rec.SchemaVersion)
	assert.Equal(t, "v1.2.3", rec.LambdaVersion)
	assert.Equal(t, "test:v1.2.3", rec.UpdatedBy)
	_, err = s.store().GetNamespace(ctx, "default")
	require.NoError(t, err)

	// The same again: no changes, said plainly.
	out.Reset()
	res, err = s.Ensure(ctx, Options{Code: code, Tags: map[string]string{"team": "platform"}})
	require.NoError(t, err, out.String())
	assert.False(t, res.Changed)
	assert.False(t, res.Created)
	assert.Contains(t, out.String(), "No changes: stack demo is up to date")

	// A changed option updates it (moto applies a parameters-only change
	// set to the stack's Parameters only).
	out.Reset()
	res, err = s.Ensure(ctx, Options{Code: code, Tags: map[string]string{"team": "platform"},
		Parameters: map[string]string{"LogRetentionDays": "90"}})
	require.NoError(t, err, out.String())
	assert.True(t, res.Changed)
	assert.Equal(t, "UPDATE_COMPLETE", res.Status)
	assert.Equal(t, "90", res.Parameters["LogRetentionDays"])
	assert.Contains(t, out.String(), "Updating stack demo")

	// New code: the functions' keys change.
	code2, zips2 := fakeCode(t, s.Template(), "v2")
	res, err = s.Ensure(ctx, Options{Code: code2, Tags: map[string]string{"team": "platform"},
		Parameters: map[string]string{"LogRetentionDays": "90"}})
	require.NoError(t, err, out.String())
	assert.True(t, res.Changed)
	sum := sha256.Sum256(zips2["acquire"])
	assert.Contains(t, res.Parameters["AcquireFunctionCodeKey"], "functions/acquire/")
	assert.Contains(t, res.Parameters["AcquireFunctionCodeKey"], hex.EncodeToString(sum[:]))

	st, err := s.Status(ctx)
	require.NoError(t, err)
	require.NotNil(t, st.Stack)
	assert.Equal(t, "UPDATE_COMPLETE", st.Stack.Status)
	assert.Equal(t, "v1.2.3", st.Stack.Version)
	assert.Equal(t, "platform", st.Stack.Tags["team"])
	require.NotNil(t, st.Table)
	assert.Equal(t, "ACTIVE", st.Table.Status)
	assert.Equal(t, "NEW_AND_OLD_IMAGES", st.Table.StreamViewType)
	assert.True(t, st.Connectivity.Available)
	assert.Positive(t, st.Connectivity.LatencyMS)
	var names []string
	for _, f := range st.Functions {
		names = append(names, f.Name)
		assert.Equal(t, "v1.2.3", f.Version)
		assert.Equal(t, "provided.al2023", f.Runtime) // moto reports x86_64 whatever the template says
	}
	for _, n := range s.Template().FunctionNames() {
		assert.Contains(t, names, "demo-"+n)
	}
	for _, p := range []string{"AcquireOnly", "FullAccess", "ReadOnly", "NamespaceAcquire", "NamespaceFullAccess", "NamespaceReadOnly"} {
		assert.Regexp(t, regexp.MustCompile(`^arn:aws:iam::\d{12}:policy/`), st.Policies[p], p)
	}
	assert.Equal(t, "arn:aws:iam::123456789012:role/demo-acquire", st.Roles["AcquireFunction"])
	assert.Equal(t, "arn:aws:iam::123456789012:role/demo-prov", st.Roles["ProvisionerFunction"])
	assert.Equal(t, "arn:aws:iam::123456789012:role/demo-aggr", st.Roles["AggregatorFunction"])
	assert.NotContains(t, st.Roles, "App", "no App/Admin/ReadOnly roles unless EnableIAMRoles")
	// Every stream function's mapping, on the table's stream.
	streamFns := streamFunctions(t, s.Template())
	require.NotEmpty(t, streamFns)
	var mapped []string
	for _, m := range st.StreamMappings {
		mapped = append(mapped, m.Function)
		assert.Contains(t, m.EventSourceARN, ":table/demo/stream/", m.Function)
		assert.NotEmpty(t, m.UUID, m.Function)
		assert.NotEmpty(t, m.State, m.Function)
	}
	for _, n := range streamFns {
		assert.Contains(t, mapped, "demo-"+n)
	}
	assert.Empty(t, st.Problems)
	require.NotNil(t, st.Version)
	assert.True(t, st.Healthy())

	list, err := List(ctx, mototest.Config(endpoint))
	require.NoError(t, err)
	require.Len(t, list, 1)
	assert.Equal(t, "demo", list[0].Name)
	assert.Equal(t, "v1.2.3", list[0].Version)
	assert.Equal(t, schema.Version, list[0].SchemaVersion)
	assert.True(t, list[0].Healthy())

	out.Reset()
	deleted, err := s.Delete(ctx)
	require.NoError(t, err, out.String())
	assert.True(t, deleted)
	assert.Contains(t, out.String(), "Deleted stack demo")
	list, err = List(ctx, mototest.Config(endpoint))
	require.NoError(t, err)
	assert.Empty(t, list)
	_, err = dynamodb.NewFromConfig(mototest.Config(endpoint)).DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String("demo")})
	assert.Error(t, err, "the table goes with the stack")

	deleted, err = s.Delete(ctx)
	require.NoError(t, err)
	assert.False(t, deleted, "no stack: nothing to delete, not an error")
	st, err = s.Status(ctx)
	require.NoError(t, err)
	assert.Nil(t, st.Stack)
	assert.False(t, st.Healthy())
}

// streamFunctions are the template's functions with an event source
// mapping (the stream readers), by name.
func streamFunctions(t *testing.T, tpl *Template) []string {
	t.Helper()
	byID := map[string]string{}
	for _, f := range tpl.Functions() {
		byID[f.LogicalID] = f.Name
	}
	var out []string
	for _, v := range tpl.doc["Resources"].(map[string]any) {
		r := v.(map[string]any)
		if r["Type"] != "AWS::Lambda::EventSourceMapping" {
			continue
		}
		ref := r["Properties"].(map[string]any)["FunctionName"].(map[string]any)["Ref"].(string)
		require.Contains(t, byID, ref)
		out = append(out, byID[ref])
	}
	return out
}
