package emf

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestGroup_isEMFAtTheTopLevel(t *testing.T) {
	var b bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&b, nil))
	log.Info("done", "records", 3, Group("NS", map[string]string{"FunctionName": "f", "Stage": "x"}, time.UnixMilli(1700000000123),
		Count("Records", 3), Milliseconds("Lag", 1500*time.Millisecond)))
	var line map[string]any
	require.NoError(t, json.Unmarshal(b.Bytes(), &line))
	assert.Equal(t, float64(3), line["Records"])
	assert.Equal(t, float64(1500), line["Lag"])
	assert.Equal(t, "f", line["FunctionName"])
	assert.Equal(t, "x", line["Stage"])
	aws := line["_aws"].(map[string]any)
	assert.Equal(t, float64(1700000000123), aws["Timestamp"])
	cw := aws["CloudWatchMetrics"].([]any)[0].(map[string]any)
	assert.Equal(t, "NS", cw["Namespace"])
	assert.Equal(t, []any{[]any{"FunctionName", "Stage"}}, cw["Dimensions"])
	assert.Equal(t, []any{map[string]any{"Name": "Records", "Unit": "Count"}, map[string]any{"Name": "Lag", "Unit": "Milliseconds"}},
		cw["Metrics"])
}
