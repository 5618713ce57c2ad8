package dynamo

import (
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Update builds the expressions of one conditional write: SET, ADD and
// REMOVE clauses and a condition, with every attribute name and value
// aliased (see Expr). The zero value is ready to use.
//
// Conditions and right-hand sides are written as small templates: "$"
// takes the next argument as an attribute name, "?" takes it as a value
// (an int64 or int becomes a number, a string a string, a
// types.AttributeValue is used as is). For example
//
//	u.If("$ > ? AND $ <= ?", "w", lo, "w", hi)
//	u.SetExpr("cnt", "if_not_exists($, ?)", "cnt", 1)
type Update struct {
	e       Expr
	sets    []string
	adds    []string
	removes []string
	deletes []string
	conds   []string
}

// Set sets attr to v.
func (u *Update) Set(attr string, v any) *Update {
	u.sets = append(u.sets, u.e.Name(attr)+" = "+u.value(v))
	return u
}

// SetExpr sets attr to a template expression (see Update).
func (u *Update) SetExpr(attr, tmpl string, args ...any) *Update {
	u.sets = append(u.sets, u.e.Name(attr)+" = "+u.render(tmpl, args))
	return u
}

// Add adds the number v to attr (an absent attribute counts as 0).
func (u *Update) Add(attr string, v any) *Update {
	u.adds = append(u.adds, u.e.Name(attr)+" "+u.value(v))
	return u
}

// Delete removes the elements of the set v from the set attr.
func (u *Update) Delete(attr string, v any) *Update {
	u.deletes = append(u.deletes, u.e.Name(attr)+" "+u.value(v))
	return u
}

// Remove removes attr.
func (u *Update) Remove(attr string) *Update {
	u.removes = append(u.removes, u.e.Name(attr))
	return u
}

// If adds a condition (a template, see Update); conditions are joined with
// AND, each in parentheses.
func (u *Update) If(tmpl string, args ...any) *Update {
	u.conds = append(u.conds, u.render(tmpl, args))
	return u
}

// IfExists requires the item to exist (attribute_exists on attr, a key).
func (u *Update) IfExists(attr string) *Update { return u.If("attribute_exists($)", attr) }

// IfNotExists requires the item to be absent (attribute_not_exists on attr).
func (u *Update) IfNotExists(attr string) *Update { return u.If("attribute_not_exists($)", attr) }

// OrIfNotExists relaxes every condition added so far to "the item is
// absent (attribute_not_exists on attr, a key), or all of them hold": an
// upsert. Conditions added afterwards apply in both cases.
func (u *Update) OrIfNotExists(attr string) *Update {
	inner := u.Condition()
	if inner == "" {
		return u.IfNotExists(attr)
	}
	u.conds = []string{"attribute_not_exists(" + u.e.Name(attr) + ") OR (" + inner + ")"}
	return u
}

// Empty reports an update with no clause at all.
func (u *Update) Empty() bool { return len(u.sets)+len(u.adds)+len(u.removes)+len(u.deletes) == 0 }

// Expression is the update expression ("" when Empty).
func (u *Update) Expression() string {
	var b []string
	if len(u.sets) > 0 {
		b = append(b, "SET "+strings.Join(u.sets, ", "))
	}
	if len(u.adds) > 0 {
		b = append(b, "ADD "+strings.Join(u.adds, ", "))
	}
	if len(u.removes) > 0 {
		b = append(b, "REMOVE "+strings.Join(u.removes, ", "))
	}
	if len(u.deletes) > 0 {
		b = append(b, "DELETE "+strings.Join(u.deletes, ", "))
	}
	return strings.Join(b, " ")
}

// Condition is the condition expression ("" when there is none).
func (u *Update) Condition() string {
	switch len(u.conds) {
	case 0:
		return ""
	case 1:
		return u.conds[0]
	}
	return "(" + strings.Join(u.conds, ") AND (") + ")"
}

// Names and Values are the aliases, nil when empty.
func (u *Update) Names() map[string]string                { return u.e.Names() }
func (u *Update) Values() map[string]types.AttributeValue { return u.e.Values() }

// Input is the UpdateItemInput of this update on key, returning the item
// either way: ALL_NEW when written, ALL_OLD with a failed condition.
func (u *Update) Input(table string, key Item) *dynamodb.UpdateItemInput {
	in := &dynamodb.UpdateItemInput{
		TableName:                           aws.String(table),
		Key:                                 key,
		UpdateExpression:                    aws.String(u.Expression()),
		ExpressionAttributeNames:            u.Names(),
		ExpressionAttributeValues:           u.Values(),
		ReturnValues:                        types.ReturnValueAllNew,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	}
	if c := u.Condition(); c != "" {
		in.ConditionExpression = aws.String(c)
	}
	return in
}

// Size is the length of the longest expression string: DynamoDB rejects
// any expression longer than MaxExpressionSize.
func (u *Update) Size() int { return max(len(u.Expression()), len(u.Condition())) }

// MaxExpressionSize is the longest expression string DynamoDB accepts.
const MaxExpressionSize = 4096

func (u *Update) value(v any) string {
	switch x := v.(type) {
	case types.AttributeValue:
		return u.e.Value(x)
	case int64:
		return u.e.Num(x)
	case int:
		return u.e.Num(int64(x))
	case string:
		return u.e.Value(S(x))
	case bool:
		return u.e.Value(Bool(x))
	}
	panic(fmt.Sprintf("dynamo: unsupported value %T", v))
}

// render fills a template: "$" takes a name, "?" a value.
func (u *Update) render(tmpl string, args []any) string {
	var b strings.Builder
	i := 0
	next := func() any {
		if i >= len(args) {
			panic(fmt.Sprintf("dynamo: template %q has more placeholders than arguments", tmpl))
		}
		i++
		return args[i-1]
	}
	for _, r := range tmpl {
		switch r {
		case '$':
			name, ok := next().(string)
			if !ok {
				panic(fmt.Sprintf("dynamo: template %q: $ needs an attribute name", tmpl))
			}
			b.WriteString(u.e.Name(name))
		case '?':
			b.WriteString(u.value(next()))
		default:
			b.WriteRune(r)
		}
	}
	if i != len(args) {
		panic(fmt.Sprintf("dynamo: template %q has fewer placeholders than arguments", tmpl))
	}
	return b.String()
}
