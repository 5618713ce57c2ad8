package ddbtest_test

import (
	"context"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zeroae/zae-limiter-go/shared/ddblocal/ddbtest"
	"github.com/zeroae/zae-limiter-go/shared/schema"
)

func TestMain(m *testing.M) { ddbtest.Main(m) }

func TestTableName(t *testing.T) {
	valid := regexp.MustCompile(`^[A-Za-z0-9_.-]{3,255}$`)
	tests := []struct {
		name, testName, want string
	}{
		{"plain", "TestFoo", "tTestFoo-abcd1234"},
		{"subtest", "TestFoo/case_1#01", "tTestFoo_case_1_01-abcd1234"},
		{"unicode", "TestÄ x", "tTest___x-abcd1234"}, // bytes, not runes
		{"empty", "", "t-abcd1234"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ddbtest.TableName(tt.testName, "abcd1234")
			assert.Equal(t, tt.want, got)
			assert.Regexp(t, valid, got)
		})
	}
	long := ddbtest.TableName(strings.Repeat("x", 1000), "abcd1234")
	assert.Len(t, long, 255)
	assert.True(t, strings.HasSuffix(long, "x-abcd1234"))
}

func TestNewTablePutGet(t *testing.T) {
	t.Parallel()
	c := ddbtest.Client(t)
	name := ddbtest.NewTable(t)
	assert.True(t, strings.HasPrefix(name, "tTestNewTablePutGet-"), name)
	ctx := context.Background()

	desc, err := c.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(name)})
	require.NoError(t, err)
	assert.Equal(t, types.TableStatusActive, desc.Table.TableStatus)
	assert.Len(t, desc.Table.GlobalSecondaryIndexes, len(schema.Indexes))
	require.NotNil(t, desc.Table.StreamSpecification)
	assert.True(t, aws.ToBool(desc.Table.StreamSpecification.StreamEnabled))

	ttl, err := c.DescribeTimeToLive(ctx, &dynamodb.DescribeTimeToLiveInput{TableName: aws.String(name)})
	require.NoError(t, err)
	assert.Equal(t, types.TimeToLiveStatusEnabled, ttl.TimeToLiveDescription.TimeToLiveStatus)

	key := map[string]types.AttributeValue{
		schema.PK: &types.AttributeValueMemberS{Value: "default/ENTITY#alice"},
		schema.SK: &types.AttributeValueMemberS{Value: "#META"},
	}
	item := map[string]types.AttributeValue{"display": &types.AttributeValueMemberS{Value: "Alice"}}
	for k, v := range key {
		item[k] = v
	}
	_, err = c.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(name), Item: item})
	require.NoError(t, err)
	got, err := c.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(name), Key: key, ConsistentRead: aws.Bool(true)})
	require.NoError(t, err)
	assert.Equal(t, item, got.Item)

	// An error response (no CRC32 from DynamoDB Local) is a typed error.
	_, err = c.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: aws.String(name), Item: item,
		ConditionExpression: aws.String("attribute_not_exists(" + schema.PK + ")"),
	})
	var ccf *types.ConditionalCheckFailedException
	assert.ErrorAs(t, err, &ccf)
}

func TestTablesAreSeparate(t *testing.T) {
	t.Parallel()
	a, b := ddbtest.NewTable(t), ddbtest.NewTable(t)
	assert.NotEqual(t, a, b)
	out, err := ddbtest.Client(t).ListTables(context.Background(), &dynamodb.ListTablesInput{})
	require.NoError(t, err)
	assert.Contains(t, out.TableNames, a)
	assert.Contains(t, out.TableNames, b)
}

// The helper tests run only in a child test process started by the tests
// below.
const helperEnv = "DDBTEST_HELPER"

func TestHelperChild(t *testing.T) {
	switch os.Getenv(helperEnv) {
	case "panic":
		ddbtest.Endpoint(t)
		require.NoError(t, os.WriteFile(os.Getenv("DDBTEST_PIDFILE"), []byte(strconv.Itoa(ddbtest.PID())), 0o600))
		panic("ddbtest helper: deliberate panic")
	case "table":
		ddbtest.NewTable(t)
	default:
		t.Skip("helper for other tests")
	}
}

// child runs TestHelperChild in a new test process.
func child(t *testing.T, mode, dir string, env ...string) (string, error) {
	t.Helper()
	exe, err := os.Executable()
	require.NoError(t, err)
	cmd := exec.Command(exe, "-test.run=^TestHelperChild$", "-test.count=1", "-test.v")
	cmd.Dir = dir
	cmd.Env = append(withoutEnv(os.Environ(), ddbtest.EndpointEnv, ddbtest.RequireEnv), helperEnv+"="+mode)
	cmd.Env = append(cmd.Env, env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func withoutEnv(env []string, keys ...string) []string {
	var out []string
next:
	for _, kv := range env {
		for _, k := range keys {
			if strings.HasPrefix(kv, k+"=") {
				continue next
			}
		}
		out = append(out, kv)
	}
	return out
}

func TestNoBackendSkipsOrFails(t *testing.T) {
	t.Parallel()
	// No go.mod above an empty temp dir, an empty cache, no java on PATH.
	dir := t.TempDir()
	env := []string{"PATH=" + dir, "JAVA_HOME=", "XDG_CACHE_HOME=" + dir}

	out, err := child(t, "table", dir, env...)
	require.NoError(t, err, out)
	assert.Contains(t, out, "--- SKIP: TestHelperChild")
	assert.Contains(t, out, "DynamoDB Local not found")

	out, err = child(t, "table", dir, append(env, ddbtest.RequireEnv+"=1")...)
	require.Error(t, err, out)
	assert.Contains(t, out, "--- FAIL: TestHelperChild")
	assert.Contains(t, out, ddbtest.RequireEnv)
	assert.Contains(t, out, "DynamoDB Local not found")
}

func TestNoJavaSkipsOrFails(t *testing.T) {
	t.Parallel()
	if os.Getenv(ddbtest.EndpointEnv) != "" {
		t.Skip("uses an external DynamoDB")
	}
	wd, err := os.Getwd() // the checkout: the jar is found, java is not
	require.NoError(t, err)
	empty := t.TempDir()
	env := []string{"PATH=" + empty, "JAVA_HOME="}

	out, err := child(t, "table", wd, env...)
	require.NoError(t, err, out)
	if strings.Contains(out, "DynamoDB Local not found") {
		t.Skip("no jar in this checkout: covered by TestNoBackendSkipsOrFails")
	}
	assert.Contains(t, out, "--- SKIP: TestHelperChild")
	assert.Contains(t, out, "java is required")

	out, err = child(t, "table", wd, append(env, ddbtest.RequireEnv+"=1")...)
	require.Error(t, err, out)
	assert.Contains(t, out, "--- FAIL: TestHelperChild")
	assert.Contains(t, out, "java is required")
}
