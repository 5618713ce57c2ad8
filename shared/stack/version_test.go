package stack

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/zeroae/zae-limiter-go/shared/store"
)

func TestCompareVersions(t *testing.T) {
	for _, tt := range []struct {
		a, b string
		c    int
		ok   bool
	}{
		{"v1.2.3", "1.2.3", 0, true},
		{"v1.2.3", "v1.10.0", -1, true},
		{"v2", "v1.99.99", 1, true},
		{"v1.2.3-rc.1", "v1.2.3", -1, true},
		{"v1.2.3-4-gabcdef0", "v1.2.3", 1, true},
		{"v1.2.3-4-gabcdef0-dirty", "v1.2.3-10-g1234567", -1, true},
		{"v1.2.3-rc.1", "v1.2.3-rc.2", -1, true},
		{"dev", "v1.0.0", 0, false},
		{"85d9ce1", "85d9ce1", 0, false},
	} {
		c, ok := CompareVersions(tt.a, tt.b)
		assert.Equal(t, tt.ok, ok, "%s vs %s", tt.a, tt.b)
		assert.Equal(t, tt.c, c, "%s vs %s", tt.a, tt.b)
	}
}

func TestCheckVersion(t *testing.T) {
	rec := func(schema, lambda, min string) *store.VersionRecord {
		return &store.VersionRecord{SchemaVersion: schema, LambdaVersion: lambda, ClientMinVersion: min}
	}
	for _, tt := range []struct {
		client string
		rec    *store.VersionRecord
		want   Compatibility
		msg    string
	}{
		{"v1.0.0", nil, NotInitialized, "no version record"},
		{"v1.0.0", rec("2.0.0", "v1.0.0", "0.0.0"), Incompatible, "migration"},
		{"v1.0.0", rec("1.0.0", "v1.0.0", "v1.1.0"), Incompatible, "below the table's minimum"},
		{"v1.0.0", rec("1.0.0", "v1.0.0", "0.0.0"), Compatible, "are this build"},
		{"v1.1.0", rec("1.0.0", "v1.0.0", "0.0.0"), UpdateAvailable, "zae-limiter upgrade"},
		{"v1.0.0", rec("1.2.0", "v1.1.0", "0.0.0"), Compatible, "newer than this client"},
		{"dev", rec("1.0.0", "dev", "0.0.0"), Compatible, "are this build"},
		{"dev", rec("1.0.0", "v1.0.0", "0.0.0"), UpdateAvailable, "build v1.0.0"},
		{"v1.0.0", rec("1.0.0", "", "0.0.0"), UpdateAvailable, "records no functions' version"},
	} {
		got, msg := CheckVersion(tt.client, tt.rec)
		assert.Equal(t, tt.want, got, "%s vs %+v", tt.client, tt.rec)
		assert.Contains(t, msg, tt.msg)
	}
}
