package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zeroae/zae-limiter-go/shared/ddblocal/ddbtest"
	"github.com/zeroae/zae-limiter-go/shared/lambdarun"
	"github.com/zeroae/zae-limiter-go/shared/lambdarun/lambdatest"
	"github.com/zeroae/zae-limiter-go/shared/limits"
	"github.com/zeroae/zae-limiter-go/shared/provision"
	"github.com/zeroae/zae-limiter-go/shared/store"
	"github.com/zeroae/zae-limiter-go/shared/syncio"
)

func TestMain(m *testing.M) { ddbtest.Main(m) }

const eventsDir = "../../events/provisioner"

// stack is a table and the real bootstrap running against it.
type stack struct {
	table  string
	runner *lambdarun.Runner
	out    *syncio.Buffer
	st     *store.Store
}

func startStack(t *testing.T) *stack {
	t.Helper()
	s := &stack{table: ddbtest.NewTable(t)}
	s.st = store.New(ddbtest.Client(t), store.Options{Table: s.table, CacheTTL: -1})
	s.runner, s.out = lambdatest.Start(t, lambdarun.Options{
		Binary: lambdatest.Bootstrap(t, "."), FunctionName: s.table + "-provisioner", Timeout: 2 * time.Minute,
		Env: lambdatest.Env(t, s.table),
	})
	return s
}

func (s *stack) invoke(t *testing.T, payload []byte) lambdarun.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res, err := s.runner.Invoke(ctx, payload)
	require.NoError(t, err)
	return res
}

func (s *stack) ns(t *testing.T, name string) *store.NS {
	t.Helper()
	ns, err := s.st.Namespace(context.Background(), name)
	require.NoError(t, err)
	return ns
}

func readEvent(t *testing.T, name string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(eventsDir, name))
	require.NoError(t, err)
	var ev map[string]any
	require.NoError(t, json.Unmarshal(b, &ev), name)
	return ev
}

func marshal(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return b
}

// Every file in events/provisioner is read by a test: the CLI events here,
// the custom-resource events by TestCustomResource.
func TestEventFiles(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(eventsDir, "*.json"))
	require.NoError(t, err)
	var names []string
	for _, f := range files {
		names = append(names, filepath.Base(f))
	}
	assert.ElementsMatch(t, []string{"plan.json", "apply.json", "cfn-create.json", "cfn-update.json", "cfn-delete.json"}, names,
		"a new event needs a test here or in TestCustomResource")
}

func TestCLIEvents(t *testing.T) {
	s := startStack(t)
	res := s.invoke(t, marshal(t, readEvent(t, "plan.json")))
	require.Nil(t, res.Err, "%s", res.Payload)
	var plan provision.Response
	require.NoError(t, json.Unmarshal(res.Payload, &plan))
	assert.Equal(t, "planned", plan.Status)
	assert.Len(t, plan.Changes, 3)
	assert.JSONEq(t, `[{"action":"create","level":"system","target":null},
		{"action":"create","level":"resource","target":"gpt-4"},
		{"action":"create","level":"entity","target":"user-premium/gpt-4"}]`, string(marshal(t, plan.Changes)))

	res = s.invoke(t, marshal(t, readEvent(t, "apply.json")))
	require.Nil(t, res.Err, "%s", res.Payload)
	var applied map[string]any
	require.NoError(t, json.Unmarshal(res.Payload, &applied))
	assert.Equal(t, "applied", applied["status"])
	assert.Equal(t, 3.0, applied["created"])
	assert.Equal(t, []any{}, applied["errors"])
	ns := s.ns(t, "default")
	got, err := ns.GetLimits(context.Background(), "user-premium", "gpt-4")
	require.NoError(t, err)
	assert.Equal(t, []limits.Limit{limits.PerMinute("rpm", 1000, 0), limits.PerMinute("tpm", 100000, 0)}, got)
	evs, err := ns.AuditEvents(context.Background(), "user-premium", 0, "")
	require.NoError(t, err)
	require.Len(t, evs, 1)
	assert.Equal(t, "ci@example.com", evs[0].Principal, "the event's principal is the audit principal")

	// Again: no changes.
	res = s.invoke(t, marshal(t, readEvent(t, "apply.json")))
	require.NoError(t, json.Unmarshal(res.Payload, &applied))
	assert.Equal(t, []any{}, applied["changes"])

	// Without a principal, the function's own ARN is recorded.
	ev := readEvent(t, "apply.json")
	delete(ev, "principal")
	ev["manifest"].(map[string]any)["resources"].(map[string]any)["gpt-3.5"] = map[string]any{"limits": map[string]any{"rpm": 5}}
	res = s.invoke(t, marshal(t, ev))
	require.Nil(t, res.Err, "%s", res.Payload)
	evs, err = ns.AuditEvents(context.Background(), store.ResourceAuditID("gpt-3.5"), 0, "")
	require.NoError(t, err)
	require.Len(t, evs, 1)
	assert.Equal(t, "arn:aws:lambda:us-east-1:123456789012:function:"+s.table+"-provisioner", evs[0].Principal)

	// Function errors.
	for _, tt := range []struct{ payload, typ, msg string }{
		{`[1]`, provision.ErrorInvalidEvent, "not a JSON object"},
		{`{"action": "plan"}`, provision.ErrorInvalidEvent, "manifest is required"},
		{`{"action": "destroy", "manifest": {}}`, provision.ErrorInvalidEvent, `unknown action "destroy"`},
		{`{"action": "plan", "manifest": {}, "extra": 1}`, provision.ErrorInvalidEvent, `unknown field "extra"`},
		{`{"action": "plan", "manifest": {"resources": {"r": {"limits": {"wcu": 1}}}}}`, provision.ErrorInvalidManifest,
			`manifest:1: resources.r.limits.wcu: limit name "wcu" is reserved`},
	} {
		res := s.invoke(t, []byte(tt.payload))
		require.NotNil(t, res.Err, tt.payload)
		assert.Equal(t, tt.typ, res.Err.Type, tt.payload)
		assert.Contains(t, res.Err.Message, tt.msg, tt.payload)
	}

	// Logs are JSON lines with the request id.
	found := false
	sc := bufio.NewScanner(strings.NewReader(s.out.String()))
	for sc.Scan() {
		var rec map[string]any
		if json.Unmarshal(sc.Bytes(), &rec) == nil && rec["message"] == "apply" && rec["requestId"] != nil {
			found = true
		}
	}
	assert.True(t, found, "a JSON log record of the apply with its request id")
}

// cfnResponses plays CloudFormation's pre-signed response URL: it records
// the body PUT to each path.
type cfnResponses struct {
	srv    *httptest.Server
	mu     sync.Mutex
	bodies map[string]map[string]any
}

func newCFNResponses(t *testing.T) *cfnResponses {
	c := &cfnResponses{bodies: map[string]map[string]any{}}
	c.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var body map[string]any
		if r.Method != http.MethodPut || r.Header.Get("Content-Type") != "" || json.Unmarshal(b, &body) != nil {
			t.Errorf("bad response upload: %s %s content-type %q: %s", r.Method, r.URL, r.Header.Get("Content-Type"), b)
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		c.mu.Lock()
		c.bodies[r.URL.Path] = body
		c.mu.Unlock()
	}))
	t.Cleanup(c.srv.Close)
	return c
}

// send invokes a custom-resource event (with its ResponseURL pointed here)
// and returns the body CloudFormation would have received.
func (c *cfnResponses) send(t *testing.T, s *stack, ev map[string]any) map[string]any {
	t.Helper()
	path := "/" + ev["RequestId"].(string)
	ev["ResponseURL"] = c.srv.URL + path + "?X-Amz-Signature=test"
	res := s.invoke(t, marshal(t, ev))
	require.Nil(t, res.Err, "%s", res.Payload)
	c.mu.Lock()
	defer c.mu.Unlock()
	body, ok := c.bodies[path]
	require.True(t, ok, "no response PUT for %s", path)
	assert.Equal(t, ev["StackId"], body["StackId"])
	assert.Equal(t, ev["RequestId"], body["RequestId"])
	assert.Equal(t, ev["LogicalResourceId"], body["LogicalResourceId"])
	assert.Less(t, len(marshal(t, body)), 4096, "CloudFormation's response limit")
	return body
}

// withTable points an event's properties at the test's table.
func withTable(ev map[string]any, table string) map[string]any {
	for _, k := range []string{"ResourceProperties", "OldResourceProperties"} {
		if p, ok := ev[k].(map[string]any); ok {
			p["TableName"] = table
		}
	}
	if _, ok := ev["PhysicalResourceId"]; ok {
		ev["PhysicalResourceId"] = provision.PhysicalID(table, "default")
	}
	return ev
}

// The custom resource end to end: the real bootstrap under the runner,
// DynamoDB Local, and a local server for the response URL.
func TestCustomResource(t *testing.T) {
	s := startStack(t)
	cf := newCFNResponses(t)
	ctx := context.Background()
	id := provision.PhysicalID(s.table, "default")

	body := cf.send(t, s, withTable(readEvent(t, "cfn-create.json"), s.table))
	assert.Equal(t, "SUCCESS", body["Status"], body["Reason"])
	assert.Equal(t, id, body["PhysicalResourceId"])
	assert.Equal(t, map[string]any{"Changes": 3.0, "Created": 3.0, "Updated": 0.0, "Deleted": 0.0, "Errors": 0.0}, body["Data"])
	ns := s.ns(t, "default")
	got, err := ns.GetResourceDefaults(ctx, "gpt-4")
	require.NoError(t, err)
	assert.Equal(t, []limits.Limit{limits.PerMinute("rpm", 500, 0), limits.PerMinute("tpm", 50000, 0)}, got,
		"string-typed property values parsed")
	evs, err := ns.AuditEvents(ctx, "user-premium", 0, "")
	require.NoError(t, err)
	require.Len(t, evs, 1)
	assert.Contains(t, evs[0].Principal, ":stack/limiter-limits/", "the stack is the audit principal")

	// An item set by hand is not the resource's to delete.
	require.NoError(t, ns.SetLimits(ctx, "user-manual", "gpt-4", []limits.Limit{limits.PerMinute("rpm", 3, 0)}))

	body = cf.send(t, s, withTable(readEvent(t, "cfn-update.json"), s.table))
	assert.Equal(t, "SUCCESS", body["Status"], body["Reason"])
	assert.Equal(t, id, body["PhysicalResourceId"], "stable across updates")
	assert.Equal(t, map[string]any{"Changes": 3.0, "Created": 1.0, "Updated": 1.0, "Deleted": 1.0, "Errors": 0.0}, body["Data"])
	got, err = ns.GetLimits(ctx, "user-basic", limits.DefaultResource)
	require.NoError(t, err)
	assert.Equal(t, []limits.Limit{limits.PerMinute("rpm", 20, 0)}, got)
	_, err = ns.GetLimits(ctx, "user-premium", "gpt-4")
	assert.ErrorIs(t, err, limits.ErrNotFound)

	// A bad property fails the update, naming it, and changes nothing.
	bad := withTable(readEvent(t, "cfn-update.json"), s.table)
	bad["RequestId"] = "bad-update"
	bad["ResourceProperties"].(map[string]any)["Resources"].(map[string]any)["gpt-4"].(map[string]any)["Limits"].(map[string]any)["rpm"].(map[string]any)["Capacity"] = "lots"
	body = cf.send(t, s, bad)
	assert.Equal(t, "FAILED", body["Status"])
	assert.Equal(t, id, body["PhysicalResourceId"], "a failed update keeps the physical id")
	assert.Contains(t, body["Reason"], `Resources.gpt-4.Limits.rpm.Capacity: must be a positive whole number, got "lots"`)
	got, err = ns.GetResourceDefaults(ctx, "gpt-4")
	require.NoError(t, err)
	assert.Equal(t, int64(600), got[0].Capacity)

	// Another table's resource is refused.
	wrong := readEvent(t, "cfn-create.json")
	wrong["RequestId"] = "wrong-table"
	body = cf.send(t, s, withTable(wrong, "other-table"))
	assert.Equal(t, "FAILED", body["Status"])
	assert.Equal(t, "wrong-table", body["PhysicalResourceId"], "no physical resource: the request id")
	assert.Contains(t, body["Reason"], `this provisioner serves table "`+s.table+`"`)
	// ... and its rollback's delete touches nothing.
	del := withTable(readEvent(t, "cfn-delete.json"), "other-table")
	del["RequestId"], del["PhysicalResourceId"] = "wrong-table-delete", "wrong-table"
	body = cf.send(t, s, del)
	assert.Equal(t, "SUCCESS", body["Status"], body["Reason"])

	body = cf.send(t, s, withTable(readEvent(t, "cfn-delete.json"), s.table))
	assert.Equal(t, "SUCCESS", body["Status"], body["Reason"])
	assert.Equal(t, id, body["PhysicalResourceId"])
	assert.Equal(t, 3.0, body["Data"].(map[string]any)["Deleted"])
	_, err = ns.GetSystemDefaults(ctx)
	assert.ErrorIs(t, err, limits.ErrNotFound)
	_, err = ns.GetResourceDefaults(ctx, "gpt-4")
	assert.ErrorIs(t, err, limits.ErrNotFound)
	got, err = ns.GetLimits(ctx, "user-manual", "gpt-4")
	require.NoError(t, err, "the hand-set item survives the delete")
	assert.Equal(t, int64(3), got[0].Capacity)

	// Deleting again, or in a namespace that is gone, succeeds.
	again := withTable(readEvent(t, "cfn-delete.json"), s.table)
	again["RequestId"] = "delete-again"
	assert.Equal(t, "SUCCESS", cf.send(t, s, again)["Status"])
	gone := withTable(readEvent(t, "cfn-delete.json"), s.table)
	gone["RequestId"] = "delete-gone"
	gone["ResourceProperties"].(map[string]any)["Namespace"] = "tenant-gone"
	gone["PhysicalResourceId"] = provision.PhysicalID(s.table, "tenant-gone")
	body = cf.send(t, s, gone)
	assert.Equal(t, "SUCCESS", body["Status"], body["Reason"])
	_, err = s.st.Namespace(ctx, "tenant-gone")
	assert.ErrorIs(t, err, limits.ErrNotFound, "a delete registers nothing")
}
