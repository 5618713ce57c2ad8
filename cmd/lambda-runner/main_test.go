package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zeroae/zae-limiter-go/shared/lambdarun"
)

func TestRun(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "fn", "bootstrap")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	require.NoError(t, lambdarun.Build(ctx, lambdarun.BuildOptions{Package: "../../shared/lambdarun/testdata/fn", Output: bin}))

	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
		return p
	}
	first := write("first.json", `{"echo":"hello","env":"GREETING"}`)
	chained := write("chained.json", `{"echo":"{{ECHO}}-again"}`)
	failing := write("failing.json", `{"error":"boom"}`)

	tests := []struct {
		name     string
		args     []string
		stdin    string
		code     int
		stdout   []string
		stderr   []string
		noStdout bool
	}{
		{
			name:   "events in order, placeholders filled",
			args:   []string{"-binary", bin, "-env", "GREETING=hi", "-event", first, "-event", chained},
			stdout: []string{`"echo":"hello"`, `"env":"hi"`, `"echo":"hello-again"`},
			stderr: []string{"fn: cold init", "first.json: 2", "chained.json"},
		},
		{name: "stdin", args: []string{"-binary", bin, "-q"}, stdin: `{"echo":42}`, stdout: []string{`"echo":42`}},
		{
			name:   "function error",
			args:   []string{"-binary", bin, "-event", failing},
			code:   1,
			stdout: []string{`"errorMessage":"boom"`},
			stderr: []string{"function error errorString: boom"},
		},
		{
			name: "placeholder without a previous response", args: []string{"-binary", bin, "-event", chained},
			code: 1, stderr: []string{"no previous response"}, noStdout: true,
		},
		{
			name: "init failure", args: []string{"-binary", bin, "-env", "FN_INIT=exit", "-event", first},
			code: 1, stderr: []string{"failed to initialise"}, noStdout: true,
		},
		{name: "no binary", args: []string{"-event", first}, code: 2, stderr: []string{"usage:"}, noStdout: true},
		{name: "bad flag", args: []string{"-nope"}, code: 2, noStdout: true},
		{name: "not JSON", args: []string{"-binary", bin}, stdin: "nope", code: 1, stderr: []string{"not valid JSON"}, noStdout: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			code := run(tt.args, strings.NewReader(tt.stdin), &out, &errOut)
			assert.Equal(t, tt.code, code, "stderr: %s", errOut.String())
			for _, s := range tt.stdout {
				assert.Contains(t, out.String(), s)
			}
			for _, s := range tt.stderr {
				assert.Contains(t, errOut.String(), s)
			}
			if tt.noStdout {
				assert.Empty(t, out.String())
			}
		})
	}
}
