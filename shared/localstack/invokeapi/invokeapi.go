// Package invokeapi serves the Lambda API's Invoke (and the function
// listing reads) for the local stack's functions, at the paths the AWS SDKs
// and CLI use (POST /2015-03-31/functions/{name}/invocations), so that
// `aws lambda invoke` and the SDK's lambda client work against the one
// endpoint:
//
//   - RequestResponse (the default) answers 200 with the function's payload;
//     a function error (returned, a crash, a timeout) adds
//     X-Amz-Function-Error: Unhandled and the error payload, as Lambda does.
//   - Event answers 202 at once and runs the function in the background,
//     retrying a failed invocation twice (Lambda's asynchronous default).
//   - DryRun answers 204.
//   - An unknown function is 404 ResourceNotFoundException; a payload over
//     6 MB is 413 RequestTooLargeException.
//
// Functions are named as in the template (FunctionName) or by ARN, with an
// optional $LATEST qualifier.
//
// Local-only tooling: no Lambda imports it.
package invokeapi

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/zeroae/zae-limiter-go/shared/lambdarun"
)

// Function is what the API needs of a local function.
type Function interface {
	Invoke(ctx context.Context, payload []byte) (lambdarun.Result, error)
	Config() Config
}

// Config describes a function as GetFunction and ListFunctions do.
type Config struct {
	FunctionName string `json:"FunctionName"`
	FunctionArn  string `json:"FunctionArn"`
	Runtime      string `json:"Runtime"`
	Handler      string `json:"Handler"`
	MemorySize   int    `json:"MemorySize"`
	Timeout      int    `json:"Timeout"`
	Version      string `json:"Version"`
	State        string `json:"State"`
	Environment  *struct {
		Variables map[string]string `json:"Variables"`
	} `json:"Environment,omitempty"`
}

// Options configure the API.
type Options struct {
	// Lookup finds a function by its name (FunctionName, no qualifier).
	Lookup func(name string) (Function, bool)
	// List lists every function.
	List func() []Function
	// AsyncRetryDelays are the waits before each retry of a failed Event
	// invocation (default 1 s and 2 s: Lambda waits about 1 and 2 minutes).
	AsyncRetryDelays []time.Duration
	// Log receives async invocation failures (default: discard).
	Log *slog.Logger
}

// API is the Lambda API handler.
type API struct {
	o  Options
	wg sync.WaitGroup
}

// New returns the API.
func New(o Options) *API {
	if o.AsyncRetryDelays == nil {
		o.AsyncRetryDelays = []time.Duration{time.Second, 2 * time.Second}
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	return &API{o: o}
}

// Wait waits for the background (Event) invocations in flight.
func (a *API) Wait() { a.wg.Wait() }

func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	const prefix = "/2015-03-31/functions"
	rest := strings.TrimPrefix(r.URL.Path, prefix)
	switch {
	case r.Method == http.MethodGet && (rest == "" || rest == "/"):
		a.list(w)
	case r.Method == http.MethodPost && strings.HasSuffix(rest, "/invocations"):
		a.invoke(w, r, strings.TrimSuffix(strings.TrimPrefix(rest, "/"), "/invocations"))
	case r.Method == http.MethodGet && strings.Count(rest, "/") == 1:
		a.get(w, r, strings.TrimPrefix(rest, "/"), false)
	case r.Method == http.MethodGet && strings.HasSuffix(rest, "/configuration"):
		a.get(w, r, strings.TrimSuffix(strings.TrimPrefix(rest, "/"), "/configuration"), true)
	default:
		apiError(w, http.StatusNotFound, "UnknownOperationException",
			fmt.Sprintf("the local Lambda API serves Invoke, GetFunction and ListFunctions; not %s %s", r.Method, r.URL.Path))
	}
}

// find resolves a function name, ARN or qualified name.
func (a *API) find(w http.ResponseWriter, r *http.Request, ref string) (Function, bool) {
	name := ref
	if strings.HasPrefix(name, "arn:") {
		parts := strings.Split(name, ":")
		if len(parts) < 7 || parts[5] != "function" {
			apiError(w, http.StatusBadRequest, "InvalidParameterValueException", "not a function ARN: "+ref)
			return nil, false
		}
		name = strings.Join(parts[6:], ":")
	}
	qualifier := r.URL.Query().Get("Qualifier")
	if n, q, ok := strings.Cut(name, ":"); ok {
		name, qualifier = n, q
	}
	fn, ok := a.o.Lookup(name)
	if !ok || (qualifier != "" && qualifier != "$LATEST") {
		apiError(w, http.StatusNotFound, "ResourceNotFoundException", "Function not found: "+ref)
		return nil, false
	}
	return fn, true
}

func (a *API) invoke(w http.ResponseWriter, r *http.Request, ref string) {
	fn, ok := a.find(w, r, ref)
	if !ok {
		return
	}
	payload, err := io.ReadAll(io.LimitReader(r.Body, lambdarun.MaxPayload+1))
	if err != nil {
		apiError(w, http.StatusBadRequest, "InvalidRequestContentException", "reading the payload: "+err.Error())
		return
	}
	if len(payload) > lambdarun.MaxPayload {
		apiError(w, http.StatusRequestEntityTooLarge, "RequestTooLargeException",
			fmt.Sprintf("Request must be smaller than %d bytes for the InvokeFunction operation", lambdarun.MaxPayload))
		return
	}
	if len(payload) == 0 {
		payload = []byte("{}")
	}
	if !json.Valid(payload) {
		apiError(w, http.StatusBadRequest, "InvalidRequestContentException", "Could not parse request body into json")
		return
	}
	switch typ := r.Header.Get("X-Amz-Invocation-Type"); typ {
	case "", "RequestResponse":
		res, err := fn.Invoke(r.Context(), payload)
		if err != nil {
			apiError(w, http.StatusBadGateway, "ServiceException", "the local runner could not invoke "+fn.Config().FunctionName+": "+err.Error())
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Amz-Executed-Version", "$LATEST")
		if res.Err != nil {
			w.Header().Set("X-Amz-Function-Error", "Unhandled")
		}
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(res.Payload)
	case "Event":
		a.wg.Add(1)
		go a.async(fn, payload)
		w.WriteHeader(http.StatusAccepted)
	case "DryRun":
		w.WriteHeader(http.StatusNoContent)
	default:
		apiError(w, http.StatusBadRequest, "InvalidParameterValueException", "unknown X-Amz-Invocation-Type "+typ)
	}
}

// async runs an Event invocation with Lambda's retries.
func (a *API) async(fn Function, payload []byte) {
	defer a.wg.Done()
	InvokeAsync(context.Background(), fn, fn.Config().FunctionName, payload, a.o.AsyncRetryDelays, a.o.Log)
}

// Invoker runs a function.
type Invoker interface {
	Invoke(ctx context.Context, payload []byte) (lambdarun.Result, error)
}

// InvokeAsync invokes fn as Lambda runs an asynchronous invocation (an
// Event invoke, a schedule): a failed attempt is retried after each of
// delays in turn, then given up (logged). It reports whether an attempt
// succeeded.
func InvokeAsync(ctx context.Context, fn Invoker, name string, payload []byte, delays []time.Duration, log *slog.Logger) bool {
	for attempt := 0; ; attempt++ {
		res, err := fn.Invoke(ctx, payload)
		if err == nil && res.Err == nil {
			return true
		}
		reason := ""
		if err != nil {
			reason = err.Error()
		} else {
			reason = res.Err.Error()
		}
		if attempt >= len(delays) || ctx.Err() != nil {
			log.Error("asynchronous invocation failed after retries", "function", name, "attempts", attempt+1, "error", reason)
			return false
		}
		log.Warn("asynchronous invocation failed; retrying", "function", name, "attempt", attempt+1, "error", reason)
		select {
		case <-time.After(delays[attempt]):
		case <-ctx.Done():
		}
	}
}

func (a *API) list(w http.ResponseWriter) {
	out := struct {
		Functions []Config `json:"Functions"`
	}{Functions: []Config{}}
	for _, fn := range a.o.List() {
		c := fn.Config()
		c.Environment = nil
		out.Functions = append(out.Functions, c)
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *API) get(w http.ResponseWriter, r *http.Request, ref string, configOnly bool) {
	fn, ok := a.find(w, r, ref)
	if !ok {
		return
	}
	if configOnly {
		writeJSON(w, http.StatusOK, fn.Config())
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"Configuration": fn.Config()})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// apiError answers in the Lambda REST-JSON error shape.
func apiError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("X-Amzn-ErrorType", code)
	writeJSON(w, status, map[string]string{"Type": "User", "Message": msg, "message": msg})
}
