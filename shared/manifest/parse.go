package manifest

import (
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/zeroae/zae-limiter-go/shared/limits"
)

// Problem is one thing wrong with a manifest.
type Problem struct {
	File   string
	Line   int    // 0 when unknown (CloudFormation properties)
	Field  string // the path of the field, e.g. resources.gpt-4.limits.rpm.capacity
	Reason string
}

func (p Problem) String() string {
	var b strings.Builder
	b.WriteString(p.File)
	if p.Line > 0 {
		b.WriteString(":" + strconv.Itoa(p.Line))
	}
	if p.Field != "" {
		b.WriteString(": " + p.Field)
	}
	b.WriteString(": " + p.Reason)
	return b.String()
}

// Error lists every problem found (up to MaxProblems).
type Error struct {
	Problems []Problem
}

// MaxProblems bounds the problems reported for one manifest.
const MaxProblems = 50

func (e *Error) Error() string {
	s := e.Problems[0].String()
	if n := len(e.Problems) - 1; n > 0 {
		s += fmt.Sprintf(" (and %d more problem%s)", n, plural(n))
	}
	return s
}

// Is makes errors.Is(err, limits.ErrInvalid) true.
func (e *Error) Is(target error) bool { return target == limits.ErrInvalid }

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// keys are the field names of one dialect: the file format (snake_case) or
// CloudFormation's properties (PascalCase).
type keys struct {
	namespace, system, onUnavailable, limits, resources, entities string
	capacity, burst, refillAmount, refillPeriod                   string
	calendar, shadow                                              string
	top                                                           []string // extra top-level keys that are accepted
}

var fileKeys = keys{
	namespace: "namespace", system: "system", onUnavailable: "on_unavailable", limits: "limits",
	resources: "resources", entities: "entities",
	capacity: "capacity", burst: "burst", refillAmount: "refill_amount", refillPeriod: "refill_period",
	calendar: "calendar", shadow: "shadow",
}

// Parse reads a manifest (YAML, or the same document as JSON); name is the
// file name used in problems.
func Parse(name string, data []byte) (*Manifest, error) {
	return parse(name, true, fileKeys, data)
}

func parse(name string, lines bool, k keys, data []byte) (*Manifest, error) {
	p := &parser{file: name, lines: lines, k: k}
	m := p.document(data)
	if len(p.problems) > 0 {
		return nil, &Error{Problems: p.problems}
	}
	return m, nil
}

// errTooMany stops the walk once MaxProblems are found.
var errTooMany = errors.New("too many problems")

type parser struct {
	file     string
	lines    bool
	k        keys
	problems []Problem
	nodes    int // nodes visited, aliases expanded: bounds alias bombs
}

// maxNodes bounds the nodes one manifest may expand to (aliases included).
var maxNodes = 5_000_000

func (p *parser) fail(n *yaml.Node, field, format string, a ...any) {
	if len(p.problems) >= MaxProblems {
		panic(errTooMany)
	}
	pr := Problem{File: p.file, Field: field, Reason: fmt.Sprintf(format, a...)}
	if p.lines && n != nil {
		pr.Line = n.Line
	}
	p.problems = append(p.problems, pr)
}

func (p *parser) document(data []byte) (m *Manifest) {
	defer func() {
		if r := recover(); r != nil {
			if r != errTooMany {
				panic(r)
			}
			p.problems = append(p.problems, Problem{File: p.file,
				Reason: fmt.Sprintf("more than %d problems; stopped reading", MaxProblems)})
		}
	}()
	var doc yaml.Node
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			p.fail(nil, "", "the manifest is empty")
		} else {
			p.fail(nil, "", "not valid YAML: %s", strings.TrimPrefix(err.Error(), "yaml: "))
		}
		return nil
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		p.fail(&extra, "", "more than one YAML document; a manifest is one document")
		return nil
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) > 0 {
		root = root.Content[0]
	}
	return p.top(root)
}

// resolve follows aliases, counting nodes.
func (p *parser) resolve(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	p.nodes++
	if p.nodes > maxNodes {
		p.fail(n, "", "the manifest expands to more than %d YAML nodes (aliases included)", maxNodes)
		panic(errTooMany)
	}
	return n
}

func isNull(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.Tag == "!!null" }

// entries walks a mapping, rejecting duplicate, non-string and merge keys,
// and calls fn for each key in file order. A null value walks as empty when
// nullOK. It reports false when n is not a mapping.
func (p *parser) entries(n *yaml.Node, field string, nullOK bool, fn func(key string, keyNode, val *yaml.Node)) bool {
	n = p.resolve(n)
	if isNull(n) && nullOK {
		return true
	}
	if n.Kind != yaml.MappingNode {
		p.fail(n, field, "must be a mapping, got %s", describe(n))
		return false
	}
	first := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		kn, vn := p.resolve(n.Content[i]), n.Content[i+1]
		if kn.Kind != yaml.ScalarNode || (kn.Tag != "!!str" && kn.Tag != "!!int" && kn.Tag != "!!merge") {
			p.fail(kn, field, "keys must be names, got %s", describe(kn))
			continue
		}
		if kn.Tag == "!!merge" {
			p.fail(kn, field, "merge keys (<<) are not supported; write the keys out (aliases are fine)")
			continue
		}
		if line, dup := first[kn.Value]; dup {
			p.fail(kn, join(field, kn.Value), "duplicate key (first at line %d)", line)
			continue
		}
		first[kn.Value] = kn.Line
		fn(kn.Value, kn, vn)
	}
	return true
}

func join(field, key string) string {
	if field == "" {
		return key
	}
	return field + "." + key
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	if isNull(n) {
		return "nothing (null)"
	}
	return strconv.Quote(n.Value)
}

func (p *parser) unknown(kn *yaml.Node, field, key string, want ...string) {
	p.fail(kn, join(field, key), "unknown field; want %s", orList(want))
}

func orList(s []string) string {
	switch len(s) {
	case 1:
		return s[0]
	case 2:
		return s[0] + " or " + s[1]
	}
	return strings.Join(s[:len(s)-1], ", ") + " or " + s[len(s)-1]
}

func (p *parser) top(root *yaml.Node) *Manifest {
	k := p.k
	m := &Manifest{Resources: map[string][]limits.Limit{}, Entities: map[string]map[string][]limits.Limit{}}
	want := append([]string{k.namespace, k.system, k.resources, k.entities}, k.top...)
	p.entries(root, "", false, func(key string, kn, vn *yaml.Node) {
		switch key {
		case k.namespace:
			if s, ok := p.str(vn, key); ok {
				if err := limits.ValidateNamespaceName(s); err != nil {
					p.validation(vn, key, err)
				}
				m.Namespace = s
			}
		case k.system:
			m.System = p.system(vn, key)
		case k.resources:
			p.entries(vn, key, true, func(res string, rk, rv *yaml.Node) {
				field := join(key, res)
				if err := limits.ValidateResource(res); err != nil {
					p.validation(rk, field, err)
					return
				}
				if ls, ok := p.level(rv, field); ok {
					m.Resources[res] = ls
				}
			})
		case k.entities:
			p.entries(vn, key, true, func(id string, ek, ev *yaml.Node) {
				p.entity(m, id, ek, ev, join(key, id))
			})
		default:
			if p.lines && strings.HasPrefix(key, "x-") {
				return // extension keys hold YAML anchors, as in docker compose
			}
			if !contains(k.top, key) {
				p.unknown(kn, "", key, want...)
			}
		}
	})
	return m
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

func (p *parser) entity(m *Manifest, id string, ek, ev *yaml.Node, field string) {
	k := p.k
	if err := limits.ValidateEntityID(id); err != nil {
		p.validation(ek, field, err)
		return
	}
	rs := map[string][]limits.Limit{}
	seen := false
	p.entries(ev, field, false, func(key string, kn, vn *yaml.Node) {
		if key != k.resources {
			p.unknown(kn, field, key, k.resources)
			return
		}
		seen = true
		rf := join(field, key)
		p.entries(vn, rf, false, func(res string, rk, rv *yaml.Node) {
			f := join(rf, res)
			if err := limits.ValidateConfigResource(res); err != nil {
				p.validation(rk, f, err)
				return
			}
			if ls, ok := p.level(rv, f); ok {
				rs[res] = ls
			}
		})
	})
	switch {
	case !seen && p.resolve(ev).Kind == yaml.MappingNode:
		p.fail(ek, field, "%s is required (the entity's limits per resource)", k.resources)
	case seen && len(rs) == 0 && len(p.problems) == 0:
		p.fail(ek, join(field, k.resources), "give at least one resource (or remove the entity)")
	}
	if len(rs) > 0 {
		m.Entities[id] = rs
	}
}

func (p *parser) system(n *yaml.Node, field string) *System {
	k := p.k
	s := &System{}
	p.entries(n, field, false, func(key string, kn, vn *yaml.Node) {
		f := join(field, key)
		switch key {
		case k.onUnavailable:
			if v, ok := p.str(vn, f); ok {
				on, err := limits.ParseOnUnavailable(v)
				if err != nil {
					p.fail(vn, f, "must be block or allow, got %q", v)
				}
				s.OnUnavailable = on
			}
		case k.limits:
			s.Limits, _ = p.limitSet(vn, f)
		default:
			p.unknown(kn, field, key, k.onUnavailable, k.limits)
		}
	})
	if s.Limits == nil && s.OnUnavailable == "" && len(p.problems) == 0 {
		p.fail(n, field, "give %s, %s or both (or remove %s to leave the system level alone)",
			k.onUnavailable, k.limits, field)
	}
	return s
}

// level reads {limits: {...}} of a resource or an entity's resource.
func (p *parser) level(n *yaml.Node, field string) ([]limits.Limit, bool) {
	k := p.k
	var out []limits.Limit
	found, ok := false, false
	if !p.entries(n, field, false, func(key string, kn, vn *yaml.Node) {
		if key != k.limits {
			p.unknown(kn, field, key, k.limits)
			return
		}
		found = true
		out, ok = p.limitSet(vn, join(field, key))
	}) {
		return nil, false
	}
	if !found {
		p.fail(n, field, "%s is required", k.limits)
	}
	return out, ok && found
}

// limitSet reads {name: decl, ...}; at least one limit.
func (p *parser) limitSet(n *yaml.Node, field string) ([]limits.Limit, bool) {
	out := []limits.Limit{}
	ok := true
	before := len(p.problems)
	p.entries(n, field, false, func(name string, kn, vn *yaml.Node) {
		f := join(field, name)
		if err := limits.ValidateLimitName(name); err != nil {
			p.validation(kn, f, err)
			ok = false
			return
		}
		if l, good := p.limit(name, vn, f); good {
			out = append(out, l)
		} else {
			ok = false
		}
	})
	if len(out) == 0 && len(p.problems) == before {
		p.fail(n, field, "give at least one limit")
		return nil, false
	}
	sortLimits(out)
	return out, ok && len(p.problems) == before
}

// limit reads one limit declaration: a mapping or the CLI shorthand.
func (p *parser) limit(name string, n *yaml.Node, field string) (limits.Limit, bool) {
	k := p.k
	n = p.resolve(n)
	if n.Kind == yaml.ScalarNode && !isNull(n) {
		// Digits may be grouped with _ (10_000), as in YAML numbers.
		l, err := limits.Parse(name + ":" + strings.ReplaceAll(n.Value, "_", ""))
		if err != nil {
			p.fail(n, field, "%q is not a limit: %s; write rate[/period][:burst] (e.g. 100/min:150) or a mapping with %s",
				n.Value, reason(err), k.capacity)
			return limits.Limit{}, false
		}
		return l, true
	}
	var capacity, burst, refill, period int64
	var hasBurst, hasRefill, shadow bool
	calendar := ""
	good := true
	num := func(vn *yaml.Node, f string) int64 {
		v, ok := p.count(vn, f)
		good = good && ok
		return v
	}
	if !p.entries(n, field, false, func(key string, kn, vn *yaml.Node) {
		f := join(field, key)
		switch key {
		case k.capacity:
			capacity = num(vn, f)
		case k.burst:
			burst, hasBurst = num(vn, f), true
		case k.refillAmount:
			refill, hasRefill = num(vn, f), true
		case k.refillPeriod:
			v, ok := p.period(vn, f)
			period, good = v, good && ok
		case k.calendar:
			v, ok := p.str(vn, f)
			if ok && limits.CalendarSeconds(v) == 0 {
				p.fail(vn, f, "must be day, week or month, got %q", v)
				ok = false
			}
			calendar, good = v, good && ok
		case k.shadow:
			v, ok := p.flag(vn, f)
			shadow, good = v, good && ok
		default:
			p.unknown(kn, field, key, k.capacity, k.burst, k.refillAmount, k.refillPeriod, k.calendar, k.shadow)
			good = false
		}
	}) {
		return limits.Limit{}, false
	}
	if capacity == 0 && good {
		p.fail(n, join(field, k.capacity), "is required (the bucket ceiling, in tokens)")
		return limits.Limit{}, false
	}
	if hasBurst && hasRefill {
		p.fail(n, join(field, k.burst), "give %s or %s, not both: with %s, %s is the amount refilled per period",
			k.burst, k.refillAmount, k.burst, k.capacity)
		return limits.Limit{}, false
	}
	if calendar != "" && (hasBurst || hasRefill || period > 0) {
		p.fail(n, join(field, k.calendar), "a calendar quota holds %s per period and refills it whole at each boundary: give no %s, %s or %s",
			k.capacity, k.burst, k.refillAmount, k.refillPeriod)
		return limits.Limit{}, false
	}
	if !good {
		return limits.Limit{}, false
	}
	l := limits.Limit{Name: name, Capacity: capacity, RefillAmount: capacity, RefillPeriodSeconds: 60, Shadow: shadow}
	if calendar != "" {
		l = limits.PerCalendar(name, capacity, calendar)
		l.Shadow = shadow
	}
	if hasRefill {
		l.RefillAmount = refill
	}
	if hasBurst {
		l.Capacity = burst
	}
	if period > 0 {
		l.RefillPeriodSeconds = period
	}
	if err := l.Validate(); err != nil {
		p.fail(n, field, "%s", reason(err))
		return limits.Limit{}, false
	}
	return l, true
}

var digitsRe = regexp.MustCompile(`^[0-9]+(_[0-9]+)*$`)

// count reads a positive whole number (digits, optionally grouped with _;
// a quoted one too: CloudFormation passes every value as a string).
func (p *parser) count(n *yaml.Node, field string) (int64, bool) {
	n = p.resolve(n)
	if n.Kind != yaml.ScalarNode || isNull(n) || (n.Tag != "!!int" && n.Tag != "!!str") || !digitsRe.MatchString(n.Value) {
		p.fail(n, field, "must be a positive whole number, got %s", describe(n))
		return 0, false
	}
	v, err := strconv.ParseInt(strings.ReplaceAll(n.Value, "_", ""), 10, 64)
	if err != nil || v <= 0 || v > limits.MaxTokens {
		p.fail(n, field, "must be a positive whole number up to %d, got %s", limits.MaxTokens, n.Value)
		return 0, false
	}
	return v, true
}

// period reads whole seconds or [N]sec|min|hour|day.
func (p *parser) period(n *yaml.Node, field string) (int64, bool) {
	n = p.resolve(n)
	if n.Kind == yaml.ScalarNode && !digitsRe.MatchString(n.Value) && n.Tag == "!!str" {
		s, err := limits.ParsePeriod(strings.TrimPrefix(n.Value, "/"))
		if err != nil {
			p.fail(n, field, "must be whole seconds or [N]sec|min|hour|day (e.g. 60 or 5min), got %q", n.Value)
			return 0, false
		}
		return s, true
	}
	v, ok := p.count(n, field)
	if ok && v > limits.MaxPeriodSeconds {
		p.fail(n, field, "must be at most %d seconds, got %d", limits.MaxPeriodSeconds, v)
		return 0, false
	}
	return v, ok
}

// flag reads true or false (quoted too: CloudFormation passes every value
// as a string).
func (p *parser) flag(n *yaml.Node, field string) (bool, bool) {
	n = p.resolve(n)
	if n.Kind == yaml.ScalarNode && (n.Tag == "!!bool" || n.Tag == "!!str") {
		switch n.Value {
		case "true":
			return true, true
		case "false":
			return false, true
		}
	}
	p.fail(n, field, "must be true or false, got %s", describe(n))
	return false, false
}

func (p *parser) str(n *yaml.Node, field string) (string, bool) {
	n = p.resolve(n)
	if n.Kind != yaml.ScalarNode || isNull(n) || n.Value == "" {
		p.fail(n, field, "must be a name, got %s", describe(n))
		return "", false
	}
	return n.Value, true
}

// validation records a *limits.ValidationError of a name.
func (p *parser) validation(n *yaml.Node, field string, err error) {
	p.fail(n, field, "%s", reason(err))
}

// reason renders a validation error without its "invalid" prefix.
func reason(err error) string {
	var ve *limits.ValidationError
	if errors.As(err, &ve) {
		if ve.Value == "" {
			return ve.Field + ": " + ve.Reason
		}
		return fmt.Sprintf("%s %q %s", ve.Field, ve.Value, ve.Reason)
	}
	return err.Error()
}
