package stream

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"

	"github.com/aws/aws-lambda-go/events"
)

// Event is a stream event (the JSON of events.DynamoDBEvent) decoded
// record by record: a record that does not unmarshal is kept with its
// error, so the handler reports it as a batch item failure while the rest
// of the batch is processed.
type Event struct {
	Records []Received
}

// Received is one record of an Event.
type Received struct {
	events.DynamoDBEventRecord
	// Err is why the record did not unmarshal; its SequenceNumber is kept
	// when it could be read.
	Err error
}

// UnmarshalJSON reads {"Records": [...]}, each record on its own.
func (e *Event) UnmarshalJSON(b []byte) error {
	var raw struct {
		Records []json.RawMessage `json:"Records"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return fmt.Errorf("stream event: %w", err)
	}
	e.Records = make([]Received, len(raw.Records))
	for i, m := range raw.Records {
		rc := &e.Records[i]
		if err := json.Unmarshal(m, &rc.DynamoDBEventRecord); err != nil {
			var id struct {
				Change struct {
					SequenceNumber string `json:"SequenceNumber"`
				} `json:"dynamodb"`
			}
			_ = json.Unmarshal(m, &id)
			rc.DynamoDBEventRecord = events.DynamoDBEventRecord{}
			rc.Change.SequenceNumber = id.Change.SequenceNumber
			rc.Err = fmt.Errorf("record %d (%s): %w", i, orUnknown(id.Change.SequenceNumber), err)
		}
	}
	return nil
}

// MarshalJSON writes the records back as events.DynamoDBEvent does.
func (e Event) MarshalJSON() ([]byte, error) {
	ev := events.DynamoDBEvent{Records: make([]events.DynamoDBEventRecord, len(e.Records))}
	for i, r := range e.Records {
		ev.Records[i] = r.DynamoDBEventRecord
	}
	return json.Marshal(ev)
}

func orUnknown(seq string) string {
	if seq == "" {
		return "no sequence number"
	}
	return seq
}

// ErrUnidentified: a record failed and carries no sequence number to
// report it by. Only failing the whole invocation gets it retried (and, in
// the end, to the mapping's on-failure destination).
var ErrUnidentified = errors.New("a record that could not be processed has no sequence number")

// Failures collects the records a handler could not process.
type Failures struct {
	seqs map[string]bool
	// unidentified counts failed records without a sequence number.
	unidentified int
}

// Add records the failure of the record with sequence number seq.
func (f *Failures) Add(seq string) {
	if seq == "" {
		f.unidentified++
		return
	}
	if f.seqs == nil {
		f.seqs = map[string]bool{}
	}
	f.seqs[seq] = true
}

// Len is the number of failed records (identified or not).
func (f *Failures) Len() int { return len(f.seqs) + f.unidentified }

// Has reports whether the record seq failed.
func (f *Failures) Has(seq string) bool { return f.seqs[seq] }

// Response is the partial batch response: every failed record, lowest
// position first (the mapping retries from the lowest). It returns
// ErrUnidentified when a failed record could not be named: the caller must
// then fail the invocation.
func (f *Failures) Response() (events.DynamoDBEventResponse, error) {
	resp := events.DynamoDBEventResponse{BatchItemFailures: []events.DynamoDBBatchItemFailure{}}
	if f.unidentified > 0 {
		return resp, ErrUnidentified
	}
	seqs := make([]string, 0, len(f.seqs))
	for s := range f.seqs {
		seqs = append(seqs, s)
	}
	sort.Slice(seqs, func(i, j int) bool {
		pi, _ := Position(seqs[i])
		pj, _ := Position(seqs[j])
		if pi != pj {
			return pi < pj
		}
		return seqs[i] < seqs[j]
	})
	for _, s := range seqs {
		resp.BatchItemFailures = append(resp.BatchItemFailures, events.DynamoDBBatchItemFailure{ItemIdentifier: s})
	}
	return resp, nil
}
