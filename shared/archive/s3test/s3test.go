// Package s3test gives tests an in-process S3 server (gofakes3, in memory)
// and a client for it, as DECISIONS §2 allows inside Go tests. The local
// stack and `make invoke` use a real S3-compatible server instead; nothing
// that a Lambda or the CLI imports may import this package.
package s3test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
	"github.com/stretchr/testify/require"

	"github.com/zeroae/zae-limiter-go/shared/awsenv"
)

// Server is one in-process S3 server.
type Server struct {
	// URL is its endpoint (http://127.0.0.1:port), for AWS_ENDPOINT_URL_S3.
	URL    string
	Client *s3.Client

	srv  *httptest.Server
	mu   sync.Mutex
	down bool
}

// Start runs a server until the test ends and creates the given buckets.
// Requests made while it is Down are answered 503 SlowDown, as S3 does
// when it is overloaded.
func Start(t testing.TB, buckets ...string) *Server {
	t.Helper()
	fake := gofakes3.New(s3mem.New()).Server()
	s := &Server{}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		down := s.down
		s.mu.Unlock()
		if down {
			w.Header().Set("Content-Type", "application/xml")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code><Message>test server is down</Message></Error>`))
			return
		}
		fake.ServeHTTP(w, r)
	}))
	t.Cleanup(s.srv.Close)
	s.URL = s.srv.URL
	s.Client = NewClient(s.URL)
	for _, b := range buckets {
		_, err := s.Client.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String(b)})
		require.NoError(t, err, "create bucket %s", b)
	}
	return s
}

// NewClient is an S3 client for endpoint with dummy credentials, as the
// product builds one for a custom endpoint (awsenv.S3Options), and no
// retries, so a failing server fails a call at once.
func NewClient(endpoint string) *s3.Client {
	return s3.New(s3.Options{
		Region:           awsenv.LocalRegion,
		BaseEndpoint:     aws.String(endpoint),
		Credentials:      credentials.NewStaticCredentialsProvider(awsenv.DummyAccessKeyID, awsenv.DummySecretKey, ""),
		RetryMaxAttempts: 1,
	}, awsenv.S3Options)
}

// SetDown makes the server answer every request with 503 (true) or serve
// again (false).
func (s *Server) SetDown(down bool) {
	s.mu.Lock()
	s.down = down
	s.mu.Unlock()
}

// Close stops the server: every later request fails to connect.
func (s *Server) Close() { s.srv.Close() }

// Objects lists every key in bucket.
func (s *Server) Objects(t testing.TB, bucket string) []string {
	t.Helper()
	var keys []string
	p := s3.NewListObjectsV2Paginator(s.Client, &s3.ListObjectsV2Input{Bucket: aws.String(bucket)})
	for p.HasMorePages() {
		out, err := p.NextPage(context.Background())
		require.NoError(t, err)
		for _, o := range out.Contents {
			keys = append(keys, aws.ToString(o.Key))
		}
	}
	return keys
}
