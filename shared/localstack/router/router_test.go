package router

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zeroae/zae-limiter-go/shared/ddblocal/ddbtest"
	"github.com/zeroae/zae-limiter-go/shared/localstack/s3local/versitytest"
)

func TestServiceFromEachMarker(t *testing.T) {
	req := func(method, target string, h map[string]string) *http.Request {
		r := httptest.NewRequest(method, target, nil)
		for k, v := range h {
			r.Header.Set(k, v)
		}
		return r
	}
	auth := func(svc string) map[string]string {
		return map[string]string{"Authorization": "AWS4-HMAC-SHA256 Credential=AK/20260101/eu-west-1/" + svc +
			"/aws4_request, SignedHeaders=host, Signature=00"}
	}
	for name, tc := range map[string]struct {
		r    *http.Request
		want string
	}{
		"dynamodb scope":      {req("POST", "/", auth("dynamodb")), DynamoDB},
		"streams target only": {req("POST", "/", map[string]string{"X-Amz-Target": "DynamoDBStreams_20120810.GetRecords"}), DynamoDB},
		"dynamodb target":     {req("POST", "/", map[string]string{"X-Amz-Target": "DynamoDB_20120810.ListTables"}), DynamoDB},
		"s3 scope":            {req("GET", "/bucket/key", auth("s3")), S3},
		"s3 presigned":        {req("GET", "/b/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AK%2F20260101%2Fus-east-1%2Fs3%2Faws4_request", nil), S3},
		"unsigned":            {req("GET", "/bucket", nil), S3},
		"lambda scope":        {req("POST", "/2015-03-31/functions/f/invocations", auth("lambda")), Lambda},
		"lambda path":         {req("POST", "/2015-03-31/functions/f/invocations", nil), Lambda},
		"control":             {req("GET", "/_zael/health", auth("s3")), Control},
		"other service":       {req("POST", "/", auth("sts")), "sts"},
	} {
		assert.Equal(t, tc.want, Service(tc.r), name)
	}
}

type fixture struct {
	rt     *Router
	url    string
	s3     *versitytest.Server
	lambda int
}

func start(t *testing.T) *fixture {
	t.Helper()
	ddb := ddbtest.Endpoint(t)
	s3srv := versitytest.Start(t)
	f := &fixture{s3: s3srv}
	rt := New(Options{
		DynamoDB:      func() string { return ddb },
		S3:            func() string { return s3srv.Endpoint },
		S3Credentials: s3srv.Credentials,
		Lambda: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			f.lambda++
			fmt.Fprint(w, `{"lambda":true}`)
		}),
		Control: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, `{"ready":true}`) }),
	})
	srv := httptest.NewServer(rt)
	t.Cleanup(srv.Close)
	f.url, f.rt = srv.URL, rt
	return f
}

// cfg is what a user has: the one endpoint and whatever credentials and
// region they happen to use.
func cfg(endpoint, key, region string) aws.Config {
	return aws.Config{
		Region:       region,
		Credentials:  credentials.NewStaticCredentialsProvider(key, key+"-secret", "session-token"),
		BaseEndpoint: aws.String(endpoint),
	}
}

func TestRouterReachesEachServiceWithAnyCredentials(t *testing.T) {
	f := start(t)
	ctx := context.Background()
	for _, c := range []aws.Config{cfg(f.url, "AKIAANYTHING", "eu-west-3"), cfg(f.url, "dummy", "us-east-1")} {
		db := dynamodb.NewFromConfig(c, func(o *dynamodb.Options) { o.DisableValidateResponseChecksum = true })
		_, err := db.ListTables(ctx, &dynamodb.ListTablesInput{})
		require.NoError(t, err, "DynamoDB through the router")
		_, err = dynamodbstreams.NewFromConfig(c).ListStreams(ctx, &dynamodbstreams.ListStreamsInput{})
		require.NoError(t, err, "DynamoDB Streams through the router")

		s := s3.NewFromConfig(c, func(o *s3.Options) { o.UsePathStyle = true })
		bucket := "b-" + strings.ToLower(strings.ReplaceAll(c.Region, "-", ""))
		in := &s3.CreateBucketInput{Bucket: aws.String(bucket)}
		if c.Region != "us-east-1" {
			in.CreateBucketConfiguration = &s3types.CreateBucketConfiguration{LocationConstraint: s3types.BucketLocationConstraint(c.Region)}
		}
		_, err = s.CreateBucket(ctx, in)
		require.NoError(t, err, "S3 through the router, re-signed, in any region")
		_, err = s.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("dir/seekable"), Body: bytes.NewReader([]byte("hello"))})
		require.NoError(t, err)
		// An unsigned payload (aws-chunked with a checksum trailer).
		_, err = s.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String("dir/stream"), Body: strings.NewReader("streamed")},
			s3.WithAPIOptions(v4.SwapComputePayloadSHA256ForUnsignedPayloadMiddleware))
		require.NoError(t, err)
		got, err := s.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String("dir/stream")})
		require.NoError(t, err)
		b, _ := io.ReadAll(got.Body)
		assert.Equal(t, "streamed", string(b))
		list, err := s.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String("dir/")})
		require.NoError(t, err)
		assert.Len(t, list.Contents, 2)
	}

	// Lambda and the control API are in-process handlers.
	resp, err := http.Post(f.url+"/2015-03-31/functions/x/invocations", "application/json", strings.NewReader("{}"))
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, 1, f.lambda)

	// A service without a local server is named.
	r, _ := http.NewRequest(http.MethodPost, f.url+"/", nil)
	r.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AK/20260101/us-east-1/sts/aws4_request, SignedHeaders=host, Signature=00")
	resp, err = http.DefaultClient.Do(r)
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
	assert.Contains(t, string(body), `no local server for \"sts\"`)
}

func TestRouterPresignedS3(t *testing.T) {
	f := start(t)
	ctx := context.Background()
	c := cfg(f.url, "presigner", "us-west-2")
	s := s3.NewFromConfig(c, func(o *s3.Options) { o.UsePathStyle = true })
	_, err := s.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("presign")})
	require.NoError(t, err)
	_, err = s.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("presign"), Key: aws.String("a b.txt"), Body: strings.NewReader("shared")})
	require.NoError(t, err)

	ps := s3.NewPresignClient(s)
	get, err := ps.PresignGetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("presign"), Key: aws.String("a b.txt")},
		s3.WithPresignExpires(time.Minute))
	require.NoError(t, err)
	resp, err := http.Get(get.URL)
	require.NoError(t, err)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, string(b))
	assert.Equal(t, "shared", string(b))

	put, err := ps.PresignPutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("presign"), Key: aws.String("up")}, s3.WithPresignExpires(time.Minute))
	require.NoError(t, err)
	req, _ := http.NewRequest(http.MethodPut, put.URL, strings.NewReader("uploaded"))
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	out, err := s.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("presign"), Key: aws.String("up")})
	require.NoError(t, err)
	b, _ = io.ReadAll(out.Body)
	assert.Equal(t, "uploaded", string(b))

	// Expired: refused as S3 would.
	f.rt.o.Now = func() time.Time { return time.Now().Add(2 * time.Minute) }
	resp, err = http.Get(get.URL)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusForbidden, resp.StatusCode)
}

// A body in signed aws-chunked encoding (as SDKs that sign every chunk
// send it) is decoded before re-signing.
func TestRouterSignedChunkedUpload(t *testing.T) {
	f := start(t)
	ctx := context.Background()
	s := s3.NewFromConfig(cfg(f.url, "k", "us-east-1"), func(o *s3.Options) { o.UsePathStyle = true })
	_, err := s.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("chunks")})
	require.NoError(t, err)

	body := "5;chunk-signature=aaaa\r\nhello\r\n6;chunk-signature=bbbb\r\n world\r\n0;chunk-signature=cccc\r\n\r\n"
	req, _ := http.NewRequest(http.MethodPut, f.url+"/chunks/greeting", strings.NewReader(body))
	req.Header.Set("Content-Encoding", "aws-chunked")
	req.Header.Set("X-Amz-Decoded-Content-Length", "11")
	req.Header.Set("X-Amz-Content-Sha256", streamingSigned)
	req.Header.Set("X-Amz-Date", time.Now().UTC().Format("20060102T150405Z"))
	req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=k/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=00")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	msg, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, string(msg))
	out, err := s.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("chunks"), Key: aws.String("greeting")})
	require.NoError(t, err)
	b, _ := io.ReadAll(out.Body)
	assert.Equal(t, "hello world", string(b))
}

func TestRouterBackendDown(t *testing.T) {
	rt := New(Options{DynamoDB: func() string { return "http://127.0.0.1:1" }, S3: func() string { return "" }})
	srv := httptest.NewServer(rt)
	defer srv.Close()
	db := dynamodb.NewFromConfig(cfg(srv.URL, "k", "us-east-1"), func(o *dynamodb.Options) {
		o.RetryMaxAttempts = 1
		o.DisableValidateResponseChecksum = true
	})
	_, err := db.ListTables(context.Background(), &dynamodb.ListTablesInput{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "DynamoDB Local did not answer")
	resp, err := http.Get(srv.URL + "/bucket")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
}
