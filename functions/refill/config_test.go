package main

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zeroae/zae-limiter-go/shared/shard"
)

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestLoadConfig_defaults(t *testing.T) {
	c, err := loadConfig(env(map[string]string{"TABLE_NAME": "limiter"}))
	require.NoError(t, err)
	assert.Equal(t, config{Table: "limiter", GrowAt: shard.BudgetParams.Capacity / 2}, c)
}

func TestLoadConfig_everything(t *testing.T) {
	c, err := loadConfig(env(map[string]string{"TABLE_NAME": " limiter ", "GROW_AT_PERCENT": "25",
		"AWS_XRAY_TRACING_ENABLED": "true"}))
	require.NoError(t, err)
	assert.Equal(t, config{Table: "limiter", GrowAt: shard.BudgetParams.Capacity / 4, Tracing: true}, c)
}

// Every error names its variable, all at once.
func TestLoadConfig_errors(t *testing.T) {
	_, err := loadConfig(env(map[string]string{"GROW_AT_PERCENT": "0", "AWS_XRAY_TRACING_ENABLED": "maybe"}))
	require.Error(t, err)
	for _, want := range []string{
		"TABLE_NAME is required",
		`GROW_AT_PERCENT="0": want a whole percentage of a shard's write budget from 1 to 100`,
		`AWS_XRAY_TRACING_ENABLED="maybe": want true or false`,
	} {
		assert.Contains(t, err.Error(), want)
	}
	_, err = loadConfig(env(map[string]string{"TABLE_NAME": "a b"}))
	assert.ErrorContains(t, err, `TABLE_NAME="a b"`)
}
