package awsenv

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/smithy-go/logging"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// cleanEnv isolates a test from the machine's AWS environment and files.
func cleanEnv(t *testing.T) {
	t.Helper()
	for _, k := range []string{
		"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
		"AWS_DEFAULT_PROFILE", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL",
		"AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL_STS",
		"AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
		"AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN",
	} {
		t.Setenv(k, "") // restores the old value after the test
		require.NoError(t, os.Unsetenv(k))
	}
	dir := t.TempDir()
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "credentials"))
	// Real AWS runs must not reach a metadata service from a unit test.
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
}

func creds(t *testing.T, cfg aws.Config) aws.Credentials {
	t.Helper()
	require.NotNil(t, cfg.Credentials)
	c, err := cfg.Credentials.Retrieve(context.Background())
	require.NoError(t, err)
	return c
}

func TestLoadEndpointFlag(t *testing.T) {
	cleanEnv(t)
	cfg, err := Load(context.Background(), Options{EndpointURL: "http://127.0.0.1:8000"})
	require.NoError(t, err)

	require.NotNil(t, cfg.BaseEndpoint)
	assert.Equal(t, "http://127.0.0.1:8000", *cfg.BaseEndpoint)
	assert.Equal(t, LocalRegion, cfg.Region)
	assert.Equal(t, DummyAccessKeyID, creds(t, cfg).AccessKeyID)
	assert.True(t, IsLocal(cfg))
	assert.Equal(t, "http://127.0.0.1:8000", DynamoDBEndpoint(cfg))
}

func TestLoadServiceEndpointVariableWinsOverFlag(t *testing.T) {
	cleanEnv(t)
	t.Setenv("AWS_ENDPOINT_URL_DYNAMODB", "http://127.0.0.1:9001")
	cfg, err := Load(context.Background(), Options{EndpointURL: "http://127.0.0.1:8000"})
	require.NoError(t, err)

	require.NotNil(t, cfg.BaseEndpoint)
	assert.Equal(t, "http://127.0.0.1:8000", *cfg.BaseEndpoint, "other services use the flag")
	assert.Equal(t, "http://127.0.0.1:9001", DynamoDBEndpoint(cfg), "DynamoDB keeps its own")
}

func TestLoadServiceEndpointVariableOnly(t *testing.T) {
	cleanEnv(t)
	t.Setenv("AWS_ENDPOINT_URL_DYNAMODB", "http://localhost:9001")
	cfg, err := Load(context.Background(), Options{})
	require.NoError(t, err)

	assert.Nil(t, cfg.BaseEndpoint, "other services stay on AWS")
	assert.Equal(t, "http://localhost:9001", DynamoDBEndpoint(cfg))
	assert.True(t, IsLocal(cfg))
	assert.Equal(t, LocalRegion, cfg.Region)
	assert.Equal(t, DummyAccessKeyID, creds(t, cfg).AccessKeyID)
}

func TestLoadGlobalEndpointVariable(t *testing.T) {
	cleanEnv(t)
	t.Setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:4566")
	cfg, err := Load(context.Background(), Options{})
	require.NoError(t, err)

	require.NotNil(t, cfg.BaseEndpoint)
	assert.Equal(t, "http://127.0.0.1:4566", *cfg.BaseEndpoint)
	assert.Equal(t, "http://127.0.0.1:4566", DynamoDBEndpoint(cfg))
	assert.Equal(t, DummyAccessKeyID, creds(t, cfg).AccessKeyID)
}

func TestLoadFlagWinsOverGlobalEndpointVariable(t *testing.T) {
	cleanEnv(t)
	t.Setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:4566")
	cfg, err := Load(context.Background(), Options{EndpointURL: "http://127.0.0.1:8000"})
	require.NoError(t, err)
	assert.Equal(t, "http://127.0.0.1:8000", DynamoDBEndpoint(cfg))
}

func TestLoadIgnoreConfiguredEndpoints(t *testing.T) {
	cleanEnv(t)
	t.Setenv("AWS_ENDPOINT_URL_DYNAMODB", "http://127.0.0.1:9001")
	t.Setenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true")
	t.Setenv("AWS_REGION", "eu-west-1")
	cfg, err := Load(context.Background(), Options{})
	require.NoError(t, err)
	assert.False(t, IsLocal(cfg))

	// An explicit flag is not a configured endpoint: it still applies.
	cfg, err = Load(context.Background(), Options{EndpointURL: "http://127.0.0.1:8000"})
	require.NoError(t, err)
	assert.Equal(t, "http://127.0.0.1:8000", DynamoDBEndpoint(cfg))
}

func TestLoadKeepsFoundCredentialsAndRegion(t *testing.T) {
	cleanEnv(t)
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDREAL")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secret")
	t.Setenv("AWS_REGION", "eu-west-1")
	cfg, err := Load(context.Background(), Options{EndpointURL: "http://127.0.0.1:8000"})
	require.NoError(t, err)
	assert.Equal(t, "AKIDREAL", creds(t, cfg).AccessKeyID)
	assert.Equal(t, "eu-west-1", cfg.Region)

	cfg, err = Load(context.Background(), Options{EndpointURL: "http://127.0.0.1:8000", Region: "ap-south-1"})
	require.NoError(t, err)
	assert.Equal(t, "ap-south-1", cfg.Region, "the flag wins")
}

func TestLoadProfileEndpoint(t *testing.T) {
	cleanEnv(t)
	cfgFile := os.Getenv("AWS_CONFIG_FILE")
	require.NoError(t, os.WriteFile(cfgFile, []byte(
		"[default]\nservices = local\n\n[services local]\ndynamodb =\n  endpoint_url = http://127.0.0.1:9002\n"), 0o600))
	cfg, err := Load(context.Background(), Options{})
	require.NoError(t, err)
	assert.Equal(t, "http://127.0.0.1:9002", DynamoDBEndpoint(cfg))
	assert.True(t, IsLocal(cfg))
	assert.Equal(t, LocalRegion, cfg.Region)
	assert.Equal(t, DummyAccessKeyID, creds(t, cfg).AccessKeyID)
}

func TestLoadRealAWSUntouched(t *testing.T) {
	cleanEnv(t)
	cfg, err := Load(context.Background(), Options{Region: "us-west-2"})
	require.NoError(t, err)
	assert.Nil(t, cfg.BaseEndpoint)
	assert.False(t, IsLocal(cfg))
	assert.Equal(t, "", DynamoDBEndpoint(cfg))
	assert.Equal(t, "us-west-2", cfg.Region)

	// No dummy credentials outside local mode: the chain finds nothing.
	_, err = cfg.Credentials.Retrieve(context.Background())
	assert.Error(t, err)

	c := NewDynamoDB(cfg)
	assert.False(t, c.Options().DisableValidateResponseChecksum)
}

func TestLoadDoesNotHangOnCredentialLookup(t *testing.T) {
	cleanEnv(t)
	// Even with IMDS allowed by the environment, local mode never asks it.
	require.NoError(t, os.Unsetenv("AWS_EC2_METADATA_DISABLED"))
	start := time.Now()
	cfg, err := Load(context.Background(), Options{EndpointURL: "http://127.0.0.1:8000"})
	require.NoError(t, err)
	assert.Equal(t, DummyAccessKeyID, creds(t, cfg).AccessKeyID)
	assert.Less(t, time.Since(start), 2*time.Second)
}

func TestLoadRejectsBadEndpoint(t *testing.T) {
	cleanEnv(t)
	for _, ep := range []string{"127.0.0.1:8000", "ftp://x", "http://"} {
		_, err := Load(context.Background(), Options{EndpointURL: ep})
		assert.ErrorContains(t, err, ep)
	}
}

func TestNewDynamoDBChecksum(t *testing.T) {
	cleanEnv(t)
	cfg, err := Load(context.Background(), Options{EndpointURL: "http://127.0.0.1:8000"})
	require.NoError(t, err)
	c := NewDynamoDB(cfg)
	assert.True(t, c.Options().DisableValidateResponseChecksum)
	require.NotNil(t, c.Options().BaseEndpoint)

	// Through the variable only, cfg has no BaseEndpoint; the option still sees it.
	cleanEnv(t)
	t.Setenv("AWS_ENDPOINT_URL_DYNAMODB", "http://127.0.0.1:9001")
	cfg, err = config.LoadDefaultConfig(context.Background(), config.WithRegion("us-east-1"))
	require.NoError(t, err)
	c = dynamodb.NewFromConfig(cfg, DynamoDBOptions)
	assert.True(t, c.Options().DisableValidateResponseChecksum)
}

func TestIsLoopback(t *testing.T) {
	tests := []struct {
		endpoint string
		want     bool
	}{
		{"http://127.0.0.1:8000", true},
		{"http://localhost:8000", true},
		{"http://[::1]:8000", true},
		{"http://ddb.localhost", true},
		{"https://dynamodb.us-east-1.amazonaws.com", false},
		{"http://10.0.0.5:8000", false},
		{"", false},
		{"not a url", false},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, IsLoopback(tt.endpoint), "IsLoopback(%q)", tt.endpoint)
	}
}

func TestLoadAssumeRoleProfileNeverCallsSTS(t *testing.T) {
	cleanEnv(t)
	t.Setenv("AWS_PROFILE", "role")
	var stsCalls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		stsCalls.Add(1)
		http.Error(w, "no", http.StatusForbidden)
	}))
	defer srv.Close()
	t.Setenv("AWS_ENDPOINT_URL_STS", srv.URL)
	require.NoError(t, os.WriteFile(os.Getenv("AWS_CONFIG_FILE"), []byte(
		"[profile role]\nrole_arn = arn:aws:iam::123456789012:role/x\nsource_profile = base\n"), 0o600))
	require.NoError(t, os.WriteFile(os.Getenv("AWS_SHARED_CREDENTIALS_FILE"), []byte(
		"[base]\naws_access_key_id = AKIDSOURCE\naws_secret_access_key = secret\n"), 0o600))

	cfg, err := Load(context.Background(), Options{EndpointURL: "http://127.0.0.1:8000"})
	require.NoError(t, err)
	assert.Equal(t, DummyAccessKeyID, creds(t, cfg).AccessKeyID)
	assert.Zero(t, stsCalls.Load(), "STS must not be called")
}

type recLogger struct{ lines atomic.Int64 }

func (r *recLogger) Logf(logging.Classification, string, ...any) { r.lines.Add(1) }

// The SDK's own warnings (here: IMDS refusing a token, so the credential
// chain falls back to IMDSv1) go to the given logger, not to stderr.
func TestLoadLogger(t *testing.T) {
	cleanEnv(t)
	require.NoError(t, os.Unsetenv("AWS_EC2_METADATA_DISABLED"))
	imdsSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no", http.StatusForbidden)
	}))
	t.Cleanup(imdsSrv.Close)
	t.Setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", imdsSrv.URL)

	rec := &recLogger{}
	cfg, err := Load(context.Background(), Options{Region: "us-west-2", Logger: rec})
	require.NoError(t, err)
	_, err = cfg.Credentials.Retrieve(context.Background())
	require.Error(t, err)
	assert.Positive(t, rec.lines.Load(), "the fallback warning reached the logger")
}
