package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zeroae/zae-limiter-go/shared/api"
	"github.com/zeroae/zae-limiter-go/shared/limiter"
	"github.com/zeroae/zae-limiter-go/shared/store"
)

const (
	key1 = "first-lease-signing-key-0123456789abcdef"
	key2 = "second-lease-signing-key-0123456789abcdef"
)

func lookup(env map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := env[k]
		return v, ok
	}
}

func TestLoadConfig(t *testing.T) {
	base := func() map[string]string { return map[string]string{"TABLE_NAME": "limiter", "LEASE_KEYS": key1} }
	tests := []struct {
		name string
		env  func(map[string]string)
		want config   // checked when wantErr is empty
		errs []string // substrings of the error
	}{
		{
			name: "minimal",
			env:  func(map[string]string) {},
			want: config{Table: "limiter", DefaultNamespace: "default", LeaseKeys: [][]byte{[]byte(key1)}, LeaseTTL: api.DefaultLeaseTTL,
				ConfigCacheTTL: store.DefaultCacheTTL, RequestTimeout: limiter.DefaultTimeout, DenialCache: true},
		},
		{
			name: "everything",
			env: func(e map[string]string) {
				e["DEFAULT_NAMESPACE"] = "tenant-a"
				e["LEASE_KEYS"] = key2 + ", " + key1
				e["LEASE_TTL"] = "90s"
				e["CONFIG_CACHE_TTL"] = "10s"
				e["REQUEST_TIMEOUT"] = "2s"
				e["DENIAL_CACHE"] = "false"
				e["AWS_XRAY_TRACING_ENABLED"] = "true"
			},
			want: config{
				Table: "limiter", DefaultNamespace: "tenant-a", LeaseKeys: [][]byte{[]byte(key2), []byte(key1)},
				LeaseTTL: 90 * time.Second, ConfigCacheTTL: 10 * time.Second, RequestTimeout: 2 * time.Second, Tracing: true,
			},
		},
		{
			name: "keys from a parameter, TTL in seconds",
			env: func(e map[string]string) {
				delete(e, "LEASE_KEYS")
				e["LEASE_KEYS_PARAMETER"] = "/limiter/lease-keys"
				e["LEASE_TTL"] = "600"
				e["CONFIG_CACHE_TTL"] = "0"
				e["REQUEST_TIMEOUT"] = "3"
				e["DENIAL_CACHE"] = "1"
				e["AWS_XRAY_TRACING_ENABLED"] = "0"
			},
			want: config{Table: "limiter", DefaultNamespace: "default", LeaseKeysParameter: "/limiter/lease-keys", LeaseTTL: 10 * time.Minute,
				RequestTimeout: 3 * time.Second, DenialCache: true},
		},
		{name: "no table", env: func(e map[string]string) { delete(e, "TABLE_NAME") }, errs: []string{"TABLE_NAME is required"}},
		{name: "blank table", env: func(e map[string]string) { e["TABLE_NAME"] = "  " }, errs: []string{"TABLE_NAME is required"}},
		{name: "bad table", env: func(e map[string]string) { e["TABLE_NAME"] = "a b" }, errs: []string{`TABLE_NAME="a b"`}},
		{name: "bad namespace", env: func(e map[string]string) { e["DEFAULT_NAMESPACE"] = "a#b" }, errs: []string{`DEFAULT_NAMESPACE="a#b"`, "'#'"}},
		{name: "reserved namespace", env: func(e map[string]string) { e["DEFAULT_NAMESPACE"] = "_" }, errs: []string{"DEFAULT_NAMESPACE", "reserved"}},
		{
			name: "keys from a secret, with a revision",
			env: func(e map[string]string) {
				e["LEASE_KEYS"] = ""
				e["LEASE_KEYS_PARAMETER"] = " "
				e["LEASE_KEYS_SECRET"] = "arn:aws:secretsmanager:us-east-1:123456789012:secret:k-AbCdEf"
				e["LEASE_KEYS_REVISION"] = "7"
			},
			want: config{Table: "limiter", DefaultNamespace: "default", LeaseTTL: api.DefaultLeaseTTL, ConfigCacheTTL: store.DefaultCacheTTL,
				LeaseKeysSecret: "arn:aws:secretsmanager:us-east-1:123456789012:secret:k-AbCdEf", LeaseKeysRevision: "7",
				RequestTimeout: limiter.DefaultTimeout, DenialCache: true},
		},
		{name: "no keys", env: func(e map[string]string) { delete(e, "LEASE_KEYS") }, errs: []string{"LEASE_KEYS (or LEASE_KEYS_PARAMETER, or LEASE_KEYS_SECRET) is required"}},
		{name: "both key sources", env: func(e map[string]string) { e["LEASE_KEYS_PARAMETER"] = "/p" }, errs: []string{"not LEASE_KEYS and LEASE_KEYS_PARAMETER"}},
		{name: "parameter and secret", env: func(e map[string]string) {
			delete(e, "LEASE_KEYS")
			e["LEASE_KEYS_PARAMETER"] = "/p"
			e["LEASE_KEYS_SECRET"] = "s"
		}, errs: []string{"not LEASE_KEYS_PARAMETER and LEASE_KEYS_SECRET"}},
		{name: "short key", env: func(e map[string]string) { e["LEASE_KEYS"] = key1 + ",short" }, errs: []string{"LEASE_KEYS: key 2 is 5 bytes; want at least 32"}},
		{name: "empty key in list", env: func(e map[string]string) { e["LEASE_KEYS"] = key1 + "," }, errs: []string{"key 2 is 0 bytes"}},
		{name: "bad TTL", env: func(e map[string]string) { e["LEASE_TTL"] = "soon" }, errs: []string{`LEASE_TTL="soon"`, "duration"}},
		{name: "zero TTL", env: func(e map[string]string) { e["LEASE_TTL"] = "0" }, errs: []string{`LEASE_TTL="0"`, "between 1s and 24h"}},
		{name: "long TTL", env: func(e map[string]string) { e["LEASE_TTL"] = "25h" }, errs: []string{"between 1s and 24h"}},
		{name: "bad denial cache", env: func(e map[string]string) { e["DENIAL_CACHE"] = "maybe" }, errs: []string{`DENIAL_CACHE="maybe"`}},
		{name: "short request timeout", env: func(e map[string]string) { e["REQUEST_TIMEOUT"] = "10ms" }, errs: []string{`REQUEST_TIMEOUT="10ms"`, "between 100ms and 1m"}},
		{name: "long request timeout", env: func(e map[string]string) { e["REQUEST_TIMEOUT"] = "61" }, errs: []string{`REQUEST_TIMEOUT="61"`}},
		{name: "bad cache TTL", env: func(e map[string]string) { e["CONFIG_CACHE_TTL"] = "a minute" }, errs: []string{`CONFIG_CACHE_TTL="a minute"`, "duration"}},
		{name: "negative cache TTL", env: func(e map[string]string) { e["CONFIG_CACHE_TTL"] = "-1s" }, errs: []string{`CONFIG_CACHE_TTL="-1s"`, "between 0s and 1h"}},
		{name: "long cache TTL", env: func(e map[string]string) { e["CONFIG_CACHE_TTL"] = "3601" }, errs: []string{`CONFIG_CACHE_TTL="3601"`, "between 0s and 1h"}},
		{name: "bad tracing", env: func(e map[string]string) { e["AWS_XRAY_TRACING_ENABLED"] = "maybe" }, errs: []string{`AWS_XRAY_TRACING_ENABLED="maybe"`}},
		{
			name: "every problem at once",
			env: func(e map[string]string) {
				delete(e, "TABLE_NAME")
				e["LEASE_TTL"] = "-1s"
				e["LEASE_KEYS"] = "tiny"
			},
			errs: []string{"TABLE_NAME", "LEASE_TTL", "LEASE_KEYS"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := base()
			tt.env(env)
			got, err := loadConfig(lookup(env))
			if len(tt.errs) > 0 {
				require.Error(t, err)
				for _, s := range tt.errs {
					assert.Contains(t, err.Error(), s)
				}
				for _, k := range strings.Split(env["LEASE_KEYS"], ",") {
					if len(k) > 4 {
						assert.NotContains(t, err.Error(), strings.TrimSpace(k), "never echo a key")
					}
				}
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestNewHandlerConfigError(t *testing.T) {
	_, err := newHandler(context.Background(), lookup(map[string]string{"LEASE_KEYS": key1}))
	assert.ErrorContains(t, err, "TABLE_NAME is required")
}
