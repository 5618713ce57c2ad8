package usage_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zeroae/zae-limiter-go/shared/ddblocal/ddbtest"
	"github.com/zeroae/zae-limiter-go/shared/shard"
	"github.com/zeroae/zae-limiter-go/shared/stream"
	"github.com/zeroae/zae-limiter-go/shared/usage"
	"github.com/zeroae/zae-limiter-go/shared/usage/usagetest"
)

// rollbackOf finds the record of a rollback on entity's bucket: the one
// whose net consumed counters go down by the amounts (decoded by the
// shard package, the oracle's own reading).
func rollbackOf(t *testing.T, recs []events.DynamoDBEventRecord, entity string, tpm int64) int {
	t.Helper()
	for i, er := range recs {
		r, err := stream.Decode(er)
		require.NoError(t, err)
		if r.Kind != stream.Modify || !strings.Contains(r.Key().PK, "#"+entity+"#") {
			continue
		}
		old, err := shard.Decode(r.Old)
		require.NoError(t, err)
		cur, err := shard.Decode(r.New)
		require.NoError(t, err)
		if old.Limits["tpm"].TC-cur.Limits["tpm"].TC == tpm*shard.Milli {
			return i
		}
	}
	t.Fatalf("no rollback of %d tpm on %s", tpm, entity)
	return -1
}

// A record that cannot be read comes back in batchItemFailures, alone;
// the rest of the batch is processed. Here: solo's rollback record with a
// damaged image (its 700 tpm and 2 rpm are missing from the totals), a
// record that is not JSON of a record, and DynamoDB Local's form of a TTL
// deletion (not consumption: ignored).
func TestHandler_poisonedRecordFailsAlone(t *testing.T) {
	e := usagetest.New(t, "")
	recs := usagetest.Busy(e)
	want := e.ConsumedBy(usagetest.BusyBuckets...)
	bad := rollbackOf(t, recs, "solo", 700)
	poisoned := recs[bad]
	img := map[string]events.DynamoDBAttributeValue{}
	for k, v := range poisoned.Change.NewImage {
		img[k] = v
	}
	img["b_tpm_w"] = events.NewNumberAttribute("1e400") // not an int64: a damaged item
	poisoned.Change.NewImage = img

	var b bytes.Buffer
	h := handler(e)
	h.Log = slog.New(slog.NewJSONHandler(&b, nil))
	h.FunctionName = "limiter-aggregator"
	h.Now = func() time.Time { return time.Now().Add(5 * time.Second) }

	batch := append(append(append([]events.DynamoDBEventRecord{}, recs[:bad]...), poisoned), recs[bad+1:]...)
	doc, err := json.Marshal(usagetest.Event(batch))
	require.NoError(t, err)
	// One more record that does not even unmarshal, and a TTL deletion.
	doc = bytes.Replace(doc, []byte(`]}`), []byte(`,{"eventName":"MODIFY","dynamodb":{"SequenceNumber":"999999999999999999999","NewImage":{"x":{"N":1}}}},
		{"eventName":"UNKNOWN_TO_SDK_VERSION","dynamodb":{"SequenceNumber":"999999999999999999998","ApproximateCreationDateTime":1767225600,
		 "Keys":{"PK":{"S":"x/BUCKET#a#b#0"},"SK":{"S":"#STATE"}},"OldImage":{"PK":{"S":"x/BUCKET#a#b#0"},"SK":{"S":"#STATE"}}}}]}`), 1)
	var ev stream.Event
	require.NoError(t, json.Unmarshal(doc, &ev))

	resp, err := h.Handle(context.Background(), ev)
	require.NoError(t, err)
	assert.Equal(t, []events.DynamoDBBatchItemFailure{{ItemIdentifier: poisoned.Change.SequenceNumber},
		{ItemIdentifier: "999999999999999999999"}}, resp.BatchItemFailures)

	want["solo"] = map[string]int64{"rpm": 1 + 2, "tpm": 40 + 700}
	for _, w := range usage.Windows {
		got, _ := totals(t, e, w)
		assert.Equal(t, want, got, "%s", w)
	}

	// The log: a line per failed record, and one summary line with the
	// counts, the lag and the EMF metrics.
	var lines []map[string]any
	for _, l := range bytes.Split(bytes.TrimSpace(b.Bytes()), []byte("\n")) {
		var m map[string]any
		require.NoError(t, json.Unmarshal(l, &m), "%s", l)
		lines = append(lines, m)
	}
	require.Len(t, lines, 3)
	assert.Equal(t, "stream record not processed", lines[0]["msg"])
	assert.Contains(t, lines[0]["error"], "not an int64")
	sum := lines[2]
	assert.Equal(t, "usage batch processed", sum["msg"])
	assert.Equal(t, float64(len(recs)+2), sum["records"])
	assert.Equal(t, float64(2), sum["records_failed"])
	assert.GreaterOrEqual(t, sum["lag_ms"], float64(5000))
	assert.Equal(t, sum["records_failed"], sum["RecordsFailed"])
	assert.Equal(t, sum["snapshots_written"], sum["SnapshotsWritten"])
	assert.Equal(t, "limiter-aggregator", sum["FunctionName"])
	assert.Contains(t, sum, "_aws")
}

// A failed record without a sequence number cannot be reported on its
// own: the invocation fails, so the mapping retries (and bisects) it.
func TestHandler_unidentifiedRecordFailsTheBatch(t *testing.T) {
	h := handler(&usagetest.Env{Table: ddbtest.NewTable(t), DB: ddbtest.Client(t)})
	var ev stream.Event
	require.NoError(t, json.Unmarshal([]byte(`{"Records":[{"eventName":"MODIFY","dynamodb":{"NewImage":{"x":{"N":1}}}}]}`), &ev))
	_, err := h.Handle(context.Background(), ev)
	assert.ErrorIs(t, err, stream.ErrUnidentified)
}
