package streams

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
)

// Filter is a compiled Lambda event filter: the FilterCriteria patterns of
// a mapping, any of which admits a record. It implements the pattern syntax
// Lambda documents for event filtering: exact values (strings, numbers,
// booleans, null), prefix, suffix, equals-ignore-case, anything-but (values
// or a prefix), numeric comparisons and ranges, exists, and $or; a field
// absent from the record matches only {"exists": false}. Anything else is a
// compile error naming it.
type Filter struct{ patterns []node }

// node is a compiled pattern object.
type node struct {
	fields map[string]field
	or     []node
}

// field is either a nested pattern or a list of matchers for a leaf.
type field struct {
	sub      *node
	matchers []matcher
}

type matcher func(v any, present bool) bool

// CompileFilter compiles FilterCriteria patterns (JSON strings). No
// patterns admits everything.
func CompileFilter(patterns []string) (*Filter, error) {
	f := &Filter{}
	for i, p := range patterns {
		var m map[string]any
		if err := json.Unmarshal([]byte(p), &m); err != nil {
			return nil, fmt.Errorf("filter pattern %d: not a JSON object: %w", i+1, err)
		}
		n, err := compileNode(m, "")
		if err != nil {
			return nil, fmt.Errorf("filter pattern %d: %w", i+1, err)
		}
		f.patterns = append(f.patterns, n)
	}
	return f, nil
}

// Match reports whether a record (decoded JSON) passes the filter.
func (f *Filter) Match(record map[string]any) bool {
	if f == nil || len(f.patterns) == 0 {
		return true
	}
	for _, p := range f.patterns {
		if p.match(record) {
			return true
		}
	}
	return false
}

func compileNode(m map[string]any, at string) (node, error) {
	n := node{fields: map[string]field{}}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := m[k]
		path := strings.TrimPrefix(at+"."+k, ".")
		if k == "$or" {
			list, ok := v.([]any)
			if !ok || len(list) < 2 {
				return n, fmt.Errorf("%s: want a list of at least two patterns", path)
			}
			for _, e := range list {
				sm, ok := e.(map[string]any)
				if !ok {
					return n, fmt.Errorf("%s: want pattern objects", path)
				}
				sub, err := compileNode(sm, at)
				if err != nil {
					return n, err
				}
				n.or = append(n.or, sub)
			}
			continue
		}
		switch x := v.(type) {
		case map[string]any:
			sub, err := compileNode(x, path)
			if err != nil {
				return n, err
			}
			n.fields[k] = field{sub: &sub}
		case []any:
			if len(x) == 0 {
				return n, fmt.Errorf("%s: an empty list matches nothing", path)
			}
			var ms []matcher
			for _, e := range x {
				mt, err := compileMatcher(e, path)
				if err != nil {
					return n, err
				}
				ms = append(ms, mt)
			}
			n.fields[k] = field{matchers: ms}
		default:
			return n, fmt.Errorf("%s: want an object or a list of values, got %v", path, v)
		}
	}
	return n, nil
}

func (n node) match(rec map[string]any) bool {
	for k, f := range n.fields {
		v, present := rec[k]
		if f.sub != nil {
			sm, _ := v.(map[string]any)
			if !f.sub.match(sm) {
				return false
			}
			continue
		}
		if !matchLeaf(f.matchers, v, present) {
			return false
		}
	}
	if len(n.or) > 0 {
		for _, o := range n.or {
			if o.match(rec) {
				return true
			}
		}
		return false
	}
	return true
}

func matchLeaf(ms []matcher, v any, present bool) bool {
	vals := []any{v}
	if l, ok := v.([]any); ok && present {
		vals = l
	}
	for _, m := range ms {
		for _, x := range vals {
			if m(x, present) {
				return true
			}
		}
	}
	return false
}

func compileMatcher(e any, at string) (matcher, error) {
	switch x := e.(type) {
	case string, float64, bool, nil:
		return func(v any, present bool) bool { return present && v == x }, nil
	case map[string]any:
		if len(x) != 1 {
			return nil, fmt.Errorf("%s: a matcher object has exactly one operator, got %v", at, x)
		}
		for op, arg := range x {
			return compileOperator(op, arg, at)
		}
	}
	return nil, fmt.Errorf("%s: unsupported matcher %v", at, e)
}

func compileOperator(op string, arg any, at string) (matcher, error) {
	str := func() (string, error) {
		s, ok := arg.(string)
		if !ok {
			return "", fmt.Errorf("%s: %s wants a string", at, op)
		}
		return s, nil
	}
	switch op {
	case "prefix", "suffix", "equals-ignore-case":
		s, err := str()
		if err != nil {
			return nil, err
		}
		return func(v any, present bool) bool {
			vs, ok := v.(string)
			if !present || !ok {
				return false
			}
			switch op {
			case "prefix":
				return strings.HasPrefix(vs, s)
			case "suffix":
				return strings.HasSuffix(vs, s)
			default:
				return strings.EqualFold(vs, s)
			}
		}, nil
	case "exists":
		b, ok := arg.(bool)
		if !ok {
			return nil, fmt.Errorf("%s: exists wants true or false", at)
		}
		return func(_ any, present bool) bool { return present == b }, nil
	case "anything-but":
		inner, err := anythingBut(arg, at)
		if err != nil {
			return nil, err
		}
		return func(v any, present bool) bool { return present && !inner(v, present) }, nil
	case "numeric":
		return numeric(arg, at)
	}
	return nil, fmt.Errorf("%s: filter operator %q: %w", at, op, errUnsupportedFilter)
}

var errUnsupportedFilter = errors.New("not supported by the local stack")

func anythingBut(arg any, at string) (matcher, error) {
	switch x := arg.(type) {
	case []any:
		var ms []matcher
		for _, e := range x {
			m, err := compileMatcher(e, at)
			if err != nil {
				return nil, err
			}
			ms = append(ms, m)
		}
		return func(v any, p bool) bool {
			for _, m := range ms {
				if m(v, p) {
					return true
				}
			}
			return false
		}, nil
	case map[string]any:
		return compileMatcher(x, at)
	default:
		return compileMatcher(x, at)
	}
}

func numeric(arg any, at string) (matcher, error) {
	l, ok := arg.([]any)
	if !ok || (len(l) != 2 && len(l) != 4) {
		return nil, fmt.Errorf("%s: numeric wants [op, n] or [op, n, op, n]", at)
	}
	type cmp struct {
		op string
		n  float64
	}
	var cs []cmp
	for i := 0; i < len(l); i += 2 {
		op, ok1 := l[i].(string)
		n, ok2 := l[i+1].(float64)
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("%s: numeric wants operator strings and numbers", at)
		}
		switch op {
		case "=", "<", "<=", ">", ">=":
		default:
			return nil, fmt.Errorf("%s: numeric operator %q", at, op)
		}
		cs = append(cs, cmp{op, n})
	}
	return func(v any, present bool) bool {
		x, ok := v.(float64)
		if !present || !ok {
			return false
		}
		for _, c := range cs {
			var r bool
			switch c.op {
			case "=":
				r = x == c.n
			case "<":
				r = x < c.n
			case "<=":
				r = x <= c.n
			case ">":
				r = x > c.n
			case ">=":
				r = x >= c.n
			}
			if !r {
				return false
			}
		}
		return true
	}, nil
}
