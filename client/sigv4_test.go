package client

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zeroae/zae-limiter-go/shared/wire"
)

func staticCreds() aws.Config {
	return aws.Config{
		Region: "us-east-1",
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: "AKIDEXAMPLE", SecretAccessKey: "secret", SessionToken: "session"}, nil
		}),
	}
}

func failingCreds() aws.Config {
	return aws.Config{
		Region: "us-east-1",
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{}, errors.New("no credentials here")
		}),
	}
}

// capture records requests and answers 200 with body.
func capture(body string, into *[]*http.Request, bodies *[]string) doer {
	return doerFunc(func(r *http.Request) (*http.Response, error) {
		b := []byte{}
		if r.Body != nil {
			b, _ = io.ReadAll(r.Body)
		}
		*into = append(*into, r)
		*bodies = append(*bodies, string(b))
		return &http.Response{StatusCode: 200, Header: http.Header{}, Body: io.NopCloser(strings.NewReader(body))}, nil
	})
}

func sha(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func TestSigV4(t *testing.T) {
	var reqs []*http.Request
	var bodies []string
	c, err := newClient("https://abc123.lambda-url.eu-west-1.on.aws/", capture(acquireOK, &reqs, &bodies), WithSigV4(staticCreds()))
	require.NoError(t, err)
	c.signer.now = func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) }

	_, err = c.Acquire(context.Background(), testRequest)
	require.NoError(t, err)
	_, err = c.Available(context.Background(), "e", "r")
	require.NoError(t, err)
	require.Len(t, reqs, 2)

	post := reqs[0]
	assert.Equal(t, sha(bodies[0]), post.Header.Get("X-Amz-Content-Sha256"))
	assert.Equal(t, "20260102T030405Z", post.Header.Get("X-Amz-Date"))
	assert.Equal(t, "session", post.Header.Get("X-Amz-Security-Token"))
	auth := post.Header.Get("Authorization")
	// The region comes from the Function URL host, not the config.
	assert.True(t, strings.HasPrefix(auth, "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260102/eu-west-1/lambda/aws4_request, SignedHeaders="), auth)
	assert.Contains(t, signedHeaders(auth), "x-amz-content-sha256")
	assert.Contains(t, signedHeaders(auth), "host")
	assert.Contains(t, signedHeaders(auth), "x-amz-date")
	assert.Contains(t, auth, "Signature=")

	get := reqs[1]
	assert.Equal(t, sha(""), get.Header.Get("X-Amz-Content-Sha256"), "an empty body is hashed too")
	assert.Contains(t, signedHeaders(get.Header.Get("Authorization")), "x-amz-content-sha256")
}

func TestSigV4_signatureVerifies(t *testing.T) {
	// Re-sign the captured request independently with the same inputs: the
	// signature must match (it covers the body hash and the path).
	var reqs []*http.Request
	var bodies []string
	c, err := newClient("https://abc123.lambda-url.eu-west-1.on.aws", capture(`{}`, &reqs, &bodies), WithSigV4(staticCreds()))
	require.NoError(t, err)
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	c.signer.now = func() time.Time { return now }
	require.NoError(t, c.Lease("tok").Commit(context.Background()))

	got := reqs[0]
	assert.Equal(t, wire.PathRelease, got.URL.Path)
	again, err := http.NewRequest(got.Method, got.URL.String(), bytes.NewReader([]byte(bodies[0])))
	require.NoError(t, err)
	for k, v := range got.Header {
		if k != "Authorization" && k != "X-Amz-Date" && k != "X-Amz-Security-Token" {
			again.Header[k] = v
		}
	}
	s2, err := newSigV4(staticCreds(), "abc123.lambda-url.eu-west-1.on.aws")
	require.NoError(t, err)
	s2.now = func() time.Time { return now }
	require.NoError(t, s2.sign(context.Background(), again, []byte(bodies[0])))
	assert.Equal(t, again.Header.Get("Authorization"), got.Header.Get("Authorization"))

	// A different body gives a different signature.
	other, err := http.NewRequest(got.Method, got.URL.String(), nil)
	require.NoError(t, err)
	require.NoError(t, s2.sign(context.Background(), other, []byte(`{"lease":"tok","rollback":true}`)))
	assert.NotEqual(t, other.Header.Get("Authorization"), got.Header.Get("Authorization"))
}

func TestSigV4_regionFromConfig(t *testing.T) {
	var reqs []*http.Request
	var bodies []string
	cfg := staticCreds()
	cfg.Region = "ap-south-1"
	c, err := newClient("https://limiter.example.com", capture(`{}`, &reqs, &bodies), WithSigV4(cfg))
	require.NoError(t, err)
	require.NoError(t, c.Health(context.Background()))
	assert.Contains(t, reqs[0].Header.Get("Authorization"), "/ap-south-1/lambda/aws4_request")
}

func TestSigV4_againstServer(t *testing.T) {
	// Over a real connection the headers arrive as signed.
	s := newServer(t, answer(200, acquireOK))
	c := newTestClient(t, s, WithSigV4(staticCreds()))
	_, err := c.Acquire(context.Background(), testRequest)
	require.NoError(t, err)
	r := s.requests()[0]
	assert.Equal(t, sha(r.Body), r.Header.Get("X-Amz-Content-Sha256"))
	assert.Contains(t, r.Header.Get("Authorization"), "/us-east-1/lambda/aws4_request")
}

func TestSigV4_eachAttemptSignedAfresh(t *testing.T) {
	s := newServer(t, answer(503, unavailable), answer(200, `{"limits":[]}`))
	c := newTestClient(t, s, WithSigV4(staticCreds()))
	times := []time.Time{time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 1, 1, 0, 0, 7, 0, time.UTC)}
	c.signer.now = func() time.Time { t := times[0]; times = times[1:]; return t }

	_, err := c.Available(context.Background(), "e", "r")
	require.NoError(t, err)
	reqs := s.requests()
	require.Len(t, reqs, 2)
	assert.Equal(t, "20260101T000000Z", reqs[0].Header.Get("X-Amz-Date"))
	assert.Equal(t, "20260101T000007Z", reqs[1].Header.Get("X-Amz-Date"))
}

// awsEnv sets the SDK's environment to exactly the given credentials and
// region (empty: none), with no config files or profile.
func awsEnv(t *testing.T, keyID, secret, region string) {
	t.Setenv("AWS_ACCESS_KEY_ID", keyID)
	t.Setenv("AWS_SECRET_ACCESS_KEY", secret)
	t.Setenv("AWS_SESSION_TOKEN", "")
	t.Setenv("AWS_REGION", region)
	t.Setenv("AWS_DEFAULT_REGION", "")
	t.Setenv("AWS_CONFIG_FILE", "/nonexistent")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
	t.Setenv("AWS_PROFILE", "")
}

func TestDefaultCredentials(t *testing.T) {
	awsEnv(t, "AKIDENV", "secret", "us-west-2")
	var reqs []*http.Request
	var bodies []string
	c, err := newClient("https://limiter.example.com", capture(`{}`, &reqs, &bodies), WithDefaultCredentials())
	require.NoError(t, err)
	require.NoError(t, c.Health(context.Background()))
	assert.Contains(t, reqs[0].Header.Get("Authorization"), "Credential=AKIDENV/")
	assert.Contains(t, reqs[0].Header.Get("Authorization"), "/us-west-2/lambda/aws4_request")
}

func TestRegionFromHost(t *testing.T) {
	tests := map[string]string{
		"abc.lambda-url.us-east-1.on.aws": "us-east-1",
		"ABC.LAMBDA-URL.EU-WEST-1.ON.AWS": "eu-west-1",
		"abc.lambda-url..on.aws":          "",
		"example.com":                     "",
		"127.0.0.1":                       "",
		"a.b.lambda-url.us-east-1.on.aws": "",
	}
	for host, want := range tests {
		assert.Equal(t, want, regionFromHost(host), host)
	}
}

// signedHeaders extracts the SignedHeaders list of a SigV4 Authorization.
func signedHeaders(auth string) []string {
	_, rest, ok := strings.Cut(auth, "SignedHeaders=")
	if !ok {
		return nil
	}
	list, _, _ := strings.Cut(rest, ",")
	return strings.Split(list, ";")
}

// A local serve (http://) needs no signature: WithDefaultCredentials sends
// it unsigned, with no region or credentials anywhere, and so New succeeds
// where it used to refuse a host that names no region.
func TestDefaultCredentials_plainHTTPIsUnsigned(t *testing.T) {
	awsEnv(t, "", "", "")
	var reqs []*http.Request
	var bodies []string
	c, err := newClient("http://127.0.0.1:8080", capture(`{}`, &reqs, &bodies), WithDefaultCredentials())
	require.NoError(t, err)
	require.NoError(t, c.Health(context.Background()))
	require.Len(t, reqs, 1)
	assert.Empty(t, reqs[0].Header.Get("Authorization"))
	assert.Empty(t, reqs[0].Header.Get(headerContentSHA256))

	// Over https the same environment has no region to sign for: a clear
	// error at New, not a nil client.
	_, err = New("https://limiter.example.com", WithDefaultCredentials())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "no region")

	// A bearer token (serve --token) goes with it over http.
	reqs = nil
	c, err = newClient("http://127.0.0.1:8080", capture(`{}`, &reqs, &bodies), WithDefaultCredentials(), WithBearerToken("s3cret"))
	require.NoError(t, err)
	require.NoError(t, c.Health(context.Background()))
	assert.Equal(t, "Bearer s3cret", reqs[0].Header.Get("Authorization"))
}
