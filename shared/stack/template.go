package stack

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// translated is template.yaml after the SAM transform, as
// scripts/sam-translate.py writes it (`make template`): plain
// CloudFormation, each function's code at s3://artifacts/<LogicalId>.zip.
// tests/stack_template_test.go fails when it drifts from template.yaml.
//
//go:embed template.cfn.json
var translated []byte

// Names the plain template adds for the function code.
const (
	// CodeBucketParameter is the bucket holding every function's zip.
	CodeBucketParameter = "CodeBucket"
	// codeKeySuffix makes each function's key parameter: <LogicalId>CodeKey.
	codeKeySuffix = "CodeKey"
	// translatorBucket is the placeholder bucket of the translation.
	translatorBucket = "artifacts"
	// functionNamePrefix starts every function's name: {stack}-<name>,
	// where <name> is its folder under functions/.
	functionNamePrefix = "${AWS::StackName}-"
)

// Template is the plain CloudFormation form of template.yaml that `deploy`
// and `cfn-template` use: the SAM transform done at build time, plus one
// parameter per function for where its zip lives.
type Template struct {
	doc        map[string]any
	params     map[string]Parameter
	functions  []Function
	conditions map[string]any
}

// Function is one Lambda function of the template.
type Function struct {
	// LogicalID is its resource in the template (AcquireFunction).
	LogicalID string
	// Name is its folder under functions/ and the suffix of its deployed
	// name, {stack}-<Name> (acquire).
	Name string
	// CodeKeyParameter names the template parameter of its zip's S3 key.
	CodeKeyParameter string
}

// Parameter is a template parameter's declaration.
type Parameter struct {
	Name                  string
	Type                  string // String or Number
	Default               string
	HasDefault            bool
	AllowedValues         []string
	AllowedPattern        string
	MinValue, MaxValue    *float64
	MinLength, MaxLength  *int
	Description           string
	ConstraintDescription string
}

// Load parses the embedded plain template and adds the code parameters.
func Load() (*Template, error) { return parseTemplate(translated) }

func parseTemplate(data []byte) (*Template, error) {
	var doc map[string]any
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("the embedded template: %w", err)
	}
	t := &Template{doc: doc}
	if _, ok := doc["Transform"]; ok {
		return nil, fmt.Errorf("the embedded template still has a Transform: regenerate it with `make template`")
	}
	res, _ := doc["Resources"].(map[string]any)
	params, _ := doc["Parameters"].(map[string]any)
	if res == nil || params == nil {
		return nil, fmt.Errorf("the embedded template has no Resources or Parameters")
	}
	t.conditions, _ = doc["Conditions"].(map[string]any)
	for _, id := range slices.Sorted(maps.Keys(res)) {
		r, _ := res[id].(map[string]any)
		if r["Type"] != "AWS::Lambda::Function" {
			continue
		}
		f, err := codeFunction(id, r)
		if err != nil {
			return nil, err
		}
		props := r["Properties"].(map[string]any)
		props["Code"] = map[string]any{
			"S3Bucket": map[string]any{"Ref": CodeBucketParameter},
			"S3Key":    map[string]any{"Ref": f.CodeKeyParameter},
		}
		params[f.CodeKeyParameter] = map[string]any{
			"Type":           "String",
			"Default":        f.Name + ".zip",
			"AllowedPattern": `^[A-Za-z0-9!_.*'()/-]+$`,
			"MaxLength":      1024,
			"Description": fmt.Sprintf("S3 key of the %s function's zip (a bootstrap for linux/arm64; "+
				"zae-limiter lambda-export --function %s) in CodeBucket.", f.Name, f.Name),
		}
		t.functions = append(t.functions, f)
	}
	if len(t.functions) == 0 {
		return nil, fmt.Errorf("the embedded template has no function")
	}
	params[CodeBucketParameter] = map[string]any{
		"Type":           "String",
		"AllowedPattern": `^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`,
		"Description": "S3 bucket (in the stack's region) holding the functions' zips. " +
			"zae-limiter deploy uploads them to its artifacts bucket and sets this itself.",
	}
	t.params = make(map[string]Parameter, len(params))
	for name, v := range params {
		p, err := parseParameter(name, v)
		if err != nil {
			return nil, err
		}
		t.params[name] = p
	}
	return t, nil
}

// codeFunction reads a function the translation left pointing at the
// placeholder bucket: its folder comes from its name, {stack}-<folder>.
func codeFunction(id string, r map[string]any) (Function, error) {
	props, _ := r["Properties"].(map[string]any)
	code, _ := props["Code"].(map[string]any)
	if code["S3Bucket"] != translatorBucket || code["S3Key"] != id+".zip" {
		return Function{}, fmt.Errorf("function %s: code %v is not the translation's s3://%s/%s.zip", id, code, translatorBucket, id)
	}
	name, _ := props["FunctionName"].(map[string]any)
	sub, _ := name["Fn::Sub"].(string)
	folder, ok := strings.CutPrefix(sub, functionNamePrefix)
	if !ok || !functionFolderRe.MatchString(folder) {
		return Function{}, fmt.Errorf("function %s: FunctionName must be !Sub '%s<folder under functions/>', not %v",
			id, functionNamePrefix, props["FunctionName"])
	}
	return Function{LogicalID: id, Name: folder, CodeKeyParameter: id + codeKeySuffix}, nil
}

var functionFolderRe = regexp.MustCompile(`^[a-z][a-z0-9-]*$`)

func parseParameter(name string, v any) (Parameter, error) {
	m, _ := v.(map[string]any)
	p := Parameter{Name: name}
	p.Type, _ = m["Type"].(string)
	p.Description, _ = m["Description"].(string)
	p.ConstraintDescription, _ = m["ConstraintDescription"].(string)
	p.AllowedPattern, _ = m["AllowedPattern"].(string)
	if d, ok := m["Default"]; ok {
		p.Default, p.HasDefault = scalar(d), true
	}
	if l, ok := m["AllowedValues"].([]any); ok {
		for _, a := range l {
			p.AllowedValues = append(p.AllowedValues, scalar(a))
		}
	}
	for key, dst := range map[string]**float64{"MinValue": &p.MinValue, "MaxValue": &p.MaxValue} {
		if x, ok := m[key]; ok {
			f, err := strconv.ParseFloat(scalar(x), 64)
			if err != nil {
				return p, fmt.Errorf("parameter %s: %s %v", name, key, x)
			}
			*dst = &f
		}
	}
	for key, dst := range map[string]**int{"MinLength": &p.MinLength, "MaxLength": &p.MaxLength} {
		if x, ok := m[key]; ok {
			n, err := strconv.Atoi(scalar(x))
			if err != nil {
				return p, fmt.Errorf("parameter %s: %s %v", name, key, x)
			}
			*dst = &n
		}
	}
	if p.Type != "String" && p.Type != "Number" {
		return p, fmt.Errorf("parameter %s: type %q is not String or Number", name, p.Type)
	}
	return p, nil
}

// scalar renders a JSON scalar as CloudFormation passes parameter values.
func scalar(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case bool:
		return strconv.FormatBool(x)
	}
	return fmt.Sprint(v)
}

// JSON is the template as deploy sends it (compact).
func (t *Template) JSON() []byte {
	b, err := json.Marshal(t.doc)
	if err != nil {
		panic(err) // a decoded JSON document always encodes
	}
	return b
}

// Indented is the template for people (cfn-template), two-space indented.
func (t *Template) Indented() []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(t.doc); err != nil {
		panic(err)
	}
	return b.Bytes()
}

// Functions lists the template's functions, by logical id.
func (t *Template) Functions() []Function { return slices.Clone(t.functions) }

// Function returns the function deployed as {stack}-<name>.
func (t *Template) Function(name string) (Function, bool) {
	for _, f := range t.functions {
		if f.Name == name {
			return f, true
		}
	}
	return Function{}, false
}

// FunctionNames lists the functions' folder names, sorted.
func (t *Template) FunctionNames() []string {
	out := make([]string, 0, len(t.functions))
	for _, f := range t.functions {
		out = append(out, f.Name)
	}
	slices.Sort(out)
	return out
}

// Parameter returns a parameter's declaration.
func (t *Template) Parameter(name string) (Parameter, bool) {
	p, ok := t.params[name]
	return p, ok
}

// Parameters lists the parameters' names, sorted.
func (t *Template) Parameters() []string { return slices.Sorted(maps.Keys(t.params)) }

// Check validates one value against the parameter's declaration, as
// CloudFormation would, so a bad value fails before any AWS call.
func (p Parameter) Check(v string) error {
	bad := func(reason string) error {
		if p.ConstraintDescription != "" {
			reason = p.ConstraintDescription
		}
		return &ParameterError{Parameter: p.Name, Value: v, Reason: reason}
	}
	if len(p.AllowedValues) > 0 && !slices.Contains(p.AllowedValues, v) {
		return bad("want one of " + strings.Join(p.AllowedValues, ", "))
	}
	if p.Type == "Number" {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return bad("want a number")
		}
		if p.MinValue != nil && f < *p.MinValue {
			return bad("want at least " + scalar(*p.MinValue))
		}
		if p.MaxValue != nil && f > *p.MaxValue {
			return bad("want at most " + scalar(*p.MaxValue))
		}
	}
	if p.MinLength != nil && len(v) < *p.MinLength {
		return bad(fmt.Sprintf("want at least %d characters", *p.MinLength))
	}
	if p.MaxLength != nil && len(v) > *p.MaxLength {
		return bad(fmt.Sprintf("want at most %d characters", *p.MaxLength))
	}
	if p.AllowedPattern != "" {
		re, err := regexp.Compile(p.AllowedPattern)
		if err != nil {
			return fmt.Errorf("parameter %s: AllowedPattern %q: %w", p.Name, p.AllowedPattern, err)
		}
		if !re.MatchString(v) {
			return bad("does not match " + p.AllowedPattern)
		}
	}
	return nil
}

// ParameterError is a parameter value the template does not accept.
type ParameterError struct {
	Parameter, Value, Reason string
}

func (e *ParameterError) Error() string {
	return fmt.Sprintf("parameter %s=%q: %s", e.Parameter, e.Value, e.Reason)
}
