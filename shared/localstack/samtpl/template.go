package samtpl

import (
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"sort"
	"strings"
	"time"
)

// Template is a decoded template: its sections, intrinsics unresolved.
type Template struct {
	Parameters map[string]Parameter
	Mappings   map[string]any
	Conditions map[string]any
	// Globals is the Globals section (Function: properties every function
	// inherits).
	Globals   map[string]any
	Resources map[string]Resource

	stack string // set by Load
}

// Parameter is a template parameter.
type Parameter struct {
	Type    string
	Default any
}

// Resource is a template resource.
type Resource struct {
	Type       string
	Condition  string
	Properties map[string]any
}

// Parse decodes a template.
func Parse(data []byte) (*Template, error) {
	doc, err := Decode(data)
	if err != nil {
		return nil, fmt.Errorf("template: %w", err)
	}
	top, ok := doc.(map[string]any)
	if !ok {
		return nil, errors.New("template: not a mapping")
	}
	t := &Template{Parameters: map[string]Parameter{}, Resources: map[string]Resource{}}
	t.Mappings, _ = top["Mappings"].(map[string]any)
	t.Conditions, _ = top["Conditions"].(map[string]any)
	t.Globals, _ = top["Globals"].(map[string]any)
	params, _ := top["Parameters"].(map[string]any)
	for name, p := range params {
		m, _ := p.(map[string]any)
		typ, _ := m["Type"].(string)
		t.Parameters[name] = Parameter{Type: typ, Default: m["Default"]}
	}
	res, ok := top["Resources"].(map[string]any)
	if !ok {
		return nil, errors.New("template: no Resources")
	}
	for id, r := range res {
		m, ok := r.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("template: resource %s is not a mapping", id)
		}
		typ, _ := m["Type"].(string)
		if typ == "" {
			return nil, fmt.Errorf("template: resource %s has no Type", id)
		}
		cond, _ := m["Condition"].(string)
		props, _ := m["Properties"].(map[string]any)
		t.Resources[id] = Resource{Type: typ, Condition: cond, Properties: props}
	}
	return t, nil
}

// Options pick the stack a template is resolved for.
type Options struct {
	// StackName is AWS::StackName (required).
	StackName string
	// Parameters override the parameters' defaults.
	Parameters map[string]string
}

// Stack is what the local stack runs for a template.
type Stack struct {
	Name      string
	Tables    []Table
	Buckets   []Bucket
	Functions []Function
	// Warnings name what the template asks for that the local stack does
	// not do (an Api event, a cron schedule...).
	Warnings []string
}

// Table is an AWS::DynamoDB::Table.
type Table struct {
	LogicalID string
	Name      string
	// Properties are the resolved CloudFormation properties.
	Properties map[string]any
}

// Bucket is an AWS::S3::Bucket.
type Bucket struct {
	LogicalID string
	Name      string
}

// Function is an AWS::Serverless::Function whose code is a folder of the
// project (CodeUri functions/<name>), with Globals applied.
type Function struct {
	LogicalID string
	// Name is the code folder's name (acquire for functions/acquire): the
	// function's name in `local status`, `local logs` and `make invoke`.
	Name string
	// CodeURI is the CodeUri as written (functions/acquire).
	CodeURI string
	// FunctionName is the deployed name (FunctionName, else stack-LogicalID).
	FunctionName string
	ARN          string
	MemoryMB     int
	Timeout      time.Duration
	// Env is the resolved environment (Globals merged under the function's).
	Env map[string]string
	// LogFormat is LoggingConfig.LogFormat (JSON or Text).
	LogFormat string
	Tracing   bool
	URL       *URLConfig
	Streams   []StreamEvent
	Schedules []ScheduleEvent
}

// URLConfig is a function's FunctionUrlConfig.
type URLConfig struct {
	AuthType   string // AWS_IAM or NONE
	InvokeMode string // BUFFERED or RESPONSE_STREAM
}

// StreamEvent is a DynamoDB stream event source of a function, with AWS's
// defaults filled in.
type StreamEvent struct {
	// Name is the event's key under Events.
	Name string
	// Table is the logical ID of the table whose stream is read.
	Table             string
	StartingPosition  string // TRIM_HORIZON or LATEST
	BatchSize         int
	MaxBatchingWindow time.Duration
	// Filters are the FilterCriteria patterns (JSON), any of which admits
	// a record; none means every record.
	Filters []string
	Bisect  bool
	// MaxRetryAttempts is -1 for "until the record expires".
	MaxRetryAttempts int
	// MaxRecordAge is 0 for "no limit".
	MaxRecordAge            time.Duration
	ReportBatchItemFailures bool
	OnFailure               *Destination
	Enabled                 bool
}

// Destination is an on-failure destination.
type Destination struct {
	LogicalID string // "" when given as a literal ARN
	Type      string
	ARN       string
}

// ScheduleEvent is a Schedule (EventBridge rule) event of a function.
type ScheduleEvent struct {
	Name       string
	Expression string // rate(5 minutes), cron(...)
	// Input is the constant payload (JSON) when the rule sets one.
	Input   string
	Enabled bool
}

// Load resolves the template for a stack.
func (t *Template) Load(o Options) (*Stack, error) {
	if o.StackName == "" {
		return nil, errors.New("samtpl: a stack name is required")
	}
	tc := *t
	tc.stack = o.StackName
	params, err := tc.paramValues(o.Parameters)
	if err != nil {
		return nil, err
	}
	r := &resolver{t: &tc, params: params, conds: map[string]bool{}, busy: map[string]bool{}}
	st := &Stack{Name: o.StackName}
	ids := make([]string, 0, len(tc.Resources))
	for id := range tc.Resources {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		res := tc.Resources[id]
		if res.Condition != "" {
			on, err := r.condition(res.Condition)
			if err != nil {
				return nil, &ResolveError{Path: "Resources." + id + ".Condition", Err: err}
			}
			if !on {
				continue
			}
		}
		switch res.Type {
		case "AWS::DynamoDB::Table":
			props, err := r.resolve("Resources."+id+".Properties", res.Properties)
			if err != nil {
				return nil, err
			}
			name, err := r.name(id)
			if err != nil {
				return nil, err
			}
			m, _ := props.(map[string]any)
			st.Tables = append(st.Tables, Table{LogicalID: id, Name: name, Properties: m})
		case "AWS::S3::Bucket":
			name, err := r.name(id)
			if err != nil {
				return nil, err
			}
			st.Buckets = append(st.Buckets, Bucket{LogicalID: id, Name: name})
		case "AWS::Serverless::Function":
			fn, warn, err := r.function(id, res)
			if err != nil {
				return nil, err
			}
			st.Warnings = append(st.Warnings, warn...)
			if fn != nil {
				st.Functions = append(st.Functions, *fn)
			}
		}
	}
	return st, nil
}

// nameProps lists the property holding each type's physical name.
var nameProps = map[string]string{
	"AWS::DynamoDB::Table":      "TableName",
	"AWS::S3::Bucket":           "BucketName",
	"AWS::Serverless::Function": "FunctionName",
	"AWS::Lambda::Function":     "FunctionName",
	"AWS::SQS::Queue":           "QueueName",
	"AWS::SNS::Topic":           "TopicName",
	"AWS::Logs::LogGroup":       "LogGroupName",
	"AWS::IAM::Role":            "RoleName",
	"AWS::IAM::ManagedPolicy":   "ManagedPolicyName",
}

// name resolves the physical name of resource id.
func (r *resolver) name(id string) (string, error) {
	res := r.t.Resources[id]
	if p := nameProps[res.Type]; p != "" {
		if v, ok := res.Properties[p]; ok {
			ev, err := r.resolve("Resources."+id+".Properties."+p, v)
			if err != nil {
				return "", err
			}
			if ev != nil {
				return scalar(ev)
			}
		}
	}
	if res.Type == "AWS::S3::Bucket" {
		return bucketName(r.t.stack, id), nil
	}
	return r.t.stack + "-" + id, nil
}

// bucketName names a bucket the template leaves unnamed, readably and the
// same every time: "{stack}-{logical id in kebab case, without a trailing
// Bucket}" in lower case, '_' and '.' as '-', at most 63 characters
// (AuditArchiveBucket of stack limiter: limiter-audit-archive).
func bucketName(stack, id string) string {
	var b strings.Builder
	for i, c := range strings.TrimSuffix(id, "Bucket") {
		if i > 0 && c >= 'A' && c <= 'Z' {
			b.WriteByte('-')
		}
		b.WriteRune(c)
	}
	suffix := "-" + strings.ToLower(b.String())
	if suffix == "-" {
		suffix = "-bucket"
	}
	s := strings.Trim(strings.NewReplacer("_", "-", ".", "-").Replace(strings.ToLower(stack)), "-")
	if len(s) > 63-len(suffix) {
		s = strings.TrimRight(s[:63-len(suffix)], "-")
	}
	return s + suffix
}

// function reads a serverless function; nil when its code is not a folder
// of the project.
func (r *resolver) function(id string, res Resource) (*Function, []string, error) {
	at := "Resources." + id + ".Properties"
	props := mergeGlobals(r.t.Globals, res.Properties)
	codeURI, _ := props["CodeUri"].(string)
	if codeURI == "" || strings.Contains(codeURI, "://") {
		return nil, []string{fmt.Sprintf("function %s: CodeUri %v is not a local folder; not run locally", id, props["CodeUri"])}, nil
	}
	fnName, err := r.name(id)
	if err != nil {
		return nil, nil, err
	}
	fn := &Function{
		LogicalID:    id,
		Name:         path.Base(path.Clean(codeURI)),
		CodeURI:      codeURI,
		FunctionName: fnName,
		ARN:          FunctionARN(fnName),
		MemoryMB:     128,
		Timeout:      3 * time.Second,
		Env:          map[string]string{},
	}
	get := func(key string) (any, error) {
		v, ok := props[key]
		if !ok {
			return nil, nil
		}
		return r.resolve(at+"."+key, v)
	}
	if v, err := get("MemorySize"); err != nil {
		return nil, nil, err
	} else if v != nil {
		if fn.MemoryMB, err = intValue(v); err != nil {
			return nil, nil, &ResolveError{Path: at + ".MemorySize", Err: err}
		}
	}
	if v, err := get("Timeout"); err != nil {
		return nil, nil, err
	} else if v != nil {
		secs, err := intValue(v)
		if err != nil {
			return nil, nil, &ResolveError{Path: at + ".Timeout", Err: err}
		}
		fn.Timeout = time.Duration(secs) * time.Second
	}
	if v, err := get("Environment"); err != nil {
		return nil, nil, err
	} else if m, ok := v.(map[string]any); ok {
		vars, _ := m["Variables"].(map[string]any)
		for k, e := range vars {
			s, err := scalar(e)
			if err != nil {
				return nil, nil, &ResolveError{Path: at + ".Environment.Variables." + k, Err: err}
			}
			fn.Env[k] = s
		}
	}
	if v, err := get("LoggingConfig"); err != nil {
		return nil, nil, err
	} else if m, ok := v.(map[string]any); ok {
		fn.LogFormat, _ = m["LogFormat"].(string)
	}
	if v, err := get("Tracing"); err != nil {
		return nil, nil, err
	} else {
		fn.Tracing = v == "Active"
	}
	if v, err := get("FunctionUrlConfig"); err != nil {
		return nil, nil, err
	} else if m, ok := v.(map[string]any); ok {
		u := &URLConfig{InvokeMode: "BUFFERED"}
		u.AuthType, _ = m["AuthType"].(string)
		if mode, ok := m["InvokeMode"].(string); ok {
			u.InvokeMode = mode
		}
		fn.URL = u
	}
	var warnings []string
	events, _ := props["Events"].(map[string]any)
	names := make([]string, 0, len(events))
	for n := range events {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		ev, _ := events[n].(map[string]any)
		typ, _ := ev["Type"].(string)
		evAt := at + ".Events." + n
		switch typ {
		case "DynamoDB":
			se, err := r.streamEvent(evAt, n, ev["Properties"])
			if err != nil {
				return nil, nil, err
			}
			fn.Streams = append(fn.Streams, se)
		case "Schedule", "ScheduleV2":
			se, err := r.scheduleEvent(evAt, n, typ, ev["Properties"])
			if err != nil {
				return nil, nil, err
			}
			fn.Schedules = append(fn.Schedules, se)
		default:
			warnings = append(warnings, fmt.Sprintf("function %s: event %s of type %s is not run locally", fn.Name, n, typ))
		}
	}
	return fn, warnings, nil
}

// mergeGlobals applies Globals.Function under a function's properties.
func mergeGlobals(globals, props map[string]any) map[string]any {
	g, _ := globals["Function"].(map[string]any)
	return MergeGlobals(g, props)
}

// MergeGlobals applies a Globals section's properties (e.g. Globals.Function)
// under a resource's as SAM does: the resource's scalars win, maps merge key
// by key (Environment.Variables), lists concatenate; an intrinsic is a value,
// never merged.
func MergeGlobals(globals, props map[string]any) map[string]any {
	out := make(map[string]any, len(globals)+len(props))
	for k, v := range globals {
		out[k] = v
	}
	for k, v := range props {
		switch gv := out[k].(type) {
		case []any:
			if l, ok := v.([]any); ok {
				out[k] = append(append([]any{}, gv...), l...)
				continue
			}
		case map[string]any:
			if m, ok := v.(map[string]any); ok && !isIntrinsic(m) && !isIntrinsic(gv) {
				out[k] = MergeGlobals(gv, m)
				continue
			}
		}
		out[k] = v
	}
	return out
}

func isIntrinsic(m map[string]any) bool {
	if len(m) != 1 {
		return false
	}
	for k := range m {
		return k == "Ref" || k == "Condition" || strings.HasPrefix(k, "Fn::")
	}
	return false
}

func (r *resolver) streamEvent(at, name string, raw any) (StreamEvent, error) {
	props, _ := raw.(map[string]any)
	se := StreamEvent{Name: name, BatchSize: 100, MaxRetryAttempts: -1, Enabled: true}
	// The stream must be a table's: read the GetAtt itself.
	res, attr, err := getAttArgs(firstValue(props["Stream"], "Fn::GetAtt"))
	if err != nil || attr != "StreamArn" || r.t.Resources[res].Type != "AWS::DynamoDB::Table" {
		return se, &ResolveError{Path: at + ".Properties.Stream",
			Err: fmt.Errorf("want !GetAtt <table>.StreamArn of a table in the template: %w", ErrUnsupported)}
	}
	se.Table = res
	v, err := r.resolve(at+".Properties", props)
	if err != nil {
		return se, err
	}
	p, _ := v.(map[string]any)
	se.StartingPosition, _ = p["StartingPosition"].(string)
	if se.StartingPosition == "" {
		se.StartingPosition = "TRIM_HORIZON"
	}
	ints := []struct {
		key string
		dst *int
	}{{"BatchSize", &se.BatchSize}, {"MaximumRetryAttempts", &se.MaxRetryAttempts}}
	for _, f := range ints {
		if x, ok := p[f.key]; ok {
			if *f.dst, err = intValue(x); err != nil {
				return se, &ResolveError{Path: at + ".Properties." + f.key, Err: err}
			}
		}
	}
	for key, dst := range map[string]*time.Duration{
		"MaximumBatchingWindowInSeconds": &se.MaxBatchingWindow,
		"MaximumRecordAgeInSeconds":      &se.MaxRecordAge,
	} {
		if x, ok := p[key]; ok {
			n, err := intValue(x)
			if err != nil {
				return se, &ResolveError{Path: at + ".Properties." + key, Err: err}
			}
			if n > 0 {
				*dst = time.Duration(n) * time.Second
			}
		}
	}
	se.Bisect = boolValue(p["BisectBatchOnFunctionError"], false)
	se.Enabled = boolValue(p["Enabled"], true)
	if types, ok := p["FunctionResponseTypes"].([]any); ok {
		for _, t := range types {
			if t == "ReportBatchItemFailures" {
				se.ReportBatchItemFailures = true
			}
		}
	}
	if fc, ok := p["FilterCriteria"].(map[string]any); ok {
		filters, _ := fc["Filters"].([]any)
		for i, f := range filters {
			pat := f.(map[string]any)["Pattern"]
			s, ok := pat.(string)
			if !ok {
				b, err := json.Marshal(pat)
				if err != nil {
					return se, &ResolveError{Path: fmt.Sprintf("%s.Properties.FilterCriteria.Filters[%d]", at, i), Err: err}
				}
				s = string(b)
			}
			se.Filters = append(se.Filters, s)
		}
	}
	if dc, ok := props["DestinationConfig"].(map[string]any); ok {
		of, _ := dc["OnFailure"].(map[string]any)
		if d, ok := of["Destination"]; ok {
			dest, err := r.destination(at+".Properties.DestinationConfig.OnFailure.Destination", d)
			if err != nil {
				return se, err
			}
			se.OnFailure = dest
		}
	}
	return se, nil
}

// destination reads an on-failure destination: a GetAtt/Ref of a template
// resource (kept by logical ID) or a literal ARN.
func (r *resolver) destination(at string, raw any) (*Destination, error) {
	arnV, err := r.resolve(at, raw)
	if err != nil {
		return nil, err
	}
	arn, err := scalar(arnV)
	if err != nil {
		return nil, &ResolveError{Path: at, Err: err}
	}
	d := &Destination{ARN: arn}
	if res, _, err := getAttArgs(firstValue(raw, "Fn::GetAtt")); err == nil {
		d.LogicalID = res
	} else if ref, ok := firstValue(raw, "Ref").(string); ok {
		d.LogicalID = ref
	}
	if d.LogicalID != "" {
		d.Type = r.t.Resources[d.LogicalID].Type
	}
	return d, nil
}

func (r *resolver) scheduleEvent(at, name, typ string, raw any) (ScheduleEvent, error) {
	v, err := r.resolve(at+".Properties", raw)
	if err != nil {
		return ScheduleEvent{}, err
	}
	p, _ := v.(map[string]any)
	se := ScheduleEvent{Name: name, Enabled: true}
	key := "Schedule"
	if typ == "ScheduleV2" {
		key = "ScheduleExpression"
	}
	se.Expression, _ = p[key].(string)
	if se.Expression == "" {
		return se, &ResolveError{Path: at + ".Properties." + key, Err: errors.New("a schedule expression is required")}
	}
	if in, ok := p["Input"]; ok {
		if s, ok := in.(string); ok {
			se.Input = s
		} else {
			b, _ := json.Marshal(in)
			se.Input = string(b)
		}
	}
	se.Enabled = boolValue(p["Enabled"], true)
	if s, ok := p["State"].(string); ok {
		se.Enabled = s == "ENABLED"
	}
	return se, nil
}

// firstValue returns m[key] when v is a one-key map {key: ...}.
func firstValue(v any, key string) any {
	m, ok := v.(map[string]any)
	if !ok || len(m) != 1 {
		return nil
	}
	return m[key]
}

func intValue(v any) (int, error) {
	s, err := scalar(v)
	if err != nil {
		return 0, err
	}
	var n int
	if _, err := fmt.Sscan(s, &n); err != nil || fmt.Sprint(n) != strings.TrimSpace(s) {
		return 0, fmt.Errorf("%q is not a whole number", s)
	}
	return n, nil
}

func boolValue(v any, def bool) bool {
	switch x := v.(type) {
	case bool:
		return x
	case string:
		return strings.EqualFold(x, "true")
	}
	return def
}
