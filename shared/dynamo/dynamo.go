// Package dynamo holds the small DynamoDB helpers every package that builds
// requests shares: positional expression aliases, attribute value
// constructors and readers, and the classification of condition failures.
package dynamo

import (
	"errors"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"
)

// Item is one DynamoDB item.
type Item = map[string]types.AttributeValue

// S, N and Bool build attribute values.
func S(s string) types.AttributeValue { return &types.AttributeValueMemberS{Value: s} }
func N(n int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(n, 10)}
}
func Bool(b bool) types.AttributeValue { return &types.AttributeValueMemberBOOL{Value: b} }

// GetS returns a string attribute, "" when absent or of another type.
func GetS(it Item, name string) string {
	if v, ok := it[name].(*types.AttributeValueMemberS); ok {
		return v.Value
	}
	return ""
}

// GetN returns an integer attribute; ok is false when absent or not an
// integer that fits an int64.
func GetN(it Item, name string) (int64, bool) {
	v, ok := it[name].(*types.AttributeValueMemberN)
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(v.Value, 10, 64)
	return n, err == nil
}

// GetBool returns a boolean attribute, false when absent.
func GetBool(it Item, name string) bool {
	v, ok := it[name].(*types.AttributeValueMemberBOOL)
	return ok && v.Value
}

// Expr collects positional aliases (#000, :000, ...) for one request, so
// attribute names with any characters (limit names contain - and .) and
// reserved words are always safe.
type Expr struct {
	names   map[string]string
	aliases map[string]string
	values  map[string]types.AttributeValue
}

// Name returns the alias of an attribute name (the same alias every time).
func (e *Expr) Name(name string) string {
	if a, ok := e.aliases[name]; ok {
		return a
	}
	if e.names == nil {
		e.names, e.aliases = map[string]string{}, map[string]string{}
	}
	a := alias('#', len(e.names))
	e.names[a], e.aliases[name] = name, a
	return a
}

// Value returns a new placeholder for val.
func (e *Expr) Value(val types.AttributeValue) string {
	if e.values == nil {
		e.values = map[string]types.AttributeValue{}
	}
	p := alias(':', len(e.values))
	e.values[p] = val
	return p
}

// alias renders the i-th alias with a fixed width of three digits, so no
// alias is a prefix of another: DynamoDB Local mismatches "#2" and "#21" in
// one expression (it reports "#2" unused).
func alias(prefix byte, i int) string {
	d := strconv.Itoa(i)
	for len(d) < 3 {
		d = "0" + d
	}
	return string(prefix) + d
}

// Num is Value(N(n)).
func (e *Expr) Num(n int64) string { return e.Value(N(n)) }

// Names and Values are nil when empty (DynamoDB rejects empty maps).
func (e *Expr) Names() map[string]string {
	if len(e.names) == 0 {
		return nil
	}
	return e.names
}

func (e *Expr) Values() map[string]types.AttributeValue {
	if len(e.values) == 0 {
		return nil
	}
	return e.values
}

// IsCondFailed reports a plain conditional check failure.
func IsCondFailed(err error) bool {
	var ccf *types.ConditionalCheckFailedException
	return errors.As(err, &ccf)
}

// CondFailedItem returns the item DynamoDB sent back with a conditional
// check failure (ReturnValuesOnConditionCheckFailure ALL_OLD); nil when the
// item did not exist.
func CondFailedItem(err error) (Item, bool) {
	var ccf *types.ConditionalCheckFailedException
	if !errors.As(err, &ccf) {
		return nil, false
	}
	return ccf.Item, true
}

// CancelReasons returns the per-item reasons of a cancelled transaction.
func CancelReasons(err error) ([]types.CancellationReason, bool) {
	var tce *types.TransactionCanceledException
	if !errors.As(err, &tce) {
		return nil, false
	}
	return tce.CancellationReasons, true
}

// ReasonCode is the code of one cancellation reason ("None" when it passed).
func ReasonCode(r types.CancellationReason) string { return aws.ToString(r.Code) }

// NotApplied reports errors that prove a write did not take effect:
// throttling, validation, a missing table, missing permissions, a failed
// condition. Anything else (timeouts, lost answers, 5xx) leaves the outcome
// unknown.
func NotApplied(err error) bool {
	if IsCondFailed(err) {
		return true
	}
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		return false
	}
	switch ae.ErrorCode() {
	case "ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded",
		"ValidationException", "ResourceNotFoundException", "AccessDeniedException",
		"UnrecognizedClientException", "TransactionCanceledException":
		return true
	}
	return false
}
