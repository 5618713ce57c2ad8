package manifest

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/zeroae/zae-limiter-go/shared/limits"
)

func parseFile(t *testing.T, name string) (*Manifest, error) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	require.NoError(t, err)
	return Parse(name, data)
}

func TestParseSeed(t *testing.T) {
	m, err := parseFile(t, "seed.yaml")
	require.NoError(t, err)
	assert.Equal(t, "default", m.Namespace)
	assert.Equal(t, &System{OnUnavailable: limits.Block, Limits: []limits.Limit{
		limits.PerMinute("rpm", 1000, 0), limits.PerMinute("tpm", 100000, 0)}}, m.System)
	assert.Equal(t, map[string][]limits.Limit{
		"gpt-4":         {limits.PerMinute("rpm", 500, 0), limits.PerMinute("tpm", 50000, 0)},
		"gpt-3.5-turbo": {limits.PerMinute("rpm", 2000, 0), limits.PerMinute("tpm", 500000, 0)},
	}, m.Resources)
	assert.Equal(t, map[string]map[string][]limits.Limit{"user-premium": {"gpt-4": {
		limits.PerMinute("rpm", 1000, 0), limits.PerMinute("tpm", 100000, 0)}}}, m.Entities)

	var targets []string
	for _, it := range m.Items() {
		targets = append(targets, it.Level+":"+it.String())
	}
	assert.Equal(t, []string{"system:", "resource:gpt-3.5-turbo", "resource:gpt-4", "entity:user-premium/gpt-4"}, targets)
	assert.Equal(t, 4, m.Len())
}

func TestParseShorthandAndBurst(t *testing.T) {
	m, err := parseFile(t, "shorthand.yaml")
	require.NoError(t, err)
	assert.Equal(t, "", m.Namespace, "no namespace in the file")
	assert.Nil(t, m.System, "no system block: the system level is not managed")
	assert.Equal(t, []limits.Limit{limits.PerMinute("rpm", 100, 0), limits.PerMinute("tpm", 10000, 15000)},
		m.Resources["gpt-4"], "the shorthand through an alias")
	assert.Equal(t, []limits.Limit{
		{Name: "rph", Capacity: 150, RefillAmount: 100, RefillPeriodSeconds: 3600}, // burst: capacity refills, burst is the ceiling
		{Name: "rpm", Capacity: 1000, RefillAmount: 100, RefillPeriodSeconds: 6},
		{Name: "tpd", Capacity: 5000, RefillAmount: 5000, RefillPeriodSeconds: 2 * 86400}, // a quoted number
	}, m.Resources["claude"])
	assert.Equal(t, []limits.Limit{limits.PerSecond("rps", 5, 20)}, m.Entities["key-1"][limits.DefaultResource])
}

func TestParseCalendarShadow(t *testing.T) {
	m, err := parseFile(t, "beyond.yaml")
	require.NoError(t, err)
	rpm := limits.PerMinute("rpm", 500, 0)
	rpm.Shadow = true
	rpw := limits.PerCalendar("rpw", 50000, limits.CalendarWeek)
	rpw.Shadow = true
	assert.Equal(t, []limits.Limit{limits.PerCalendar("rpd", 10000, limits.CalendarDay), rpm, rpw,
		limits.PerCalendar("tpm", 5_000_000, limits.CalendarMonth)}, m.Resources["gpt-4"])

	// The hash sees them; items without them keep their hash.
	plain := Item{Target: ResourceTarget("r"), Limits: []limits.Limit{limits.PerMinute("rpm", 500, 0)}}
	shadowed := Item{Target: ResourceTarget("r"), Limits: []limits.Limit{rpm}}
	assert.Equal(t, "42df5ae183e294a4", plain.Hash(), "as before calendars and shadows: sha256(\"on=\\nrpm 500 500 60\\n\")")
	assert.NotEqual(t, plain.Hash(), shadowed.Hash())
	day := Item{Target: ResourceTarget("r"), Limits: []limits.Limit{limits.PerCalendar("q", 5, limits.CalendarDay)}}
	cont := Item{Target: ResourceTarget("r"), Limits: []limits.Limit{limits.PerDay("q", 5, 0)}}
	assert.NotEqual(t, day.Hash(), cont.Hash())

	// The CloudFormation template carries them (TestTemplateRoundTrip
	// parses it back).
	tpl, err := m.Template("limiter", "default")
	require.NoError(t, err)
	assert.Contains(t, string(tpl), "Calendar: month")
	assert.Contains(t, string(tpl), "Shadow: true")
}

// Each bad_*.yaml breaks one rule; the problem names the file, the line and
// the field, and no manifest is returned.
func TestParseBadFiles(t *testing.T) {
	tests := map[string]struct {
		line  int
		field string
		want  string
	}{
		"bad_duplicate_key.yaml":      {5, "resources.gpt-4.limits.rpm", "duplicate key (first at line 4)"},
		"bad_unknown_key.yaml":        {4, "resources.gpt-4.limits.rpm.capcity", "unknown field; want capacity, burst, refill_amount, refill_period, calendar or shadow"},
		"bad_fraction.yaml":           {4, "resources.gpt-4.limits.rpm.capacity", `must be a positive whole number, got "1.5"`},
		"bad_negative.yaml":           {4, "resources.gpt-4.limits.rpm.capacity", `must be a positive whole number, got "-5"`},
		"bad_not_a_number.yaml":       {4, "resources.gpt-4.limits.rpm.capacity", `got "abc"`},
		"bad_reserved_limit.yaml":     {4, "resources.gpt-4.limits.wcu", `limit name "wcu" is reserved`},
		"bad_reserved_namespace.yaml": {1, "namespace", `namespace "_" is reserved`},
		"bad_default_resource.yaml":   {2, "resources._default_", "must start with a letter"},
		"bad_entity_id.yaml":          {2, "entities.user#1", "must not contain '#'"},
		"bad_missing_capacity.yaml":   {4, "resources.gpt-4.limits.rpm.capacity", "is required"},
		"bad_empty_limits.yaml":       {3, "resources.gpt-4.limits", "give at least one limit"},
		"bad_on_unavailable.yaml":     {2, "system.on_unavailable", `must be block or allow, got "maybe"`},
		"bad_shorthand.yaml":          {4, "resources.gpt-4.limits.rpm", `"100/fortnight" is not a limit`},
		"bad_burst_and_refill.yaml":   {4, "resources.gpt-4.limits.rpm.burst", "not both"},
		"bad_zero_period.yaml":        {4, "resources.gpt-4.limits.rpm.refill_period", "must be a positive whole number"},
		"bad_not_a_mapping.yaml":      {1, "", "must be a mapping, got a list"},
		"bad_unknown_top.yaml":        {2, "resource", "unknown field; want namespace, system, resources or entities"},
		"bad_merge_key.yaml":          {5, "resources.gpt-4.limits", "merge keys (<<) are not supported"},
		"bad_entity_shape.yaml":       {3, "entities.u1.gpt-4", "unknown field; want resources"},
		"bad_two_documents.yaml":      {2, "", "more than one YAML document"},
		"bad_empty.yaml":              {0, "", "the manifest is empty"},
		"bad_syntax.yaml":             {0, "", "not valid YAML: line 3: did not find expected ','"},
		"bad_calendar.yaml":           {4, "resources.gpt-4.limits.tpm.calendar", `must be day, week or month, got "year"`},
		"bad_calendar_refill.yaml":    {4, "resources.gpt-4.limits.tpm.calendar", "a calendar quota holds capacity per period"},
		"bad_shadow.yaml":             {4, "resources.gpt-4.limits.rpm.shadow", `must be true or false, got "maybe"`},
	}
	files, err := filepath.Glob(filepath.Join("testdata", "bad_*.yaml"))
	require.NoError(t, err)
	require.Len(t, files, len(tests), "every bad_*.yaml has a case here")
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			m, err := parseFile(t, name)
			require.Error(t, err)
			assert.Nil(t, m)
			assert.ErrorIs(t, err, limits.ErrInvalid)
			var me *Error
			require.True(t, errors.As(err, &me))
			p := me.Problems[0]
			assert.Equal(t, name, p.File)
			assert.Equal(t, tt.line, p.Line, "line of %s", p)
			assert.Equal(t, tt.field, p.Field, "field of %s", p)
			assert.Contains(t, p.Reason, tt.want)
			assert.True(t, strings.HasPrefix(err.Error(), name+":"), err.Error())
		})
	}
}

func TestParseReportsEveryProblem(t *testing.T) {
	src := "resources:\n  gpt-4:\n    limits:\n      rpm: {capacity: x}\n      tpm: {capacity: y}\n  9bad: {limits: {rpm: 1}}\n"
	_, err := Parse("f.yaml", []byte(src))
	var me *Error
	require.True(t, errors.As(err, &me))
	require.Len(t, me.Problems, 3)
	assert.Equal(t, []int{4, 5, 6}, []int{me.Problems[0].Line, me.Problems[1].Line, me.Problems[2].Line})
	assert.Contains(t, err.Error(), "(and 2 more problems)")

	// A flood of problems stops at MaxProblems (plus one line saying so).
	var b strings.Builder
	b.WriteString("resources:\n  r:\n    limits:\n")
	for i := range 2 * MaxProblems {
		b.WriteString("      l" + strings.Repeat("x", i) + ": {capacity: bad}\n")
	}
	_, err = Parse("big.yaml", []byte(b.String()))
	require.True(t, errors.As(err, &me))
	assert.Len(t, me.Problems, MaxProblems+1)
	assert.Contains(t, me.Problems[MaxProblems].Reason, "stopped reading")
}

// An alias bomb (each level repeats the one below) is refused instead of
// expanding without bound.
func TestParseAliasBomb(t *testing.T) {
	defer func(n int) { maxNodes = n }(maxNodes)
	maxNodes = 100_000
	var b strings.Builder
	b.WriteString("x-m: &m {")
	for i := range 100 {
		b.WriteString(" l" + strconv.Itoa(i) + ": 1,")
	}
	b.WriteString("}\nx-r: &r {")
	for i := range 100 {
		b.WriteString(" r" + strconv.Itoa(i) + ": {limits: *m},")
	}
	b.WriteString("}\nentities: {")
	for i := range 100 {
		b.WriteString(" e" + strconv.Itoa(i) + ": {resources: *r},")
	}
	b.WriteString("}\n")
	_, err := Parse("bomb.yaml", []byte(b.String()))
	assert.ErrorContains(t, err, "expands to more than 100000 YAML nodes")
}

func TestCanonicalJSONRoundTrip(t *testing.T) {
	for _, f := range []string{"seed.yaml", "shorthand.yaml", "beyond.yaml"} {
		m, err := parseFile(t, f)
		require.NoError(t, err)
		b, err := json.Marshal(m)
		require.NoError(t, err)
		var back Manifest
		require.NoError(t, json.Unmarshal(b, &back), string(b))
		assert.Equal(t, m.Items(), back.Items(), f)
		assert.Equal(t, m.Namespace, back.Namespace)
		assert.Equal(t, m.Hash(), back.Hash())
	}
	// JSON input gets the same strict reading.
	var m Manifest
	err := json.Unmarshal([]byte(`{"resources": {"r": {"limits": {"rpm": {"capacity": 10, "capacity": 20}}}}}`), &m)
	assert.ErrorContains(t, err, "duplicate key")
}

func TestItemHashIsContent(t *testing.T) {
	a := Item{Target: ResourceTarget("a"), Limits: []limits.Limit{limits.PerMinute("rpm", 1, 0), limits.PerMinute("tpm", 2, 0)}}
	b := Item{Target: EntityTarget("e", "b"), Limits: []limits.Limit{limits.PerMinute("tpm", 2, 0), limits.PerMinute("rpm", 1, 0)}}
	assert.Equal(t, a.Hash(), b.Hash(), "order and target do not matter")
	assert.Len(t, a.Hash(), 16)
	c := b
	c.Limits = []limits.Limit{limits.PerMinute("tpm", 2, 0), limits.PerMinute("rpm", 1, 2)}
	assert.NotEqual(t, a.Hash(), c.Hash(), "a burst changes the content")
	sys := Item{Target: SystemTarget, Limits: a.Limits, OnUnavailable: limits.Allow}
	assert.NotEqual(t, a.Hash(), sys.Hash(), "the policy is content")
}

func TestWithNamespace(t *testing.T) {
	m := &Manifest{}
	ns, err := m.WithNamespace("tenant-a", true)
	require.NoError(t, err)
	assert.Equal(t, "tenant-a", ns)
	m.Namespace = "tenant-b"
	ns, err = m.WithNamespace("default", false)
	require.NoError(t, err)
	assert.Equal(t, "tenant-b", ns, "the file's namespace wins over the default -N")
	_, err = m.WithNamespace("tenant-a", true)
	assert.ErrorContains(t, err, `the manifest is for namespace "tenant-b"`)
}

// The template's properties read back (strings for numbers, as
// CloudFormation delivers them) into the same manifest.
func TestTemplateRoundTrip(t *testing.T) {
	for _, f := range []string{"seed.yaml", "shorthand.yaml", "beyond.yaml"} {
		m, err := parseFile(t, f)
		require.NoError(t, err)
		out, err := m.Template("my-app", "tenant-a")
		require.NoError(t, err)
		assert.Contains(t, string(out), "ServiceToken: !ImportValue my-app-ProvisionerArn")
		assert.Contains(t, string(out), "Type: "+ResourceType)

		var doc map[string]any
		require.NoError(t, yaml.Unmarshal(out, &doc))
		props := doc["Resources"].(map[string]any)[LogicalID].(map[string]any)["Properties"].(map[string]any)
		assert.Equal(t, "my-app", props[PropTableName])
		props = stringify(props).(map[string]any)
		props[PropServiceToken] = "arn:aws:lambda:us-east-1:123456789012:function:my-app-provisioner"
		back, err := ParseCFN(props)
		require.NoError(t, err)
		assert.Equal(t, "tenant-a", back.Namespace)
		assert.Equal(t, m.Items(), back.Items(), f)
	}
}

// stringify turns every number into a string, as CloudFormation does.
func stringify(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = stringify(e)
		}
		return x
	case int:
		return strconv.Itoa(x)
	}
	return v
}

func TestParseCFNProblems(t *testing.T) {
	_, err := ParseCFN(map[string]any{
		"ServiceToken": "arn:x", "TableName": "t", "Namespace": "default",
		"Resources": map[string]any{"gpt-4": map[string]any{"Limits": map[string]any{
			"rpm": map[string]any{"Capacity": "lots"}}}},
		"Entitys": map[string]any{},
	})
	var me *Error
	require.True(t, errors.As(err, &me))
	require.Len(t, me.Problems, 2)
	assert.Equal(t, "ResourceProperties: Entitys: unknown field; want Namespace, System, Resources, Entities, ServiceToken, ServiceTimeout or TableName",
		me.Problems[0].String())
	assert.Equal(t, `ResourceProperties: Resources.gpt-4.Limits.rpm.Capacity: must be a positive whole number, got "lots"`,
		me.Problems[1].String())
}
