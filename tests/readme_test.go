package tests

import (
	"bytes"
	"context"
	"go/format"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zeroae/zae-limiter-go/shared/api"
	"github.com/zeroae/zae-limiter-go/shared/ddblocal/ddbtest"
	"github.com/zeroae/zae-limiter-go/shared/limiter"
	"github.com/zeroae/zae-limiter-go/shared/limits"
	"github.com/zeroae/zae-limiter-go/shared/store"
)

// goFence is one ```go block of a Markdown file.
var goFence = regexp.MustCompile("(?ms)^```go\n(.*?)^```\n")

// readmeSnippets are the README's Go blocks.
func readmeSnippets(t *testing.T) []string {
	t.Helper()
	md, err := os.ReadFile(filepath.Join("..", "README.md"))
	require.NoError(t, err)
	var out []string
	for _, m := range goFence.FindAllSubmatch(md, -1) {
		out = append(out, string(m[1]))
	}
	return out
}

// Every Go block of the README is a complete program, gofmt-clean, that
// builds and runs as pasted: each is written to a directory inside this
// module (so its imports resolve to this checkout), built, and run against
// DynamoDB Local and an acquire API over it, with no AWS region or
// credentials configured, as on a new user's machine with the local stack.
func TestREADMEGoSnippets(t *testing.T) {
	snippets := readmeSnippets(t)
	require.GreaterOrEqual(t, len(snippets), 2, "the in-process and the client example")
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go command not found")
	}
	root, err := filepath.Abs("..")
	require.NoError(t, err)
	// "_" keeps the directory out of ./... patterns while it exists.
	dir, err := os.MkdirTemp(root, "_readme-snippets-")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(dir) })

	// The local stack the programs expect: a table with the default
	// namespace and limits for key-1/gpt-4, and serve's handler over it.
	ctx := context.Background()
	table := ddbtest.NewTable(t)
	st := store.New(ddbtest.Client(t), store.Options{Table: table})
	_, err = st.RegisterNamespace(ctx, "default")
	require.NoError(t, err)
	ns, err := st.Namespace(ctx, "default")
	require.NoError(t, err)
	require.NoError(t, ns.SetResourceDefaults(ctx, "gpt-4", []limits.Limit{
		limits.PerDay("rpm", 100, 0), limits.PerDay("tpm", 100_000, 0)})) // slow refill: what they took shows
	srv := httptest.NewServer(api.New(api.Options{Store: st, DB: ddbtest.Client(t), Table: table}))
	t.Cleanup(srv.Close)
	env := append(withoutAWSEnv(os.Environ()),
		"AWS_ENDPOINT_URL="+ddbtest.Endpoint(t), "TABLE_NAME="+table, "ZAEL_URL="+srv.URL,
		"AWS_CONFIG_FILE="+filepath.Join(dir, "no-config"), "AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(dir, "no-credentials"),
		"AWS_EC2_METADATA_DISABLED=true")

	for i, src := range snippets {
		name := "snippet" + strconv.Itoa(i+1)
		t.Run(name, func(t *testing.T) {
			assert.Contains(t, src, "package main\n", "a complete program")
			assert.Contains(t, src, "\nfunc main() {\n", "a complete program")
			formatted, err := format.Source([]byte(src))
			require.NoError(t, err, "README Go block %d does not parse", i+1)
			assert.Equal(t, string(formatted), src, "README Go block %d is not gofmt-clean", i+1)

			pkg := filepath.Join(dir, name)
			require.NoError(t, os.MkdirAll(pkg, 0o755))
			require.NoError(t, os.WriteFile(filepath.Join(pkg, "main.go"), []byte(src), 0o644))
			bin := filepath.Join(dir, name+".bin")
			build := exec.Command(gobin, "build", "-o", bin, "./"+filepath.Base(dir)+"/"+name)
			build.Dir = root
			out, err := build.CombinedOutput()
			require.NoError(t, err, "README Go block %d does not build:\n%s", i+1, out)

			rctx, cancel := context.WithTimeout(ctx, time.Minute)
			defer cancel()
			run := exec.CommandContext(rctx, bin)
			run.Env = env
			var stdout, stderr bytes.Buffer
			run.Stdout, run.Stderr = &stdout, &stderr
			require.NoError(t, run.Run(), "README Go block %d failed: %s", i+1, stderr.String())
			assert.NotEmpty(t, strings.TrimSpace(stdout.String()), "it says what it did")
		})
	}

	// What they did: each took 1 request and 2,000 tokens, then adjusted to
	// the 1,500 tokens used (tpm refills about 1.2 tokens a second).
	lim := limiter.New(ddbtest.Client(t), ns, limiter.Options{Table: table, Namespace: ns.ID})
	sts, err := lim.Available(ctx, "key-1", "gpt-4", nil, nil)
	require.NoError(t, err)
	got := map[string]int64{}
	for _, s := range sts {
		got[s.Limit.Name] = s.Available
	}
	n := int64(len(snippets))
	assert.Equal(t, 100-n, got["rpm"], "one request each")
	assert.InDelta(t, 100_000-1500*n, got["tpm"], 100, "1,500 tokens each")
}

// withoutAWSEnv drops the AWS settings of the machine running the tests, so
// the programs run as on a machine without AWS configuration.
func withoutAWSEnv(env []string) []string {
	out := env[:0:0]
	for _, kv := range env {
		if !strings.HasPrefix(kv, "AWS_") {
			out = append(out, kv)
		}
	}
	return out
}
