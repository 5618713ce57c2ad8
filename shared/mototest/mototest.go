// Package mototest runs moto_server, the local stand-in of the AWS APIs
// (CloudFormation, S3, IAM, Lambda, SSM, Secrets Manager, ...) that the
// machine image provides, for tests that need one of them.
//
// Start gives a test its own fresh server on a free loopback port, stopped
// when the test ends (and killed with the test process on Linux). When
// moto_server is not on PATH the test is skipped (saying what is then not
// exercised), unless ZAEL_REQUIRE_DYNAMODB=1 is set (as .ci/run does): then
// it fails, as the DynamoDB tests do.
package mototest

import (
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/zeroae/zae-limiter-go/shared/syncio"
)

// RequireEnv names the variable that turns a missing moto_server into a
// failure (the same variable as the DynamoDB tests').
const RequireEnv = "ZAEL_REQUIRE_DYNAMODB"

// Region and Account are what moto answers with.
const (
	Region  = "us-east-1"
	Account = "123456789012"
)

const startTimeout = 60 * time.Second // generous: go test may compile in parallel

// Start runs a fresh moto_server until t ends and returns its endpoint;
// why names what the test exercises (for the skip message).
func Start(t testing.TB, why string) string {
	t.Helper()
	bin, err := exec.LookPath("moto_server")
	if err != nil {
		if required() {
			t.Fatalf("mototest: moto_server is required (%s is set) but not on PATH: %s is not exercised", RequireEnv, why)
		}
		t.Skipf("mototest: moto_server not installed (set %s=1 to fail instead): %s is not exercised", RequireEnv, why)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("mototest: %v", err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	_ = ln.Close()
	cmd := exec.Command(bin, "-H", "127.0.0.1", "-p", strconv.Itoa(port))
	cmd.SysProcAttr = sysProcAttr()
	var out syncio.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("mototest: start %s: %v", bin, err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	endpoint := "http://127.0.0.1:" + strconv.Itoa(port)
	deadline := time.Now().Add(startTimeout)
	for {
		resp, err := http.Get(endpoint + "/moto-api/")
		if err == nil {
			resp.Body.Close()
			return endpoint
		}
		select {
		case <-exited:
			t.Fatalf("mototest: moto_server exited:\n%s", out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("mototest: moto_server did not answer on %s within %s: %v\n%s", endpoint, startTimeout, err, out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Config is an SDK configuration for endpoint: every service there, dummy
// static credentials, region us-east-1. It reads nothing from the
// environment or the user's AWS files.
func Config(endpoint string) aws.Config {
	return aws.Config{
		Region:       Region,
		Credentials:  aws.NewCredentialsCache(credentials.NewStaticCredentialsProvider("dummy", "dummy", "")),
		BaseEndpoint: aws.String(endpoint),
	}
}

func required() bool {
	v, err := strconv.ParseBool(os.Getenv(RequireEnv))
	return err == nil && v
}
