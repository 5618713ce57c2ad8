// Package funcurl serves an http.Handler from a Lambda Function URL whose
// invoke mode is BUFFERED (payload format 2.0).
//
// aws-lambda-go's lambdaurl package only supports RESPONSE_STREAM; this
// adapter turns each events.LambdaFunctionURLRequest into an *http.Request,
// records what the handler writes, and answers with an
// events.LambdaFunctionURLResponse:
//
//   - The request carries the method, the raw path and query string (so
//     r.URL.Path is decoded and r.URL.RawPath kept as net/http does), every
//     header, the event's cookies as one Cookie header, and the body (base64
//     decoded when the event says so). r.Host is the Host header, else the
//     URL's domain name; r.RemoteAddr is the caller's source IP; r.TLS is set
//     when the request came in over HTTPS (X-Forwarded-Proto), as it always
//     does through a Function URL. The request's context is the invocation's
//     (deadline, lambdacontext, X-Ray trace header) plus the event itself:
//     RequestFromContext returns it, with the request id and source IP.
//   - The response has the status (200 when the handler wrote none), every
//     header with multiple values joined by ", ", Set-Cookie values as the
//     cookies list, and the body: as text when its Content-Type is textual
//     (text/*, JSON, XML, form data, JavaScript) and it is valid UTF-8, else
//     base64 with isBase64Encoded set. A missing Content-Type is sniffed as
//     net/http does. HEAD, 204 and 304 answers carry no body.
//
// A panic in the handler is logged with slog (with its stack) and returned
// as the invocation's error, so the Function URL answers 502 and the
// execution environment stays warm. A Function URL buffers at most 6 MB of
// response; this package does not cap the body itself.
package funcurl

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"runtime/debug"
	"strings"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"
)

type requestKey struct{}

// RequestFromContext returns the Function URL event behind an *http.Request
// built by Handler (use r.Context()).
func RequestFromContext(ctx context.Context) (*events.LambdaFunctionURLRequest, bool) {
	ev, ok := ctx.Value(requestKey{}).(*events.LambdaFunctionURLRequest)
	return ev, ok
}

// Handler adapts h to a Lambda handler for a BUFFERED Function URL.
func Handler(h http.Handler) func(context.Context, events.LambdaFunctionURLRequest) (events.LambdaFunctionURLResponse, error) {
	return func(ctx context.Context, ev events.LambdaFunctionURLRequest) (events.LambdaFunctionURLResponse, error) {
		r, err := NewRequest(ctx, &ev)
		if err != nil {
			return events.LambdaFunctionURLResponse{}, err
		}
		w := NewResponseWriter()
		if err := serve(h, w, r); err != nil {
			return events.LambdaFunctionURLResponse{}, err
		}
		return w.Response(r.Method), nil
	}
}

// serve runs the handler, turning a panic into an error.
func serve(h http.Handler, w http.ResponseWriter, r *http.Request) (err error) {
	defer func() {
		p := recover()
		if p == nil {
			return
		}
		if p == http.ErrAbortHandler {
			err = errors.New("funcurl: handler aborted the request")
			return
		}
		slog.ErrorContext(r.Context(), "http handler panicked",
			"panic", fmt.Sprint(p), "method", r.Method, "path", r.URL.Path, "stack", string(debug.Stack()))
		err = fmt.Errorf("funcurl: handler panicked: %v", p)
	}()
	h.ServeHTTP(w, r)
	return nil
}

// NewRequest builds the *http.Request for a Function URL event, with ctx
// (plus the event, see RequestFromContext) as its context.
func NewRequest(ctx context.Context, ev *events.LambdaFunctionURLRequest) (*http.Request, error) {
	method := ev.RequestContext.HTTP.Method
	if method == "" {
		method = http.MethodGet
	}
	uri := ev.RawPath
	if uri == "" {
		uri = "/"
	}
	if ev.RawQueryString != "" {
		uri += "?" + ev.RawQueryString
	}
	u, err := url.ParseRequestURI(uri)
	if err != nil {
		return nil, fmt.Errorf("funcurl: bad rawPath/rawQueryString %q: %w", uri, err)
	}

	body := []byte(ev.Body)
	if ev.IsBase64Encoded && ev.Body != "" {
		if body, err = base64.StdEncoding.DecodeString(ev.Body); err != nil {
			return nil, fmt.Errorf("funcurl: body is not valid base64: %w", err)
		}
	}

	ctx = context.WithValue(ctx, requestKey{}, ev)
	r, err := http.NewRequestWithContext(ctx, method, "/", bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("funcurl: bad method %q: %w", method, err)
	}
	r.URL = u
	r.RequestURI = uri
	if proto := ev.RequestContext.HTTP.Protocol; proto != "" {
		if major, minor, ok := http.ParseHTTPVersion(proto); ok {
			r.Proto, r.ProtoMajor, r.ProtoMinor = proto, major, minor
		}
	}
	for k, v := range ev.Headers {
		r.Header.Add(k, v)
	}
	if len(ev.Cookies) > 0 {
		r.Header.Set("Cookie", strings.Join(ev.Cookies, "; "))
	}
	r.Host = r.Header.Get("Host")
	if r.Host == "" {
		r.Host = ev.RequestContext.DomainName
	}
	r.Header.Del("Host") // as net/http's server does: the host lives in r.Host
	r.RemoteAddr = ev.RequestContext.HTTP.SourceIP
	if strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https") {
		r.TLS = &tls.ConnectionState{HandshakeComplete: true, ServerName: r.Host}
	}
	return r, nil
}

// ResponseWriter records a handler's answer in memory.
type ResponseWriter struct {
	header      http.Header
	status      int
	wroteHeader bool
	body        bytes.Buffer
}

var _ http.Flusher = (*ResponseWriter)(nil)

// NewResponseWriter returns an empty recorder.
func NewResponseWriter() *ResponseWriter {
	return &ResponseWriter{header: http.Header{}}
}

// Header implements http.ResponseWriter.
func (w *ResponseWriter) Header() http.Header { return w.header }

// WriteHeader implements http.ResponseWriter. Informational (1xx) codes and
// calls after the first are ignored.
func (w *ResponseWriter) WriteHeader(code int) {
	if w.wroteHeader || code < 200 {
		return
	}
	w.status, w.wroteHeader = code, true
}

// Write implements http.ResponseWriter.
func (w *ResponseWriter) Write(p []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	if !bodyAllowed(w.status) {
		return 0, http.ErrBodyNotAllowed
	}
	return w.body.Write(p)
}

// Flush implements http.Flusher; the response is sent when the handler
// returns, so it does nothing.
func (w *ResponseWriter) Flush() {}

func bodyAllowed(status int) bool {
	return status != http.StatusNoContent && status != http.StatusNotModified
}

// Response converts what was written into the Function URL response to a
// request made with method.
func (w *ResponseWriter) Response(method string) events.LambdaFunctionURLResponse {
	status := w.status
	if !w.wroteHeader {
		status = http.StatusOK
	}
	body := w.body.Bytes()
	if method == http.MethodHead || !bodyAllowed(status) {
		body = nil
	}
	if len(body) > 0 && w.header.Get("Content-Type") == "" {
		if _, set := w.header["Content-Type"]; !set { // an explicit nil turns sniffing off, as in net/http
			w.header.Set("Content-Type", http.DetectContentType(body))
		}
	}

	resp := events.LambdaFunctionURLResponse{StatusCode: status, Headers: map[string]string{}}
	for k, vs := range w.header {
		if len(vs) == 0 {
			continue
		}
		if http.CanonicalHeaderKey(k) == "Set-Cookie" {
			resp.Cookies = append(resp.Cookies, vs...)
			continue
		}
		resp.Headers[k] = strings.Join(vs, ", ")
	}
	if len(body) > 0 {
		if isText(w.header.Get("Content-Type")) && utf8.Valid(body) {
			resp.Body = string(body)
		} else {
			resp.Body = base64.StdEncoding.EncodeToString(body)
			resp.IsBase64Encoded = true
		}
	}
	return resp
}

// IsText reports whether a Content-Type names a textual payload that can
// travel as a JSON string (the local Function URL encodes request bodies by
// the same rule).
func IsText(contentType string) bool { return isText(contentType) }

func isText(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return false
	}
	if strings.HasPrefix(mt, "text/") || strings.HasSuffix(mt, "+json") || strings.HasSuffix(mt, "+xml") {
		return true
	}
	switch mt {
	case "application/json", "application/xml", "application/javascript", "application/ecmascript",
		"application/x-www-form-urlencoded", "application/yaml", "application/x-ndjson":
		return true
	}
	return false
}
