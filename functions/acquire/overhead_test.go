package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/stretchr/testify/require"

	"github.com/zeroae/zae-limiter-go/client"
	"github.com/zeroae/zae-limiter-go/shared/api"
	"github.com/zeroae/zae-limiter-go/shared/ddblocal/ddbtest"
	"github.com/zeroae/zae-limiter-go/shared/lambdarun"
	"github.com/zeroae/zae-limiter-go/shared/limiter"
	"github.com/zeroae/zae-limiter-go/shared/limits"
	"github.com/zeroae/zae-limiter-go/shared/store"
)

// BenchmarkAcquirePaths measures one acquire three ways in the same run,
// alternating them round by round against one DynamoDB Local: the
// in-process limiter, the HTTP handler through the Go client (what `serve`
// runs), and the real bootstrap behind the Lambda Runtime API runner with a
// Function URL event. Each way has its own entity, so no writer sees another's
// writes. It reports p50/p99 in ms per way:
//
//	go test -run='^$' -bench=AcquirePaths -benchtime=3000x ./functions/acquire
func BenchmarkAcquirePaths(b *testing.B) {
	ctx := context.Background()
	bin := filepath.Join(b.TempDir(), "bootstrap")
	require.NoError(b, lambdarun.Build(ctx, lambdarun.BuildOptions{Package: ".", Output: bin}))
	s := stack{bootstrap: bin, endpoint: ddbtest.Endpoint(b), table: ddbtest.NewTable(b)}
	db := ddbtest.Client(b)
	st := store.New(db, store.Options{Table: s.table})
	_, err := st.RegisterNamespace(ctx, "default")
	require.NoError(b, err)
	ns, err := st.Namespace(ctx, "default")
	require.NoError(b, err)
	high := []limits.Limit{limits.PerMinute("rpm", 100_000_000, 0), limits.PerMinute("tpm", 100_000_000, 0)}
	require.NoError(b, ns.SetResourceDefaults(ctx, "bench", high))

	lim := limiter.New(db, ns, limiter.Options{Table: s.table, Namespace: ns.ID})
	inproc := func() error {
		_, err := lim.Acquire(ctx, limiter.Request{EntityID: "inproc", Resource: "bench", Consume: map[string]int64{"rpm": 1}})
		return err
	}

	srv := httptest.NewServer(api.New(api.Options{Store: st, DB: db, Table: s.table, Keys: [][]byte{[]byte(key1)}}))
	b.Cleanup(srv.Close)
	c, err := client.New(srv.URL, client.WithRetry(0, 0))
	require.NoError(b, err)
	overHTTP := func() error {
		_, err := c.Acquire(ctx, client.Request{EntityID: "http", Resource: "bench", Consume: map[string]int64{"rpm": 1}})
		return err
	}

	r, err := lambdarun.Start(ctx, lambdarun.Options{Binary: bin, Env: s.env("AWS_LAMBDA_LOG_LEVEL=INFO"), Output: io.Discard})
	require.NoError(b, err)
	b.Cleanup(func() { _ = r.Close() })
	event, err := json.Marshal(events.LambdaFunctionURLRequest{
		Version: "2.0", RawPath: "/v1/acquire", Headers: map[string]string{"content-type": "application/json"},
		RequestContext: events.LambdaFunctionURLRequestContext{HTTP: events.LambdaFunctionURLRequestContextHTTPDescription{
			Method: http.MethodPost, Path: "/v1/acquire", SourceIP: "127.0.0.1"}},
		Body: `{"entity_id":"lambda","resource":"bench","consume":{"rpm":1}}`,
	})
	require.NoError(b, err)
	viaLambda := func() error {
		res, err := r.Invoke(ctx, event)
		if err == nil && res.Err != nil {
			return res.Err
		}
		if err == nil && !strings.Contains(string(res.Payload), `"statusCode":200`) {
			b.Fatalf("bootstrap answered %s", res.Payload)
		}
		return err
	}

	ways := []struct {
		name string
		do   func() error
		lat  []time.Duration
	}{{name: "inproc", do: inproc}, {name: "serve", do: overHTTP}, {name: "lambda", do: viaLambda}}
	for i := range ways { // warm up: buckets, caches, connections
		require.NoError(b, ways[i].do())
	}
	b.ResetTimer()
	for range b.N {
		for i := range ways {
			t0 := time.Now()
			if err := ways[i].do(); err != nil {
				b.Fatalf("%s: %v", ways[i].name, err)
			}
			ways[i].lat = append(ways[i].lat, time.Since(t0))
		}
	}
	b.StopTimer()
	for _, w := range ways {
		b.ReportMetric(percentileMs(w.lat, 50), w.name+"-p50-ms")
		b.ReportMetric(percentileMs(w.lat, 99), w.name+"-p99-ms")
	}
}

func percentileMs(ds []time.Duration, p float64) float64 {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := int(p/100*float64(len(s))+0.999999) - 1
	return float64(s[max(0, min(i, len(s)-1))]) / float64(time.Millisecond)
}
