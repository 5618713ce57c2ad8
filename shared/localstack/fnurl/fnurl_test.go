package fnurl

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zeroae/zae-limiter-go/shared/lambdarun"
)

// fn records the event and answers what the test set.
type fn struct {
	got    events.LambdaFunctionURLRequest
	answer []byte
	err    *lambdarun.FunctionError
}

func (f *fn) Invoke(_ context.Context, p []byte) (lambdarun.Result, error) {
	if err := json.Unmarshal(p, &f.got); err != nil {
		return lambdarun.Result{}, err
	}
	return lambdarun.Result{Payload: f.answer, Err: f.err}, nil
}

func TestNoneAuthBuildsThePayload20Event(t *testing.T) {
	f := &fn{answer: []byte(`{"statusCode":429,"headers":{"Retry-After":"2"},"cookies":["a=1"],"body":"AAEC","isBase64Encoded":true}`)}
	srv := httptest.NewServer(New(Options{Function: f, URLID: "acquire"}))
	defer srv.Close()

	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/acquire?x=1&x=2&y=%20z", strings.NewReader("\x00\x01binary"))
	req.Header.Set("Content-Type", "application/octet-stream")
	req.Header.Set("Cookie", "s=1; t=2")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()

	assert.Equal(t, 429, resp.StatusCode)
	assert.Equal(t, "2", resp.Header.Get("Retry-After"))
	assert.Equal(t, []string{"a=1"}, resp.Header.Values("Set-Cookie"))
	assert.Equal(t, []byte{0, 1, 2}, body)

	ev := f.got
	assert.Equal(t, "2.0", ev.Version)
	assert.Equal(t, "/v1/acquire", ev.RawPath)
	assert.Equal(t, "x=1&x=2&y=%20z", ev.RawQueryString)
	assert.Equal(t, map[string]string{"x": "1,2", "y": " z"}, ev.QueryStringParameters)
	assert.Equal(t, []string{"s=1", "t=2"}, ev.Cookies)
	assert.Equal(t, "application/octet-stream", ev.Headers["content-type"])
	assert.True(t, ev.IsBase64Encoded)
	b, _ := base64.StdEncoding.DecodeString(ev.Body)
	assert.Equal(t, "\x00\x01binary", string(b))
	assert.Equal(t, "POST", ev.RequestContext.HTTP.Method)
	assert.Equal(t, "anonymous", ev.RequestContext.AccountID)
	assert.Nil(t, ev.RequestContext.Authorizer)
	assert.Equal(t, "acquire", ev.RequestContext.DomainPrefix)
	assert.NotEmpty(t, ev.RequestContext.RequestID)
}

func TestResponsesAndErrors(t *testing.T) {
	f := &fn{answer: []byte(`{"hello":"world"}`)}
	srv := httptest.NewServer(New(Options{Function: f}))
	defer srv.Close()
	get := func() (*http.Response, string) {
		resp, err := http.Post(srv.URL+"/", "application/json", strings.NewReader(`{"a":1}`))
		require.NoError(t, err)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp, string(b)
	}
	resp, body := get()
	assert.Equal(t, http.StatusOK, resp.StatusCode, "an answer without statusCode is a 200 JSON body")
	assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	assert.JSONEq(t, `{"hello":"world"}`, body)
	assert.Equal(t, `{"a":1}`, f.got.Body, "a JSON body travels as text")
	assert.False(t, f.got.IsBase64Encoded)

	f.err = &lambdarun.FunctionError{Type: "Sandbox.Timedout", Message: "Task timed out"}
	resp, body = get()
	assert.Equal(t, http.StatusBadGateway, resp.StatusCode)
	assert.NotContains(t, body, "Task timed out", "the function's error stays inside")

	resp2, err := http.Post(srv.URL+"/", "application/json", strings.NewReader(strings.Repeat("x", lambdarun.MaxPayload+1)))
	require.NoError(t, err)
	resp2.Body.Close()
	assert.Equal(t, http.StatusRequestEntityTooLarge, resp2.StatusCode)
}
