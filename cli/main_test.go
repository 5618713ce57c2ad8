package cli

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zeroae/zae-limiter-go/shared/ddblocal/ddbtest"
)

func TestMain(m *testing.M) { ddbtest.Main(m) }

// testEnv is an Env with buffers for streams, no terminal and no
// environment variables.
func testEnv(terminal bool) (*Env, *bytes.Buffer, *bytes.Buffer) {
	var out, errw bytes.Buffer
	env := newEnv(strings.NewReader(""), &out, &errw, func(string) string { return "" })
	env.IsTerminal = func() bool { return terminal }
	return env, &out, &errw
}

// parseRun runs args through the real command tree in which the command at
// path is replaced by the one mk builds (with a capturing runF), and
// returns the exit code and stderr. Nothing talks to AWS.
func parseRun(t *testing.T, path []string, mk func(*Env) *cobra.Command, args ...string) (int, string, *Env) {
	t.Helper()
	env, _, errw := testEnv(false)
	root := newRootCmd(env)
	parent := root
	if len(path) > 1 {
		var err error
		parent, _, err = root.Find(path[:len(path)-1])
		require.NoError(t, err)
	}
	for _, c := range parent.Commands() {
		if c.Name() == path[len(path)-1] {
			parent.RemoveCommand(c)
		}
	}
	parent.AddCommand(mk(env))
	code := execute(context.Background(), root, env, args)
	return code, errw.String(), env
}

// usageFails runs args through the real command tree (an endpoint that is
// never reached) and requires exit 2, one stderr line holding wantErr and
// nothing on stdout.
func usageFails(t *testing.T, args, wantErr string) {
	t.Helper()
	env, out, errw := testEnv(false)
	env.EndpointURL = "http://127.0.0.1:1" // never reached
	code := run(t.Context(), strings.Fields(args), env)
	assert.Equal(t, exitUsage, code, errw.String())
	require.Len(t, lines(errw.String()), 1, "one line on stderr: %q", errw.String())
	assert.Contains(t, errw.String(), wantErr)
	assert.Empty(t, out.String())
}

// lines splits output into non-empty lines.
func lines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.TrimSpace(l) != "" {
			out = append(out, l)
		}
	}
	return out
}
