package cli

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Every part of `local status -o json` has every pinned key (DECISIONS
// §4.1), null where nothing is known: a part never started has no pid.
func TestLocalPartJSONHasEveryKey(t *testing.T) {
	for _, p := range []localPartJSON{
		{Name: "dynamodb", Running: true, PID: 42, Port: 8000, LogFile: "/tmp/x.log"},
		{Name: "s3"},
	} {
		b, err := json.Marshal(p)
		require.NoError(t, err)
		var m map[string]any
		require.NoError(t, json.Unmarshal(b, &m))
		assert.ElementsMatch(t, []string{"name", "running", "pid", "port", "log_file"}, keysOf(m), "%s", b)
		var back localPartJSON
		require.NoError(t, json.Unmarshal(b, &back))
		assert.Equal(t, p, back, "null reads back as unknown")
	}
	b, _ := json.Marshal(localPartJSON{Name: "s3"})
	assert.JSONEq(t, `{"name":"s3","running":false,"pid":null,"port":null,"log_file":null}`, string(b))
}

func keysOf(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
