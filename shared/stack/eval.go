package stack

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// The template's names (roles, policies, functions, alarms) are built by
// intrinsic functions from the stack name and parameters. evaluator works
// them out before deploying, so a name AWS would refuse (a role name over 64
// characters, say) is reported before any AWS call. It knows the intrinsics
// names are made of; anything else (a resource's attribute) is unknown.
type evaluator struct {
	t      *Template
	stack  string
	params map[string]string
	conds  map[string]bool
}

// unknown marks a value the evaluator cannot work out.
type unknown struct{}

// noValue is AWS::NoValue: the property is left out.
type noValue struct{}

var subVarRe = regexp.MustCompile(`\$\{([^}!][^}]*)\}`)

func (e *evaluator) value(v any) any {
	switch x := v.(type) {
	case string, float64, bool:
		return x
	case []any:
		out := make([]any, len(x))
		for i, el := range x {
			out[i] = e.value(el)
		}
		return out
	case map[string]any:
		if len(x) != 1 {
			return unknown{}
		}
		for k, arg := range x {
			return e.intrinsic(k, arg)
		}
	}
	return unknown{}
}

func (e *evaluator) intrinsic(name string, arg any) any {
	switch name {
	case "Ref":
		return e.ref(arg)
	case "Fn::Sub":
		return e.sub(arg)
	case "Fn::Join":
		l, ok := arg.([]any)
		if !ok || len(l) != 2 {
			return unknown{}
		}
		sep, ok1 := e.value(l[0]).(string)
		parts, ok2 := e.value(l[1]).([]any)
		if !ok1 || !ok2 {
			return unknown{}
		}
		strs := make([]string, len(parts))
		for i, p := range parts {
			s, ok := p.(string)
			if !ok {
				return unknown{}
			}
			strs[i] = s
		}
		return strings.Join(strs, sep)
	case "Fn::Split":
		l, ok := arg.([]any)
		if !ok || len(l) != 2 {
			return unknown{}
		}
		sep, ok1 := e.value(l[0]).(string)
		s, ok2 := e.value(l[1]).(string)
		if !ok1 || !ok2 {
			return unknown{}
		}
		var out []any
		for _, p := range strings.Split(s, sep) {
			out = append(out, p)
		}
		return out
	case "Fn::Select":
		l, ok := arg.([]any)
		if !ok || len(l) != 2 {
			return unknown{}
		}
		i, err := strconv.Atoi(scalar(e.value(l[0])))
		list, ok := e.value(l[1]).([]any)
		if err != nil || !ok || i < 0 || i >= len(list) {
			return unknown{}
		}
		return list[i]
	case "Fn::If":
		l, ok := arg.([]any)
		if !ok || len(l) != 3 {
			return unknown{}
		}
		c, ok := l[0].(string)
		if !ok {
			return unknown{}
		}
		b, known := e.condition(c)
		switch {
		case !known:
			return unknown{}
		case b:
			return e.value(l[1])
		default:
			return e.value(l[2])
		}
	}
	return unknown{}
}

func (e *evaluator) ref(arg any) any {
	name, _ := arg.(string)
	switch name {
	case "AWS::StackName":
		return e.stack
	case "AWS::NoValue":
		return noValue{}
	}
	if v, ok := e.params[name]; ok {
		return v
	}
	return unknown{}
}

func (e *evaluator) sub(arg any) any {
	tmpl, vars := "", map[string]any{}
	switch x := arg.(type) {
	case string:
		tmpl = x
	case []any:
		if len(x) != 2 {
			return unknown{}
		}
		tmpl, _ = x[0].(string)
		m, _ := x[1].(map[string]any)
		for k, v := range m {
			vars[k] = e.value(v)
		}
	default:
		return unknown{}
	}
	known := true
	out := subVarRe.ReplaceAllStringFunc(tmpl, func(m string) string {
		name := m[2 : len(m)-1]
		v, ok := vars[name]
		if !ok {
			v = e.ref(name)
		}
		s, ok := v.(string)
		if !ok {
			known = false
		}
		return s
	})
	if !known {
		return unknown{}
	}
	return strings.ReplaceAll(out, "${!", "${")
}

// condition evaluates a named condition; known is false when it depends on
// something the evaluator cannot work out.
func (e *evaluator) condition(name string) (value, known bool) {
	if b, ok := e.conds[name]; ok {
		return b, true
	}
	def, ok := e.t.conditions[name]
	if !ok {
		return false, false
	}
	b, known := e.cond(def)
	if known {
		if e.conds == nil {
			e.conds = map[string]bool{}
		}
		e.conds[name] = b
	}
	return b, known
}

func (e *evaluator) cond(v any) (bool, bool) {
	m, ok := v.(map[string]any)
	if !ok || len(m) != 1 {
		return false, false
	}
	for k, arg := range m {
		l, _ := arg.([]any)
		switch k {
		case "Condition":
			s, _ := arg.(string)
			return e.condition(s)
		case "Fn::Equals":
			if len(l) != 2 {
				return false, false
			}
			a, b := e.value(l[0]), e.value(l[1])
			if _, u := a.(unknown); u {
				return false, false
			}
			if _, u := b.(unknown); u {
				return false, false
			}
			return scalar(a) == scalar(b), true
		case "Fn::Not":
			if len(l) != 1 {
				return false, false
			}
			b, known := e.cond(l[0])
			return !b, known
		case "Fn::And", "Fn::Or":
			and := k == "Fn::And"
			result := and
			for _, c := range l {
				b, known := e.cond(c)
				if !known {
					return false, false
				}
				if and {
					result = result && b
				} else {
					result = result || b
				}
			}
			return result, true
		}
	}
	return false, false
}

// nameRule is a name AWS restricts: a resource type's property.
type nameRule struct {
	resourceType, property string
	max                    int
	pattern                *regexp.Regexp
}

var nameRules = []nameRule{
	{"AWS::IAM::Role", "RoleName", 64, regexp.MustCompile(`^[\w+=,.@-]+$`)},
	{"AWS::IAM::ManagedPolicy", "ManagedPolicyName", 128, regexp.MustCompile(`^[\w+=,.@-]+$`)},
	{"AWS::Lambda::Function", "FunctionName", 64, regexp.MustCompile(`^[A-Za-z0-9_-]+$`)},
	{"AWS::CloudWatch::Alarm", "AlarmName", 255, nil},
	{"AWS::CloudWatch::Dashboard", "DashboardName", 255, regexp.MustCompile(`^[A-Za-z0-9_-]+$`)},
	{"AWS::Logs::LogGroup", "LogGroupName", 512, nil},
	{"AWS::SQS::Queue", "QueueName", 80, regexp.MustCompile(`^[A-Za-z0-9_-]+$`)},
	{"AWS::Events::Rule", "Name", 64, regexp.MustCompile(`^[.\-_A-Za-z0-9]+$`)},
	{"AWS::DynamoDB::Table", "TableName", 255, regexp.MustCompile(`^[A-Za-z0-9_.-]{3,}$`)},
}

// checkNames works out every restricted name the stack would create with
// these parameter values and reports the first AWS would refuse.
func (t *Template) checkNames(stack string, params map[string]string) error {
	e := &evaluator{t: t, stack: stack, params: params}
	res, _ := t.doc["Resources"].(map[string]any)
	for _, id := range slices.Sorted(maps.Keys(res)) {
		r, _ := res[id].(map[string]any)
		if c, ok := r["Condition"].(string); ok {
			if b, known := e.condition(c); known && !b {
				continue
			}
		}
		props, _ := r["Properties"].(map[string]any)
		for _, rule := range nameRules {
			if r["Type"] != rule.resourceType {
				continue
			}
			v, ok := props[rule.property]
			if !ok {
				continue
			}
			name, ok := e.value(v).(string)
			if !ok {
				continue // unknown, or left out
			}
			switch {
			case len(name) > rule.max:
				return fmt.Errorf("%s %s would be %q, %d characters; AWS allows %d: use a shorter stack name or format",
					id, rule.property, name, len(name), rule.max)
			case rule.pattern != nil && !rule.pattern.MatchString(name):
				return fmt.Errorf("%s %s would be %q, which AWS refuses (allowed: %s)", id, rule.property, name, rule.pattern)
			}
		}
	}
	return nil
}
