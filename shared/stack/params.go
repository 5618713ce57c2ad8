package stack

import (
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
)

// keptParameters keep their deployed value unless given: they are state of
// the stack, not options (the lease keys' revision moves only with a
// rotation).
var keptParameters = []string{"LeaseKeysRevision"}

// conflict is a pair of parameter values that contradict each other. Each
// rule applies only when the template declares both parameters (a function
// not part of this build has none).
type conflict struct {
	param, value string // when param has value...
	other        string // ...other must keep its default
	flags        string // the same rule in deploy's flags, for the message
}

var conflicts = []conflict{
	{"EnableIAM", "false", "EnableIAMRoles", "--create-iam-roles needs IAM (--no-iam)"},
	{"EnableAlarms", "false", "AlarmSNSTopicArn", "--alarm-sns-topic needs alarms (--no-alarms)"},
	{"EnableAlarms", "false", "LambdaDurationThresholdPct", "--lambda-duration-threshold-pct needs alarms (--no-alarms)"},
	{"EnableAggregator", "false", "AggregatorRoleArn", "--aggregator-role-arn needs the aggregator (--no-aggregator)"},
	{"EnableAuditArchival", "false", "AuditArchiveGlacierDays", "--audit-archive-glacier-days needs archival (--no-audit-archival)"},
}

// stackNameRe: CloudFormation's stack names, which are also the table's.
var stackNameRe = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9-]*$`)

// ValidateName checks a stack name: it names the stack, the table and, as a
// prefix, every function, role and policy, so it must suit all of them.
func ValidateName(name string) error {
	switch {
	case name == "":
		return &ParameterError{Parameter: "name", Value: name, Reason: "is required"}
	case len(name) < 3 || len(name) > 128:
		return &ParameterError{Parameter: "name", Value: name, Reason: "must be 3 to 128 characters"}
	case !stackNameRe.MatchString(name):
		return &ParameterError{Parameter: "name", Value: name,
			Reason: "must start with a letter and hold only letters, digits and '-' (a CloudFormation stack name)"}
	}
	return nil
}

// resolve works out every parameter of a deploy: the given values, the
// deployed values of kept parameters (all of them with keepAll), else the
// template's defaults. Unknown names, values the template refuses,
// contradictions and names AWS would refuse are errors; nothing is called.
func (t *Template) resolve(stack string, given, deployed map[string]string, keepAll bool) (map[string]string, error) {
	if err := ValidateName(stack); err != nil {
		return nil, err
	}
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(given)) {
		p, ok := t.params[name]
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("parameter %s: this template has no such parameter (it has %s)",
				name, strings.Join(t.Parameters(), ", ")))
		case t.SetByDeploy(name):
			errs = append(errs, fmt.Errorf("parameter %s is set by deploy itself (where the function code is)", name))
		default:
			if err := p.Check(given[name]); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	out := make(map[string]string, len(t.params))
	for name, p := range t.params {
		if t.SetByDeploy(name) {
			continue
		}
		v, ok := given[name]
		if !ok {
			if dv, dok := deployed[name]; dok && (keepAll || slices.Contains(keptParameters, name)) {
				v, ok = dv, true
			}
		}
		if !ok {
			if !p.HasDefault {
				return nil, fmt.Errorf("parameter %s has no default: give it a value", name)
			}
			v = p.Default
		}
		out[name] = v
	}
	for _, c := range conflicts {
		op, ok1 := t.params[c.other]
		if _, ok := t.params[c.param]; !ok || !ok1 {
			continue
		}
		if out[c.param] == c.value && out[c.other] != op.Default {
			return nil, fmt.Errorf("%s=%s contradicts %s=%q (%s)", c.param, c.value, c.other, out[c.other], c.flags)
		}
	}
	if err := t.checkNames(stack, out); err != nil {
		return nil, err
	}
	return out, nil
}

// SetByDeploy reports whether deploy sets the parameter itself: where the
// functions' code lives.
func (t *Template) SetByDeploy(name string) bool {
	if name == CodeBucketParameter {
		return true
	}
	for _, f := range t.functions {
		if f.CodeKeyParameter == name {
			return true
		}
	}
	return false
}
