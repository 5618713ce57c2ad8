package main

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestLoadConfig(t *testing.T) {
	env := func(kv ...string) func(string) (string, bool) {
		m := map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
	}
	c, err := loadConfig(env("TABLE_NAME", "limiter"))
	require.NoError(t, err)
	assert.Equal(t, config{Table: "limiter"}, c)
	c, err = loadConfig(env("TABLE_NAME", " prod-limits ", "AWS_XRAY_TRACING_ENABLED", "true"))
	require.NoError(t, err)
	assert.Equal(t, config{Table: "prod-limits", Tracing: true}, c)

	_, err = loadConfig(env())
	assert.EqualError(t, err, "TABLE_NAME is required")
	_, err = loadConfig(env("TABLE_NAME", "a b", "AWS_XRAY_TRACING_ENABLED", "yes"))
	assert.EqualError(t, err, "TABLE_NAME=\"a b\": want 3-255 letters, digits, '_', '-' or '.'\n"+
		"AWS_XRAY_TRACING_ENABLED=\"yes\": want true or false")
}
