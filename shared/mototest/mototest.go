// Package mototest runs moto_server (moto 5.2, on the machine image's
// Python) for a test: a local endpoint for the AWS APIs the product calls
// but that have no dedicated local server (SSM, CloudFormation). Tests
// skip when moto_server is not on PATH.
package mototest

import (
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/zeroae/zae-limiter-go/shared/syncio"
)

// Start runs moto_server on a free loopback port until the test ends and
// returns its endpoint (http://127.0.0.1:port); it skips t when moto_server
// is not installed.
func Start(t testing.TB, why string) string {
	t.Helper()
	bin, err := exec.LookPath("moto_server")
	if err != nil {
		t.Skipf("moto_server not installed: %s is not exercised", why)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("mototest: pick a port: %v", err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	_ = ln.Close()
	cmd := exec.Command(bin, "-H", "127.0.0.1", "-p", strconv.Itoa(port))
	var out syncio.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("mototest: start moto_server: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	endpoint := "http://127.0.0.1:" + strconv.Itoa(port)
	for deadline := time.Now().Add(30 * time.Second); ; {
		resp, err := http.Get(endpoint + "/moto-api/")
		if err == nil {
			resp.Body.Close()
			return endpoint
		}
		if time.Now().After(deadline) {
			t.Fatalf("mototest: moto_server did not answer on %s: %v\n%s", endpoint, err, out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}
