package provision

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/stretchr/testify/require"

	"github.com/zeroae/zae-limiter-go/shared/ddblocal/ddbtest"
	"github.com/zeroae/zae-limiter-go/shared/dynamo"
	"github.com/zeroae/zae-limiter-go/shared/manifest"
)

// bigManifest declares the system, two resources and n entities with
// their own gpt-4 limits; every tenth entity's rpm is bumped by bump.
func bigManifest(b testing.TB, n int, bump int) *manifest.Manifest {
	var s strings.Builder
	s.WriteString("namespace: default\nsystem: {on_unavailable: block, limits: {rpm: 1000, tpm: 100000}}\n")
	s.WriteString("resources:\n  gpt-4: {limits: {rpm: 500, tpm: 50000}}\n  claude: {limits: {rpm: 500}}\nentities:\n")
	for i := range n {
		rpm := 100 + i%7
		if i%10 == 0 {
			rpm += bump
		}
		fmt.Fprintf(&s, "  user-%05d: {resources: {gpt-4: {limits: {rpm: %d, tpm: 10000/min:15000}}}}\n", i, rpm)
	}
	m, err := manifest.Parse("big.yaml", []byte(s.String()))
	require.NoError(b, err)
	return m
}

// BenchmarkManifest5000 plans and applies a manifest of 5,000 entities on
// DynamoDB Local, then the same again (no changes), then one with every
// tenth entity changed, and diffs it; it logs the time and the DynamoDB
// requests of each step (docs/performance.md). Run with
//
//	go test -run '^$' -bench Manifest5000 -benchtime 1x ./shared/provision
func BenchmarkManifest5000(b *testing.B) {
	for _, workers := range []int{8, 32} {
		b.Run(fmt.Sprintf("concurrency=%d", workers), func(b *testing.B) {
			for range b.N {
				benchManifest(b, 5000, workers)
			}
		})
	}
}

func benchManifest(b *testing.B, n, workers int) {
	ctx := context.Background()
	counter := &dynamo.Counter{}
	db := dynamodb.NewFromConfig(ddbtest.Config(b), func(o *dynamodb.Options) {
		o.DisableValidateResponseChecksum = true
		o.APIOptions = append(o.APIOptions, counter.Install)
	})
	eng := &Engine{DB: db, Table: ddbtest.NewTable(b), Concurrency: workers}
	first, changed := bigManifest(b, n, 0), bigManifest(b, n, 1)
	step := func(name string, run func(context.Context, Request) (*Result, error), m *manifest.Manifest) *Result {
		counter.Reset()
		start := time.Now()
		res, err := run(ctx, Request{Manifest: m, Namespace: "default", Principal: "bench"})
		require.NoError(b, err)
		require.Empty(b, res.Errors)
		took := time.Since(start)
		reqs := counter.Snapshot()
		b.Logf("%-26s %6d changes %8.2f s %7d requests %v", name, len(res.Changes), took.Seconds(), counter.Count(""), reqs)
		b.ReportMetric(took.Seconds(), strings.ReplaceAll(name, " ", "_")+"_s")
		return res
	}
	step("plan (new namespace)", eng.Plan, first)
	step("apply", eng.Apply, first)
	step("plan again", eng.Plan, first)
	step("apply again (no changes)", eng.Apply, first)
	step("plan 10% changed", eng.Plan, changed)
	step("apply 10% changed", eng.Apply, changed)
	step("diff", eng.Diff, changed)
}
