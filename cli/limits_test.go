package cli

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/zeroae/zae-limiter-go/shared/limits"
	"github.com/zeroae/zae-limiter-go/shared/store"
)

// writeFile writes a manifest into the test's directory.
func writeFile(t *testing.T, name, src string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(p, []byte(src), 0o644))
	return p
}

const seedManifest = `namespace: default
system:
  on_unavailable: block
  limits:
    rpm:
      capacity: 1000
    tpm:
      capacity: 100000
resources:
  gpt-4:
    limits:
      rpm:
        capacity: 500
      tpm:
        capacity: 50000
  gpt-3.5-turbo:
    limits:
      rpm:
        capacity: 2000
      tpm:
        capacity: 500000
entities:
  user-premium:
    resources:
      gpt-4:
        limits:
          rpm:
            capacity: 1000
          tpm:
            capacity: 100000
  user-basic:
    resources:
      gpt-4:
        limits:
          rpm: 10/min:20
`

// The "Done when" list through the CLI (--direct: the function's
// Invoke path has its own test in functions/provisioner).
func TestLimitsWorkflow(t *testing.T) {
	table, st := freshTable(t)
	file := writeFile(t, "limits.yaml", seedManifest)

	r := ok(t, table, "limits", "plan", "-f", file, "--direct")
	assert.Equal(t, `Plan: 5 changes in namespace "default"
  + create system: (system defaults)
  + create resource: gpt-3.5-turbo
  + create resource: gpt-4
  + create entity: user-basic/gpt-4
  + create entity: user-premium/gpt-4
`, r.out)

	r = ok(t, table, "limits", "apply", "-f", file, "--direct", "-y")
	assert.Contains(t, r.out, "Applied: 5 created, 0 updated, 0 deleted.\n")
	assert.JSONEq(t, `{"limits": [
		{"name": "rpm", "capacity": 1000, "refill_amount": 1000, "refill_period_seconds": 60},
		{"name": "tpm", "capacity": 100000, "refill_amount": 100000, "refill_period_seconds": 60}],
		"on_unavailable": "block"}`, ok(t, table, "system", "get-defaults", "-o", "json").out)
	assert.JSONEq(t, `[{"entity_id": "user-basic", "resource": "gpt-4", "limits": [
		{"name": "rpm", "capacity": 20, "refill_amount": 10, "refill_period_seconds": 60}]}]`,
		ok(t, table, "entity", "get-limits", "user-basic", "-o", "json").out)

	assert.Equal(t, "No changes. Namespace \"default\" matches "+file+".\n", ok(t, table, "limits", "plan", "-f", file, "--direct").out)
	assert.JSONEq(t, `{"namespace": "default", "changes": [], "created": 0, "updated": 0, "deleted": 0, "errors": []}`,
		ok(t, table, "limits", "apply", "-f", file, "--direct", "-y", "-o", "json").out)

	// Outside the manifest, and a hand edit of a managed item.
	ok(t, table, "entity", "set-limits", "user-manual", "--resource", "gpt-4", "-l", "rpm:7")
	ok(t, table, "resource", "set-defaults", "gpt-4", "-l", "rpm:1")
	assert.Equal(t, `Drift in namespace "default": 1 difference from `+file+`
  ~ update resource: gpt-4
`, ok(t, table, "limits", "diff", "-f", file, "--direct").out)
	assert.JSONEq(t, `{"namespace": "default", "changes": [{"action": "update", "level": "resource", "target": "gpt-4"}],
		"created": 0, "updated": 0, "deleted": 0, "errors": []}`,
		ok(t, table, "limits", "diff", "-f", file, "--direct", "-o", "json").out)

	// A changed file plans exactly the changed items; a removed entity is deleted.
	changed := strings.Replace(seedManifest, "rpm: 10/min:20", "rpm: 10/min:30", 1)
	changed = changed[:strings.Index(changed, "  user-premium:")] + changed[strings.Index(changed, "  user-basic:"):]
	file2 := writeFile(t, "limits.yaml", changed)
	assert.JSONEq(t, `{"namespace": "default", "changes": [
		{"action": "update", "level": "entity", "target": "user-basic/gpt-4"},
		{"action": "delete", "level": "entity", "target": "user-premium/gpt-4"}],
		"created": 0, "updated": 0, "deleted": 0, "errors": []}`,
		ok(t, table, "limits", "plan", "-f", file2, "--direct", "-o", "json").out)
	r = ok(t, table, "limits", "apply", "-f", file2, "--direct", "-y")
	assert.Equal(t, `  ~ update entity: user-basic/gpt-4
  - delete entity: user-premium/gpt-4
Applied: 0 created, 1 updated, 1 deleted.
`, r.out)
	assert.JSONEq(t, `[]`, ok(t, table, "entity", "get-limits", "user-premium", "-o", "json").out)
	assert.JSONEq(t, `[{"entity_id": "user-manual", "resource": "gpt-4", "limits": [
		{"name": "rpm", "capacity": 7, "refill_amount": 7, "refill_period_seconds": 60}]}]`,
		ok(t, table, "entity", "get-limits", "user-manual", "-o", "json").out, "never in a manifest: untouched")

	// The audit trail names the change like an imperative one.
	evs, err := ns(t, st, "default").AuditEvents(t.Context(), "user-premium", 0, "")
	require.NoError(t, err)
	require.Len(t, evs, 2)
	assert.Equal(t, store.ActionLimitsDeleted, evs[0].Action)
	assert.Equal(t, store.ActionLimitsSet, evs[1].Action)
}

// The file's namespace and -N: the file wins over the default, a
// different explicit -N is an error, a file without one takes -N.
func TestLimitsNamespace(t *testing.T) {
	table, st := freshTable(t)
	noNS := writeFile(t, "a.yaml", "resources: {gpt-4: {limits: {rpm: 5}}}\n")
	r := ok(t, table, "limits", "apply", "-f", noNS, "-N", "tenant-a", "--direct", "-y")
	assert.Contains(t, r.out, "Applied: 1 created")
	got, err := ns(t, st, "tenant-a").GetResourceDefaults(t.Context(), "gpt-4")
	require.NoError(t, err)
	assert.Equal(t, []limits.Limit{limits.PerMinute("rpm", 5, 0)}, got)

	withNS := writeFile(t, "b.yaml", "namespace: tenant-b\nresources: {gpt-4: {limits: {rpm: 6}}}\n")
	assert.Contains(t, ok(t, table, "limits", "plan", "-f", withNS, "--direct").out, `namespace "tenant-b"`)
	fails(t, exitError, `invalid namespace "tenant-a": the manifest is for namespace "tenant-b"`,
		table, "limits", "plan", "-f", withNS, "-N", "tenant-a", "--direct")
}

func TestLimitsBadInput(t *testing.T) {
	table := "never-created"
	fails(t, exitUsage, "-f/--file is required", table, "limits", "plan")
	file := writeFile(t, "ok.yaml", "resources: {gpt-4: {limits: {rpm: 5}}}\n")
	fails(t, exitUsage, "--yes is required when not running interactively", table, "limits", "apply", "-f", file)
	fails(t, exitError, "read the manifest: open /nonexistent.yaml", table, "limits", "plan", "-f", "/nonexistent.yaml")

	bad := writeFile(t, "bad.yaml", "resources:\n  gpt-4:\n    limits:\n      wcu: 5\n")
	fails(t, exitError, `bad.yaml:4: resources.gpt-4.limits.wcu: limit name "wcu" is reserved`,
		table, "limits", "apply", "-f", bad, "-y")

	// Several problems: each on its own line, then the error.
	worse := writeFile(t, "worse.yaml", "resources:\n  gpt-4:\n    limits:\n      rpm: {capacity: x}\n      tpm: {capacity: y}\n")
	r := zl(t, table, "limits", "plan", "-f", worse)
	assert.Equal(t, exitError, r.code)
	assert.Equal(t, []string{
		worse + `:4: resources.gpt-4.limits.rpm.capacity: must be a positive whole number, got "x"`,
		worse + `:5: resources.gpt-4.limits.tpm.capacity: must be a positive whole number, got "y"`,
		"Error: " + worse + ": 2 problems (listed above); nothing was sent",
	}, lines(r.errOut))
	assert.Empty(t, r.out)
}

// The function is the default path: without one, the message says what to do.
func TestLimitsWithoutFunction(t *testing.T) {
	table, _ := freshTable(t)
	file := writeFile(t, "ok.yaml", "resources: {gpt-4: {limits: {rpm: 5}}}\n")
	r := zl(t, table, "limits", "plan", "-f", file)
	assert.Equal(t, exitError, r.code, r.errOut)
	assert.Contains(t, r.errOut, "-provisioner")
	assert.Empty(t, r.out)
}

func TestLimitsCFNTemplate(t *testing.T) {
	file := writeFile(t, "limits.yaml", seedManifest)
	env, out, errw := testEnv(false)
	code := run(t.Context(), []string{"limits", "cfn-template", "-n", "my-app", "-f", file, "--endpoint-url", "http://127.0.0.1:1"}, env)
	require.Equal(t, exitOK, code, errw.String())
	assert.Empty(t, errw.String())
	var doc struct {
		Resources map[string]struct {
			Type       string         `yaml:"Type"`
			Properties map[string]any `yaml:"Properties"`
		} `yaml:"Resources"`
	}
	require.NoError(t, yaml.Unmarshal(out.Bytes(), &doc))
	res := doc.Resources["TenantLimits"]
	assert.Equal(t, "Custom::ZaeLimiterLimits", res.Type)
	assert.Equal(t, "my-app", res.Properties["TableName"])
	assert.Equal(t, "default", res.Properties["Namespace"])
	assert.Contains(t, out.String(), "ServiceToken: !ImportValue my-app-ProvisionerArn\n")
	assert.Contains(t, out.String(), "                rpm:\n                  Capacity: 20\n                  RefillAmount: 10\n                  RefillPeriod: 60\n",
		"every limit written out in full")

	cfnLint, err := exec.LookPath("cfn-lint")
	if err != nil {
		t.Skip("cfn-lint not installed: the template is not linted")
	}
	tpl := writeFile(t, "limits-stack.yaml", out.String())
	lint, err := exec.Command(cfnLint, "--", tpl).CombinedOutput()
	assert.NoError(t, err, "cfn-lint:\n%s", lint)
}
