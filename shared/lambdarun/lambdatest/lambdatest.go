// Package lambdatest runs a function's real bootstrap in tests: built once
// per test process the way it is deployed (lambda.norpc, stripped, a native
// build), started under the Runtime API runner, stopped with the test, its
// output logged when the test fails.
package lambdatest

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zeroae/zae-limiter-go/shared/ddblocal/ddbtest"
	"github.com/zeroae/zae-limiter-go/shared/lambdarun"
	"github.com/zeroae/zae-limiter-go/shared/syncio"
)

var builds struct {
	sync.Mutex
	done map[string]*build
}

type build struct {
	once sync.Once
	path string
	err  error
}

// Bootstrap builds the function package pkg (as `go build` names it, e.g.
// "." in the function's own tests) once per test process and returns the
// binary's path.
func Bootstrap(t testing.TB, pkg string) string {
	t.Helper()
	builds.Lock()
	if builds.done == nil {
		builds.done = map[string]*build{}
	}
	b := builds.done[pkg]
	if b == nil {
		b = &build{}
		builds.done[pkg] = b
	}
	builds.Unlock()
	b.once.Do(func() {
		dir, err := os.MkdirTemp("", "bootstrap")
		if err != nil {
			b.err = err
			return
		}
		b.path = filepath.Join(dir, "bootstrap")
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		b.err = lambdarun.Build(ctx, lambdarun.BuildOptions{Package: pkg, Output: b.path})
	})
	if b.err != nil {
		t.Fatalf("lambdatest: build %s: %v", pkg, b.err)
	}
	return b.path
}

// Start runs o under the runner until the test ends and returns the
// runner and the function's output (stdout and stderr).
func Start(t testing.TB, o lambdarun.Options) (*lambdarun.Runner, *syncio.Buffer) {
	t.Helper()
	out := &syncio.Buffer{}
	o.Output = out
	r, err := lambdarun.Start(context.Background(), o)
	t.Cleanup(func() {
		if r != nil {
			_ = r.Close()
		}
		if t.Failed() {
			t.Logf("function output:\n%s", out.String())
		}
	})
	if err != nil {
		t.Fatalf("lambdatest: start %s: %v", o.Binary, err)
	}
	return r, out
}

// Env is the environment of a function working on table in the test
// DynamoDB (ddbtest): TABLE_NAME, the endpoint, dummy credentials and JSON
// logs, then extra.
func Env(t testing.TB, table string, extra ...string) []string {
	t.Helper()
	return append([]string{
		"TABLE_NAME=" + table,
		"AWS_ENDPOINT_URL_DYNAMODB=" + ddbtest.Endpoint(t),
		"AWS_ACCESS_KEY_ID=dummy", "AWS_SECRET_ACCESS_KEY=dummy",
		"AWS_LAMBDA_LOG_FORMAT=JSON",
	}, extra...)
}

// Lines waits until out holds at least n JSON log lines whose "message" is
// msg and returns them (all of them, in order). The runner copies a
// function's output as the process writes it, so the line of an invocation
// may arrive just after its response: poll instead of reading once.
func Lines(t testing.TB, out *syncio.Buffer, msg string, n int) []map[string]any {
	t.Helper()
	var found []map[string]any
	deadline := time.Now().Add(30 * time.Second)
	for {
		found = found[:0]
		for _, l := range strings.Split(out.String(), "\n") {
			var m map[string]any
			if json.Unmarshal([]byte(l), &m) == nil && m["message"] == msg {
				found = append(found, m)
			}
		}
		if len(found) >= n || time.Now().After(deadline) {
			return found
		}
		time.Sleep(10 * time.Millisecond)
	}
}
