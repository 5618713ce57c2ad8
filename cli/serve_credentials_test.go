package cli

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zeroae/zae-limiter-go/shared/syncio"
)

// Missing credentials are a setup error, not an outage (ADR-006): serve
// starts while DynamoDB is out of reach, but without credentials DynamoDB
// was never asked, so it fails as for a missing table instead of answering
// 503 forever. The metadata service refuses connections here, the case
// that ends the credential chain on a network error.
func TestServeWithoutCredentialsFails(t *testing.T) {
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
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	imds := "http://" + l.Addr().String()
	require.NoError(t, l.Close())
	t.Setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", imds)

	env, _, _ := testEnv(false)
	var logs syncio.Buffer
	env.Err = &logs
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	done := make(chan int, 1)
	go func() { done <- execute(ctx, newRootCmd(env), env, []string{"serve", "--addr", "127.0.0.1:0"}) }()
	select {
	case code := <-done:
		assert.Equal(t, exitError, code, logs.String())
		assert.Contains(t, logs.String(), "no usable AWS credentials")
	case <-time.After(20 * time.Second):
		stop()
		<-done
		t.Fatalf("serve started without credentials: %s", logs.String())
	}
}
