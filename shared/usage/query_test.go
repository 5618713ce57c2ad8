package usage_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zeroae/zae-limiter-go/shared/ddblocal/ddbtest"
	"github.com/zeroae/zae-limiter-go/shared/dynamo"
	"github.com/zeroae/zae-limiter-go/shared/schema"
	"github.com/zeroae/zae-limiter-go/shared/usage"
)

// A history: three hours of two entities on two resources (one whose name
// could be mistaken for another resource's window in a key), and another
// namespace.
func history(t *testing.T) string {
	t.Helper()
	table := ddbtest.NewTable(t)
	a := &usage.Aggregator{DB: ddbtest.Client(t), Table: table, Windows: usage.Windows}
	h0 := time.Date(2026, 5, 10, 8, 0, 0, 0, time.UTC)
	seq := 100
	var changes []usage.Change
	add := func(ns, entity, res string, at time.Time, tpm int64) {
		seq++
		changes = append(changes, change(ns, entity, res, 0, itoa(seq), at, map[string]int64{"tpm": tpm, "rpm": 1}))
	}
	for hr := range 3 {
		at := h0.Add(time.Duration(hr)*time.Hour + 10*time.Minute)
		add("ns1", "alice", "gpt", at, 100)
		add("ns1", "alice", "gpt", at.Add(time.Minute), 50)
		add("ns1", "bob", "gpt", at, 10)
		add("ns1", "alice", "gpt#hourly", at, 7)
		add("ns2", "alice", "gpt", at, 1000)
	}
	out := a.Apply(context.Background(), changes)
	require.Empty(t, out.Errors)
	// Other items of the entity's partition, before and after the
	// snapshots in sort order: never read as snapshots.
	for _, sk := range []string{schema.SKMeta, schema.SKConfigPrefix + "gpt", "#ZZZ"} {
		_, err := ddbtest.Client(t).PutItem(context.Background(), &dynamodb.PutItemInput{TableName: aws.String(table),
			Item: dynamo.Item{schema.PK: dynamo.S(schema.EntityPK("ns1", "alice")), schema.SK: dynamo.S(sk)}})
		require.NoError(t, err)
	}
	return table
}

func itoa(n int) string { return strconv.Itoa(n) }

func list(t *testing.T, table string, f usage.Filter) []usage.Snapshot {
	t.Helper()
	if f.Namespace == "" {
		f.Namespace = "ns1"
	}
	snaps, err := usage.List(context.Background(), ddbtest.Client(t), table, f)
	require.NoError(t, err)
	return snaps
}

func describe(snaps []usage.Snapshot) []string {
	var out []string
	for _, s := range snaps {
		out = append(out, s.Start.Format("02T15h")+" "+string(s.Window)[:1]+" "+s.EntityID+" "+s.Resource+" "+itoa(int(s.Counters["tpm"])))
	}
	return out
}

func TestList(t *testing.T) {
	table := history(t)
	hourly := []usage.Window{usage.Hourly}

	assert.Equal(t, []string{"10T08h h alice gpt 150", "10T09h h alice gpt 150", "10T10h h alice gpt 150"},
		describe(list(t, table, usage.Filter{EntityID: "alice", Resource: "gpt", Windows: hourly})),
		"entity and resource narrow together; gpt#hourly and ns2 are not gpt")
	assert.Equal(t, []string{"10T08h h alice gpt 150", "10T08h h bob gpt 10", "10T09h h alice gpt 150", "10T09h h bob gpt 10", "10T10h h alice gpt 150", "10T10h h bob gpt 10"},
		describe(list(t, table, usage.Filter{Resource: "gpt", Windows: hourly})), "by resource (GSI2)")
	assert.Equal(t, []string{"01T00h m alice gpt 450", "01T00h m alice gpt#hourly 21", "10T00h d alice gpt 450", "10T00h d alice gpt#hourly 21"},
		describe(list(t, table, usage.Filter{EntityID: "alice", Windows: []usage.Window{usage.Daily, usage.Monthly}})), "by entity")
	assert.Len(t, list(t, table, usage.Filter{EntityID: "alice"}), 2*3+2+2, "every window")

	// The time range keeps windows that overlap it.
	from, to := time.Date(2026, 5, 10, 9, 30, 0, 0, time.UTC), time.Date(2026, 5, 10, 10, 0, 0, 0, time.UTC)
	for _, f := range []usage.Filter{
		{EntityID: "alice", Resource: "gpt", Windows: hourly, From: from, To: to},
		{Resource: "gpt", Windows: hourly, From: from, To: to},
		{EntityID: "alice", Windows: hourly, From: from, To: to},
	} {
		got := describe(list(t, table, f))
		assert.Contains(t, got, "10T09h h alice gpt 150", "%+v", f)
		assert.Contains(t, got, "10T10h h alice gpt 150", "%+v", f)
		assert.NotContains(t, got, "10T08h h alice gpt 150", "%+v", f)
	}
	assert.Empty(t, list(t, table, usage.Filter{EntityID: "alice", Resource: "gpt", From: time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC)}))
	assert.Empty(t, list(t, table, usage.Filter{EntityID: "carol"}))

	_, err := usage.List(context.Background(), ddbtest.Client(t), table, usage.Filter{Namespace: "ns1"})
	assert.ErrorIs(t, err, usage.ErrNoSubject)
}

func TestSummarize(t *testing.T) {
	table := history(t)
	snaps := list(t, table, usage.Filter{EntityID: "alice", Resource: "gpt"})
	assert.Equal(t, usage.Hourly, usage.Finest(snaps))
	s := usage.Summarize(snaps, usage.Hourly)
	assert.Equal(t, 3, s.Snapshots)
	assert.Equal(t, []usage.LimitTotal{{Name: "rpm", Total: 6, Average: 2}, {Name: "tpm", Total: 450, Average: 150}}, s.Limits)
	assert.Equal(t, time.Date(2026, 5, 10, 8, 0, 0, 0, time.UTC), s.From)
	assert.Equal(t, time.Date(2026, 5, 10, 11, 0, 0, 0, time.UTC), s.To)
	d := usage.Summarize(snaps, usage.Daily)
	assert.Equal(t, []usage.LimitTotal{{Name: "rpm", Total: 6, Average: 6}, {Name: "tpm", Total: 450, Average: 450}}, d.Limits,
		"the same total in every window")
	assert.Equal(t, usage.Window(""), usage.Finest(nil))
	third := usage.Summarize([]usage.Snapshot{{SnapshotID: usage.SnapshotID{Window: usage.Hourly}, Counters: map[string]int64{"x": 1}},
		{SnapshotID: usage.SnapshotID{Window: usage.Hourly}}, {SnapshotID: usage.SnapshotID{Window: usage.Hourly}}}, usage.Hourly)
	assert.Equal(t, 0.33, third.Limits[0].Average)
}
