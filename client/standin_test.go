package client_test

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"sync"

	"github.com/zeroae/zae-limiter-go/shared/wire"
)

// standIn is a tiny in-memory stand-in for `zae-limiter serve`, speaking the
// JSON contract of DECISIONS §4.2 for the examples. It is not the real
// handler (that is package api over DynamoDB, used by the integration test):
// buckets never refill, there are no entities, parents, namespaces or shards,
// and tokens are not signed. It only exists so the examples can run anywhere.
type standIn struct {
	mu       sync.Mutex
	defaults []wire.Limit
	buckets  map[string]int64 // entity/resource/limit → available
	leases   map[string]*standInLease
	next     int
}

type standInLease struct {
	entity, resource string
	consumed         map[string]int64
	closed           bool
}

// newStandIn serves the stand-in; every limit not given in the request is
// one of defaults.
func newStandIn(defaults ...wire.Limit) *httptest.Server {
	s := &standIn{defaults: defaults, buckets: map[string]int64{}, leases: map[string]*standInLease{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+wire.PathAcquire, s.acquire)
	mux.HandleFunc("POST "+wire.PathAdjust, s.adjust)
	mux.HandleFunc("POST "+wire.PathRelease, s.release)
	mux.HandleFunc("GET "+wire.PathAvailable, s.available)
	mux.HandleFunc("GET "+wire.PathHealth, func(w http.ResponseWriter, _ *http.Request) { reply(w, 200, struct{}{}) })
	return httptest.NewServer(mux)
}

func reply(w http.ResponseWriter, status int, body any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

func fail(w http.ResponseWriter, status int, code, msg string) {
	reply(w, status, wire.Error{Code: code, Message: msg})
}

func (s *standIn) limit(name string, given []wire.Limit) (wire.Limit, bool) {
	for _, l := range append(given, s.defaults...) {
		if l.Name == name {
			return l, true
		}
	}
	return wire.Limit{}, false
}

func (s *standIn) bucket(entity, resource string, l wire.Limit) string {
	k := entity + "/" + resource + "/" + l.Name
	if _, ok := s.buckets[k]; !ok {
		s.buckets[k] = l.Capacity
	}
	return k
}

func (s *standIn) acquire(w http.ResponseWriter, r *http.Request) {
	var req wire.AcquireRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.EntityID == "" || req.Resource == "" {
		fail(w, 400, wire.CodeInvalidRequest, "bad request")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	names := make([]string, 0, len(req.Consume))
	for n := range req.Consume {
		names = append(names, n)
	}
	sort.Strings(names)
	var violations []wire.Violation
	var states []wire.LimitState
	retry, retryable := 0.0, true
	for _, n := range names {
		l, ok := s.limit(n, req.Limits)
		if !ok || req.Consume[n] < 0 {
			fail(w, 400, wire.CodeInvalidRequest, "unknown limit "+n)
			return
		}
		avail := s.buckets[s.bucket(req.EntityID, req.Resource, l)]
		if want := req.Consume[n]; want > avail {
			violations = append(violations, wire.Violation{EntityID: req.EntityID, Resource: req.Resource, Limit: n, Available: avail, Requested: want})
			rate := float64(l.RefillAmount) / float64(l.RefillPeriodSeconds)
			retry = math.Max(retry, float64(want-avail)/rate)
			retryable = retryable && want <= l.Capacity
		}
		states = append(states, wire.LimitState{EntityID: req.EntityID, Name: n, Available: avail - req.Consume[n], Capacity: l.Capacity})
	}
	if len(violations) > 0 {
		w.Header().Set(wire.HeaderRetryAfter, strconv.Itoa(int(math.Ceil(retry))))
		reply(w, 429, wire.Error{Code: wire.CodeRateLimited, Message: "rate limit exceeded", RetryAfterSeconds: retry, Violations: violations, Retryable: &retryable})
		return
	}
	for _, n := range names {
		l, _ := s.limit(n, req.Limits)
		s.buckets[s.bucket(req.EntityID, req.Resource, l)] -= req.Consume[n]
	}
	s.next++
	token := fmt.Sprintf("standin-lease-%d", s.next)
	s.leases[token] = &standInLease{entity: req.EntityID, resource: req.Resource, consumed: req.Consume}
	reply(w, 200, wire.AcquireResponse{Lease: token, EntityID: req.EntityID, Resource: req.Resource, Consumed: req.Consume, Limits: states})
}

// open finds an open lease, answering the error itself when there is none.
func (s *standIn) open(w http.ResponseWriter, token string) *standInLease {
	l, ok := s.leases[token]
	switch {
	case !ok:
		fail(w, 400, wire.CodeInvalidLease, "invalid lease")
	case l.closed:
		fail(w, 409, wire.CodeLeaseClosed, "lease already closed")
	default:
		return l
	}
	return nil
}

func (s *standIn) adjust(w http.ResponseWriter, r *http.Request) {
	var req wire.AdjustRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		fail(w, 400, wire.CodeInvalidRequest, "bad request")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.open(w, req.Lease)
	if l == nil {
		return
	}
	for n, d := range req.Adjust {
		lim, ok := s.limit(n, nil)
		if !ok {
			fail(w, 400, wire.CodeInvalidRequest, "unknown limit "+n)
			return
		}
		s.buckets[s.bucket(l.entity, l.resource, lim)] -= d // may go into debt
		l.consumed[n] += d
	}
	reply(w, 200, wire.AdjustResponse{Lease: req.Lease, Consumed: l.consumed})
}

func (s *standIn) release(w http.ResponseWriter, r *http.Request) {
	var req wire.ReleaseRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		fail(w, 400, wire.CodeInvalidRequest, "bad request")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.open(w, req.Lease)
	if l == nil {
		return
	}
	l.closed = true
	if req.Rollback {
		for n, c := range l.consumed {
			lim, _ := s.limit(n, nil)
			s.buckets[s.bucket(l.entity, l.resource, lim)] += c
		}
	}
	reply(w, 200, wire.ReleaseResponse{Lease: req.Lease, RolledBack: req.Rollback})
}

func (s *standIn) available(w http.ResponseWriter, r *http.Request) {
	entity, resource := r.URL.Query().Get("entity_id"), r.URL.Query().Get("resource")
	s.mu.Lock()
	defer s.mu.Unlock()
	out := wire.AvailableResponse{Limits: []wire.LimitState{}}
	for _, l := range s.defaults {
		out.Limits = append(out.Limits, wire.LimitState{EntityID: entity, Name: l.Name, Available: s.buckets[s.bucket(entity, resource, l)], Capacity: l.Capacity})
	}
	reply(w, 200, out)
}
