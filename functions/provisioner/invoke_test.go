package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zeroae/zae-limiter-go/cli"
	"github.com/zeroae/zae-limiter-go/shared/lambdarun"
	"github.com/zeroae/zae-limiter-go/shared/limits"
)

// invokeAPI is a test-only Lambda Invoke API in front of one runner, with
// the contract the local stack serves: POST
// /2015-03-31/functions/{name}/invocations (RequestResponse) answers 200
// with the function's payload; a function error adds the header
// X-Amz-Function-Error: Unhandled and answers {"errorType",
// "errorMessage"}; an unknown function is 404 ResourceNotFoundException.
func invokeAPI(t *testing.T, r *lambdarun.Runner) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		path, _ := url.PathUnescape(req.URL.Path)
		name, ok := strings.CutPrefix(path, "/2015-03-31/functions/")
		name, ok2 := strings.CutSuffix(name, "/invocations")
		if req.Method != http.MethodPost || !ok || !ok2 {
			http.Error(w, "not an Invoke request", http.StatusBadRequest)
			return
		}
		if name != r.FunctionName() {
			w.Header().Set("X-Amzn-Errortype", "ResourceNotFoundException")
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusNotFound)
			_ = json.NewEncoder(w).Encode(map[string]string{"Type": "User",
				"message": "Function not found: arn:aws:lambda:us-east-1:123456789012:function:" + name})
			return
		}
		payload, _ := io.ReadAll(req.Body)
		res, err := r.Invoke(req.Context(), payload)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("X-Amz-Executed-Version", "$LATEST")
		if res.Err != nil {
			w.Header().Set("X-Amz-Function-Error", "Unhandled")
			_ = json.NewEncoder(w).Encode(res.Err)
			return
		}
		_, _ = w.Write(res.Payload)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// The CLI's default path: `limits plan|apply|diff` invoke the stack's
// provisioner function through the Lambda Invoke API.
func TestCLIThroughInvoke(t *testing.T) {
	s := startStack(t)
	api := invokeAPI(t, s.runner)
	file := filepath.Join(t.TempDir(), "limits.yaml")
	require.NoError(t, os.WriteFile(file, []byte(`namespace: default
system: {limits: {rpm: 100}}
resources: {gpt-4: {limits: {rpm: 50, tpm: 10000/min:15000}}}
entities: {user-premium: {resources: {gpt-4: {limits: {rpm: 500}}}}}
`), 0o644))
	zl := func(args ...string) (int, string, string) {
		var out, errw bytes.Buffer
		args = append(args, "-n", s.table, "--endpoint-url", api.URL)
		code := cli.Run(args, strings.NewReader(""), &out, &errw)
		return code, out.String(), errw.String()
	}

	code, out, errOut := zl("limits", "plan", "-f", file, "-o", "json")
	require.Equal(t, 0, code, errOut)
	assert.JSONEq(t, `{"namespace": "default", "changes": [
		{"action": "create", "level": "system", "target": null},
		{"action": "create", "level": "resource", "target": "gpt-4"},
		{"action": "create", "level": "entity", "target": "user-premium/gpt-4"}],
		"created": 0, "updated": 0, "deleted": 0, "errors": []}`, out)

	code, out, errOut = zl("limits", "apply", "-f", file, "-y")
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, "Applied: 3 created, 0 updated, 0 deleted.")
	assert.Contains(t, errOut, "through the function "+s.table+"-provisioner")
	got, err := s.ns(t, "default").GetResourceDefaults(t.Context(), "gpt-4")
	require.NoError(t, err)
	assert.Equal(t, []limits.Limit{limits.PerMinute("rpm", 50, 0), limits.PerMinute("tpm", 10000, 15000)}, got)

	code, out, _ = zl("limits", "plan", "-f", file)
	assert.Equal(t, 0, code)
	assert.Equal(t, "No changes. Namespace \"default\" matches "+file+".\n", out)
	code, out, _ = zl("limits", "diff", "-f", file)
	assert.Equal(t, 0, code)
	assert.Contains(t, out, "No drift")

	// A stack without the function: the message says what to do.
	var o, e bytes.Buffer
	code = cli.Run([]string{"limits", "plan", "-f", file, "-n", "other-stack", "--endpoint-url", api.URL},
		strings.NewReader(""), &o, &e)
	assert.Equal(t, 1, code)
	assert.Contains(t, e.String(), "function other-stack-provisioner not found at "+api.URL)
	assert.Contains(t, e.String(), "--direct")
}
