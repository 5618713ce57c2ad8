package tests

import "github.com/zeroae/zae-limiter-go/shared/localstack/samtpl"

// decodeCFN parses a CloudFormation/SAM YAML template into the JSON shape
// CloudFormation uses, short-form intrinsics in their long form
// (samtpl.Decode: !Ref x -> {"Ref": x}, !GetAtt a.b -> {"Fn::GetAtt": [a, b]}).
func decodeCFN(data []byte) (any, error) { return samtpl.Decode(data) }

func ref(name string) map[string]any { return map[string]any{"Ref": name} }

func fn(name string, arg any) map[string]any { return map[string]any{"Fn::" + name: arg} }
