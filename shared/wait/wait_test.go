package wait_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/zeroae/zae-limiter-go/shared/wait"
)

func TestFor(t *testing.T) {
	assert.NoError(t, wait.For(context.Background(), time.Millisecond))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	assert.ErrorIs(t, wait.For(ctx, time.Hour), context.Canceled, "a context that ended ends the wait")
}
