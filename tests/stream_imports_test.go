package tests

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// deps lists the packages a package depends on (go list -deps).
func deps(t *testing.T, pkg string) []string {
	t.Helper()
	out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", pkg).CombinedOutput()
	require.NoError(t, err, "%s", out)
	return strings.Fields(string(out))
}

// The stream readers' packages stay out of the acquire function (its
// binary and cold start), and their test helpers (DynamoDB Local's stream
// reader, the traffic scenarios) out of every function.
func TestStreamPackagesStayWhereTheyBelong(t *testing.T) {
	t.Parallel()
	const module = "github.com/zeroae/zae-limiter-go"
	for _, d := range deps(t, "../functions/acquire") {
		for _, p := range []string{"/shared/stream", "/shared/usage"} {
			assert.False(t, d == module+p || strings.HasPrefix(d, module+p+"/"), "the acquire function depends on %s", d)
		}
	}
	aggregator := deps(t, "../functions/aggregator")
	assert.Contains(t, aggregator, module+"/shared/usage")
	for _, d := range deps(t, "../functions/...") {
		assert.NotContains(t, []string{module + "/shared/stream/streamtest", module + "/shared/usage/usagetest",
			"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"}, d, "a function depends on test tooling %s", d)
	}
}
