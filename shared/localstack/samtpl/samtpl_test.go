package samtpl

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func load(t *testing.T, file string, o Options) *Stack {
	t.Helper()
	b, err := os.ReadFile(file)
	require.NoError(t, err)
	tpl, err := Parse(b)
	require.NoError(t, err)
	st, err := tpl.Load(o)
	require.NoError(t, err)
	return st
}

func TestLoadResolvesTheTestTemplate(t *testing.T) {
	st := load(t, "testdata/stack.yaml", Options{StackName: "dev"})

	require.Len(t, st.Tables, 1)
	assert.Equal(t, "dev", st.Tables[0].Name)
	assert.Equal(t, map[string]any{"StreamViewType": "NEW_AND_OLD_IMAGES"}, st.Tables[0].Properties["StreamSpecification"])
	assert.Equal(t, []Bucket{{LogicalID: "Archive", Name: "dev-archive-123456789012"}, {LogicalID: "Unnamed", Name: "dev-unnamed"}}, st.Buckets)
	assert.Equal(t, "my-stack-audit-archive", bucketName("My_Stack", "AuditArchiveBucket"))
	assert.Equal(t, "x-bucket", bucketName("x", "Bucket"))

	require.Len(t, st.Functions, 2, "the function with S3 code is not run locally")
	r := st.Functions[0]
	assert.Equal(t, "reader", r.Name)
	assert.Equal(t, "dev-reader", r.FunctionName)
	assert.Equal(t, "arn:aws:lambda:us-east-1:123456789012:function:dev-reader", r.ARN)
	assert.Equal(t, 256, r.MemoryMB)
	assert.Equal(t, 5*time.Second, r.Timeout, "from Globals")
	assert.Equal(t, "JSON", r.LogFormat)
	assert.Equal(t, map[string]string{
		"GLOBAL": "g", "TABLE_NAME": "dev", "WINDOWS": "hourly,daily", "BUCKET": "dev-archive-123456789012",
		"ARN": "arn:aws:dynamodb:us-east-1:123456789012:table/dev",
	}, r.Env)
	require.Len(t, r.Streams, 1)
	assert.Equal(t, StreamEvent{
		Name: "Stream", Table: "Table", StartingPosition: "TRIM_HORIZON", BatchSize: 25,
		MaxBatchingWindow: 2 * time.Second, Bisect: true, MaxRetryAttempts: 3, MaxRecordAge: 10 * time.Minute,
		ReportBatchItemFailures: true, Enabled: true,
		Filters:   []string{`{"dynamodb": {"NewImage": {"SK": {"S": [{"prefix": "#BUCKET"}]}}}}`},
		OnFailure: &Destination{LogicalID: "DLQ", Type: "AWS::SQS::Queue", ARN: "arn:aws:sqs:us-east-1:123456789012:dev-DLQ"},
	}, r.Streams[0])
	assert.Equal(t, []ScheduleEvent{{Name: "Tick", Expression: "rate(5 minutes)", Input: `{"source": "tick"}`, Enabled: true}}, r.Schedules)

	u := st.Functions[1]
	assert.Equal(t, "url", u.Name, "a trailing slash in CodeUri does not matter")
	assert.Equal(t, "dev-Url", u.FunctionName)
	assert.Equal(t, 128, u.MemoryMB)
	assert.Equal(t, &URLConfig{AuthType: "AWS_IAM", InvokeMode: "BUFFERED"}, u.URL)

	assert.ElementsMatch(t, []string{
		"function reader: event Web of type Api is not run locally",
		"function Remote: CodeUri s3://bucket/code.zip is not a local folder; not run locally",
	}, st.Warnings)
}

func TestLoadParametersAndConditions(t *testing.T) {
	st := load(t, "testdata/stack.yaml", Options{StackName: "x1", Parameters: map[string]string{"EnableArchive": "false", "Memory": "512"}})
	assert.Equal(t, []Bucket{{LogicalID: "Unnamed", Name: "x1-unnamed"}}, st.Buckets, "a resource whose condition is false is left out")
	assert.Equal(t, 512, st.Functions[0].MemoryMB)
	assert.NotContains(t, st.Functions[0].Env, "BUCKET", "AWS::NoValue drops the variable")

	b, err := os.ReadFile("testdata/stack.yaml")
	require.NoError(t, err)
	tpl, err := Parse(b)
	require.NoError(t, err)
	_, err = tpl.Load(Options{StackName: "x1", Parameters: map[string]string{"Nope": "1"}})
	assert.ErrorContains(t, err, "parameter override Nope")
}

func TestLoadUnknownIntrinsicFailsNamingIt(t *testing.T) {
	tpl, err := Parse([]byte(`
Resources:
  F:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/f
      Environment:
        Variables:
          X: !ImportValue other-stack-Thing
`))
	require.NoError(t, err)
	_, err = tpl.Load(Options{StackName: "s"})
	require.Error(t, err)
	assert.ErrorIs(t, err, ErrUnsupported)
	assert.ErrorContains(t, err, "Resources.F.Properties.Environment")
	assert.ErrorContains(t, err, "Fn::ImportValue")
}

func TestLoadStreamMustBeATablesStream(t *testing.T) {
	tpl, err := Parse([]byte(`
Resources:
  F:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/f
      Events:
        S:
          Type: DynamoDB
          Properties: {Stream: 'arn:aws:dynamodb:us-east-1:1:table/x/stream/y', StartingPosition: LATEST}
`))
	require.NoError(t, err)
	_, err = tpl.Load(Options{StackName: "s"})
	assert.ErrorContains(t, err, "Resources.F.Properties.Events.S.Properties.Stream")
}

func TestDecodeRejectsDuplicateKeys(t *testing.T) {
	_, err := Decode([]byte("a: 1\na: 2\n"))
	assert.ErrorContains(t, err, `duplicate key "a"`)
}

// The project's own template loads: every function under functions/ with
// the intrinsics it uses.
func TestLoadProjectTemplate(t *testing.T) {
	st := load(t, filepath.Join("..", "..", "..", "template.yaml"), Options{StackName: "limiter"})
	require.NotEmpty(t, st.Tables)
	assert.Equal(t, "limiter", st.Tables[0].Name)
	var acquire *Function
	for i := range st.Functions {
		if st.Functions[i].Name == "acquire" {
			acquire = &st.Functions[i]
		}
	}
	require.NotNil(t, acquire)
	assert.Equal(t, "limiter-acquire", acquire.FunctionName)
	assert.Equal(t, "limiter", acquire.Env["TABLE_NAME"])
	require.NotNil(t, acquire.URL)
	assert.Equal(t, "BUFFERED", acquire.URL.InvokeMode)
}
