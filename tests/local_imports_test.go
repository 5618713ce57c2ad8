package tests

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Local-only tooling (the local stack, DynamoDB Local's and versitygw's
// launchers, the Runtime API runner, process helpers) never ends up in a
// Lambda binary.
func TestFunctionsImportNoLocalTooling(t *testing.T) {
	t.Parallel()
	const module = "github.com/zeroae/zae-limiter-go"
	out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", "../functions/...").CombinedOutput()
	require.NoError(t, err, "%s", out)
	deps := strings.Fields(string(out))
	require.NotEmpty(t, deps)
	for _, d := range deps {
		for _, local := range []string{"/shared/localstack", "/shared/ddblocal", "/shared/lambdarun", "/shared/proc", "/cli"} {
			assert.False(t, d == module+local || strings.HasPrefix(d, module+local+"/"),
				"a function depends on local-only %s", d)
		}
	}
}
