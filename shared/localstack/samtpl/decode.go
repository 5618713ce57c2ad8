// Package samtpl reads an AWS SAM template into what the local stack runs:
// its tables, buckets and functions with their environment, URL, DynamoDB
// stream mappings and schedules, every intrinsic the template uses resolved
// for one local stack (parameter defaults, the stack name, conditions).
//
// It is local-only tooling: no Lambda binary imports it. The reader is
// deliberately small: it resolves Ref, Fn::Sub, Fn::If, Fn::Equals, Fn::Not,
// Fn::And, Fn::Or, Condition, Fn::Join, Fn::Select, Fn::Split, Fn::FindInMap
// and Fn::GetAtt (on the attributes a local resource has); anything else met
// where a value is needed fails, naming the intrinsic and where it was.
// Values nobody reads (IAM policies, outputs) are never resolved.
package samtpl

import (
	"fmt"
	"strings"

	"gopkg.in/yaml.v3"
)

// Decode parses a CloudFormation or SAM template (YAML or JSON) into the
// shape CloudFormation uses: maps, lists and scalars, with the short-form
// intrinsics turned into their long form (!Ref x -> {"Ref": x}, !GetAtt a.b
// -> {"Fn::GetAtt": [a, b]}, !Sub s -> {"Fn::Sub": s}). A key given twice
// in one mapping is an error.
func Decode(data []byte) (any, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, err
	}
	return fromNode(&doc)
}

func fromNode(n *yaml.Node) (any, error) {
	if n.Tag != "" && !strings.HasPrefix(n.Tag, "!!") && n.Kind != yaml.DocumentNode {
		return intrinsic(n)
	}
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			return nil, nil
		}
		return fromNode(n.Content[0])
	case yaml.AliasNode:
		return fromNode(n.Alias)
	case yaml.MappingNode:
		m := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i].Value
			if _, dup := m[k]; dup {
				return nil, fmt.Errorf("line %d: duplicate key %q", n.Content[i].Line, k)
			}
			v, err := fromNode(n.Content[i+1])
			if err != nil {
				return nil, err
			}
			m[k] = v
		}
		return m, nil
	case yaml.SequenceNode:
		l := make([]any, 0, len(n.Content))
		for _, c := range n.Content {
			v, err := fromNode(c)
			if err != nil {
				return nil, err
			}
			l = append(l, v)
		}
		return l, nil
	default:
		var v any
		if err := n.Decode(&v); err != nil {
			return nil, fmt.Errorf("line %d: %w", n.Line, err)
		}
		return v, nil
	}
}

// intrinsic turns a node with a short-form tag (!Ref, !Sub, !If...) into
// its long form.
func intrinsic(n *yaml.Node) (any, error) {
	name := strings.TrimPrefix(n.Tag, "!")
	var v any
	if n.Kind == yaml.ScalarNode {
		v = n.Value
		if name == "GetAtt" {
			res, attr, ok := strings.Cut(n.Value, ".")
			if !ok {
				return nil, fmt.Errorf("line %d: !GetAtt %q is not Resource.Attribute", n.Line, n.Value)
			}
			v = []any{res, attr}
		}
	} else {
		plain := *n
		plain.Tag = ""
		var err error
		if v, err = fromNode(&plain); err != nil {
			return nil, err
		}
	}
	switch name {
	case "Ref", "Condition":
		return map[string]any{name: v}, nil
	default:
		return map[string]any{"Fn::" + name: v}, nil
	}
}
