// Command streamfn is the stream function of the local stack's tests: it
// records every batch it is given and fails on demand, as a record's new
// image says:
//
//	fail_times   N  the batch fails (an error) the first N times it holds the record
//	partial_times N the record is reported in batchItemFailures the first N times
//	crash_times  N  the process exits the first N times it sees the record
//	poison          the batch always fails
//
// Counts live in files under STATE_DIR, so they survive the process being
// killed; each invocation appends one JSON line to SINK.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
)

type seen struct {
	Key          string                       `json:"key"`
	Seq          string                       `json:"seq"`
	EventName    string                       `json:"event_name"`
	UserIdentity *events.DynamoDBUserIdentity `json:"user_identity,omitempty"`
	Source       string                       `json:"source_arn"`
}

type line struct {
	PID     int    `json:"pid"`
	Records []seen `json:"records"`
	Result  string `json:"result"`
}

func handle(ctx context.Context, ev events.DynamoDBEvent) (events.DynamoDBEventResponse, error) {
	out := line{PID: os.Getpid(), Result: "ok"}
	var resp events.DynamoDBEventResponse
	var fail error
	for _, r := range ev.Records {
		img := r.Change.NewImage
		if img == nil {
			img = r.Change.OldImage
		}
		key := r.Change.Keys["PK"].String()
		out.Records = append(out.Records, seen{Key: key, Seq: r.Change.SequenceNumber, EventName: r.EventName,
			UserIdentity: r.UserIdentity, Source: r.EventSourceArn})
		if _, ok := img["poison"]; ok {
			fail = errors.New("poison record " + key)
		}
		if below(img, "fail_times", key) {
			fail = errors.New("failing record " + key)
		}
		if below(img, "partial_times", key) {
			resp.BatchItemFailures = append(resp.BatchItemFailures, events.DynamoDBBatchItemFailure{ItemIdentifier: r.Change.SequenceNumber})
		}
		if below(img, "crash_times", key) {
			out.Result = "crash"
			record(out)
			os.Exit(2)
		}
	}
	switch {
	case fail != nil:
		out.Result = "error"
	case len(resp.BatchItemFailures) > 0:
		out.Result = "partial"
	}
	record(out)
	return resp, fail
}

// below reports whether the record's attr count is not yet reached, and
// counts this time.
func below(img map[string]events.DynamoDBAttributeValue, attr, key string) bool {
	v, ok := img[attr]
	if !ok {
		return false
	}
	limit, _ := strconv.Atoi(v.Number())
	file := filepath.Join(os.Getenv("STATE_DIR"), attr+"-"+key)
	b, _ := os.ReadFile(file)
	n, _ := strconv.Atoi(string(b))
	if n >= limit {
		return false
	}
	_ = os.WriteFile(file, []byte(strconv.Itoa(n+1)), 0o644)
	return true
}

func record(l line) {
	b, _ := json.Marshal(l)
	f, err := os.OpenFile(os.Getenv("SINK"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return
	}
	_, _ = f.Write(append(b, '\n'))
	_ = f.Close()
}

func main() { lambda.Start(handle) }
