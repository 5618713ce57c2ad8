package cli

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/zeroae/zae-limiter-go/shared/syncio"
)

// Missing credentials are a setup error, not an outage (ADR-006): serve
// starts while DynamoDB is out of reach, but without credentials DynamoDB
// was never asked, so it fails as for a missing table instead of answering
// 503 forever. The metadata service refuses connections here, the case
// that ends the credential chain on a network error.
func TestServeWithoutCredentialsFails(t *testing.T) {
	noCredentials(t)

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
