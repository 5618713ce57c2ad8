package invokeapi

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zeroae/zae-limiter-go/shared/lambdarun"
)

type fn struct{ calls int }

func (f *fn) Invoke(_ context.Context, p []byte) (lambdarun.Result, error) {
	f.calls++
	if strings.Contains(string(p), "fail") {
		return lambdarun.Result{Payload: []byte(`{"errorType":"E","errorMessage":"failed"}`), Err: &lambdarun.FunctionError{Type: "E", Message: "failed"}}, nil
	}
	return lambdarun.Result{Payload: p}, nil
}

func (f *fn) Config() Config {
	return Config{FunctionName: "dev-echo", FunctionArn: "arn:aws:lambda:us-east-1:123456789012:function:dev-echo"}
}

func TestInvoke(t *testing.T) {
	f := &fn{}
	api := New(Options{
		Lookup:           func(n string) (Function, bool) { return f, n == "dev-echo" },
		List:             func() []Function { return []Function{f} },
		AsyncRetryDelays: []time.Duration{0, 0},
	})
	srv := httptest.NewServer(api)
	defer srv.Close()
	call := func(path, typ, body string) (*http.Response, string) {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/2015-03-31/functions/"+path+"/invocations", strings.NewReader(body))
		if typ != "" {
			req.Header.Set("X-Amz-Invocation-Type", typ)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp, string(b)
	}
	resp, body := call("dev-echo", "", `{"a":1}`)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, `{"a":1}`, body)
	assert.Empty(t, resp.Header.Get("X-Amz-Function-Error"))

	resp, body = call("arn:aws:lambda:us-east-1:123456789012:function:dev-echo:$LATEST", "", `{"fail":1}`)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "Unhandled", resp.Header.Get("X-Amz-Function-Error"))
	assert.Contains(t, body, "failed")

	resp, _ = call("dev-echo:v2", "", `{}`)
	assert.Equal(t, http.StatusNotFound, resp.StatusCode, "only $LATEST exists")
	assert.Equal(t, "ResourceNotFoundException", resp.Header.Get("X-Amzn-ErrorType"))
	resp, _ = call("other", "", `{}`)
	assert.Equal(t, http.StatusNotFound, resp.StatusCode)
	resp, _ = call("dev-echo", "", `not json`)
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
	before := f.calls
	resp, _ = call("dev-echo", "DryRun", `{}`)
	assert.Equal(t, http.StatusNoContent, resp.StatusCode)
	assert.Equal(t, before, f.calls, "a dry run invokes nothing")

	resp, _ = call("dev-echo", "Event", `{"fail":1}`)
	assert.Equal(t, http.StatusAccepted, resp.StatusCode)
	api.Wait()
	assert.Equal(t, before+3, f.calls, "a failed Event invocation is retried twice")
}
