package usage

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zeroae/zae-limiter-go/shared/dynamo"
	"github.com/zeroae/zae-limiter-go/shared/stream"
)

func change(j int, seq string, at time.Time, tokens map[string]int64) Change {
	pos, _ := stream.Position(seq)
	return Change{Shard: hot.Of(j), Seq: seq, Position: pos, Stream: "L", Time: at, Tokens: tokens}
}

func TestPlan_groupsBySnapshotAndSource(t *testing.T) {
	next := t0.Add(time.Minute) // past midnight and the month's end
	changes := []Change{
		change(0, "3", t0, map[string]int64{"tpm": 30}),
		change(1, "2", t0, map[string]int64{"tpm": 20}),
		change(0, "1", t0, map[string]int64{"tpm": 10, "rpm": 1}),
		change(0, "3", t0, map[string]int64{"tpm": 30}), // seen twice: once
		change(0, "5", next, map[string]int64{"tpm": 50}),
	}
	writes := Plan(changes, []Window{Hourly, Monthly})
	var got []string
	for _, w := range writes {
		var srcs []string
		for _, s := range w.Sources {
			var seqs []string
			for _, c := range s.Changes {
				seqs = append(seqs, c.Seq)
			}
			srcs = append(srcs, s.Attr+"="+strings.Join(seqs, ","))
		}
		got = append(got, fmt.Sprintf("%s %s %s", w.Snapshot.Window, w.Snapshot.Start.Format(TimeLayout), strings.Join(srcs, " ")))
	}
	assert.Equal(t, []string{
		"hourly 2026-03-31T23:00:00Z at_0@L=1,3 at_1@L=2",
		"hourly 2026-04-01T00:00:00Z at_0@L=5",
		"monthly 2026-03-01T00:00:00Z at_0@L=1,3 at_1@L=2",
		"monthly 2026-04-01T00:00:00Z at_0@L=5",
	}, got, "sorted by key")
	assert.Equal(t, 3, writes[0].Changes())
	assert.Equal(t, []string{"1", "3", "2"}, writes[0].Seqs())
}

func TestPlan_manySourcesSpreadOverWrites(t *testing.T) {
	var changes []Change
	for j := range 2*maxSourcesPerWrite + 1 {
		changes = append(changes, change(j, fmt.Sprint(100+j), t0, map[string]int64{"tpm": 1}))
	}
	writes := Plan(changes, []Window{Daily})
	require.Len(t, writes, 3)
	total := 0
	for _, w := range writes {
		assert.LessOrEqual(t, len(w.Sources), maxSourcesPerWrite)
		assert.Equal(t, writes[0].Snapshot, w.Snapshot)
		total += len(w.Sources)
		u := w.Update(time.Hour)
		assert.LessOrEqual(t, u.Size(), dynamo.MaxExpressionSize)
	}
	assert.Equal(t, 2*maxSourcesPerWrite+1, total)
}

func TestWrite_pending(t *testing.T) {
	w := Plan([]Change{
		change(0, "1", t0, nil), change(0, "2", t0, nil), change(0, "3", t0, nil), change(5, "4", t0, nil),
	}, []Window{Hourly})[0]
	stored := dynamo.Item{"at_0@L": dynamo.S(w.Sources[0].Changes[1].Position)}
	p := w.Pending(stored)
	require.Len(t, p.Sources, 2)
	assert.Equal(t, []string{"3", "4"}, p.Seqs(), "past the stored position; a source not stored is pending whole")
	stored["at_5@L"] = dynamo.S(w.Sources[1].Changes[0].Position)
	stored["at_0@L"] = dynamo.S(w.Sources[0].Changes[2].Position)
	assert.Empty(t, w.Pending(stored).Sources)
	assert.Equal(t, w.Seqs(), w.Pending(nil).Seqs())
}

func TestWindows(t *testing.T) {
	at := time.Date(2028, 2, 29, 17, 45, 12, 5, time.FixedZone("x", -5*3600)) // 22:45 UTC
	for _, c := range []struct {
		w          Window
		start, end string
	}{
		{Hourly, "2028-02-29T22:00:00Z", "2028-02-29T23:00:00Z"},
		{Daily, "2028-02-29T00:00:00Z", "2028-03-01T00:00:00Z"},
		{Monthly, "2028-02-01T00:00:00Z", "2028-03-01T00:00:00Z"},
	} {
		s := c.w.Start(at)
		assert.Equal(t, c.start, s.Format(TimeLayout), "%s", c.w)
		assert.Equal(t, c.end, c.w.End(s).Format(TimeLayout), "%s", c.w)
	}
	ws, err := ParseWindows(" monthly,hourly ")
	require.NoError(t, err)
	assert.Equal(t, []Window{Hourly, Monthly}, ws)
	_, err = ParseWindows("hourly,weekly")
	assert.ErrorContains(t, err, `window "weekly": want hourly, daily or monthly`)
	ws, err = ParseWindows("daily,daily")
	require.NoError(t, err)
	assert.Equal(t, []Window{Daily}, ws)
	_, err = ParseWindows("")
	assert.Error(t, err)
}
