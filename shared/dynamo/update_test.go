package dynamo

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestUpdate_clausesAndCondition(t *testing.T) {
	var u Update
	u.Set("a", int64(1)).Add("b", 2).Remove("c").SetExpr("d", "if_not_exists($, ?)", "d", "x")
	u.If("$ > ? AND $ <= ?", "b", int64(0), "b", int64(10)).IfExists("PK")

	assert.Equal(t, "SET #000 = :000, #003 = if_not_exists(#003, :002) ADD #001 :001 REMOVE #002", u.Expression())
	assert.Equal(t, "(#001 > :003 AND #001 <= :004) AND (attribute_exists(#004))", u.Condition())
	assert.Equal(t, map[string]string{"#000": "a", "#001": "b", "#002": "c", "#003": "d", "#004": "PK"}, u.Names())
	assert.Equal(t, &types.AttributeValueMemberS{Value: "x"}, u.Values()[":002"])
	assert.Equal(t, &types.AttributeValueMemberN{Value: "10"}, u.Values()[":004"])

	in := u.Input("t", Item{"PK": S("p")})
	assert.Equal(t, "t", aws.ToString(in.TableName))
	assert.Equal(t, u.Condition(), aws.ToString(in.ConditionExpression))
	assert.Equal(t, types.ReturnValueAllNew, in.ReturnValues)
	assert.Equal(t, len(u.Expression()), u.Size())
}

func TestUpdate_emptyHasNoCondition(t *testing.T) {
	var u Update
	assert.True(t, u.Empty())
	assert.Equal(t, "", u.Condition())
	assert.Nil(t, u.Input("t", nil).ConditionExpression)
	assert.Nil(t, u.Names())
	u.If("attribute_not_exists($)", "PK")
	assert.Equal(t, "attribute_not_exists(#000)", u.Condition(), "one condition is not parenthesised")
}

func TestUpdate_templateArgumentsMustMatch(t *testing.T) {
	require.Panics(t, func() { new(Update).If("$ = ?", "a") })
	require.Panics(t, func() { new(Update).If("$", "a", "b") })
	require.Panics(t, func() { new(Update).If("$", 3) })
	require.Panics(t, func() { new(Update).Set("a", 1.5) })
}

func TestUpdate_orIfNotExistsWrapsEarlierConditions(t *testing.T) {
	var u Update
	u.If("$ = ?", "pv", "x").If("$ <= ?", "w", 3).OrIfNotExists("PK").If("$ <> ?", "lw", "id")
	assert.Equal(t, "(attribute_not_exists(#002) OR ((#000 = :000) AND (#001 <= :001))) AND (#003 <> :002)", u.Condition())
	var v Update
	v.OrIfNotExists("PK")
	assert.Equal(t, "attribute_not_exists(#000)", v.Condition())
}
