package client

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// seen is one request as the server got it.
type seen struct {
	Method string
	Path   string
	Query  map[string][]string
	Header http.Header
	Body   string
}

// server is an httptest server answering each request with the next handler
// of a script (the last one repeats) and recording what it got.
type server struct {
	*httptest.Server
	mu     sync.Mutex
	reqs   []seen
	script []http.HandlerFunc
}

func newServer(t *testing.T, script ...http.HandlerFunc) *server {
	t.Helper()
	s := &server{script: script}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.reqs = append(s.reqs, seen{Method: r.Method, Path: r.URL.Path, Query: r.URL.Query(), Header: r.Header.Clone(), Body: string(b)})
		i := min(len(s.reqs)-1, len(s.script)-1)
		h := s.script[i]
		s.mu.Unlock()
		h(w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *server) requests() []seen {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]seen(nil), s.reqs...)
}

func (s *server) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.reqs)
}

// answer replies status with a raw JSON body and optional header pairs.
func answer(status int, body string, headers ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		for i := 0; i+1 < len(headers); i += 2 {
			w.Header().Set(headers[i], headers[i+1])
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}
}

// drop reads the request, then closes the connection without an answer: the
// request reached the server but the client cannot know.
func drop(w http.ResponseWriter, _ *http.Request) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic("no hijacker")
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		panic(err)
	}
	_ = conn.Close()
}

// fastRetry: retries with (nearly) no waiting.
var fastRetry = WithRetry(3, time.Microsecond)

// newTestClient is newClient against s with the default HTTP client.
func newTestClient(t *testing.T, s *server, opts ...Option) *Client {
	t.Helper()
	c, err := newClient(s.URL, http.DefaultClient, append([]Option{fastRetry}, opts...)...)
	require.NoError(t, err)
	return c
}

// doerFunc adapts a function to the doer seam.
type doerFunc func(*http.Request) (*http.Response, error)

func (f doerFunc) Do(r *http.Request) (*http.Response, error) { return f(r) }

// dialFailures fails the first n requests as a refused connection would
// (before anything is sent), then passes them to next.
func dialFailures(n int, next doer) (doer, func() int) {
	var mu sync.Mutex
	calls := 0
	d := doerFunc(func(r *http.Request) (*http.Response, error) {
		mu.Lock()
		calls++
		c := calls
		mu.Unlock()
		if c <= n {
			return nil, &net.OpError{Op: "dial", Net: "tcp", Err: &net.AddrError{Err: "connection refused", Addr: r.URL.Host}}
		}
		return next.Do(r)
	})
	return d, func() int { mu.Lock(); defer mu.Unlock(); return calls }
}

const acquireOK = `{"lease":"tok-1","entity_id":"user-1","resource":"gpt-4","consumed":{"rpm":1,"tpm":500},` +
	`"limits":[{"entity_id":"user-1","name":"rpm","available":9,"capacity":10},{"entity_id":"user-1","name":"tpm","available":500,"capacity":1000}]}`

var testRequest = Request{EntityID: "user-1", Resource: "gpt-4", Consume: map[string]int64{"rpm": 1, "tpm": 500}}
