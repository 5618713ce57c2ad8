package upkeep_test

import (
	"testing"

	"github.com/zeroae/zae-limiter-go/shared/ddblocal/ddbtest"
)

func TestMain(m *testing.M) { ddbtest.Main(m) }
