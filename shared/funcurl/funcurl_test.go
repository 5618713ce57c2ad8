package funcurl_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zeroae/zae-limiter-go/shared/funcurl"
)

// event is a Function URL event as AWS sends it, with overrides applied.
func event(mod func(*events.LambdaFunctionURLRequest)) events.LambdaFunctionURLRequest {
	ev := events.LambdaFunctionURLRequest{
		Version:        "2.0",
		RawPath:        "/v1/acquire",
		RawQueryString: "",
		Headers: map[string]string{
			"content-type":      "application/json",
			"host":              "abc123.lambda-url.us-east-1.on.aws",
			"x-forwarded-proto": "https",
			"x-forwarded-for":   "203.0.113.7",
			"user-agent":        "curl/8.5.0",
		},
		RequestContext: events.LambdaFunctionURLRequestContext{
			AccountID:    "anonymous",
			RequestID:    "c2d4e6f8-0000-4000-8000-000000000001",
			APIID:        "abc123",
			DomainName:   "abc123.lambda-url.us-east-1.on.aws",
			DomainPrefix: "abc123",
			Time:         "26/Nov/2026:12:00:00 +0000",
			TimeEpoch:    1795694400000,
			HTTP: events.LambdaFunctionURLRequestContextHTTPDescription{
				Method: "POST", Path: "/v1/acquire", Protocol: "HTTP/1.1",
				SourceIP: "203.0.113.7", UserAgent: "curl/8.5.0",
			},
		},
		Body: `{"entity_id":"u1"}`,
	}
	if mod != nil {
		mod(&ev)
	}
	return ev
}

func TestNewRequest(t *testing.T) {
	type want struct {
		method, path, rawPath, query, host, remote, proto string
		headers                                           map[string]string
		body                                              string
		tls                                               bool
	}
	base := want{
		method: "POST", path: "/v1/acquire", host: "abc123.lambda-url.us-east-1.on.aws",
		remote: "203.0.113.7", proto: "HTTP/1.1", body: `{"entity_id":"u1"}`, tls: true,
		headers: map[string]string{"Content-Type": "application/json", "User-Agent": "curl/8.5.0"},
	}
	tests := []struct {
		name string
		mod  func(*events.LambdaFunctionURLRequest)
		want func(*want)
	}{
		{name: "post json", want: func(*want) {}},
		{
			name: "get with query",
			mod: func(ev *events.LambdaFunctionURLRequest) {
				ev.RequestContext.HTTP.Method = "GET"
				ev.RawPath = "/v1/available"
				ev.RawQueryString = "entity_id=u1&resource=gpt-4&resource=x%2Fy"
				ev.Body = ""
			},
			want: func(w *want) {
				w.method, w.path, w.query, w.body = "GET", "/v1/available", "entity_id=u1&resource=gpt-4&resource=x%2Fy", ""
			},
		},
		{
			name: "escaped path keeps raw form",
			mod:  func(ev *events.LambdaFunctionURLRequest) { ev.RawPath = "/a%2Fb/c%20d" },
			want: func(w *want) { w.path, w.rawPath = "/a/b/c d", "/a%2Fb/c%20d" },
		},
		{
			name: "base64 body",
			mod: func(ev *events.LambdaFunctionURLRequest) {
				ev.Body = base64.StdEncoding.EncodeToString([]byte{0, 1, 2, 0xff})
				ev.IsBase64Encoded = true
			},
			want: func(w *want) { w.body = string([]byte{0, 1, 2, 0xff}) },
		},
		{
			name: "cookies become one Cookie header",
			mod:  func(ev *events.LambdaFunctionURLRequest) { ev.Cookies = []string{"a=1", "b=2"} },
			want: func(w *want) { w.headers["Cookie"] = "a=1; b=2" },
		},
		{
			name: "no host header falls back to the domain name, no TLS without x-forwarded-proto",
			mod: func(ev *events.LambdaFunctionURLRequest) {
				delete(ev.Headers, "host")
				delete(ev.Headers, "x-forwarded-proto")
				ev.RequestContext.DomainName = "other.lambda-url.eu-west-1.on.aws"
			},
			want: func(w *want) { w.host, w.tls = "other.lambda-url.eu-west-1.on.aws", false },
		},
		{
			name: "empty path and method",
			mod: func(ev *events.LambdaFunctionURLRequest) {
				ev.RawPath, ev.RequestContext.HTTP.Method, ev.Body = "", "", ""
			},
			want: func(w *want) { w.method, w.path, w.body = "GET", "/", "" },
		},
		{
			name: "HTTP/2",
			mod:  func(ev *events.LambdaFunctionURLRequest) { ev.RequestContext.HTTP.Protocol = "HTTP/2.0" },
			want: func(w *want) { w.proto = "HTTP/2.0" },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := event(tt.mod)
			w := base
			w.headers = map[string]string{}
			for k, v := range base.headers {
				w.headers[k] = v
			}
			tt.want(&w)

			ctx := context.WithValue(context.Background(), ctxKey{}, "outer")
			r, err := funcurl.NewRequest(ctx, &ev)
			require.NoError(t, err)
			assert.Equal(t, w.method, r.Method)
			assert.Equal(t, w.path, r.URL.Path)
			assert.Equal(t, w.rawPath, r.URL.RawPath)
			assert.Equal(t, w.query, r.URL.RawQuery)
			assert.Equal(t, w.host, r.Host)
			assert.Empty(t, r.Header.Get("Host"))
			assert.Equal(t, w.remote, r.RemoteAddr)
			assert.Equal(t, w.proto, r.Proto)
			assert.Equal(t, w.tls, r.TLS != nil)
			for k, v := range w.headers {
				assert.Equal(t, v, r.Header.Get(k), "header %s", k)
			}
			b, err := io.ReadAll(r.Body)
			require.NoError(t, err)
			assert.Equal(t, w.body, string(b))
			assert.EqualValues(t, len(w.body), r.ContentLength)

			assert.Equal(t, "outer", r.Context().Value(ctxKey{}), "keeps the invocation context")
			got, ok := funcurl.RequestFromContext(r.Context())
			require.True(t, ok)
			assert.Equal(t, ev.RequestContext.RequestID, got.RequestContext.RequestID)
		})
	}
}

type ctxKey struct{}

func TestNewRequestErrors(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*events.LambdaFunctionURLRequest)
	}{
		{"bad base64", func(ev *events.LambdaFunctionURLRequest) { ev.Body, ev.IsBase64Encoded = "%%%", true }},
		{"relative path", func(ev *events.LambdaFunctionURLRequest) { ev.RawPath = "v1/acquire" }},
		{"bad method", func(ev *events.LambdaFunctionURLRequest) { ev.RequestContext.HTTP.Method = "PO ST" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := event(tt.mod)
			_, err := funcurl.NewRequest(context.Background(), &ev)
			assert.Error(t, err)
		})
	}
}

func TestResponse(t *testing.T) {
	png := []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
	tests := []struct {
		name    string
		method  string
		handler http.HandlerFunc
		want    events.LambdaFunctionURLResponse
	}{
		{
			name: "json with status and headers",
			handler: func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.Header().Set("Retry-After", "2")
				w.WriteHeader(http.StatusTooManyRequests)
				_, _ = io.WriteString(w, `{"error":"rate_limited"}`)
			},
			want: events.LambdaFunctionURLResponse{
				StatusCode: 429,
				Headers:    map[string]string{"Content-Type": "application/json", "Retry-After": "2"},
				Body:       `{"error":"rate_limited"}`,
			},
		},
		{
			name: "default status 200 and sniffed content type",
			handler: func(w http.ResponseWriter, _ *http.Request) {
				_, _ = io.WriteString(w, "hello")
			},
			want: events.LambdaFunctionURLResponse{
				StatusCode: 200,
				Headers:    map[string]string{"Content-Type": "text/plain; charset=utf-8"},
				Body:       "hello",
			},
		},
		{
			name:    "nothing written",
			handler: func(http.ResponseWriter, *http.Request) {},
			want:    events.LambdaFunctionURLResponse{StatusCode: 200, Headers: map[string]string{}},
		},
		{
			name: "multi-value headers joined, cookies split out",
			handler: func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Add("Vary", "Accept")
				w.Header().Add("Vary", "Origin")
				w.Header().Add("Set-Cookie", "a=1; Path=/")
				w.Header().Add("Set-Cookie", "b=2; HttpOnly")
				w.WriteHeader(http.StatusNoContent)
			},
			want: events.LambdaFunctionURLResponse{
				StatusCode: 204,
				Headers:    map[string]string{"Vary": "Accept, Origin"},
				Cookies:    []string{"a=1; Path=/", "b=2; HttpOnly"},
			},
		},
		{
			name: "binary body is base64",
			handler: func(w http.ResponseWriter, _ *http.Request) {
				_, _ = w.Write(png)
			},
			want: events.LambdaFunctionURLResponse{
				StatusCode:      200,
				Headers:         map[string]string{"Content-Type": "image/png"},
				Body:            base64.StdEncoding.EncodeToString(png),
				IsBase64Encoded: true,
			},
		},
		{
			name: "text type with invalid UTF-8 is base64",
			handler: func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "text/plain")
				_, _ = w.Write([]byte{0xff, 0xfe})
			},
			want: events.LambdaFunctionURLResponse{
				StatusCode:      200,
				Headers:         map[string]string{"Content-Type": "text/plain"},
				Body:            base64.StdEncoding.EncodeToString([]byte{0xff, 0xfe}),
				IsBase64Encoded: true,
			},
		},
		{
			name: "problem+json is text",
			handler: func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "application/problem+json; charset=utf-8")
				w.WriteHeader(400)
				_, _ = io.WriteString(w, `{"title":"é"}`)
			},
			want: events.LambdaFunctionURLResponse{
				StatusCode: 400,
				Headers:    map[string]string{"Content-Type": "application/problem+json; charset=utf-8"},
				Body:       `{"title":"é"}`,
			},
		},
		{
			name:   "HEAD has no body",
			method: "HEAD",
			handler: func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				_, _ = io.WriteString(w, `{}`)
			},
			want: events.LambdaFunctionURLResponse{StatusCode: 200, Headers: map[string]string{"Content-Type": "application/json"}},
		},
		{
			name: "second WriteHeader ignored",
			handler: func(w http.ResponseWriter, _ *http.Request) {
				w.WriteHeader(201)
				w.WriteHeader(500)
				_, _ = io.WriteString(w, "{}")
			},
			want: events.LambdaFunctionURLResponse{
				StatusCode: 201,
				Headers:    map[string]string{"Content-Type": "text/plain; charset=utf-8"},
				Body:       "{}",
			},
		},
		{
			name: "explicit nil Content-Type turns sniffing off",
			handler: func(w http.ResponseWriter, _ *http.Request) {
				w.Header()["Content-Type"] = nil
				_, _ = io.WriteString(w, "x")
			},
			want: events.LambdaFunctionURLResponse{
				StatusCode: 200, Headers: map[string]string{},
				Body: base64.StdEncoding.EncodeToString([]byte("x")), IsBase64Encoded: true,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := event(func(ev *events.LambdaFunctionURLRequest) {
				if tt.method != "" {
					ev.RequestContext.HTTP.Method = tt.method
				}
			})
			got, err := funcurl.Handler(tt.handler)(context.Background(), ev)
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestHandlerRoundTrip(t *testing.T) {
	deadline := time.Now().Add(time.Minute)
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	ctx = lambdacontext.NewContext(ctx, &lambdacontext.LambdaContext{AwsRequestID: "req-1"})

	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		lc, ok := lambdacontext.FromContext(r.Context())
		require.True(t, ok)
		d, ok := r.Context().Deadline()
		require.True(t, ok)
		ev, ok := funcurl.RequestFromContext(r.Context())
		require.True(t, ok)
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"lambda_request_id": lc.AwsRequestID,
			"url_request_id":    ev.RequestContext.RequestID,
			"deadline":          d.Equal(deadline),
			"source_ip":         r.RemoteAddr,
			"body":              string(b),
		})
	})
	got, err := funcurl.Handler(h)(ctx, event(nil))
	require.NoError(t, err)
	assert.Equal(t, 200, got.StatusCode)
	assert.False(t, got.IsBase64Encoded)
	assert.JSONEq(t, `{"lambda_request_id":"req-1","url_request_id":"c2d4e6f8-0000-4000-8000-000000000001",
		"deadline":true,"source_ip":"203.0.113.7","body":"{\"entity_id\":\"u1\"}"}`, got.Body)

	// The response marshals to the shape a Function URL expects.
	b, err := json.Marshal(got)
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(b, &m))
	for _, k := range []string{"statusCode", "headers", "body", "isBase64Encoded"} {
		assert.Contains(t, m, k)
	}
}

func TestHandlerPanicIsAnError(t *testing.T) {
	tests := []struct {
		name  string
		value any
	}{
		{"panic", "boom"},
		{"abort", http.ErrAbortHandler},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic(tt.value) })
			_, err := funcurl.Handler(h)(context.Background(), event(nil))
			assert.Error(t, err)
		})
	}
}

func TestWriteAfterNoContent(t *testing.T) {
	w := funcurl.NewResponseWriter()
	w.WriteHeader(http.StatusNotModified)
	_, err := w.Write([]byte("x"))
	assert.ErrorIs(t, err, http.ErrBodyNotAllowed)
	assert.Equal(t, 304, w.Response("GET").StatusCode)
}
