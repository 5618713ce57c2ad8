package api

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/zeroae/zae-limiter-go/shared/limiter"
	"github.com/zeroae/zae-limiter-go/shared/limits"
	"github.com/zeroae/zae-limiter-go/shared/store"
	"github.com/zeroae/zae-limiter-go/shared/wire"
)

// DynamoDB lists the calls the handler makes directly: the limiter's
// (limiter.DynamoDB) and, for the lease-state item, UpdateItem and GetItem
// among them. *dynamodb.Client satisfies it.
type DynamoDB interface {
	UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	PutItem(ctx context.Context, in *dynamodb.PutItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	BatchGetItem(ctx context.Context, in *dynamodb.BatchGetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error)
}

// Calls are the DynamoDB actions the handler issues through Options.DB: the
// limiter's; the lease state needs no others. The namespace and config
// reads go through Options.Store (store.AcquireCalls).
var Calls = limiter.Calls

// Defaults applied by New.
const (
	DefaultNamespace = "default"
	DefaultLeaseTTL  = 15 * time.Minute
)

// Options configure a Handler. Store, DB and Table are required.
type Options struct {
	// Store resolves namespaces and reads limits configuration.
	Store *store.Store
	// DB is the client of the bucket and lease-state writes.
	DB DynamoDB
	// Table is the table name; empty means Store.Table().
	Table string
	// DefaultNamespace is the namespace of requests that name none;
	// empty means "default".
	DefaultNamespace string
	// Keys sign and verify lease tokens: the first signs, every one
	// verifies (key rotation: put the new key first, keep the old one until
	// its leases have expired). None means one random key for the life of
	// the handler (tokens then die with the process).
	Keys [][]byte
	// LeaseTTL is how long a lease token is valid; 0 means DefaultLeaseTTL.
	LeaseTTL time.Duration
	// Token, when set, is required as "Authorization: Bearer <Token>" on
	// every route but /healthz.
	Token string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger receives one record per request (debug; errors at error level
	// with their cause); nil means slog.Default().
	Logger *slog.Logger
	// Limiter tunes the per-namespace limiters; Table, Namespace and Now are
	// set by the handler, and Timeout defaults to this Timeout.
	Limiter limiter.Options
	// Timeout bounds every request but /healthz, namespace and config reads
	// included: past it the answer is 503 unavailable, or what the
	// namespace's on_unavailable policy decides for an acquire. 0 means
	// limiter.DefaultTimeout (5 s).
	Timeout time.Duration
}

// Handler is the acquire HTTP API. It is safe for concurrent use and meant
// to live as long as the process: its per-namespace limiters hold the bucket
// caches that keep an acquire at one request.
type Handler struct {
	o      Options
	log    *slog.Logger
	routes map[string]route

	mu   sync.Mutex
	lims map[string]*limiter.Limiter // by namespace id
}

var paths = []string{wire.PathAcquire, wire.PathAdjust, wire.PathRelease, wire.PathAvailable, wire.PathHealth}

type route struct {
	method string
	auth   bool
	serve  func(http.ResponseWriter, *http.Request) (any, error)
}

// New builds the handler.
func New(o Options) *Handler {
	if o.Table == "" && o.Store != nil {
		o.Table = o.Store.Table()
	}
	if o.DefaultNamespace == "" {
		o.DefaultNamespace = DefaultNamespace
	}
	if o.LeaseTTL <= 0 {
		o.LeaseTTL = DefaultLeaseTTL
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if len(o.Keys) == 0 {
		o.Keys = [][]byte{RandomKey()}
	}
	if o.Timeout <= 0 {
		o.Timeout = limiter.DefaultTimeout
	}
	if o.Limiter.Timeout <= 0 {
		o.Limiter.Timeout = o.Timeout
	}
	h := &Handler{o: o, log: o.Logger, lims: map[string]*limiter.Limiter{}}
	if h.log == nil {
		h.log = slog.Default()
	}
	h.routes = map[string]route{
		wire.PathAcquire:   {http.MethodPost, true, h.acquire},
		wire.PathAdjust:    {http.MethodPost, true, h.adjust},
		wire.PathRelease:   {http.MethodPost, true, h.release},
		wire.PathAvailable: {http.MethodGet, true, h.available},
		wire.PathHealth:    {http.MethodGet, false, h.health},
	}
	return h
}

// RandomKey returns 32 random bytes, a lease-signing key.
func RandomKey() []byte {
	k := make([]byte, 32)
	_, _ = rand.Read(k) // never fails (crypto/rand)
	return k
}

// ServeHTTP routes the request; every answer is JSON.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rw := &statusWriter{ResponseWriter: w}
	body, err := h.serve(rw, r)
	if err != nil {
		h.fail(rw, r, err)
	} else {
		writeJSON(rw, http.StatusOK, body)
	}
	h.log.LogAttrs(r.Context(), slog.LevelDebug, "request",
		slog.String("method", r.Method), slog.String("path", r.URL.Path),
		slog.Int("status", rw.status), slog.Duration("duration", time.Since(start)))
}

func (h *Handler) serve(w http.ResponseWriter, r *http.Request) (any, error) {
	rt, ok := h.routes[r.URL.Path]
	if !ok {
		return nil, &apiError{status: http.StatusNotFound, code: wire.CodeNotFound,
			msg: "no route " + quoteTrunc(r.URL.Path) + "; the API serves " + strings.Join(paths, ", ")}
	}
	if r.Method != rt.method && !(rt.method == http.MethodGet && r.Method == http.MethodHead) {
		allow := rt.method
		if rt.method == http.MethodGet {
			allow += ", " + http.MethodHead
		}
		w.Header().Set("Allow", allow)
		return nil, &apiError{status: http.StatusMethodNotAllowed, code: wire.CodeMethodNotAllowed,
			msg: r.URL.Path + " accepts " + allow + ", not " + quoteTrunc(r.Method)}
	}
	if rt.auth && !h.authorized(r) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="zae-limiter"`)
		return nil, &apiError{status: http.StatusUnauthorized, code: wire.CodeUnauthorized,
			msg: "missing or wrong bearer token: send Authorization: Bearer <token>"}
	}
	if rt.method == http.MethodPost && !isJSON(r.Header.Get("Content-Type")) {
		return nil, &apiError{status: http.StatusUnsupportedMediaType, code: wire.CodeUnsupportedType,
			msg: "the request body must be sent with Content-Type: " + wire.ContentType + ", not " + quoteTrunc(r.Header.Get("Content-Type"))}
	}
	if rt.auth {
		// Every route that reads or writes the table answers within the
		// budget, whatever DynamoDB does (a hung one included).
		ctx, cancel := context.WithTimeout(r.Context(), h.o.Timeout)
		defer cancel()
		r = r.WithContext(ctx)
	}
	return rt.serve(w, r)
}

// isJSON reports a Content-Type of application/json, parameters (charset)
// allowed. Requiring it keeps a web page from posting to a local serve: a
// cross-site form or a "simple" fetch can send only form or text types,
// and application/json needs a CORS preflight, which the API never grants.
func isJSON(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && mt == wire.ContentType
}

func (h *Handler) authorized(r *http.Request) bool {
	if h.o.Token == "" {
		return true
	}
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(strings.TrimSpace(tok)), []byte(h.o.Token)) == 1
}

func (h *Handler) health(http.ResponseWriter, *http.Request) (any, error) {
	return map[string]string{"status": "ok"}, nil
}

// limiterFor returns the namespace's limiter, built on first use.
func (h *Handler) limiterFor(ns *store.NS) *limiter.Limiter {
	h.mu.Lock()
	defer h.mu.Unlock()
	if l, ok := h.lims[ns.ID]; ok {
		return l
	}
	o := h.o.Limiter
	o.Table, o.Namespace, o.Now = h.o.Table, ns.ID, h.o.Now
	l := limiter.New(h.o.DB, ns, o)
	h.lims[ns.ID] = l
	return l
}

// cachedLimiter returns the limiter of a namespace id if one was built.
func (h *Handler) cachedLimiter(nsID string) *limiter.Limiter {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.lims[nsID]
}

// namespace resolves a namespace name ("" = the default) to its handle and
// limiter. The handler never registers namespaces.
func (h *Handler) namespace(ctx context.Context, name string) (*store.NS, *limiter.Limiter, error) {
	if name == "" {
		name = h.o.DefaultNamespace
	}
	ns, err := h.o.Store.Namespace(ctx, name)
	switch {
	case errors.Is(err, limits.ErrInvalid):
		return nil, nil, err
	case errors.Is(err, limits.ErrNotFound):
		return nil, nil, &apiError{status: http.StatusNotFound, code: wire.CodeNotFound,
			msg: "namespace " + quoteTrunc(name) + " is not registered: register it with 'zae-limiter namespace register " + name + "'"}
	case err != nil:
		return nil, nil, unavailable("resolve namespace", err)
	}
	return ns, h.limiterFor(ns), nil
}

// apiError is a failure the handler has classified: its status, code and
// message (our own words) are sent; its cause is only logged.
type apiError struct {
	status int
	code   string
	msg    string
	cause  error
}

func (e *apiError) Error() string {
	if e.cause != nil {
		return e.msg + ": " + e.cause.Error()
	}
	return e.msg
}

func (e *apiError) Unwrap() error { return e.cause }

// unavailable classifies a backend failure (op names what failed).
func unavailable(op string, cause error) *apiError {
	return &apiError{status: http.StatusServiceUnavailable, code: wire.CodeUnavailable,
		msg: "the rate limiter's storage is unavailable; try again later", cause: fmt.Errorf("%s: %w", op, cause)}
}

func invalid(msg string) *apiError {
	return &apiError{status: http.StatusBadRequest, code: wire.CodeInvalidRequest, msg: msg}
}

// fail maps err to its status and JSON body; it is the only place errors
// become answers.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	status, body := classify(err, w.Header())
	level := slog.LevelDebug
	if status >= 500 {
		level = slog.LevelError
	}
	h.log.LogAttrs(r.Context(), level, "request failed",
		slog.String("method", r.Method), slog.String("path", r.URL.Path),
		slog.Int("status", status), slog.String("error", body.Code), slog.String("cause", err.Error()))
	writeJSON(w, status, body)
}

func classify(err error, hdr http.Header) (int, wire.Error) {
	var ae *apiError
	var ex *limits.ExceededError
	var ve *limits.ValidationError
	switch {
	case errors.As(err, &ae):
		return ae.status, wire.Error{Code: ae.code, Message: ae.msg}
	case errors.As(err, &ex):
		return http.StatusTooManyRequests, denial(ex, hdr)
	case errors.As(err, &ve):
		return http.StatusBadRequest, wire.Error{Code: wire.CodeInvalidRequest, Message: ve.Error()}
	case errors.Is(err, limits.ErrLeaseClosed):
		return http.StatusConflict, wire.Error{Code: wire.CodeLeaseClosed, Message: msgLeaseClosed}
	case errors.Is(err, limits.ErrUnavailable):
		return http.StatusServiceUnavailable, wire.Error{Code: wire.CodeUnavailable,
			Message: "the rate limiter's storage is unavailable and the namespace's on_unavailable policy is block; try again later"}
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return http.StatusServiceUnavailable, wire.Error{Code: wire.CodeUnavailable, Message: "the request was cancelled or timed out"}
	}
	return http.StatusInternalServerError, wire.Error{Code: wire.CodeInternal, Message: "internal error"}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := marshal(v)
	if err != nil { // our own types: cannot happen
		status, b = http.StatusInternalServerError, []byte("{\"error\":\"internal_error\",\"message\":\"internal error\"}\n")
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// marshal is json.Marshal without HTML escaping (an API answer is not
// HTML: "<" stays "<"), with a trailing newline.
func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	err := enc.Encode(v)
	return buf.Bytes(), err
}

// statusWriter remembers the status written, for the request log.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// quoteTrunc quotes user input for a message, cut to 80 bytes.
func quoteTrunc(s string) string {
	s = cut(s, 80)
	b, _ := marshal(s)
	return string(bytes.TrimSuffix(b, []byte("\n")))
}
