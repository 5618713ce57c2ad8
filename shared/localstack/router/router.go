// Package router is the local stack's one endpoint: a single HTTP port that
// sends each request to the local server of the AWS service it is for, so
// that every AWS client (our CLI, the Go SDK, the AWS CLI) works with only
// AWS_ENDPOINT_URL set and any credentials.
//
// The service is read, in order, from the SigV4 credential scope (the
// Authorization header or a presigned query), the X-Amz-Target header
// (DynamoDB and DynamoDB Streams), and the path (/2015-03-31/functions/ is
// Lambda); an unsigned request with none of these is S3's. DynamoDB and
// DynamoDB Streams requests go to DynamoDB Local unchanged (it checks no
// signature). S3 requests go to the S3 server re-signed with its root keys,
// whatever the caller signed with: a body sent with signed aws-chunked
// encoding is decoded first (its chunk signatures chain from the caller's
// signature), and a presigned request is checked for expiry, then re-signed
// in the header. Lambda requests go to an in-process handler. Paths under
// /_zael/ are the stack's own control API.
//
// Local-only tooling: no Lambda imports it.
package router

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/zeroae/zae-limiter-go/shared/localstack/sigv4"
)

// Services the router knows.
const (
	DynamoDB = "dynamodb"
	S3       = "s3"
	Lambda   = "lambda"
	Control  = "control"
)

// ControlPrefix is the path prefix of the stack's own API.
const ControlPrefix = "/_zael/"

// Options configure the router. A nil backend answers 503 naming it.
type Options struct {
	// DynamoDB returns DynamoDB Local's current endpoint ("" when down).
	DynamoDB func() string
	// S3 returns the S3 server's current endpoint ("" when down).
	S3 func() string
	// S3Credentials are the S3 server's root keys, used to re-sign.
	S3Credentials aws.Credentials
	// Region the S3 server checks signatures for (default us-east-1).
	S3Region string
	// Lambda serves the Lambda API (Invoke).
	Lambda http.Handler
	// Control serves ControlPrefix.
	Control http.Handler
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Log receives one line per failed proxy attempt (default: discard).
	Log *slog.Logger
}

// Router is the one endpoint's handler.
type Router struct {
	o      Options
	ddb    *httputil.ReverseProxy
	s3     *httputil.ReverseProxy
	signer *v4.Signer
}

// New returns the router.
func New(o Options) *Router {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.S3Region == "" {
		o.S3Region = "us-east-1"
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	transport := &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 2 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        256,
		MaxIdleConnsPerHost: 128,
		IdleConnTimeout:     90 * time.Second,
	}
	rt := &Router{o: o, signer: v4.NewSigner(func(so *v4.SignerOptions) { so.DisableURIPathEscaping = true })}
	rt.ddb = &httputil.ReverseProxy{
		Transport: transport,
		Rewrite: func(pr *httputil.ProxyRequest) {
			target, _ := pr.In.Context().Value(targetKey{}).(*url.URL)
			pr.SetURL(target)
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			o.Log.Warn("router: DynamoDB Local did not answer", "error", err.Error())
			jsonError(w, http.StatusServiceUnavailable, "ServiceUnavailableException",
				"DynamoDB Local did not answer (is it restarting?): "+err.Error())
		},
	}
	rt.s3 = &httputil.ReverseProxy{
		Transport: transport,
		Rewrite:   rt.rewriteS3,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			o.Log.Warn("router: S3 server did not answer", "error", err.Error())
			s3Error(w, http.StatusServiceUnavailable, "ServiceUnavailable", "the local S3 server did not answer: "+err.Error())
		},
	}
	return rt
}

type targetKey struct{}

// Service names the service a request is for: DynamoDB, S3, Lambda,
// Control, or the SigV4 service name of one the router does not serve.
func Service(r *http.Request) string {
	if strings.HasPrefix(r.URL.Path, ControlPrefix) {
		return Control
	}
	if a, ok := sigv4.Parse(r); ok {
		switch a.Service {
		case "dynamodb", "streams.dynamodb":
			return DynamoDB
		default:
			return a.Service
		}
	}
	if t := r.Header.Get("X-Amz-Target"); strings.HasPrefix(t, "DynamoDB_") || strings.HasPrefix(t, "DynamoDBStreams_") {
		return DynamoDB
	}
	if strings.HasPrefix(r.URL.Path, "/2015-03-31/functions") {
		return Lambda
	}
	return S3
}

func (rt *Router) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch svc := Service(r); svc {
	case Control:
		rt.serve(w, r, rt.o.Control, "the stack's control API")
	case Lambda:
		rt.serve(w, r, rt.o.Lambda, "Lambda")
	case DynamoDB:
		ep := ""
		if rt.o.DynamoDB != nil {
			ep = rt.o.DynamoDB()
		}
		u, err := url.Parse(ep)
		if ep == "" || err != nil {
			jsonError(w, http.StatusServiceUnavailable, "ServiceUnavailableException", "DynamoDB Local is not running")
			return
		}
		rt.ddb.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), targetKey{}, u)))
	case S3:
		rt.serveS3(w, r)
	default:
		jsonError(w, http.StatusBadRequest, "UnknownServiceException", fmt.Sprintf(
			"the local stack serves dynamodb (and its streams), s3 and lambda; there is no local server for %q", svc))
	}
}

func (rt *Router) serve(w http.ResponseWriter, r *http.Request, h http.Handler, what string) {
	if h == nil {
		jsonError(w, http.StatusServiceUnavailable, "ServiceUnavailableException", what+" is not served by this stack")
		return
	}
	h.ServeHTTP(w, r)
}

// jsonError answers in the AWS JSON protocols' error shape.
func jsonError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.0")
	w.Header().Set("X-Amzn-ErrorType", code)
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"__type": code, "message": msg})
}

// s3Error answers in S3's XML error shape.
func s3Error(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	fmt.Fprintf(w, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>%s</Code><Message>%s</Message></Error>", code, xmlEscape(msg))
}

func xmlEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

var errNoS3 = errors.New("the local S3 server is not running")
