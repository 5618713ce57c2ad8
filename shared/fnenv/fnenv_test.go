package fnenv_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zeroae/zae-limiter-go/shared/fnenv"
)

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestReaderDefaultsAndValues(t *testing.T) {
	r := fnenv.New(env(map[string]string{"TABLE_NAME": " limiter ", "B": "true", "N": "7"}))
	assert.Equal(t, "limiter", r.TableName("TABLE_NAME"))
	assert.True(t, r.Bool("B", false))
	assert.False(t, r.Bool("UNSET", false))
	assert.Equal(t, 7, r.Int("N", 1, 0, 10, "0 to 10"))
	assert.Equal(t, 3, r.Int("UNSET", 3, 0, 10, "0 to 10"))
	require.NoError(t, r.Err())
}

func TestReaderNamesEveryVariableAtFault(t *testing.T) {
	r := fnenv.New(env(map[string]string{"TABLE_NAME": "a b", "B": "yes", "N": "11", "M": "x"}))
	r.TableName("TABLE_NAME")
	assert.False(t, r.Bool("B", false), "a bad value reads as the default")
	assert.Equal(t, 1, r.Int("N", 1, 0, 10, "0 to 10"))
	r.Int("M", 1, 0, 10, "0 to 10")
	r.Required("GONE")
	err := r.Err()
	require.Error(t, err)
	for _, want := range []string{`TABLE_NAME="a b"`, `B="yes": want true or false`, `N="11": want 0 to 10`, `M="x"`, "GONE is required"} {
		assert.Contains(t, err.Error(), want)
	}
}
