package sigv4

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var now = time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)

func secrets(ak string) (string, bool) {
	if ak == "dummy" {
		return "dummy", true
	}
	return "", false
}

// signed builds a request the way clients do: the SDK's signer over the
// body's hash, then the transport's own headers on top (unsigned).
func signed(t *testing.T, method, target, body, akid, secret string, at time.Time) *http.Request {
	t.Helper()
	r := httptest.NewRequest(method, target, strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	sum := sha256.Sum256([]byte(body))
	hash := hex.EncodeToString(sum[:])
	r.Header.Set("X-Amz-Content-Sha256", hash)
	err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: akid, SecretAccessKey: secret},
		r, hash, "lambda", "us-east-1", at)
	require.NoError(t, err)
	r.Header.Set("User-Agent", "added-after-signing")
	r.Header.Set("Accept-Encoding", "gzip")
	return r
}

func TestVerifyAcceptsTheSDKsSignature(t *testing.T) {
	body := `{"entity_id":"a b","resource":"r"}`
	r := signed(t, http.MethodPost, "http://127.0.0.1:9001/v1/acquire?x=1&a=%20b", body, "dummy", "dummy", now)
	assert.NoError(t, Verify(r, []byte(body), "lambda", secrets, now.Add(time.Minute)))

	a, ok := Parse(r)
	require.True(t, ok)
	assert.Equal(t, "lambda", a.Service)
	assert.Equal(t, "us-east-1", a.Region)
	assert.Equal(t, "dummy", a.AccessKey)
}

func TestVerifyRejects(t *testing.T) {
	body := `{"a":1}`
	code := func(err error) string {
		e, ok := IsError(err)
		require.True(t, ok, "%v", err)
		return e.Code
	}
	// wrong secret
	r := signed(t, http.MethodPost, "http://h/v1/acquire", body, "dummy", "wrong", now)
	assert.Equal(t, "InvalidSignatureException", code(Verify(r, []byte(body), "lambda", secrets, now)))
	// unknown key
	r = signed(t, http.MethodPost, "http://h/v1/acquire", body, "AKIAREAL", "x", now)
	assert.Equal(t, "UnrecognizedClientException", code(Verify(r, []byte(body), "lambda", secrets, now)))
	// tampered body
	r = signed(t, http.MethodPost, "http://h/v1/acquire", body, "dummy", "dummy", now)
	assert.Equal(t, "InvalidSignatureException", code(Verify(r, []byte(`{"a":2}`), "lambda", secrets, now)))
	// too old
	r = signed(t, http.MethodPost, "http://h/v1/acquire", body, "dummy", "dummy", now.Add(-16*time.Minute))
	assert.Equal(t, "InvalidSignatureException", code(Verify(r, []byte(body), "lambda", secrets, now)))
	// not signed
	r = httptest.NewRequest(http.MethodPost, "http://h/v1/acquire", bytes.NewReader([]byte(body)))
	assert.Equal(t, "MissingAuthenticationToken", code(Verify(r, []byte(body), "lambda", secrets, now)))
	// another service's scope
	r = signed(t, http.MethodPost, "http://h/v1/acquire", body, "dummy", "dummy", now)
	assert.Equal(t, "InvalidSignatureException", code(Verify(r, []byte(body), "s3", secrets, now)))
}

func TestVerifyPresigned(t *testing.T) {
	r := httptest.NewRequest(http.MethodGet, "http://h/v1/available?entity_id=e&resource=r", nil)
	uri, _, err := v4.NewSigner().PresignHTTP(context.Background(), aws.Credentials{AccessKeyID: "dummy", SecretAccessKey: "dummy"},
		r, UnsignedPayload, "lambda", "us-east-1", now)
	require.NoError(t, err)
	// PresignHTTP leaves X-Amz-Expires to the caller.
	uri += "&X-Amz-Expires=60"
	p := httptest.NewRequest(http.MethodGet, uri, nil)
	a, ok := Parse(p)
	require.True(t, ok)
	assert.True(t, a.Presigned)
	assert.Equal(t, "lambda", a.Service)
	assert.False(t, a.Expired(now.Add(59*time.Second)))
	assert.True(t, a.Expired(now.Add(61*time.Second)))
}
