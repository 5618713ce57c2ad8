package cli

import (
	"bytes"
	"net"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// An acquire that fails writes nothing: a namespace never registered holds
// no limits, so without -l the acquire fails, saying the namespace is not
// registered (as the HTTP API does), and does not register it (a typo in -N
// leaves no stray namespace). With -l it writes, and registers.
func TestAcquireFailingRegistersNothing(t *testing.T) {
	table, _ := freshTable(t)
	before := itemCount(t, table)
	r := zl(t, table, "acquire", "u1", "gpt-4", "-c", "rpm=1", "-N", "tenant-typo")
	require.Equal(t, exitError, r.code, r.errOut)
	assert.Equal(t, `Error: namespace "tenant-typo" is not registered: register it with 'zae-limiter namespace register tenant-typo' (or pass -l: a write registers it)`+"\n", r.errOut)
	assert.NotContains(t, r.errOut, `Registered namespace "tenant-typo"`,
		"a failing acquire must not register the namespace")
	assert.Equal(t, before, itemCount(t, table), "a failing acquire writes nothing")
	assert.JSONEq(t, `[]`, ok(t, table, "namespace", "list", "-o", "json").out,
		"no namespace was registered")

	r = ok(t, table, "acquire", "u1", "gpt-4", "-c", "rpm=1", "-l", "rpm:5", "-N", "tenant-b")
	assert.Contains(t, r.errOut, `Registered namespace "tenant-b"`)
}

// --on-unavailable allow admits only when DynamoDB cannot be reached. A
// machine without AWS credentials (the SDK's chain ends at an IMDS that
// refuses connections) never talks to DynamoDB at all: a setup error, exit
// 1, not an outage to admit through.
func TestAcquireAllowNoCredentials(t *testing.T) {
	noCredentials(t)

	var out, errw bytes.Buffer
	code := Run([]string{"acquire", "u1", "gpt-4", "-c", "rpm=1", "--on-unavailable", "allow", "-o", "json", "--principal", "p"},
		strings.NewReader(""), &out, &errw)
	assert.Equal(t, exitError, code, "no credentials is not 'DynamoDB unavailable': stdout %s stderr %s", out.String(), errw.String())
	assert.NotContains(t, out.String(), `"degraded"`)
}

// ADR-006: "a command that fails writes nothing". An acquire that brings -l
// but whose -c names a limit none of them has is a validation error; it must
// not register the namespace on the way.
func TestAcquireWithLimitsInvalidRegistersNothing(t *testing.T) {
	table, _ := freshTable(t)
	before := itemCount(t, table)
	r := zl(t, table, "acquire", "u1", "gpt-4", "-c", "tpm=1", "-l", "rpm:5", "-N", "tenant-x")
	require.Equal(t, exitError, r.code, r.errOut)
	assert.NotContains(t, r.errOut, `Registered namespace "tenant-x"`)
	assert.Contains(t, r.errOut, `invalid consume "tpm": no limit "tpm" among those given with -l`)
	assert.Equal(t, before, itemCount(t, table), "a failing acquire writes nothing")
	assert.JSONEq(t, `[]`, ok(t, table, "namespace", "list", "-o", "json").out)
}

// noCredentials leaves the SDK's credential chain nothing to find: no keys,
// profiles or files, and a metadata service that refuses connections (the
// case that ends the chain on a network error, like an outage would).
func noCredentials(t *testing.T) {
	t.Helper()
	for _, k := range []string{
		"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
		"AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL_STS",
		"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
		"AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN", "AWS_EC2_METADATA_DISABLED", principalEnv,
	} {
		t.Setenv(k, "")
	}
	dir := t.TempDir()
	t.Setenv("AWS_CONFIG_FILE", dir+"/config")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", dir+"/credentials")
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", deadURL(t))
}

// deadURL is a local URL where nothing listens (connections are refused).
func deadURL(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	u := "http://" + l.Addr().String()
	require.NoError(t, l.Close())
	return u
}
