package streams

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func rec(t *testing.T, s string) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal([]byte(s), &m))
	return m
}

func TestFilterPatterns(t *testing.T) {
	bucket := `{"eventName":"MODIFY","dynamodb":{"NewImage":{"SK":{"S":"#BUCKET#rpm"},"n":{"N":"5"}},"SizeBytes":120}}`
	config := `{"eventName":"INSERT","dynamodb":{"NewImage":{"SK":{"S":"#CONFIG"}},"SizeBytes":40}}`
	ttl := `{"eventName":"REMOVE","userIdentity":{"type":"Service","principalId":"dynamodb.amazonaws.com"},"dynamodb":{"OldImage":{"SK":{"S":"#BUCKET#rpm"}}}}`
	for _, tc := range []struct {
		pattern string
		match   []string
		miss    []string
	}{
		{`{"dynamodb":{"NewImage":{"SK":{"S":[{"prefix":"#BUCKET"}]}}}}`, []string{bucket}, []string{config, ttl}},
		{`{"eventName":["INSERT","MODIFY"]}`, []string{bucket, config}, []string{ttl}},
		{`{"eventName":[{"anything-but":["REMOVE"]}]}`, []string{bucket, config}, []string{ttl}},
		{`{"userIdentity":{"type":["Service"]}}`, []string{ttl}, []string{bucket, config}},
		{`{"userIdentity":[{"exists":false}]}`, []string{bucket, config}, []string{ttl}},
		{`{"dynamodb":{"SizeBytes":[{"numeric":[">",50,"<=",120]}]}}`, []string{bucket}, []string{config, ttl}},
		{`{"dynamodb":{"NewImage":{"SK":{"S":[{"suffix":"rpm"}]}}}}`, []string{bucket}, []string{config, ttl}},
		{`{"eventName":[{"equals-ignore-case":"insert"}]}`, []string{config}, []string{bucket, ttl}},
		{`{"$or":[{"eventName":["REMOVE"]},{"dynamodb":{"NewImage":{"SK":{"S":["#CONFIG"]}}}}]}`, []string{config, ttl}, []string{bucket}},
		{`{"dynamodb":{"NewImage":{"n":{"N":[{"numeric":["=",5]}]}}}}`, nil, []string{bucket}}, // DynamoDB numbers are strings
	} {
		f, err := CompileFilter([]string{tc.pattern})
		require.NoError(t, err, tc.pattern)
		for _, r := range tc.match {
			assert.True(t, f.Match(rec(t, r)), "%s should match %s", tc.pattern, r)
		}
		for _, r := range tc.miss {
			assert.False(t, f.Match(rec(t, r)), "%s should not match %s", tc.pattern, r)
		}
	}
	// Several patterns: any admits.
	f, err := CompileFilter([]string{`{"eventName":["REMOVE"]}`, `{"eventName":["INSERT"]}`})
	require.NoError(t, err)
	assert.True(t, f.Match(rec(t, ttl)))
	assert.True(t, f.Match(rec(t, config)))
	assert.False(t, f.Match(rec(t, bucket)))
	// None: everything.
	none, err := CompileFilter(nil)
	require.NoError(t, err)
	assert.True(t, none.Match(rec(t, bucket)))
}

func TestFilterCompileErrors(t *testing.T) {
	for pattern, want := range map[string]string{
		`not json`:                            "not a JSON object",
		`{"a":[{"wildcard":"x*"}]}`:           `filter operator "wildcard"`,
		`{"a":[]}`:                            "matches nothing",
		`{"a":"x"}`:                           "want an object or a list",
		`{"a":[{"numeric":["~",1]}]}`:         `numeric operator "~"`,
		`{"a":[{"prefix":"x","suffix":"y"}]}`: "exactly one operator",
	} {
		_, err := CompileFilter([]string{pattern})
		assert.ErrorContains(t, err, want, pattern)
	}
}
