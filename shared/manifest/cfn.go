package manifest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"

	"gopkg.in/yaml.v3"

	"github.com/zeroae/zae-limiter-go/shared/limits"
)

// ResourceType is the CloudFormation type of declarative limits.
const ResourceType = "Custom::ZaeLimiterLimits"

// LogicalID is the resource's logical id in the template Template writes.
const LogicalID = "TenantLimits"

// ProvisionerExport is the export of the limiter stack named stack that
// holds the provisioner function's ARN (the ServiceToken).
func ProvisionerExport(stack string) string { return stack + "-ProvisionerArn" }

// Property names of Custom::ZaeLimiterLimits besides the manifest's own.
const (
	PropServiceToken   = "ServiceToken"
	PropServiceTimeout = "ServiceTimeout"
	PropTableName      = "TableName"
	PropNamespace      = "Namespace"
)

var cfnKeys = keys{
	namespace: PropNamespace, system: "System", onUnavailable: "OnUnavailable", limits: "Limits",
	resources: "Resources", entities: "Entities",
	capacity: "Capacity", burst: "Burst", refillAmount: "RefillAmount", refillPeriod: "RefillPeriod",
	calendar: "Calendar", shadow: "Shadow",
	top: []string{PropServiceToken, PropServiceTimeout, PropTableName},
}

// ParseCFN reads the ResourceProperties of a Custom::ZaeLimiterLimits: the
// manifest's fields in PascalCase (Namespace, System{OnUnavailable, Limits},
// Resources{r: {Limits}}, Entities{e: {Resources{r: {Limits}}}}, limits
// {Capacity, Burst, RefillAmount, RefillPeriod}), numbers as strings or
// numbers (CloudFormation delivers them as strings). ServiceToken,
// ServiceTimeout and TableName are accepted and left to the caller.
// Problems name fields by their path under "ResourceProperties".
func ParseCFN(props map[string]any) (*Manifest, error) {
	b, err := json.Marshal(props)
	if err != nil {
		return nil, &Error{Problems: []Problem{{File: "ResourceProperties", Reason: err.Error()}}}
	}
	return parse("ResourceProperties", false, cfnKeys, b)
}

// Template renders the manifest as a CloudFormation template with one
// Custom::ZaeLimiterLimits resource whose ServiceToken imports the
// provisioner of the limiter stack named stack. Every limit is written out
// in full (Capacity, RefillAmount, RefillPeriod).
func (m *Manifest) Template(stack, namespace string) ([]byte, error) {
	props := mapping(
		PropServiceToken, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!ImportValue", Value: ProvisionerExport(stack)},
		PropTableName, str(stack),
		PropNamespace, str(namespace),
	)
	k := cfnKeys
	if m.System != nil {
		sys := mapping()
		if m.System.OnUnavailable != "" {
			add(sys, k.onUnavailable, str(string(m.System.OnUnavailable)))
		}
		if m.System.Limits != nil {
			add(sys, k.limits, limitsNode(m.System.Limits))
		}
		add(props, k.system, sys)
	}
	if len(m.Resources) > 0 {
		rs := mapping()
		for _, r := range sortedKeys(m.Resources) {
			add(rs, r, mapping(k.limits, limitsNode(m.Resources[r])))
		}
		add(props, k.resources, rs)
	}
	if len(m.Entities) > 0 {
		es := mapping()
		for _, e := range sortedKeys(m.Entities) {
			rs := mapping()
			for _, r := range sortedKeys(m.Entities[e]) {
				add(rs, r, mapping(k.limits, limitsNode(m.Entities[e][r])))
			}
			add(es, e, mapping(k.resources, rs))
		}
		add(props, k.entities, es)
	}
	doc := mapping(
		"AWSTemplateFormatVersion", str("2010-09-09"),
		"Description", str(fmt.Sprintf("zae-limiter declarative limits: namespace %s of stack %s", namespace, stack)),
		"Resources", mapping(LogicalID, mapping("Type", str(ResourceType), "Properties", props)),
	)
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(doc); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func limitsNode(ls []limits.Limit) *yaml.Node {
	out := mapping()
	for _, l := range ls {
		m := mapping(cfnKeys.capacity, num(l.Capacity))
		if l.Calendar != "" {
			add(m, cfnKeys.calendar, str(l.Calendar))
		} else {
			add(m, cfnKeys.refillAmount, num(l.RefillAmount))
			add(m, cfnKeys.refillPeriod, num(l.RefillPeriodSeconds))
		}
		if l.Shadow {
			add(m, cfnKeys.shadow, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: "true"})
		}
		add(out, l.Name, m)
	}
	return out
}

// mapping builds a mapping node from key, value pairs (values are nodes).
func mapping(kv ...any) *yaml.Node {
	n := &yaml.Node{Kind: yaml.MappingNode}
	for i := 0; i+1 < len(kv); i += 2 {
		add(n, kv[i].(string), kv[i+1].(*yaml.Node))
	}
	return n
}

func add(m *yaml.Node, key string, v *yaml.Node) {
	m.Content = append(m.Content, str(key), v)
}

func str(s string) *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s} }

func num(n int64) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: strconv.FormatInt(n, 10)}
}
