package cli

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite docs/cli.md from the command tree")

// docs/cli.md is generated from the command tree and must stay in sync.
func TestDocs(t *testing.T) {
	var b bytes.Buffer
	require.NoError(t, WriteMarkdown(&b))
	path := filepath.Join("..", "docs", "cli.md")
	if *update {
		require.NoError(t, os.WriteFile(path, b.Bytes(), 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "run: go test ./cli -run TestDocs -update")
	assert.Equal(t, string(want), b.String(), "docs/cli.md is stale: go test ./cli -run TestDocs -update")
}
