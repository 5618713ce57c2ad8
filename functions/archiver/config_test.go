package main

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zeroae/zae-limiter-go/shared/archive"
)

func lookup(env map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := env[k]
		return v, ok
	}
}

func TestLoadConfig(t *testing.T) {
	base := func() map[string]string {
		return map[string]string{"TABLE_NAME": "limiter", "ARCHIVE_BUCKET_NAME": "limiter-audit-archive"}
	}
	tests := []struct {
		name string
		env  func(map[string]string)
		want config
		errs []string
	}{
		{
			name: "minimal",
			env:  func(map[string]string) {},
			want: config{Table: "limiter", Bucket: "limiter-audit-archive", Retention: 90 * 24 * time.Hour, Interval: time.Hour},
		},
		{
			name: "everything",
			env: func(e map[string]string) {
				e["AUDIT_RETENTION_DAYS"] = "30"
				e["ARCHIVE_SCHEDULE"] = "rate(2 days)"
				e["AWS_XRAY_TRACING_ENABLED"] = "true"
			},
			want: config{Table: "limiter", Bucket: "limiter-audit-archive", Retention: 30 * 24 * time.Hour, Interval: 48 * time.Hour, Tracing: true},
		},
		{name: "minutes", env: func(e map[string]string) { e["ARCHIVE_SCHEDULE"] = "rate(15 minutes)" },
			want: config{Table: "limiter", Bucket: "limiter-audit-archive", Retention: 90 * 24 * time.Hour, Interval: 15 * time.Minute}},
		{name: "no table", env: func(e map[string]string) { delete(e, "TABLE_NAME") }, errs: []string{"TABLE_NAME is required"}},
		{name: "no bucket", env: func(e map[string]string) { e["ARCHIVE_BUCKET_NAME"] = " " }, errs: []string{"ARCHIVE_BUCKET_NAME is required"}},
		{name: "bad bucket", env: func(e map[string]string) { e["ARCHIVE_BUCKET_NAME"] = "My_Bucket" }, errs: []string{`ARCHIVE_BUCKET_NAME="My_Bucket"`}},
		{name: "bad retention", env: func(e map[string]string) { e["AUDIT_RETENTION_DAYS"] = "0" }, errs: []string{`AUDIT_RETENTION_DAYS="0"`, "1 to 3650"}},
		{name: "cron schedule", env: func(e map[string]string) { e["ARCHIVE_SCHEDULE"] = "cron(0 * * * ? *)" }, errs: []string{`ARCHIVE_SCHEDULE="cron(0 * * * ? *)"`, "rate expression"}},
		{name: "bad tracing", env: func(e map[string]string) { e["AWS_XRAY_TRACING_ENABLED"] = "maybe" }, errs: []string{"AWS_XRAY_TRACING_ENABLED"}},
		{
			name: "every problem at once",
			env: func(e map[string]string) {
				delete(e, "TABLE_NAME")
				delete(e, "ARCHIVE_BUCKET_NAME")
				e["ARCHIVE_SCHEDULE"] = "hourly"
			},
			errs: []string{"TABLE_NAME", "ARCHIVE_BUCKET_NAME", "ARCHIVE_SCHEDULE"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := base()
			tt.env(env)
			got, err := loadConfig(lookup(env))
			if len(tt.errs) > 0 {
				require.Error(t, err)
				for _, e := range tt.errs {
					assert.Contains(t, err.Error(), e)
				}
				if tt.name == "every problem at once" {
					assert.Len(t, strings.Split(err.Error(), "\n"), 3, "one line per variable")
				}
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

// The margin covers three schedule periods and never less than the
// archive's default.
func TestMargin(t *testing.T) {
	assert.Equal(t, archive.DefaultMargin, config{Interval: time.Hour}.Margin())
	assert.Equal(t, 6*24*time.Hour, config{Interval: 48 * time.Hour}.Margin())
}
