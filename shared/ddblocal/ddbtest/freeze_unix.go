//go:build unix

package ddbtest

import (
	"context"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/zeroae/zae-limiter-go/shared/ddblocal"
)

// Frozen is a DynamoDB Local of one test's own that the test can freeze: a
// stopped process (SIGSTOP) accepts connections and never answers, as a
// DynamoDB that hangs does. Thawed (SIGCONT) it carries on.
type Frozen struct {
	Endpoint string
	Client   *dynamodb.Client
	proc     *ddblocal.Process
	t        testing.TB
}

// Freezable starts a DynamoDB Local for t alone (stopped when t ends, thawed
// first), skipping or failing like Endpoint when none can be had.
func Freezable(t testing.TB) *Frozen {
	t.Helper()
	Endpoint(t) // the same availability rules (and skips) as every test
	jarDir, err := ddblocal.FindJar("")
	if err != nil {
		unavailable(t, err.Error())
	}
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	p, err := ddblocal.Start(ctx, ddblocal.Options{JarDir: jarDir, SharedDB: true, KillWithParent: true, StartTimeout: startTimeout})
	if err != nil {
		t.Fatalf("ddbtest: start a freezable DynamoDB Local: %v", err)
	}
	f := &Frozen{Endpoint: p.Endpoint, proc: p, t: t}
	f.Client = dynamodb.New(dynamodb.Options{
		Region: Region, Credentials: Config(t).Credentials, BaseEndpoint: aws.String(p.Endpoint),
		DisableValidateResponseChecksum: true,
	})
	t.Cleanup(func() {
		_ = syscall.Kill(p.PID, syscall.SIGCONT)
		_ = p.Stop()
	})
	return f
}

// NewTable creates a table with the product's schema on this DynamoDB.
func (f *Frozen) NewTable(t testing.TB) string {
	t.Helper()
	return newTable(t, f.Client)
}

// Freeze stops the process and returns once the OS shows it stopped.
func (f *Frozen) Freeze() {
	f.t.Helper()
	f.signal(syscall.SIGSTOP, "T")
}

// Thaw lets it run again.
func (f *Frozen) Thaw() {
	f.t.Helper()
	f.signal(syscall.SIGCONT, "")
}

func (f *Frozen) signal(sig syscall.Signal, want string) {
	f.t.Helper()
	if err := syscall.Kill(f.proc.PID, sig); err != nil {
		f.t.Fatalf("ddbtest: signal DynamoDB Local: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for { // signals are delivered asynchronously: wait until ps agrees
		out, err := exec.Command("ps", "-o", "stat=", "-p", strconv.Itoa(f.proc.PID)).Output()
		stopped := err == nil && strings.HasPrefix(strings.TrimSpace(string(out)), "T")
		if stopped == (want == "T") {
			return
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("ddbtest: DynamoDB Local did not take signal %v", sig)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
