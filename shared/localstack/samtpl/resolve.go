package samtpl

import (
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// Pseudo parameters of the local stack.
const (
	Region    = "us-east-1"
	AccountID = "123456789012"
	Partition = "aws"
)

// noValue stands for AWS::NoValue while resolving: the key or list element
// holding it is dropped.
type noValue struct{}

// resolver evaluates intrinsics against one stack.
type resolver struct {
	t      *Template
	params map[string]any // parameter values (defaults or overrides)
	conds  map[string]bool
	busy   map[string]bool // conditions being evaluated (cycle check)
}

// ResolveError names the intrinsic that could not be resolved and where.
type ResolveError struct {
	Path string // e.g. Resources.AcquireFunction.Properties.Environment
	Err  error
}

func (e *ResolveError) Error() string { return e.Path + ": " + e.Err.Error() }
func (e *ResolveError) Unwrap() error { return e.Err }

// ErrUnsupported is wrapped by errors about intrinsics the local stack does
// not resolve.
var ErrUnsupported = errors.New("not supported by the local stack")

func (r *resolver) resolve(path string, v any) (any, error) {
	out, err := r.eval(v)
	if err != nil {
		var re *ResolveError
		if errors.As(err, &re) {
			return nil, err
		}
		return nil, &ResolveError{Path: path, Err: err}
	}
	if _, ok := out.(noValue); ok {
		return nil, nil
	}
	return out, nil
}

func (r *resolver) eval(v any) (any, error) {
	switch x := v.(type) {
	case map[string]any:
		if len(x) == 1 {
			for k, arg := range x {
				if k == "Ref" || k == "Condition" || strings.HasPrefix(k, "Fn::") {
					return r.intrinsic(k, arg)
				}
			}
		}
		out := make(map[string]any, len(x))
		for k, e := range x {
			ev, err := r.eval(e)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", k, err)
			}
			if _, skip := ev.(noValue); !skip {
				out[k] = ev
			}
		}
		return out, nil
	case []any:
		out := make([]any, 0, len(x))
		for i, e := range x {
			ev, err := r.eval(e)
			if err != nil {
				return nil, fmt.Errorf("[%d]: %w", i, err)
			}
			if _, skip := ev.(noValue); !skip {
				out = append(out, ev)
			}
		}
		return out, nil
	default:
		return v, nil
	}
}

func (r *resolver) intrinsic(name string, arg any) (any, error) {
	switch name {
	case "Ref":
		s, ok := arg.(string)
		if !ok {
			return nil, fmt.Errorf("Ref: want a name, got %T", arg)
		}
		return r.ref(s)
	case "Condition":
		s, ok := arg.(string)
		if !ok {
			return nil, fmt.Errorf("Condition: want a name, got %T", arg)
		}
		return r.condition(s)
	case "Fn::Sub":
		return r.sub(arg)
	case "Fn::If":
		l, ok := arg.([]any)
		if !ok || len(l) != 3 {
			return nil, errors.New("Fn::If: want [condition, value if true, value if false]")
		}
		c, ok := l[0].(string)
		if !ok {
			return nil, errors.New("Fn::If: the condition must be a name")
		}
		b, err := r.condition(c)
		if err != nil {
			return nil, err
		}
		if b {
			return r.eval(l[1])
		}
		return r.eval(l[2])
	case "Fn::Equals", "Fn::Not", "Fn::And", "Fn::Or":
		return r.boolFn(name, arg)
	case "Fn::Join":
		l, ok := arg.([]any)
		if !ok || len(l) != 2 {
			return nil, errors.New("Fn::Join: want [delimiter, [values]]")
		}
		sep, _ := l[0].(string)
		vals, err := r.eval(l[1])
		if err != nil {
			return nil, err
		}
		list, ok := vals.([]any)
		if !ok {
			return nil, errors.New("Fn::Join: the values must be a list")
		}
		parts := make([]string, len(list))
		for i, e := range list {
			if parts[i], err = scalar(e); err != nil {
				return nil, fmt.Errorf("Fn::Join: %w", err)
			}
		}
		return strings.Join(parts, sep), nil
	case "Fn::Select":
		l, ok := arg.([]any)
		if !ok || len(l) != 2 {
			return nil, errors.New("Fn::Select: want [index, list]")
		}
		idx, err := r.eval(l[0])
		if err != nil {
			return nil, err
		}
		is, err := scalar(idx)
		if err != nil {
			return nil, fmt.Errorf("Fn::Select: %w", err)
		}
		i, err := strconv.Atoi(is)
		if err != nil {
			return nil, fmt.Errorf("Fn::Select: index %q", is)
		}
		vals, err := r.eval(l[1])
		if err != nil {
			return nil, err
		}
		list, ok := vals.([]any)
		if !ok || i < 0 || i >= len(list) {
			return nil, fmt.Errorf("Fn::Select: index %d out of range", i)
		}
		return list[i], nil
	case "Fn::Split":
		l, ok := arg.([]any)
		if !ok || len(l) != 2 {
			return nil, errors.New("Fn::Split: want [delimiter, string]")
		}
		sep, _ := l[0].(string)
		v, err := r.eval(l[1])
		if err != nil {
			return nil, err
		}
		s, err := scalar(v)
		if err != nil {
			return nil, fmt.Errorf("Fn::Split: %w", err)
		}
		var out []any
		for _, p := range strings.Split(s, sep) {
			out = append(out, p)
		}
		return out, nil
	case "Fn::FindInMap":
		l, ok := arg.([]any)
		if !ok || len(l) != 3 {
			return nil, errors.New("Fn::FindInMap: want [map, top-level key, second-level key]")
		}
		keys := make([]string, 3)
		for i, e := range l {
			v, err := r.eval(e)
			if err != nil {
				return nil, err
			}
			if keys[i], err = scalar(v); err != nil {
				return nil, fmt.Errorf("Fn::FindInMap: %w", err)
			}
		}
		m, _ := r.t.Mappings[keys[0]].(map[string]any)
		top, _ := m[keys[1]].(map[string]any)
		v, ok := top[keys[2]]
		if !ok {
			return nil, fmt.Errorf("Fn::FindInMap: no %s.%s.%s in Mappings", keys[0], keys[1], keys[2])
		}
		return v, nil
	case "Fn::GetAtt":
		res, attr, err := getAttArgs(arg)
		if err != nil {
			return nil, err
		}
		return r.getAtt(res, attr)
	default:
		return nil, fmt.Errorf("%s: %w", name, ErrUnsupported)
	}
}

func getAttArgs(arg any) (string, string, error) {
	switch a := arg.(type) {
	case string:
		res, attr, ok := strings.Cut(a, ".")
		if ok {
			return res, attr, nil
		}
	case []any:
		if len(a) == 2 {
			res, ok1 := a[0].(string)
			attr, ok2 := a[1].(string)
			if ok1 && ok2 {
				return res, attr, nil
			}
		}
	}
	return "", "", errors.New("Fn::GetAtt: want [resource, attribute]")
}

// scalar renders a resolved scalar as CloudFormation would in a string.
func scalar(v any) (string, error) {
	switch x := v.(type) {
	case string:
		return x, nil
	case bool:
		return strconv.FormatBool(x), nil
	case int:
		return strconv.Itoa(x), nil
	case int64:
		return strconv.FormatInt(x, 10), nil
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64), nil
	case nil:
		return "", errors.New("a null value where a string is needed")
	default:
		return "", fmt.Errorf("a %T where a string is needed", v)
	}
}

func (r *resolver) ref(name string) (any, error) {
	switch name {
	case "AWS::StackName":
		return r.t.stack, nil
	case "AWS::Region":
		return Region, nil
	case "AWS::AccountId":
		return AccountID, nil
	case "AWS::Partition":
		return Partition, nil
	case "AWS::URLSuffix":
		return "amazonaws.com", nil
	case "AWS::StackId":
		return "arn:aws:cloudformation:" + Region + ":" + AccountID + ":stack/" + r.t.stack + "/local", nil
	case "AWS::NotificationARNs":
		return []any{}, nil
	case "AWS::NoValue":
		return noValue{}, nil
	}
	if v, ok := r.params[name]; ok {
		return v, nil
	}
	if _, ok := r.t.Resources[name]; ok {
		return r.name(name)
	}
	return nil, fmt.Errorf("Ref %s: no such parameter or resource", name)
}

func (r *resolver) getAtt(res, attr string) (any, error) {
	rs, ok := r.t.Resources[res]
	if !ok {
		return nil, fmt.Errorf("Fn::GetAtt %s.%s: no such resource", res, attr)
	}
	name, err := r.name(res)
	if err != nil {
		return nil, err
	}
	switch rs.Type + "." + attr {
	case "AWS::DynamoDB::Table.Arn":
		return TableARN(name), nil
	case "AWS::DynamoDB::Table.StreamArn":
		return TableARN(name) + "/stream/local", nil
	case "AWS::Serverless::Function.Arn", "AWS::Lambda::Function.Arn":
		return FunctionARN(name), nil
	case "AWS::S3::Bucket.Arn":
		return "arn:aws:s3:::" + name, nil
	case "AWS::SQS::Queue.Arn":
		return "arn:aws:sqs:" + Region + ":" + AccountID + ":" + name, nil
	case "AWS::SQS::Queue.QueueName", "AWS::SNS::Topic.TopicName":
		return name, nil
	case "AWS::SNS::Topic.TopicArn":
		return "arn:aws:sns:" + Region + ":" + AccountID + ":" + name, nil
	case "AWS::Logs::LogGroup.Arn":
		return "arn:aws:logs:" + Region + ":" + AccountID + ":log-group:" + name + ":*", nil
	}
	return nil, fmt.Errorf("Fn::GetAtt %s.%s (%s): %w", res, attr, rs.Type, ErrUnsupported)
}

// TableARN is the ARN of a local table.
func TableARN(name string) string {
	return "arn:aws:dynamodb:" + Region + ":" + AccountID + ":table/" + name
}

// FunctionARN is the ARN of a local function.
func FunctionARN(name string) string {
	return "arn:aws:lambda:" + Region + ":" + AccountID + ":function:" + name
}

var subVar = regexp.MustCompile(`\$\{([^}]*)\}`)

func (r *resolver) sub(arg any) (any, error) {
	var tmpl string
	vars := map[string]any{}
	switch a := arg.(type) {
	case string:
		tmpl = a
	case []any:
		if len(a) != 2 {
			return nil, errors.New("Fn::Sub: want a string or [string, {variables}]")
		}
		s, ok := a[0].(string)
		m, ok2 := a[1].(map[string]any)
		if !ok || !ok2 {
			return nil, errors.New("Fn::Sub: want [string, {variables}]")
		}
		tmpl = s
		for k, v := range m {
			ev, err := r.eval(v)
			if err != nil {
				return nil, fmt.Errorf("Fn::Sub variable %s: %w", k, err)
			}
			vars[k] = ev
		}
	default:
		return nil, errors.New("Fn::Sub: want a string or [string, {variables}]")
	}
	var firstErr error
	out := subVar.ReplaceAllStringFunc(tmpl, func(m string) string {
		name := m[2 : len(m)-1]
		if strings.HasPrefix(name, "!") { // ${!Literal}
			return "${" + name[1:] + "}"
		}
		var v any
		var err error
		if x, ok := vars[name]; ok {
			v = x
		} else if res, attr, ok := strings.Cut(name, "."); ok {
			v, err = r.getAtt(res, attr)
		} else {
			v, err = r.ref(name)
		}
		var s string
		if err == nil {
			s, err = scalar(v)
		}
		if err != nil && firstErr == nil {
			firstErr = fmt.Errorf("Fn::Sub ${%s}: %w", name, err)
		}
		return s
	})
	if firstErr != nil {
		return nil, firstErr
	}
	return out, nil
}

func (r *resolver) condition(name string) (bool, error) {
	if b, ok := r.conds[name]; ok {
		return b, nil
	}
	def, ok := r.t.Conditions[name]
	if !ok {
		return false, fmt.Errorf("condition %s is not defined", name)
	}
	if r.busy[name] {
		return false, fmt.Errorf("condition %s refers to itself", name)
	}
	r.busy[name] = true
	defer delete(r.busy, name)
	v, err := r.eval(def)
	if err != nil {
		return false, fmt.Errorf("condition %s: %w", name, err)
	}
	b, ok := v.(bool)
	if !ok {
		return false, fmt.Errorf("condition %s is not a boolean", name)
	}
	r.conds[name] = b
	return b, nil
}

func (r *resolver) boolFn(name string, arg any) (any, error) {
	l, ok := arg.([]any)
	if !ok {
		return nil, fmt.Errorf("%s: want a list", name)
	}
	vals := make([]any, len(l))
	for i, e := range l {
		v, err := r.eval(e)
		if err != nil {
			return nil, err
		}
		vals[i] = v
	}
	switch name {
	case "Fn::Equals":
		if len(vals) != 2 {
			return nil, errors.New("Fn::Equals: want two values")
		}
		a, err1 := scalar(vals[0])
		b, err2 := scalar(vals[1])
		if err1 != nil || err2 != nil {
			return fmt.Sprint(vals[0]) == fmt.Sprint(vals[1]), nil
		}
		return a == b, nil
	case "Fn::Not":
		if len(vals) != 1 {
			return nil, errors.New("Fn::Not: want one condition")
		}
		b, ok := vals[0].(bool)
		if !ok {
			return nil, errors.New("Fn::Not: want a condition")
		}
		return !b, nil
	default:
		and := name == "Fn::And"
		res := and
		for _, v := range vals {
			b, ok := v.(bool)
			if !ok {
				return nil, fmt.Errorf("%s: want conditions", name)
			}
			if and {
				res = res && b
			} else {
				res = res || b
			}
		}
		return res, nil
	}
}

// paramValues returns each parameter's value: the override, else the
// default. A parameter without either is an error (as in CloudFormation).
func (t *Template) paramValues(overrides map[string]string) (map[string]any, error) {
	out := map[string]any{}
	var missing []string
	for name, p := range t.Parameters {
		if v, ok := overrides[name]; ok {
			out[name] = v
			continue
		}
		if p.Default == nil {
			missing = append(missing, name)
			continue
		}
		s, err := scalar(p.Default)
		if err != nil {
			return nil, fmt.Errorf("parameter %s: default: %w", name, err)
		}
		if strings.HasPrefix(p.Type, "List<") || p.Type == "CommaDelimitedList" {
			var l []any
			for _, e := range strings.Split(s, ",") {
				l = append(l, strings.TrimSpace(e))
			}
			out[name] = l
			continue
		}
		out[name] = s
	}
	for name := range overrides {
		if _, ok := t.Parameters[name]; !ok {
			return nil, fmt.Errorf("parameter override %s: the template has no such parameter", name)
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return nil, fmt.Errorf("parameters without a default need a value: %s", strings.Join(missing, ", "))
	}
	return out, nil
}
