package provision

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zeroae/zae-limiter-go/shared/ddblocal/ddbtest"
	"github.com/zeroae/zae-limiter-go/shared/dynamo"
	"github.com/zeroae/zae-limiter-go/shared/limits"
	"github.com/zeroae/zae-limiter-go/shared/manifest"
	"github.com/zeroae/zae-limiter-go/shared/store"
)

func TestMain(m *testing.M) { ddbtest.Main(m) }

// fixture is an engine on a fresh table whose client counts requests.
type fixture struct {
	t       *testing.T
	ctx     context.Context
	table   string
	db      *dynamodb.Client
	counter *dynamo.Counter
	eng     *Engine
}

func setup(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{t: t, ctx: context.Background(), table: ddbtest.NewTable(t), counter: &dynamo.Counter{}}
	f.db = dynamodb.NewFromConfig(ddbtest.Config(t), func(o *dynamodb.Options) {
		o.DisableValidateResponseChecksum = true
		o.APIOptions = append(o.APIOptions, f.counter.Install)
	})
	f.eng = &Engine{DB: f.db, Table: f.table}
	return f
}

func (f *fixture) parse(src string) *manifest.Manifest {
	f.t.Helper()
	m, err := manifest.Parse("test.yaml", []byte(src))
	require.NoError(f.t, err)
	return m
}

func (f *fixture) req(src string) Request {
	return Request{Manifest: f.parse(src), Namespace: "default", Principal: "ci@example.com"}
}

func (f *fixture) ns() *store.NS {
	f.t.Helper()
	ns, err := store.New(f.db, store.Options{Table: f.table, CacheTTL: -1}).Namespace(f.ctx, "default")
	require.NoError(f.t, err)
	return ns
}

// described renders changes as "+ entity u1/gpt-4" lines for compact checks.
func described(cs []Change) []string {
	sym := map[string]string{ActionCreate: "+", ActionUpdate: "~", ActionDelete: "-"}
	out := []string{}
	for _, c := range cs {
		out = append(out, strings.TrimSpace(sym[c.Action]+" "+c.Level+" "+c.Target.String()))
	}
	return out
}

const seed = `
namespace: default
system:
  on_unavailable: block
  limits: {rpm: {capacity: 1000}, tpm: {capacity: 100000}}
resources:
  gpt-4: {limits: {rpm: {capacity: 500}, tpm: {capacity: 50000}}}
  gpt-3.5-turbo: {limits: {rpm: {capacity: 2000}, tpm: {capacity: 500000}}}
entities:
  user-premium: {resources: {gpt-4: {limits: {rpm: {capacity: 1000}, tpm: {capacity: 100000}}}}}
  user-basic: {resources: {gpt-4: {limits: {rpm: 10}}}}
`

// The "Done when" list, on the engine.
func TestPlanApplyCycle(t *testing.T) {
	f := setup(t)
	ctx := f.ctx

	// A namespace never registered plans every item as a create and
	// registers nothing.
	res, err := f.eng.Plan(ctx, f.req(seed))
	require.NoError(t, err)
	assert.Equal(t, []string{"+ system", "+ resource gpt-3.5-turbo", "+ resource gpt-4",
		"+ entity user-basic/gpt-4", "+ entity user-premium/gpt-4"}, described(res.Changes))
	_, err = store.New(f.db, store.Options{Table: f.table}).Namespace(ctx, "default")
	assert.ErrorIs(t, err, limits.ErrNotFound, "plan registers nothing")

	res, err = f.eng.Apply(ctx, f.req(seed))
	require.NoError(t, err)
	assert.Empty(t, res.Errors)
	assert.Equal(t, [3]int{5, 0, 0}, [3]int{res.Created, res.Updated, res.Deleted})
	ns := f.ns()
	sys, err := ns.GetSystemDefaults(ctx)
	require.NoError(t, err)
	assert.Equal(t, store.SystemDefaults{OnUnavailable: limits.Block,
		Limits: []limits.Limit{limits.PerMinute("rpm", 1000, 0), limits.PerMinute("tpm", 100000, 0)}}, sys)
	got, err := ns.GetLimits(ctx, "user-basic", "gpt-4")
	require.NoError(t, err)
	assert.Equal(t, []limits.Limit{limits.PerMinute("rpm", 10, 0)}, got)
	// Written like the imperative commands: audited, registered.
	evs, err := ns.AuditEvents(ctx, "user-basic", 0, "")
	require.NoError(t, err)
	require.Len(t, evs, 1)
	assert.Equal(t, store.ActionLimitsSet, evs[0].Action)
	assert.Equal(t, "ci@example.com", evs[0].Principal)
	resources, err := ns.ListResources(ctx)
	require.NoError(t, err)
	assert.Equal(t, []string{"gpt-3.5-turbo", "gpt-4"}, resources)
	users, err := ns.EntitiesWithCustomLimits(ctx, "gpt-4")
	require.NoError(t, err)
	assert.Equal(t, []string{"user-basic", "user-premium"}, users)

	// Unchanged: no changes, and nothing written.
	f.counter.Reset()
	res, err = f.eng.Apply(ctx, f.req(seed))
	require.NoError(t, err)
	assert.Empty(t, res.Changes)
	assert.Equal(t, map[string]int64{"GetItem": 2}, f.counter.Snapshot(),
		"a re-apply reads the namespace and the record, and writes nothing")

	// A hand-set item outside the manifest, and a hand edit of a managed one.
	require.NoError(t, ns.SetLimits(ctx, "user-manual", "gpt-4", []limits.Limit{limits.PerMinute("rpm", 7, 0)}))
	require.NoError(t, ns.SetResourceDefaults(ctx, "gpt-4", []limits.Limit{limits.PerMinute("rpm", 1, 0)}))
	res, err = f.eng.Plan(ctx, f.req(seed))
	require.NoError(t, err)
	assert.Empty(t, res.Changes, "plan trusts the record: it cannot see hand edits")
	res, err = f.eng.Diff(ctx, f.req(seed))
	require.NoError(t, err)
	assert.Equal(t, []string{"~ resource gpt-4"}, described(res.Changes), "diff reads the live items")

	// A changed file plans exactly the changed items; a dropped entity is deleted.
	changed := strings.Replace(seed, "rpm: 10}", "rpm: 20}", 1)
	changed = strings.Replace(changed, "  user-premium: {resources: {gpt-4: {limits: {rpm: {capacity: 1000}, tpm: {capacity: 100000}}}}}\n", "", 1)
	res, err = f.eng.Plan(ctx, f.req(changed))
	require.NoError(t, err)
	assert.Equal(t, []string{"~ entity user-basic/gpt-4", "- entity user-premium/gpt-4"}, described(res.Changes))
	res, err = f.eng.Apply(ctx, f.req(changed))
	require.NoError(t, err)
	assert.Equal(t, [3]int{0, 1, 1}, [3]int{res.Created, res.Updated, res.Deleted})
	_, err = ns.GetLimits(ctx, "user-premium", "gpt-4")
	assert.ErrorIs(t, err, limits.ErrNotFound)
	got, err = ns.GetLimits(ctx, "user-manual", "gpt-4")
	require.NoError(t, err, "an item never in a manifest is never touched")
	assert.Equal(t, []limits.Limit{limits.PerMinute("rpm", 7, 0)}, got)
	res, err = f.eng.Diff(ctx, f.req(changed))
	require.NoError(t, err)
	assert.Equal(t, []string{"~ resource gpt-4"}, described(res.Changes), "the hand edit is still drift")

	// An empty manifest deletes everything managed, and only that.
	res, err = f.eng.Apply(ctx, f.req("namespace: default"))
	require.NoError(t, err)
	assert.Equal(t, 4, res.Deleted)
	_, err = ns.GetSystemDefaults(ctx)
	assert.ErrorIs(t, err, limits.ErrNotFound)
	_, err = ns.GetLimits(ctx, "user-manual", "gpt-4")
	assert.NoError(t, err)
}

// failingAdmin fails the calls on the listed entities.
type failingAdmin struct {
	Admin
	fail map[string]bool
}

var errInjected = errors.New("injected failure")

func (a failingAdmin) SetLimits(ctx context.Context, e, r string, ls []limits.Limit) error {
	if a.fail[e] {
		return errInjected
	}
	return a.Admin.SetLimits(ctx, e, r, ls)
}

func (a failingAdmin) DeleteLimits(ctx context.Context, e, r string) error {
	if a.fail[e] {
		return errInjected
	}
	return a.Admin.DeleteLimits(ctx, e, r)
}

// A partially failed apply records only what landed and says what did not.
func TestPartialApply(t *testing.T) {
	f := setup(t)
	fail := map[string]bool{"u2": true}
	f.eng.wrap = func(a Admin) Admin { return failingAdmin{Admin: a, fail: fail} }
	src := "entities:\n  u1: {resources: {r: {limits: {rpm: 1}}}}\n  u2: {resources: {r: {limits: {rpm: 2}}}}\n"
	res, err := f.eng.Apply(f.ctx, f.req(src))
	require.NoError(t, err)
	assert.Equal(t, 1, res.Created)
	assert.Equal(t, []string{"create entity u2/r: injected failure"}, res.Errors)
	res, err = f.eng.Plan(f.ctx, f.req(src))
	require.NoError(t, err)
	assert.Equal(t, []string{"+ entity u2/r"}, described(res.Changes), "the failed create is not recorded")

	delete(fail, "u2")
	res, err = f.eng.Apply(f.ctx, f.req(src))
	require.NoError(t, err)
	assert.Equal(t, 1, res.Created)

	// A failed delete stays managed: the next apply deletes it.
	fail["u1"] = true
	res, err = f.eng.Apply(f.ctx, f.req("entities: {}"))
	require.NoError(t, err)
	assert.Equal(t, 1, res.Deleted)
	assert.Equal(t, []string{"delete entity u1/r: injected failure"}, res.Errors)
	res, err = f.eng.Plan(f.ctx, f.req("entities: {}"))
	require.NoError(t, err)
	assert.Equal(t, []string{"- entity u1/r"}, described(res.Changes))

	// Every change failing writes no record and releases the lock.
	f.counter.Reset()
	res, err = f.eng.Apply(f.ctx, f.req("entities: {}"))
	require.NoError(t, err)
	assert.Len(t, res.Errors, 1)
	res, err = f.eng.Plan(f.ctx, f.req("entities: {}"))
	require.NoError(t, err)
	assert.Len(t, res.Changes, 1)
	delete(fail, "u1")
	res, err = f.eng.Apply(f.ctx, f.req("entities: {}"))
	require.NoError(t, err, "the lock was released")
	assert.Equal(t, 1, res.Deleted)
}

// A delete of an item removed by hand meanwhile succeeds.
func TestApplyDeleteOfWhatIsGone(t *testing.T) {
	f := setup(t)
	_, err := f.eng.Apply(f.ctx, f.req("resources: {r: {limits: {rpm: 1}}}"))
	require.NoError(t, err)
	require.NoError(t, f.ns().DeleteResourceDefaults(f.ctx, "r"))
	res, err := f.eng.Apply(f.ctx, f.req("resources: {}"))
	require.NoError(t, err)
	assert.Empty(t, res.Errors)
	assert.Equal(t, 1, res.Deleted)
}

// The system level manages only what the file gives: a policy alone keeps
// the stored limits.
func TestSystemPolicyOnly(t *testing.T) {
	f := setup(t)
	_, err := f.eng.Apply(f.ctx, f.req("resources: {r: {limits: {rpm: 1}}}"))
	require.NoError(t, err)
	ns := f.ns()
	require.NoError(t, ns.SetSystemDefaults(f.ctx, []limits.Limit{limits.PerMinute("rpm", 5, 0)}, ""))
	src := "system: {on_unavailable: allow}\nresources: {r: {limits: {rpm: 1}}}"
	res, err := f.eng.Apply(f.ctx, f.req(src))
	require.NoError(t, err)
	assert.Equal(t, []string{"+ system"}, described(res.Changes))
	sys, err := ns.GetSystemDefaults(f.ctx)
	require.NoError(t, err)
	assert.Equal(t, store.SystemDefaults{OnUnavailable: limits.Allow, Limits: []limits.Limit{limits.PerMinute("rpm", 5, 0)}}, sys)
	res, err = f.eng.Diff(f.ctx, f.req(src))
	require.NoError(t, err)
	assert.Empty(t, res.Changes, "the unmanaged system limits are no drift")
}

func TestConcurrentApplies(t *testing.T) {
	f := setup(t)
	var wg sync.WaitGroup
	results := make([]*Result, 4)
	errs := make([]error, 4)
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			src := fmt.Sprintf("entities: {u%d: {resources: {r: {limits: {rpm: %d}}}}}", i, i+1)
			results[i], errs[i] = f.eng.Apply(f.ctx, f.req(src))
		}()
	}
	wg.Wait()
	applied := 0
	for i := range 4 {
		var busy *BusyError
		switch {
		case errs[i] == nil:
			applied++
			assert.Empty(t, results[i].Errors)
		case errors.As(errs[i], &busy):
			assert.Contains(t, busy.Error(), "another apply to namespace \"default\" is in progress")
		default:
			t.Errorf("apply %d: %v", i, errs[i])
		}
	}
	require.Positive(t, applied)
	// The record is whole: a plan of one of the manifests is consistent.
	rec, _, err := f.eng.records(f.ns().ID).read(f.ctx)
	require.NoError(t, err)
	assert.Len(t, rec.Entries, 1, "every apply replaced the whole managed set with its own")
}

// A lock whose time is up is taken over; one still valid is respected.
func TestLockExpiry(t *testing.T) {
	f := setup(t)
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	f.eng.Now = func() time.Time { return now }
	_, err := f.eng.Apply(f.ctx, f.req("resources: {r: {limits: {rpm: 1}}}"))
	require.NoError(t, err)
	rs := f.eng.records(f.ns().ID)
	require.NoError(t, rs.lock(f.ctx, "default", 1, "crashed-apply", now.Add(time.Minute)))
	_, err = f.eng.Apply(f.ctx, f.req("resources: {r: {limits: {rpm: 2}}}"))
	var busy *BusyError
	require.ErrorAs(t, err, &busy)
	now = now.Add(2 * time.Minute)
	res, err := f.eng.Apply(f.ctx, f.req("resources: {r: {limits: {rpm: 2}}}"))
	require.NoError(t, err, "the expired lock is taken over")
	assert.Equal(t, 1, res.Updated)
}
