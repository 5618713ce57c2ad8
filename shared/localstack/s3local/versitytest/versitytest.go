// Package versitytest starts the pinned versitygw for a test: a real S3 server
// that checks SigV4, on a free loopback port, over a temporary directory.
// Without the binary (`make tools` builds it into tools/bin) the test is
// skipped, or fails when ZAEL_REQUIRE_DYNAMODB=1 says the local stack's
// servers are required.
package versitytest

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/zeroae/zae-limiter-go/shared/localstack/s3local"
)

// Server is a running test S3 server.
type Server struct {
	Endpoint    string
	Binary      string
	Credentials aws.Credentials
	Process     *s3local.Process
}

// Start runs versitygw until the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	bin := Binary(t)
	dir := t.TempDir()
	creds := aws.Credentials{AccessKeyID: "root-test", SecretAccessKey: "root-test-secret"}
	p, err := s3local.Start(context.Background(), s3local.Options{
		Binary: bin, Dir: filepath.Join(dir, "data"), LogFile: filepath.Join(dir, "s3.log"),
		AccessKey: creds.AccessKeyID, SecretKey: creds.SecretAccessKey, KillWithParent: true,
	})
	if err != nil {
		t.Fatalf("versitytest: %v", err)
	}
	t.Cleanup(func() { _ = p.Stop() })
	return &Server{Endpoint: p.Endpoint, Binary: bin, Credentials: creds, Process: p}
}

// Binary returns the pinned versitygw, skipping (or failing) t without it.
func Binary(t testing.TB) string {
	t.Helper()
	bin, err := s3local.Find("")
	if err != nil {
		if v, _ := strconv.ParseBool(os.Getenv("ZAEL_REQUIRE_DYNAMODB")); v {
			t.Fatalf("versitytest: versitygw is required (ZAEL_REQUIRE_DYNAMODB is set): %v; run `make tools`", err)
		}
		t.Skipf("versitytest: %v; run `make tools`", err)
	}
	return bin
}
