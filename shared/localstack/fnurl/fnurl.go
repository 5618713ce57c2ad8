// Package fnurl serves a local function behind a Lambda Function URL: each
// HTTP request becomes a payload format 2.0 event
// (events.LambdaFunctionURLRequest) and the function's answer
// (events.LambdaFunctionURLResponse, or any JSON, which Lambda sends as a
// 200 application/json body) becomes the HTTP response, as an invoke mode
// BUFFERED Function URL does.
//
// AuthType NONE lets every request through. AWS_IAM checks the request's
// SigV4 signature (service "lambda") against the local credentials and
// answers 403 when it is missing or wrong; the event then carries the IAM
// authorizer context. A function error or timeout is a 502; a body over
// 6 MB a 413.
//
// Local-only tooling: no Lambda imports it.
package fnurl

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"

	"github.com/zeroae/zae-limiter-go/shared/funcurl"
	"github.com/zeroae/zae-limiter-go/shared/lambdarun"
	"github.com/zeroae/zae-limiter-go/shared/localstack/sigv4"
)

// Auth types.
const (
	AuthNone = "NONE"
	AuthIAM  = "AWS_IAM"
)

// Invoker runs the function.
type Invoker interface {
	Invoke(ctx context.Context, payload []byte) (lambdarun.Result, error)
}

// Options configure a Function URL.
type Options struct {
	Function Invoker
	// AuthType is NONE (default) or AWS_IAM.
	AuthType string
	// Secret returns the secret key of a local access key (AWS_IAM).
	Secret func(accessKey string) (string, bool)
	// AccountID is the caller's account in the IAM authorizer context.
	AccountID string
	// URLID is the URL's id (the first label of an AWS Function URL host).
	URLID string
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Handler is a local Function URL.
type Handler struct{ o Options }

// New returns the Function URL handler.
func New(o Options) *Handler {
	if o.AuthType == "" {
		o.AuthType = AuthNone
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.URLID == "" {
		o.URLID = "local"
	}
	return &Handler{o: o}
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, lambdarun.MaxPayload+1))
	if err != nil {
		message(w, http.StatusBadRequest, "Bad Request")
		return
	}
	if len(body) > lambdarun.MaxPayload {
		message(w, http.StatusRequestEntityTooLarge, "Request Entity Too Large")
		return
	}
	var auth *sigv4.Auth
	if h.o.AuthType == AuthIAM {
		if err := sigv4.Verify(r, body, "lambda", h.o.Secret, h.o.Now()); err != nil {
			message(w, http.StatusForbidden, "Forbidden: "+err.Error())
			return
		}
		a, _ := sigv4.Parse(r)
		auth = &a
	}
	payload, err := json.Marshal(h.event(r, body, auth))
	if err != nil {
		message(w, http.StatusInternalServerError, "Internal Server Error")
		return
	}
	res, err := h.o.Function.Invoke(r.Context(), payload)
	if err != nil || res.Err != nil {
		message(w, http.StatusBadGateway, "Internal Server Error")
		return
	}
	writeResponse(w, res.Payload)
}

func message(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Amzn-ErrorType", http.StatusText(status))
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"Message": msg})
}

// event builds the payload format 2.0 request.
func (h *Handler) event(r *http.Request, body []byte, auth *sigv4.Auth) events.LambdaFunctionURLRequest {
	now := h.o.Now().UTC()
	ev := events.LambdaFunctionURLRequest{
		Version:        "2.0",
		RawPath:        r.URL.EscapedPath(),
		RawQueryString: r.URL.RawQuery,
		Headers:        map[string]string{},
		RequestContext: events.LambdaFunctionURLRequestContext{
			AccountID:    "anonymous",
			RequestID:    newID(),
			APIID:        h.o.URLID,
			DomainName:   r.Host,
			DomainPrefix: h.o.URLID,
			Time:         now.Format("02/Jan/2006:15:04:05 -0700"),
			TimeEpoch:    now.UnixMilli(),
			HTTP: events.LambdaFunctionURLRequestContextHTTPDescription{
				Method:    r.Method,
				Path:      r.URL.Path,
				Protocol:  r.Proto,
				SourceIP:  sourceIP(r.RemoteAddr),
				UserAgent: r.UserAgent(),
			},
		},
	}
	for k, vs := range r.Header {
		k = strings.ToLower(k)
		if k == "cookie" {
			for _, v := range vs {
				for _, c := range strings.Split(v, ";") {
					if c = strings.TrimSpace(c); c != "" {
						ev.Cookies = append(ev.Cookies, c)
					}
				}
			}
			continue
		}
		ev.Headers[k] = strings.Join(vs, ",")
	}
	ev.Headers["host"] = r.Host
	if _, ok := ev.Headers["x-forwarded-proto"]; !ok {
		ev.Headers["x-forwarded-proto"] = "http"
	}
	if q := r.URL.Query(); len(q) > 0 {
		ev.QueryStringParameters = map[string]string{}
		for k, vs := range q {
			ev.QueryStringParameters[k] = strings.Join(vs, ",")
		}
	}
	if len(body) > 0 {
		if funcurl.IsText(r.Header.Get("Content-Type")) && utf8.Valid(body) {
			ev.Body = string(body)
		} else {
			ev.Body = base64.StdEncoding.EncodeToString(body)
			ev.IsBase64Encoded = true
		}
	}
	if auth != nil {
		ev.RequestContext.AccountID = h.o.AccountID
		ev.RequestContext.Authorizer = &events.LambdaFunctionURLRequestContextAuthorizerDescription{
			IAM: &events.LambdaFunctionURLRequestContextAuthorizerIAMDescription{
				AccessKey: auth.AccessKey,
				AccountID: h.o.AccountID,
				CallerID:  auth.AccessKey,
				UserARN:   "arn:aws:iam::" + h.o.AccountID + ":user/local",
				UserID:    auth.AccessKey,
			},
		}
	}
	return ev
}

// writeResponse turns the function's answer into the HTTP response.
func writeResponse(w http.ResponseWriter, payload []byte) {
	var probe map[string]json.RawMessage
	if json.Unmarshal(payload, &probe) == nil {
		if _, ok := probe["statusCode"]; ok {
			var resp events.LambdaFunctionURLResponse
			if err := json.Unmarshal(payload, &resp); err == nil {
				for k, v := range resp.Headers {
					w.Header().Set(k, v)
				}
				for _, c := range resp.Cookies {
					w.Header().Add("Set-Cookie", c)
				}
				body := []byte(resp.Body)
				if resp.IsBase64Encoded {
					if b, err := base64.StdEncoding.DecodeString(resp.Body); err == nil {
						body = b
					}
				}
				if resp.StatusCode == 0 {
					resp.StatusCode = http.StatusOK
				}
				w.WriteHeader(resp.StatusCode)
				_, _ = w.Write(body)
				return
			}
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(payload)
}

func sourceIP(remote string) string {
	if host, _, err := net.SplitHostPort(remote); err == nil {
		return host
	}
	return remote
}

func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	h := hex.EncodeToString(b[:])
	return fmt.Sprintf("%s-%s-%s-%s-%s", h[0:8], h[8:12], h[12:16], h[16:20], h[20:])
}
