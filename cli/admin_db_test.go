package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zeroae/zae-limiter-go/shared/ddblocal/ddbtest"
	"github.com/zeroae/zae-limiter-go/shared/limits"
	"github.com/zeroae/zae-limiter-go/shared/store"
)

// Behaviour tests: the CLI runs in process (Run) against DynamoDB Local,
// each test on its own table, and results are checked through the store.

type result struct {
	code        int
	out, errOut string
}

// zl runs the CLI against table on the test DynamoDB.
func zl(t *testing.T, table string, args ...string) result {
	t.Helper()
	args = append(args, "--endpoint-url", ddbtest.Endpoint(t), "-n", table)
	var out, errw bytes.Buffer
	code := Run(args, strings.NewReader(""), &out, &errw)
	return result{code, out.String(), errw.String()}
}

// ok runs the CLI and requires exit 0.
func ok(t *testing.T, table string, args ...string) result {
	t.Helper()
	r := zl(t, table, args...)
	require.Equal(t, exitOK, r.code, "%v: stderr %s", args, r.errOut)
	return r
}

// fails runs the CLI and requires exit code with one stderr line holding want.
func fails(t *testing.T, code int, want, table string, args ...string) {
	t.Helper()
	r := zl(t, table, args...)
	require.Equal(t, code, r.code, "%v: stderr %s", args, r.errOut)
	require.Len(t, lines(r.errOut), 1, "one line on stderr: %q", r.errOut)
	assert.Contains(t, r.errOut, want)
	assert.Empty(t, r.out)
}

func decode[T any](t *testing.T, s string) T {
	t.Helper()
	var v T
	require.NoError(t, json.Unmarshal([]byte(s), &v), s)
	return v
}

// freshTable is a fresh table; the CLI (no local up) finds it by -n.
func freshTable(t *testing.T) (string, *store.Store) {
	t.Helper()
	table := ddbtest.NewTable(t)
	return table, store.New(ddbtest.Client(t), store.Options{Table: table, CacheTTL: -1})
}

func ns(t *testing.T, st *store.Store, name string) *store.NS {
	t.Helper()
	n, err := st.Namespace(context.Background(), name)
	require.NoError(t, err)
	return n
}

// The seed's admin workflow, steps 2-4, verbatim plus --endpoint-url and -n.
func TestAdminWorkflow(t *testing.T) {
	table, st := freshTable(t)
	ok(t, table, "system", "set-defaults", "-l", "rpm:100", "-l", "tpm:10000", "--on-unavailable", "block")
	ok(t, table, "resource", "set-defaults", "gpt-4", "-l", "rpm:50", "-l", "tpm:100000")
	ok(t, table, "resource", "set-defaults", "gpt-3.5-turbo", "-l", "rpm:200", "-l", "tpm:500000")
	ok(t, table, "entity", "set-limits", "user-premium", "--resource", "gpt-4", "-l", "rpm:500", "-l", "tpm:500000")

	ctx := context.Background()
	d := ns(t, st, "default")
	sys, err := d.GetSystemDefaults(ctx)
	require.NoError(t, err)
	assert.Equal(t, store.SystemDefaults{Limits: []limits.Limit{
		limits.PerMinute("rpm", 100, 0), limits.PerMinute("tpm", 10000, 0)}, OnUnavailable: limits.Block}, sys)
	res, err := d.GetResourceDefaults(ctx, "gpt-3.5-turbo")
	require.NoError(t, err)
	assert.Equal(t, []limits.Limit{limits.PerMinute("rpm", 200, 0), limits.PerMinute("tpm", 500000, 0)}, res)
	ent, err := d.GetLimits(ctx, "user-premium", "gpt-4")
	require.NoError(t, err)
	assert.Equal(t, []limits.Limit{limits.PerMinute("rpm", 500, 0), limits.PerMinute("tpm", 500000, 0)}, ent)
	_, err = d.GetEntity(ctx, "user-premium")
	assert.ErrorIs(t, err, limits.ErrNotFound, "set-limits needs no entity record")

	// Table output: aligned, human-friendly, results on stdout only.
	assert.Equal(t, "LIMIT         ON UNAVAILABLE\nrpm: 100/min  block\ntpm: 10,000/min\n",
		ok(t, table, "system", "get-defaults").out)
	assert.Equal(t, "RESOURCE  LIMIT\ngpt-4     rpm: 50/min\n          tpm: 100,000/min\n",
		ok(t, table, "resource", "get-defaults", "gpt-4").out)
	assert.Equal(t, "RESOURCE\ngpt-3.5-turbo\ngpt-4\n", ok(t, table, "resource", "list").out)
	assert.Equal(t, "RESOURCE  LIMIT\ngpt-4     rpm: 500/min\n          tpm: 500,000/min\n",
		ok(t, table, "entity", "get-limits", "user-premium").out)

	// JSON output: one document on stdout.
	assert.JSONEq(t, `{"limits": [
		{"name": "rpm", "capacity": 100, "refill_amount": 100, "refill_period_seconds": 60},
		{"name": "tpm", "capacity": 10000, "refill_amount": 10000, "refill_period_seconds": 60}],
		"on_unavailable": "block"}`, ok(t, table, "system", "get-defaults", "-o", "json").out)
	assert.JSONEq(t, `{"resource": "gpt-4", "limits": [
		{"name": "rpm", "capacity": 50, "refill_amount": 50, "refill_period_seconds": 60},
		{"name": "tpm", "capacity": 100000, "refill_amount": 100000, "refill_period_seconds": 60}]}`,
		ok(t, table, "resource", "get-defaults", "gpt-4", "-o", "json").out)
	assert.JSONEq(t, `["gpt-3.5-turbo", "gpt-4"]`, ok(t, table, "resource", "list", "-o", "json").out)
	assert.JSONEq(t, `[{"entity_id": "user-premium", "resource": "gpt-4", "limits": [
		{"name": "rpm", "capacity": 500, "refill_amount": 500, "refill_period_seconds": 60},
		{"name": "tpm", "capacity": 500000, "refill_amount": 500000, "refill_period_seconds": 60}]}]`,
		ok(t, table, "entity", "get-limits", "user-premium", "-o", "json").out)
	assert.JSONEq(t, `{"entity_id": "user-premium", "resource": "gpt-4", "limits": [
		{"name": "rpm", "capacity": 500, "refill_amount": 500, "refill_period_seconds": 60},
		{"name": "tpm", "capacity": 500000, "refill_amount": 500000, "refill_period_seconds": 60}]}`,
		ok(t, table, "entity", "get-limits", "user-premium", "--resource", "gpt-4", "-o", "json").out)
}

// What set-defaults/set-limits write, get-defaults/get-limits read back, in
// both formats, including bursts and periods.
func TestLimitsRoundTrip(t *testing.T) {
	table, _ := freshTable(t)
	specs := []string{"-l", "rps:5/sec:20", "-l", "rp5m:100/5min", "-l", "tpd:1000000/day:1500000"}
	want := []limits.Limit{
		{Name: "rp5m", Capacity: 100, RefillAmount: 100, RefillPeriodSeconds: 300},
		limits.PerSecond("rps", 5, 20),
		limits.PerDay("tpd", 1000000, 1500000),
	}
	wantTable := "rp5m: 100/5min\nrps: 5/sec (burst 20)\ntpd: 1,000,000/day (burst 1,500,000)"

	ok(t, table, append([]string{"system", "set-defaults"}, specs...)...)
	sys := decode[systemDefaultsJSON](t, ok(t, table, "system", "get-defaults", "-o", "json").out)
	assert.Equal(t, want, sys.Limits)
	assert.Empty(t, sys.OnUnavailable, "no policy set yet")
	ok(t, table, "system", "set-defaults", "-l", "rpm:1", "--on-unavailable", "allow")
	ok(t, table, "system", "set-defaults", "-l", "rpm:2")
	sys = decode[systemDefaultsJSON](t, ok(t, table, "system", "get-defaults", "-o", "json").out)
	assert.Equal(t, systemDefaultsJSON{Limits: []limits.Limit{limits.PerMinute("rpm", 2, 0)}, OnUnavailable: "allow"}, sys,
		"set-defaults without --on-unavailable keeps the stored policy")
	ok(t, table, "system", "set-defaults", "--on-unavailable", "block")
	sys = decode[systemDefaultsJSON](t, ok(t, table, "system", "get-defaults", "-o", "json").out)
	assert.Equal(t, systemDefaultsJSON{Limits: []limits.Limit{limits.PerMinute("rpm", 2, 0)}, OnUnavailable: "block"}, sys,
		"set-defaults without -l keeps the stored limits")

	ok(t, table, append([]string{"resource", "set-defaults", "api/v1"}, specs...)...)
	res := decode[resourceDefaultsJSON](t, ok(t, table, "resource", "get-defaults", "api/v1", "-o", "json").out)
	assert.Equal(t, resourceDefaultsJSON{Resource: "api/v1", Limits: want}, res)
	assert.Contains(t, ok(t, table, "resource", "get-defaults", "api/v1").out, strings.ReplaceAll(wantTable, "\n", "\n          "))

	ok(t, table, append([]string{"entity", "set-limits", "key@acme", "-r", "api/v1"}, specs...)...)
	ok(t, table, "entity", "set-limits", "key@acme", "-l", "rpm:7")
	one := decode[entityLimitsJSON](t, ok(t, table, "entity", "get-limits", "key@acme", "-r", "api/v1", "-o", "json").out)
	assert.Equal(t, entityLimitsJSON{EntityID: "key@acme", Resource: "api/v1", Limits: want}, one)
	all := decode[[]entityLimitsJSON](t, ok(t, table, "entity", "get-limits", "key@acme", "-o", "json").out)
	assert.Equal(t, []entityLimitsJSON{
		{EntityID: "key@acme", Resource: "_default_", Limits: []limits.Limit{limits.PerMinute("rpm", 7, 0)}},
		{EntityID: "key@acme", Resource: "api/v1", Limits: want},
	}, all)

	// Deletes, with --yes, empty the reads again.
	ok(t, table, "entity", "delete-limits", "key@acme", "--resource", "api/v1", "--yes")
	assert.JSONEq(t, `{}`, ok(t, table, "entity", "get-limits", "key@acme", "-r", "api/v1", "-o", "json").out)
	ok(t, table, "resource", "delete-defaults", "api/v1", "-y")
	assert.JSONEq(t, `{}`, ok(t, table, "resource", "get-defaults", "api/v1", "-o", "json").out)
	ok(t, table, "system", "delete-defaults", "-y")
	assert.JSONEq(t, `{}`, ok(t, table, "system", "get-defaults", "-o", "json").out)
	// Deleting what is gone is a no-op.
	ok(t, table, "system", "delete-defaults", "-y")
}

// Reads that find nothing print an empty result and exit 0, before and
// after the default namespace exists; only show fails.
func TestEmptyReads(t *testing.T) {
	table, st := freshTable(t)
	check := func(t *testing.T) {
		for _, c := range []struct {
			args []string
			json string
		}{
			{[]string{"system", "get-defaults"}, `{}`},
			{[]string{"resource", "get-defaults", "gpt-4"}, `{}`},
			{[]string{"resource", "list"}, `[]`},
			{[]string{"entity", "list"}, `[]`},
			{[]string{"entity", "list", "--parent", "org"}, `[]`},
			{[]string{"entity", "get-limits", "nobody"}, `[]`},
			{[]string{"entity", "get-limits", "nobody", "--resource", "gpt-4"}, `{}`},
			{[]string{"audit", "list", "nobody"}, `[]`},
			{[]string{"namespace", "orphans"}, `[]`},
		} {
			r := ok(t, table, append(c.args, "-o", "json")...)
			assert.JSONEq(t, c.json, r.out, "%v", c.args)
			assert.Empty(t, r.errOut, "%v", c.args)
			r = ok(t, table, c.args...)
			assert.Empty(t, r.out, "%v: table output of nothing", c.args)
		}
		fails(t, exitError, `entity "nobody" not found in namespace "default"`, table, "entity", "show", "nobody")
		fails(t, exitError, `namespace "nope" not found`, table, "namespace", "show", "nope")
	}
	t.Run("no namespace yet", func(t *testing.T) {
		check(t)
		assert.JSONEq(t, `[]`, ok(t, table, "namespace", "list", "-o", "json").out)
		nss, err := st.ListNamespaces(context.Background())
		require.NoError(t, err)
		assert.Empty(t, nss, "reads register nothing")
	})
	t.Run("default registered", func(t *testing.T) {
		ok(t, table, "namespace", "register", "default")
		check(t)
	})
}

// Invalid input exits 1 with one line naming field and value, and writes
// nothing: not even the default namespace.
func TestInvalidInputWritesNothing(t *testing.T) {
	table, st := freshTable(t)
	fails(t, exitError, `invalid entity_id "user#1": must not contain '#'`, table, "entity", "create", "user#1")
	fails(t, exitError, `invalid entity_id "user#1"`, table, "entity", "set-limits", "user#1", "-l", "rpm:1")
	fails(t, exitError, `invalid limit "rpm100"`, table, "entity", "set-limits", "u1", "-l", "rpm100")
	fails(t, exitError, `invalid limit rpm rate "-5"`, table, "system", "set-defaults", "-l", "rpm:-5")
	fails(t, exitError, `invalid limit period "/fortnight"`, table, "resource", "set-defaults", "gpt-4", "-l", "rpm:5/fortnight")
	fails(t, exitError, `invalid resource "9lives"`, table, "resource", "set-defaults", "9lives", "-l", "rpm:5")
	fails(t, exitError, `invalid namespace "bad/ns"`, table, "entity", "create", "u1", "-N", "bad/ns")
	fails(t, exitError, `invalid principal "has space"`, table, "entity", "create", "u1", "--principal", "has space")
	many := []string{"entity", "set-limits", "u1"}
	acq := []string{"acquire", "u1", "gpt-4", "-c", "l0=1"}
	for i := range limits.MaxLimits + 1 {
		many = append(many, "-l", fmt.Sprintf("l%d:5", i))
		acq = append(acq, "-l", fmt.Sprintf("l%d:5", i))
	}
	fails(t, exitError, fmt.Sprintf("at most %d limits", limits.MaxLimits), table, many...)
	fails(t, exitError, fmt.Sprintf("at most %d limits", limits.MaxLimits), table, acq...)

	ctx := context.Background()
	nss, err := st.ListNamespaces(ctx)
	require.NoError(t, err)
	assert.Empty(t, nss, "nothing registered")
	assert.Zero(t, itemCount(t, table), "nothing written")
}

func itemCount(t *testing.T, table string) int {
	t.Helper()
	out, err := ddbtest.Client(t).Scan(context.Background(), &dynamodb.ScanInput{
		TableName: aws.String(table), Select: types.SelectCount})
	require.NoError(t, err)
	return int(out.Count)
}

func TestEntityLifecycle(t *testing.T) {
	table, st := freshTable(t)
	ctx := context.Background()
	ok(t, table, "entity", "create", "org-acme", "--display-name", "Acme Inc.", "--principal", "admin@acme")
	ok(t, table, "entity", "create", "key-1", "--parent", "org-acme", "--cascade")
	r := ok(t, table, "entity", "create", "key-2", "--parent", "org-acme")
	assert.NotContains(t, r.errOut, "does not exist")
	r = ok(t, table, "entity", "create", "key-3", "--parent", "org-typo")
	assert.Contains(t, r.errOut, `Note: parent "org-typo" does not exist (yet)`)
	ok(t, table, "entity", "delete", "key-3", "-y")

	// Duplicate: exit 1, one line, the record unchanged, no new audit event.
	fails(t, exitError, `entity_id "org-acme" already exists in namespace "default": nothing changed`, table, "entity", "create", "org-acme", "--display-name", "Other")
	e, err := ns(t, st, "default").GetEntity(ctx, "org-acme")
	require.NoError(t, err)
	assert.Equal(t, "Acme Inc.", e.Name)
	evs, err := ns(t, st, "default").AuditEvents(ctx, "org-acme", 10, "")
	require.NoError(t, err)
	assert.Len(t, evs, 1)

	shown := decode[entityJSON](t, ok(t, table, "entity", "show", "key-1", "-o", "json").out)
	assert.Equal(t, "key-1", shown.EntityID)
	assert.Equal(t, "org-acme", shown.ParentID)
	assert.True(t, shown.Cascade)
	assert.Regexp(t, `^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$`, shown.CreatedAt, "UTC timestamp")
	out := ok(t, table, "entity", "show", "org-acme").out
	assert.Regexp(t, `(?m)^Name:\s+Acme Inc\.$`, out)
	assert.Regexp(t, `(?m)^Parent:\s+-$`, out)

	list := decode[[]entityJSON](t, ok(t, table, "entity", "list", "-o", "json").out)
	require.Len(t, list, 3)
	assert.Equal(t, []string{"key-1", "key-2", "org-acme"}, []string{list[0].EntityID, list[1].EntityID, list[2].EntityID})
	children := decode[[]entityJSON](t, ok(t, table, "entity", "list", "--parent", "org-acme", "-o", "json").out)
	assert.Len(t, children, 2)
	tbl := lines(ok(t, table, "entity", "list").out)
	require.Len(t, tbl, 4)
	assert.Regexp(t, `^ENTITY\s+NAME\s+PARENT\s+CASCADE\s+CREATED$`, tbl[0])
	assert.Regexp(t, `^key-1\s+key-1\s+org-acme\s+true\s+\d{4}-`, tbl[1])

	// Delete without --yes and no terminal: usage error, nothing deleted.
	fails(t, exitUsage, "--yes is required", table, "entity", "delete", "key-2")
	_, err = ns(t, st, "default").GetEntity(ctx, "key-2")
	require.NoError(t, err)
	r = ok(t, table, "entity", "delete", "key-2", "--yes")
	assert.Empty(t, r.out)
	assert.Contains(t, r.errOut, `Deleted entity "key-2"`)
	_, err = ns(t, st, "default").GetEntity(ctx, "key-2")
	assert.ErrorIs(t, err, limits.ErrNotFound)
	fails(t, exitError, `entity "key-2" not found`, table, "entity", "show", "key-2")
}

func TestDeleteNeedsYes(t *testing.T) {
	table, st := freshTable(t)
	ctx := context.Background()
	ok(t, table, "system", "set-defaults", "-l", "rpm:1")
	ok(t, table, "resource", "set-defaults", "gpt-4", "-l", "rpm:1")
	ok(t, table, "entity", "set-limits", "u1", "-r", "gpt-4", "-l", "rpm:1")
	ok(t, table, "namespace", "register", "tenant-a")
	before := itemCount(t, table)

	fails(t, exitUsage, "--yes is required", table, "system", "delete-defaults")
	fails(t, exitUsage, "--yes is required", table, "resource", "delete-defaults", "gpt-4")
	fails(t, exitUsage, "--yes is required", table, "entity", "delete-limits", "u1", "--resource", "gpt-4")
	fails(t, exitUsage, "--yes is required", table, "entity", "delete", "u1")
	fails(t, exitUsage, "--yes is required", table, "namespace", "delete", "tenant-a")
	a, err := st.GetNamespace(ctx, "tenant-a")
	require.NoError(t, err)
	fails(t, exitUsage, "--yes is required", table, "namespace", "purge", a.ID)

	assert.Equal(t, before, itemCount(t, table), "nothing deleted")
}

func TestNamespaces(t *testing.T) {
	table, st := freshTable(t)
	ctx := context.Background()

	// Reads of a namespace never registered find nothing and register
	// nothing; a bad name is an error naming it.
	before := itemCount(t, table)
	r := ok(t, table, "-N", "tenant-a", "entity", "list", "-o", "json")
	assert.JSONEq(t, `[]`, r.out)
	assert.Contains(t, r.errOut, `Note: namespace "tenant-a" is not registered`)
	assert.JSONEq(t, `{}`, ok(t, table, "-N", "tenant-a", "system", "get-defaults", "-o", "json").out)
	assert.JSONEq(t, `[]`, ok(t, table, "-N", "tenant-a", "resource", "list", "-o", "json").out)
	fails(t, exitError, `entity "u1" not found`, table, "-N", "tenant-a", "entity", "show", "u1")
	fails(t, exitError, `invalid namespace "_"`, table, "-N", "_", "entity", "list")
	assert.Equal(t, before, itemCount(t, table), "reads register nothing")

	// The first write registers the namespace and says so on stderr.
	r = ok(t, table, "-N", "tenant-c", "system", "set-defaults", "-l", "rpm:5")
	assert.Contains(t, r.errOut, `Registered namespace "tenant-c"`)
	r = ok(t, table, "-N", "tenant-c", "system", "set-defaults", "-l", "rpm:6")
	assert.NotContains(t, r.errOut, "Registered")
	fails(t, exitError, `invalid namespace "_"`, table, "-N", "_", "system", "set-defaults", "-l", "rpm:5")

	r = ok(t, table, "namespace", "register", "tenant-a", "tenant-b")
	rows := lines(r.out)
	require.Len(t, rows, 3)
	assert.Regexp(t, `^tenant-a\s+\S{11}$`, rows[1])

	// Namespaces isolate.
	ok(t, table, "entity", "set-limits", "u1", "-l", "rpm:10", "-N", "tenant-a")
	ok(t, table, "-N", "tenant-b", "entity", "set-limits", "u1", "-l", "rpm:20")
	ok(t, table, "entity", "create", "u1", "-N", "tenant-a")
	assert.JSONEq(t, `[]`, ok(t, table, "entity", "get-limits", "u1", "-o", "json").out)
	assert.JSONEq(t, `[]`, ok(t, table, "entity", "list", "-o", "json").out)
	a := decode[[]entityLimitsJSON](t, ok(t, table, "entity", "get-limits", "u1", "-o", "json", "-N", "tenant-a").out)
	b := decode[[]entityLimitsJSON](t, ok(t, table, "entity", "get-limits", "u1", "-o", "json", "-N", "tenant-b").out)
	assert.Equal(t, int64(10), a[0].Limits[0].Capacity)
	assert.Equal(t, int64(20), b[0].Limits[0].Capacity)
	assert.Len(t, decode[[]entityJSON](t, ok(t, table, "entity", "list", "-o", "json", "-N", "tenant-a").out), 1)

	list := decode[[]namespaceJSON](t, ok(t, table, "namespace", "list", "-o", "json").out)
	require.Len(t, list, 3, "default was never written to")
	assert.Equal(t, "tenant-a", list[0].Name)
	shown := decode[namespaceJSON](t, ok(t, table, "namespace", "show", "tenant-a", "-o", "json").out)
	assert.Equal(t, list[0], shown)
	assert.Equal(t, "active", shown.Status)

	// Soft delete, recover, delete again, purge.
	ok(t, table, "namespace", "delete", "tenant-a", "--yes")
	fails(t, exitError, `namespace "tenant-a" not found`, table, "namespace", "show", "tenant-a")
	orphans := decode[[]namespaceJSON](t, ok(t, table, "namespace", "orphans", "-o", "json").out)
	require.Len(t, orphans, 1)
	assert.Equal(t, shown.ID, orphans[0].ID)
	assert.NotEmpty(t, orphans[0].DeletedAt)
	ok(t, table, "namespace", "recover", shown.ID)
	assert.Len(t, decode[[]entityLimitsJSON](t, ok(t, table, "entity", "get-limits", "u1", "-o", "json", "-N", "tenant-a").out), 1)
	fails(t, exitError, "namespace is active; delete it first", table, "namespace", "purge", shown.ID, "-y")
	ok(t, table, "namespace", "delete", "tenant-a", "-y")
	r = ok(t, table, "namespace", "purge", shown.ID, "-y")
	assert.Contains(t, r.errOut, "Purged namespace id "+shown.ID)
	assert.JSONEq(t, `[]`, ok(t, table, "namespace", "orphans", "-o", "json").out)
	fails(t, exitError, `namespace id "`+shown.ID+`" not found`, table, "namespace", "recover", shown.ID)

	// tenant-b is untouched.
	nb, err := st.Namespace(ctx, "tenant-b")
	require.NoError(t, err)
	ls, err := nb.GetLimits(ctx, "u1", limits.DefaultResource)
	require.NoError(t, err)
	assert.Equal(t, int64(20), ls[0].Capacity)
}

func TestAuditPrincipal(t *testing.T) {
	table, _ := freshTable(t)
	ok(t, table, "entity", "create", "u1", "--principal", "alice@example.com")
	ok(t, table, "entity", "set-limits", "u1", "-r", "gpt-4", "-l", "rpm:5", "--principal", "arn:aws:iam::123456789012:user/bob")
	t.Setenv(principalEnv, "carol")
	ok(t, table, "entity", "delete-limits", "u1", "-r", "gpt-4", "-y")
	ok(t, table, "resource", "set-defaults", "gpt-4", "-l", "rpm:5")
	t.Setenv(principalEnv, "")
	ok(t, table, "system", "set-defaults", "-l", "rpm:5") // custom endpoint: no STS, "unknown"

	evs := decode[[]auditEventJSON](t, ok(t, table, "audit", "list", "u1", "-o", "json").out)
	require.Len(t, evs, 3)
	assert.Equal(t, []string{"limits_deleted", "limits_set", "entity_created"}, []string{evs[0].Action, evs[1].Action, evs[2].Action})
	assert.Equal(t, []string{"carol", "arn:aws:iam::123456789012:user/bob", "alice@example.com"},
		[]string{evs[0].Principal, evs[1].Principal, evs[2].Principal})
	assert.Equal(t, "gpt-4", evs[1].Resource)
	assert.Regexp(t, `^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$`, evs[0].Timestamp)

	// Paging.
	page := decode[[]auditEventJSON](t, ok(t, table, "audit", "list", "u1", "--limit", "2", "-o", "json").out)
	require.Len(t, page, 2)
	r := ok(t, table, "audit", "list", "u1", "--limit", "2")
	assert.Contains(t, r.errOut, "--start-after "+page[1].EventID)
	rest := decode[[]auditEventJSON](t, ok(t, table, "audit", "list", "u1", "--start-after", page[1].EventID, "-o", "json").out)
	require.Len(t, rest, 1)
	assert.Equal(t, evs[2], rest[0])

	res := decode[[]auditEventJSON](t, ok(t, table, "audit", "list", "$RESOURCE:gpt-4", "-o", "json").out)
	require.Len(t, res, 1)
	assert.Equal(t, "carol", res[0].Principal)
	sys := decode[[]auditEventJSON](t, ok(t, table, "audit", "list", "$SYSTEM", "-o", "json").out)
	require.Len(t, sys, 1)
	assert.Equal(t, "unknown", sys[0].Principal)

	tbl := lines(ok(t, table, "audit", "list", "u1").out)
	require.Len(t, tbl, 4)
	assert.Regexp(t, `^TIMESTAMP\s+ACTION\s+PRINCIPAL\s+RESOURCE\s+EVENT ID\s+DETAILS$`, tbl[0])
	assert.Regexp(t, `^\S+Z\s+limits_deleted\s+carol\s+gpt-4\s+`+evs[0].EventID, tbl[1])
}

// Data commands never create a table: a missing one is one clear line.
func TestMissingTable(t *testing.T) {
	ep := ddbtest.Endpoint(t)
	table := "cli-missing-table"
	want := `table "cli-missing-table" not found at ` + ep + `: run 'zae-limiter local up' or 'zae-limiter deploy'`
	for _, args := range [][]string{
		{"entity", "list"},
		{"entity", "show", "u1"},
		{"system", "get-defaults", "-o", "json"},
		{"entity", "set-limits", "u1", "-l", "rpm:1"},
		{"entity", "create", "u1"},
		{"namespace", "list"},
		{"namespace", "register", "tenant-a"},
	} {
		fails(t, exitError, want, table, args...)
	}
	_, err := ddbtest.Client(t).DescribeTable(context.Background(), &dynamodb.DescribeTableInput{TableName: aws.String(table)})
	var rnf *types.ResourceNotFoundException
	assert.ErrorAs(t, err, &rnf, "no table was created")

	r := ok(t, table, "version")
	assert.Regexp(t, `(?m)^Client:\s+\S+$`, r.out)
	assert.Contains(t, r.out, "unreachable")
	assert.Contains(t, r.errOut, want)
}

func TestVersion(t *testing.T) {
	table, st := freshTable(t)
	v := decode[versionJSON](t, ok(t, table, "version", "-o", "json").out)
	assert.Equal(t, version(), v.CLI)
	require.NotNil(t, v.Table)
	assert.Empty(t, *v.Table, "not initialized")
	require.NoError(t, st.EnsureVersion(context.Background(), "test"))
	v = decode[versionJSON](t, ok(t, table, "version", "-o", "json").out)
	assert.Equal(t, "1.0.0", v.Table.SchemaVersion)
	assert.Equal(t, "test", v.Table.UpdatedBy)
	assert.Regexp(t, `(?m)^Table "\S+":\s+schema 1\.0\.0$`, ok(t, table, "version").out)
}

// On a terminal, destructive commands ask y/N; only yes deletes.
func TestConfirmPrompt(t *testing.T) {
	table, st := freshTable(t)
	ok(t, table, "resource", "set-defaults", "gpt-4", "-l", "rpm:1")
	ask := func(answer string) (int, string) {
		env, _, errw := testEnv(true)
		env.In = strings.NewReader(answer)
		code := run(t.Context(), []string{"resource", "delete-defaults", "gpt-4",
			"--endpoint-url", ddbtest.Endpoint(t), "-n", table}, env)
		return code, errw.String()
	}
	d := ns(t, st, "default")
	for _, answer := range []string{"\n", "n\n", "no\n", ""} {
		code, stderr := ask(answer)
		assert.Equal(t, exitError, code, stderr)
		assert.Contains(t, stderr, `Delete the defaults of resource "gpt-4"? [y/N]: Error: cancelled`)
		_, err := d.GetResourceDefaults(context.Background(), "gpt-4")
		require.NoError(t, err, "answer %q deleted", answer)
	}
	code, stderr := ask("y\n")
	assert.Equal(t, exitOK, code, stderr)
	_, err := d.GetResourceDefaults(context.Background(), "gpt-4")
	assert.ErrorIs(t, err, limits.ErrNotFound)
}
