// Package sigv4 reads and checks AWS Signature Version 4 on incoming
// requests: the credential scope (which service a request is for, used by
// the local stack's one endpoint to route it) and the signature itself
// (used by the local Function URL with AuthType AWS_IAM). Both the
// Authorization header and presigned query parameters are understood.
//
// Local-only tooling: no Lambda imports it.
package sigv4

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Algorithm is the only signing algorithm understood.
const Algorithm = "AWS4-HMAC-SHA256"

// UnsignedPayload is the payload hash of requests that do not sign their body.
const UnsignedPayload = "UNSIGNED-PAYLOAD"

const amzDateFormat = "20060102T150405Z"

// MaxSkew is how far a header-signed request's X-Amz-Date may be from now.
const MaxSkew = 15 * time.Minute

// Auth is a request's SigV4 authorization.
type Auth struct {
	AccessKey     string
	Date          string // YYYYMMDD of the scope
	Region        string
	Service       string
	SignedHeaders []string
	Signature     string
	AmzDate       string // X-Amz-Date
	// Presigned is set for query authentication; Expires is then
	// X-Amz-Expires.
	Presigned bool
	Expires   time.Duration
}

// Scope is the credential scope: date/region/service/aws4_request.
func (a Auth) Scope() string {
	return a.Date + "/" + a.Region + "/" + a.Service + "/aws4_request"
}

// Parse reads a request's SigV4 authorization from its Authorization
// header or its presigned query; ok is false when it has neither.
func Parse(r *http.Request) (a Auth, ok bool) {
	if h := r.Header.Get("Authorization"); strings.HasPrefix(h, Algorithm+" ") {
		for _, part := range strings.Split(strings.TrimPrefix(h, Algorithm+" "), ",") {
			k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
			switch k {
			case "Credential":
				ok = a.setCredential(v)
			case "SignedHeaders":
				a.SignedHeaders = strings.Split(v, ";")
			case "Signature":
				a.Signature = v
			}
		}
		a.AmzDate = r.Header.Get("X-Amz-Date")
		return a, ok
	}
	q := r.URL.Query()
	if q.Get("X-Amz-Algorithm") != Algorithm {
		return Auth{}, false
	}
	a.Presigned = true
	ok = a.setCredential(q.Get("X-Amz-Credential"))
	a.SignedHeaders = strings.Split(q.Get("X-Amz-SignedHeaders"), ";")
	a.Signature = q.Get("X-Amz-Signature")
	a.AmzDate = q.Get("X-Amz-Date")
	if secs, err := strconv.Atoi(q.Get("X-Amz-Expires")); err == nil {
		a.Expires = time.Duration(secs) * time.Second
	}
	return a, ok
}

func (a *Auth) setCredential(v string) bool {
	parts := strings.Split(v, "/")
	if len(parts) != 5 || parts[4] != "aws4_request" {
		return false
	}
	a.AccessKey, a.Date, a.Region, a.Service = parts[0], parts[1], parts[2], parts[3]
	return true
}

// Expired reports whether a presigned request is past its expiry at now.
func (a Auth) Expired(now time.Time) bool {
	if !a.Presigned {
		return false
	}
	t, err := time.Parse(amzDateFormat, a.AmzDate)
	return err != nil || now.After(t.Add(a.Expires))
}

// Error is a failed verification; Code is the AWS error code to answer with.
type Error struct {
	Code    string
	Message string
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

func denied(code, format string, args ...any) error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Verify checks r's signature for service, with the secret key that
// secret returns for its access key, at now. body is the request body
// (already read). It checks the algorithm, the scope's service, the date
// (within MaxSkew, or the presigned expiry), the payload hash and the
// signature.
func Verify(r *http.Request, body []byte, service string, secret func(accessKey string) (string, bool), now time.Time) error {
	a, ok := Parse(r)
	if !ok {
		return denied("MissingAuthenticationToken", "the request is not signed with %s", Algorithm)
	}
	if a.Service != service {
		return denied("InvalidSignatureException", "credential scope is for service %q, not %q", a.Service, service)
	}
	key, ok := secret(a.AccessKey)
	if !ok {
		return denied("UnrecognizedClientException", "the security token included in the request is invalid (unknown access key %q)", a.AccessKey)
	}
	t, err := time.Parse(amzDateFormat, a.AmzDate)
	if err != nil {
		return denied("IncompleteSignatureException", "X-Amz-Date %q is not %s", a.AmzDate, amzDateFormat)
	}
	if a.Presigned {
		if a.Expired(now) {
			return denied("AccessDeniedException", "the presigned request expired at %s", t.Add(a.Expires).Format(time.RFC3339))
		}
	} else if d := now.Sub(t); d > MaxSkew || d < -MaxSkew {
		return denied("InvalidSignatureException", "signature expired: X-Amz-Date %s is more than %v from the server time %s",
			a.AmzDate, MaxSkew, now.UTC().Format(amzDateFormat))
	}
	if !strings.HasPrefix(a.AmzDate, a.Date) {
		return denied("InvalidSignatureException", "the credential scope date %s does not match X-Amz-Date %s", a.Date, a.AmzDate)
	}
	payload := UnsignedPayload
	if !a.Presigned {
		sum := sha256.Sum256(body)
		payload = hex.EncodeToString(sum[:])
		if h := r.Header.Get("X-Amz-Content-Sha256"); h != "" && h != UnsignedPayload && h != payload {
			return denied("InvalidSignatureException", "X-Amz-Content-Sha256 does not match the body")
		}
	}
	want := Signature(key, a, StringToSign(a, CanonicalRequest(r, a.SignedHeaders, payload)))
	if !hmac.Equal([]byte(want), []byte(a.Signature)) {
		return denied("InvalidSignatureException", "the request signature we calculated does not match the signature you provided")
	}
	return nil
}

// CanonicalRequest builds the SigV4 canonical request of r over the signed
// headers, for a service that escapes the path (every service but S3).
func CanonicalRequest(r *http.Request, signed []string, payloadHash string) string {
	var b strings.Builder
	b.WriteString(r.Method + "\n")
	uri := r.URL.EscapedPath()
	if uri == "" {
		uri = "/"
	}
	b.WriteString(escape(uri, false) + "\n")
	b.WriteString(canonicalQuery(r.URL.Query()) + "\n")
	for _, h := range signed {
		b.WriteString(h + ":" + headerValue(r, h) + "\n")
	}
	b.WriteString("\n" + strings.Join(signed, ";") + "\n" + payloadHash)
	return b.String()
}

func headerValue(r *http.Request, name string) string {
	switch name {
	case "host":
		return r.Host
	case "content-length":
		if v := r.Header.Get("Content-Length"); v != "" {
			return v
		}
		return strconv.FormatInt(r.ContentLength, 10)
	}
	vals := r.Header.Values(name)
	out := make([]string, len(vals))
	for i, v := range vals {
		out[i] = strings.Join(strings.Fields(v), " ")
	}
	return strings.Join(out, ",")
}

func canonicalQuery(q url.Values) string {
	q.Del("X-Amz-Signature")
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		vals := append([]string(nil), q[k]...)
		sort.Strings(vals)
		for _, v := range vals {
			parts = append(parts, escape(k, true)+"="+escape(v, true))
		}
	}
	return strings.Join(parts, "&")
}

// escape percent-encodes every byte but the unreserved ones (and '/' unless
// encodeSep), as SigV4 wants.
func escape(s string, encodeSep bool) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~' || (c == '/' && !encodeSep) {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "%%%02X", c)
	}
	return b.String()
}

// StringToSign is the SigV4 string to sign for a canonical request.
func StringToSign(a Auth, canonical string) string {
	sum := sha256.Sum256([]byte(canonical))
	return Algorithm + "\n" + a.AmzDate + "\n" + a.Scope() + "\n" + hex.EncodeToString(sum[:])
}

// Signature signs stringToSign with the key derived from secret and a's scope.
func Signature(secret string, a Auth, stringToSign string) string {
	k := hmacSHA256([]byte("AWS4"+secret), a.Date)
	k = hmacSHA256(k, a.Region)
	k = hmacSHA256(k, a.Service)
	k = hmacSHA256(k, "aws4_request")
	return hex.EncodeToString(hmacSHA256(k, stringToSign))
}

func hmacSHA256(key []byte, data string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	return m.Sum(nil)
}

// IsError reports whether err is a verification failure (an *Error).
func IsError(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}
