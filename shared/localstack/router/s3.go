package router

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"

	"github.com/zeroae/zae-limiter-go/shared/localstack/sigv4"
)

// maxDecodedBody bounds a signed aws-chunked body the router decodes in
// memory.
const maxDecodedBody = 256 << 20

// Payload hash values that mean an aws-chunked body with chunk signatures.
const (
	streamingSigned        = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
	streamingSignedTrailer = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
)

// Query parameters of a presigned request.
var presignParams = []string{"X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires",
	"X-Amz-SignedHeaders", "X-Amz-Signature", "X-Amz-Security-Token"}

type s3Prep struct {
	target  *url.URL
	payload string
}

type s3Key struct{}

func (rt *Router) serveS3(w http.ResponseWriter, r *http.Request) {
	ep := ""
	if rt.o.S3 != nil {
		ep = rt.o.S3()
	}
	target, err := url.Parse(ep)
	if ep == "" || err != nil {
		s3Error(w, http.StatusServiceUnavailable, "ServiceUnavailable", errNoS3.Error())
		return
	}
	a, signed := sigv4.Parse(r)
	if signed && a.Expired(rt.o.Now()) {
		s3Error(w, http.StatusForbidden, "AccessDenied", "Request has expired")
		return
	}
	payload := r.Header.Get("X-Amz-Content-Sha256")
	switch {
	case a.Presigned || payload == "":
		payload = sigv4.UnsignedPayload
	case payload == streamingSigned || payload == streamingSignedTrailer:
		body, err := decodeChunked(r.Body)
		if err != nil {
			s3Error(w, http.StatusBadRequest, "IncompleteBody", "decoding the aws-chunked body: "+err.Error())
			return
		}
		sum := sha256.Sum256(body)
		payload = hex.EncodeToString(sum[:])
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
		r.Header.Set("Content-Length", strconv.Itoa(len(body)))
		r.Header.Del("X-Amz-Decoded-Content-Length")
		r.Header.Del("X-Amz-Trailer")
		if ce := dropAWSChunked(r.Header.Get("Content-Encoding")); ce == "" {
			r.Header.Del("Content-Encoding")
		} else {
			r.Header.Set("Content-Encoding", ce)
		}
	}
	if isCreateBucket(r) {
		// The local stack has one region: a CreateBucket that names the
		// caller's (LocationConstraint) would be refused by the server.
		r.Body = io.NopCloser(bytes.NewReader(nil))
		r.ContentLength = 0
		r.Header.Del("Content-Length")
		r.Header.Del("Content-MD5")
		payload = emptySHA256
	}
	ctx := context.WithValue(r.Context(), s3Key{}, s3Prep{target: target, payload: payload})
	rt.s3.ServeHTTP(w, r.WithContext(ctx))
}

// emptySHA256 is the SHA-256 of an empty body.
const emptySHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

// isCreateBucket reports whether r is a CreateBucket (PUT /bucket, no key,
// no subresource).
func isCreateBucket(r *http.Request) bool {
	p := strings.Trim(r.URL.Path, "/")
	return r.Method == http.MethodPut && p != "" && !strings.Contains(p, "/") && r.URL.RawQuery == ""
}

// rewriteS3 points the request at the S3 server and signs it with its
// root keys.
func (rt *Router) rewriteS3(pr *httputil.ProxyRequest) {
	prep, _ := pr.In.Context().Value(s3Key{}).(s3Prep)
	out := pr.Out
	q := out.URL.Query()
	presigned := q.Get("X-Amz-Algorithm") != ""
	pr.SetURL(prep.target)
	out.Host = prep.target.Host
	if presigned {
		for _, p := range presignParams {
			q.Del(p)
		}
		out.URL.RawQuery = strings.ReplaceAll(q.Encode(), "+", "%20")
	}
	for _, h := range []string{"Authorization", "X-Amz-Date", "X-Amz-Security-Token", "X-Amz-Content-Sha256"} {
		out.Header.Del(h)
	}
	out.Header.Set("X-Amz-Content-Sha256", prep.payload)
	if err := rt.signer.SignHTTP(out.Context(), rt.o.S3Credentials, out, prep.payload, "s3", rt.o.S3Region, rt.o.Now()); err != nil {
		rt.o.Log.Warn("router: re-signing an S3 request failed", "error", err.Error())
	}
}

// decodeChunked reads an aws-chunked body ("size;chunk-signature=...\r\n
// data\r\n" ... "0;...\r\n" then optional trailers) and returns the data.
func decodeChunked(body io.Reader) ([]byte, error) {
	br := bufio.NewReader(io.LimitReader(body, maxDecodedBody+1<<20))
	var out bytes.Buffer
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return nil, fmt.Errorf("chunk header: %w", err)
		}
		sizeHex, _, _ := strings.Cut(strings.TrimRight(line, "\r\n"), ";")
		size, err := strconv.ParseInt(strings.TrimSpace(sizeHex), 16, 64)
		if err != nil || size < 0 {
			return nil, fmt.Errorf("chunk size %q", sizeHex)
		}
		if size == 0 {
			return out.Bytes(), nil // trailers (checksums) follow; the server recomputes them
		}
		if int64(out.Len())+size > maxDecodedBody {
			return nil, fmt.Errorf("body over %d bytes", maxDecodedBody)
		}
		if _, err := io.CopyN(&out, br, size); err != nil {
			return nil, fmt.Errorf("chunk data: %w", err)
		}
		if _, err := br.ReadString('\n'); err != nil {
			return nil, fmt.Errorf("chunk end: %w", err)
		}
	}
}

func dropAWSChunked(ce string) string {
	var keep []string
	for _, p := range strings.Split(ce, ",") {
		if p = strings.TrimSpace(p); p != "" && !strings.EqualFold(p, "aws-chunked") {
			keep = append(keep, p)
		}
	}
	return strings.Join(keep, ",")
}
