package localstack

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zeroae/zae-limiter-go/shared/ddblocal"
	"github.com/zeroae/zae-limiter-go/shared/ddblocal/ddbtest"
	"github.com/zeroae/zae-limiter-go/shared/localstack/s3local/versitytest"
	"github.com/zeroae/zae-limiter-go/shared/localstack/samtpl"
)

type stack struct {
	t          *testing.T
	name       string
	dir        string
	sink       string
	streamSink string
	cfg        Config
	progress   *bytes.Buffer
}

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startStack runs the test template's stack in this process until the
// test ends.
func startStack(t *testing.T) *stack {
	t.Helper()
	ddbtest.Endpoint(t) // skips (or fails when required) without DynamoDB Local
	jar, err := ddblocal.FindJar("")
	require.NoError(t, err)
	s3bin := versitytest.Binary(t)
	t.Setenv("XDG_STATE_HOME", t.TempDir())

	tmp := t.TempDir()
	s := &stack{t: t, name: "ls-test", dir: tmp, sink: filepath.Join(tmp, "echo.jsonl"), streamSink: filepath.Join(tmp, "stream.jsonl"),
		progress: &bytes.Buffer{}}
	tpl, err := os.ReadFile("testdata/template.yaml")
	require.NoError(t, err)
	s.cfg = Config{
		Name: s.name, Port: freePort(t), Template: string(tpl), TemplateFile: "testdata/template.yaml",
		FunctionsDir: filepath.Join(tmp, "functions"), URLAuth: "AWS_IAM", Instances: 2,
		Parameters:     map[string]string{"Sink": s.sink, "StreamSink": s.streamSink, "StateDir": tmp},
		DynamoDBJarDir: jar, S3Binary: s3bin, ScheduleEvery: 300 * time.Millisecond,
	}
	parsed, err := samtpl.Parse(tpl)
	require.NoError(t, err)
	st, err := parsed.Load(samtpl.Options{StackName: s.name, Parameters: s.cfg.Parameters})
	require.NoError(t, err)
	require.NoError(t, BuildFunctions(context.Background(), "testdata", s.cfg.FunctionsDir, st.Functions, io.Discard))

	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, s.cfg, RunOptions{Progress: pw, SuperviseEvery: 100 * time.Millisecond})
		pw.Close()
	}()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
		st, err := ReadState(s.name)
		require.NoError(t, err)
		assert.False(t, ddblocal.IsDynamoDBLocal(st.DynamoDB.PID), "DynamoDB Local stopped with the stack")
	})
	sc := bufio.NewScanner(pr)
	for sc.Scan() {
		s.progress.WriteString(sc.Text() + "\n")
		if strings.HasPrefix(sc.Text(), ReadyLine) || strings.HasPrefix(sc.Text(), FailedLine) {
			break
		}
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	require.Contains(t, s.progress.String(), ReadyLine, s.progress.String())
	return s
}

func (s *stack) endpoint() string { return "http://127.0.0.1:" + strconv.Itoa(s.cfg.Port) }

func (s *stack) state() State {
	st, err := ReadState(s.name)
	require.NoError(s.t, err)
	return st
}

// awsCfg is any user's configuration: only the endpoint is right.
func (s *stack) awsCfg() aws.Config {
	return aws.Config{Region: "eu-central-1", BaseEndpoint: aws.String(s.endpoint()),
		Credentials: credentials.NewStaticCredentialsProvider("AKIAWHATEVER", "whatever", "")}
}

func (s *stack) waitFor(what string, cond func() bool) {
	s.t.Helper()
	deadline := time.Now().Add(40 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			s.t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func lines(file string) []string {
	b, _ := os.ReadFile(file)
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if l != "" {
			out = append(out, l)
		}
	}
	return out
}

func TestStack(t *testing.T) {
	s := startStack(t)
	ctx := context.Background()
	st := s.state()
	require.Equal(t, PhaseReady, st.Phase)
	require.Contains(t, st.URLs, "echofn")

	t.Run("status", func(t *testing.T) {
		hosted, err := QueryStatus(ctx, s.endpoint())
		require.NoError(t, err)
		require.Len(t, hosted.Functions, 2)
		for _, f := range hosted.Functions {
			assert.True(t, f.Running, f.Name)
		}
		assert.Equal(t, "ls-test-echo", hosted.Functions[0].FunctionName)
		require.Len(t, hosted.Mappings, 1)
		require.Len(t, hosted.Schedules, 1)
	})

	t.Run("tables and buckets from the template", func(t *testing.T) {
		db := dynamodb.NewFromConfig(s.awsCfg(), func(o *dynamodb.Options) { o.DisableValidateResponseChecksum = true })
		out, err := db.DescribeTimeToLive(ctx, &dynamodb.DescribeTimeToLiveInput{TableName: aws.String(s.name)})
		require.NoError(t, err)
		assert.Equal(t, types.TimeToLiveStatusEnabled, out.TimeToLiveDescription.TimeToLiveStatus)
		_, err = s3.NewFromConfig(s.awsCfg(), func(o *s3.Options) { o.UsePathStyle = true }).
			HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(s.name + "-archive")})
		assert.NoError(t, err)
	})

	t.Run("invoke API", func(t *testing.T) {
		lc := lambda.NewFromConfig(s.awsCfg())
		out, err := lc.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("ls-test-echo"), Payload: []byte(`{"hello":"world"}`)})
		require.NoError(t, err)
		assert.Nil(t, out.FunctionError)
		var echo struct {
			Echo     map[string]string `json:"echo"`
			Table    string            `json:"table"`
			Endpoint string            `json:"endpoint"`
		}
		require.NoError(t, json.Unmarshal(out.Payload, &echo))
		assert.Equal(t, "world", echo.Echo["hello"])
		assert.Equal(t, s.name, echo.Table, "Ref of the table resolved")
		assert.Equal(t, s.endpoint(), echo.Endpoint, "the functions use the one endpoint")

		out, err = lc.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("arn:aws:lambda:us-east-1:123456789012:function:ls-test-echo"),
			Payload: []byte(`{"fail":true}`)})
		require.NoError(t, err)
		require.NotNil(t, out.FunctionError)
		assert.Equal(t, "Unhandled", *out.FunctionError)
		assert.Contains(t, string(out.Payload), "asked to fail")

		_, err = lc.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("nope")})
		var rnf *lambdatypes.ResourceNotFoundException
		assert.True(t, errors.As(err, &rnf), "%v", err)

		before := len(lines(s.sink))
		ev, err := lc.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("ls-test-echo"), InvocationType: lambdatypes.InvocationTypeEvent,
			Payload: []byte(`{"async":1}`)})
		require.NoError(t, err)
		assert.Equal(t, int32(http.StatusAccepted), ev.StatusCode)
		s.waitFor("the Event invocation", func() bool {
			for _, l := range lines(s.sink)[before:] {
				if strings.Contains(l, `"async":1`) {
					return true
				}
			}
			return false
		})
		list, err := lc.ListFunctions(ctx, &lambda.ListFunctionsInput{})
		require.NoError(t, err)
		assert.Len(t, list.Functions, 2)
	})

	t.Run("the AWS CLI with only AWS_ENDPOINT_URL", func(t *testing.T) {
		aws, err := exec.LookPath("aws")
		if err != nil {
			t.Skip("no aws command on PATH")
		}
		run := func(args ...string) string {
			cmd := exec.Command(aws, args...)
			cmd.Env = append(os.Environ(), "AWS_ENDPOINT_URL="+s.endpoint(), "AWS_ACCESS_KEY_ID=AKIAANY", "AWS_SECRET_ACCESS_KEY=any",
				"AWS_DEFAULT_REGION=ap-southeast-2", "AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null")
			out, err := cmd.CombinedOutput()
			require.NoError(t, err, "aws %v: %s", args, out)
			return string(out)
		}
		assert.Contains(t, run("dynamodb", "list-tables", "--output", "text"), s.name)
		assert.Contains(t, run("s3", "ls"), s.name+"-archive")
		out := filepath.Join(t.TempDir(), "out.json")
		args := []string{"lambda", "invoke", "--function-name", "ls-test-echo", "--payload", `{"from":"cli"}`, out}
		if strings.HasPrefix(run("--version"), "aws-cli/2") {
			args = append(args, "--cli-binary-format", "raw-in-base64-out") // v2 reads payloads as base64 otherwise
		}
		run(args...)
		b, err := os.ReadFile(out)
		require.NoError(t, err)
		assert.Contains(t, string(b), `"from":"cli"`)
	})

	t.Run("function URL with AWS_IAM", func(t *testing.T) {
		url := st.URLs["echofn"] + "v1/thing?x=1"
		resp, err := http.Post(url, "application/json", strings.NewReader(`{"a":1}`))
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, http.StatusForbidden, resp.StatusCode, "unsigned")

		send := func(secret string) *http.Response {
			body := `{"a":1}`
			req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			sum := sha256.Sum256([]byte(body))
			req.Header.Set("X-Amz-Content-Sha256", hex.EncodeToString(sum[:]))
			require.NoError(t, v4.NewSigner().SignHTTP(ctx, aws.Credentials{AccessKeyID: "dummy", SecretAccessKey: secret},
				req, hex.EncodeToString(sum[:]), "lambda", "us-east-1", time.Now()))
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			return resp
		}
		resp = send("wrong")
		resp.Body.Close()
		assert.Equal(t, http.StatusForbidden, resp.StatusCode, "a wrong signature")

		resp = send("dummy")
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.Equal(t, http.StatusCreated, resp.StatusCode, string(b))
		assert.Equal(t, "yes", resp.Header.Get("X-Echo"))
		var seen map[string]any
		require.NoError(t, json.Unmarshal(b, &seen))
		assert.Equal(t, map[string]any{"method": "POST", "path": "/v1/thing", "query": "x=1", "body": `{"a":1}`,
			"base64": false, "version": "2.0", "access_key": "dummy"}, seen)
	})

	t.Run("schedule", func(t *testing.T) {
		s.waitFor("a scheduled invocation", func() bool {
			for _, l := range lines(s.sink) {
				if strings.Contains(l, `"source": "tick"`) {
					return true
				}
			}
			return false
		})
	})

	db := dynamodb.NewFromConfig(s.awsCfg(), func(o *dynamodb.Options) { o.DisableValidateResponseChecksum = true })
	put := func(pk, sk string, extra map[string]types.AttributeValue) {
		t.Helper()
		item := map[string]types.AttributeValue{"PK": &types.AttributeValueMemberS{Value: pk}, "SK": &types.AttributeValueMemberS{Value: sk}}
		for k, v := range extra {
			item[k] = v
		}
		_, err := db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(s.name), Item: item})
		require.NoError(t, err)
	}
	streamed := func(key string) bool {
		for _, l := range lines(s.streamSink) {
			if strings.Contains(l, `"key":"`+key+`"`) {
				return true
			}
		}
		return false
	}

	t.Run("stream mapping with filter and on-failure destination", func(t *testing.T) {
		put("s1", "#BUCKET#a", nil)
		put("s2", "#CONFIG", nil)
		put("s3", "#BUCKET#b", map[string]types.AttributeValue{"poison": &types.AttributeValueMemberN{Value: "1"}})
		put("s4", "#BUCKET#c", nil)
		s.waitFor("s4", func() bool { return streamed("s4") })
		assert.True(t, streamed("s1"))
		assert.False(t, streamed("s2"), "filtered out")
		s.waitFor("the on-failure record", func() bool { return len(lines(Paths{s.stackDir()}.Destination("DLQ"))) > 0 })
		hosted, err := QueryStatus(ctx, s.endpoint())
		require.NoError(t, err)
		require.Len(t, hosted.Destinations, 1)
		assert.Equal(t, "DLQ", hosted.Destinations[0].Name)
		assert.Equal(t, 1, hosted.Destinations[0].Messages)
	})

	t.Run("DynamoDB Local restarted under the stack", func(t *testing.T) {
		old := s.state().DynamoDB
		require.NoError(t, syscall.Kill(old.PID, syscall.SIGKILL))
		s.waitFor("a new DynamoDB Local", func() bool {
			st := s.state().DynamoDB
			return st.PID != old.PID && ddblocal.Ping(ctx, st.Endpoint) == nil
		})
		s.waitFor("the table again", func() bool {
			_, err := db.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(s.name)})
			return err == nil
		})
		put("after-restart", "#BUCKET#z", nil)
		s.waitFor("the new stream read", func() bool { return streamed("after-restart") })
	})
}

func (s *stack) stackDir() string {
	d, err := StackDir(s.name)
	require.NoError(s.t, err)
	return d
}
