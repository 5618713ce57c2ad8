package tests

import (
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zeroae/zae-limiter-go/shared/archive"
	"github.com/zeroae/zae-limiter-go/shared/localstack/samtpl"
)

// The local stack names the template's archive bucket as the CLI looks for
// it locally (archive.LocalBucketName), and the archiver function gets that
// name in its environment.
func TestLocalStackArchiveBucketName(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile(templatePath(t))
	require.NoError(t, err)
	tpl, err := samtpl.Parse(b)
	require.NoError(t, err)
	for _, stack := range []string{"limiter", "My_App.v2"} {
		st, err := tpl.Load(samtpl.Options{StackName: stack})
		require.NoError(t, err)
		var names []string
		for _, bk := range st.Buckets {
			names = append(names, bk.Name)
		}
		assert.Contains(t, names, archive.LocalBucketName(stack), stack)
		for _, fn := range st.Functions {
			if v, ok := fn.Env["ARCHIVE_BUCKET_NAME"]; ok {
				assert.Equal(t, archive.LocalBucketName(stack), v, "%s of %s", fn.Name, stack)
			}
		}
	}
}
