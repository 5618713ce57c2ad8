package main

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zeroae/zae-limiter-go/shared/usage"
)

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestLoadConfig_defaults(t *testing.T) {
	c, err := loadConfig(env(map[string]string{"TABLE_NAME": "limiter"}))
	require.NoError(t, err)
	assert.Equal(t, config{Table: "limiter", Windows: []usage.Window{usage.Hourly, usage.Daily}, Retention: 90 * 24 * time.Hour}, c)
}

func TestLoadConfig_everything(t *testing.T) {
	c, err := loadConfig(env(map[string]string{"TABLE_NAME": " limiter ", "SNAPSHOT_WINDOWS": "monthly, hourly",
		"SNAPSHOT_TTL_DAYS": "0", "AWS_XRAY_TRACING_ENABLED": "true"}))
	require.NoError(t, err)
	assert.Equal(t, config{Table: "limiter", Windows: []usage.Window{usage.Hourly, usage.Monthly}, Retention: 0, Tracing: true}, c)
}

// Every error names its variable, all at once.
func TestLoadConfig_errors(t *testing.T) {
	_, err := loadConfig(env(map[string]string{"SNAPSHOT_WINDOWS": "hourly,weekly", "SNAPSHOT_TTL_DAYS": "-1",
		"AWS_XRAY_TRACING_ENABLED": "maybe"}))
	require.Error(t, err)
	for _, want := range []string{
		"TABLE_NAME is required",
		`SNAPSHOT_WINDOWS="hourly,weekly": window "weekly": want hourly, daily or monthly`,
		`SNAPSHOT_TTL_DAYS="-1": want whole days from 0 (keep forever) to 3650`,
		`AWS_XRAY_TRACING_ENABLED="maybe": want true or false`,
	} {
		assert.Contains(t, err.Error(), want)
	}
	_, err = loadConfig(env(map[string]string{"TABLE_NAME": "a b"}))
	assert.ErrorContains(t, err, `TABLE_NAME="a b"`)
	_, err = loadConfig(env(map[string]string{"TABLE_NAME": "limiter", "SNAPSHOT_TTL_DAYS": "3651"}))
	assert.ErrorContains(t, err, "SNAPSHOT_TTL_DAYS")
}
