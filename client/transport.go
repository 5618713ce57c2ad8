package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"time"
)

// retryPolicy says when a request may be sent again.
type retryPolicy int

const (
	// retryUnsentOnly: only after an error proving the request never left
	// (acquire, adjust: a second copy could charge twice).
	retryUnsentOnly retryPolicy = iota
	// retryIdempotent: after any transport error and on 5xx except 501
	// (GET /v1/available, GET /healthz, and release, which the server
	// applies at most once per lease).
	retryIdempotent
)

// maxResponseBytes bounds how much of an answer is read.
const maxResponseBytes = 1 << 20

// call is one logical request, sent once or more.
type call struct {
	method string
	path   string
	query  url.Values
	body   []byte // nil: no body
	policy retryPolicy
}

func (cl call) String() string { return cl.method + " " + cl.path }

// result is the answer of the last attempt.
type result struct {
	call   call
	status int
	header http.Header
	body   []byte
	// mayHaveLanded: an attempt before this one may have reached the server
	// (a transport error other than a dial failure, or a 5xx answer), or the
	// caller said an earlier call may have.
	mayHaveLanded bool
}

// send runs cl with the retry rules and returns the last answer whatever its
// status, or the transport (or context) failure of the last attempt. landed
// tells whether an attempt before the answer (or any attempt, on error) may
// have reached the server without a definitive answer; mayHaveLanded seeds
// that memory (release keeps it across calls on the Lease).
func (c *Client) send(ctx context.Context, cl call, mayHaveLanded bool) (res *result, landed bool, err error) {
	var lastErr error
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			if werr := c.wait(ctx, attempt-1); werr != nil {
				return nil, mayHaveLanded, fmt.Errorf("client: %s: gave up waiting to retry: %w (last attempt: %w)", cl, werr, lastErr)
			}
		}
		status, header, body, err := c.attempt(ctx, cl)
		if err != nil {
			var le *localError
			if errors.As(err, &le) {
				// Not sent, and not transient: no retry.
				return nil, mayHaveLanded, fmt.Errorf("client: %s: %w", cl, err)
			}
			unsent := provablyUnsent(err)
			if !unsent {
				mayHaveLanded = true
			}
			lastErr = fmt.Errorf("client: %s: %w", cl, err)
			if ctx.Err() != nil || attempt >= c.maxRetries {
				return nil, mayHaveLanded, lastErr
			}
			if unsent || cl.policy == retryIdempotent {
				continue
			}
			return nil, mayHaveLanded, lastErr
		}
		res := &result{call: cl, status: status, header: header, body: body, mayHaveLanded: mayHaveLanded}
		if cl.policy == retryIdempotent && retryableStatus(status) && attempt < c.maxRetries {
			mayHaveLanded = true
			lastErr = res.err()
			if werr := ctx.Err(); werr != nil {
				// Cancelled between the answer and the retry: same as
				// cancelled while waiting for it.
				return nil, mayHaveLanded, fmt.Errorf("client: %s: gave up waiting to retry: %w (last attempt: %w)", cl, werr, lastErr)
			}
			continue
		}
		return res, mayHaveLanded, nil
	}
}

// retryableStatus: 5xx except 501 Not Implemented.
func retryableStatus(status int) bool {
	return status >= 500 && status != http.StatusNotImplemented
}

// provablyUnsent reports whether err proves no byte of the request reached
// the server: the connection was never made (refused, unreachable, DNS
// failure, dial timeout).
func provablyUnsent(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// backoff is the jitter-free wait before retry n (0-based): base·2ⁿ capped at
// MaxRetryDelay.
func (c *Client) backoff(n int) time.Duration {
	d := c.baseDelay
	for i := 0; i < n && d < MaxRetryDelay; i++ {
		d *= 2
	}
	return min(d, MaxRetryDelay)
}

// wait sleeps a jittered backoff before retry n, or returns ctx's error.
func (c *Client) wait(ctx context.Context, n int) error {
	d := c.jitter(c.backoff(n))
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// attempt sends cl once and reads the whole answer.
func (c *Client) attempt(ctx context.Context, cl call) (int, http.Header, []byte, error) {
	u := *c.base
	u.Path = c.base.Path + cl.path
	if len(cl.query) > 0 {
		u.RawQuery = cl.query.Encode()
	}
	var rd io.Reader
	if cl.body != nil {
		rd = bytes.NewReader(cl.body)
	}
	req, err := http.NewRequestWithContext(ctx, cl.method, u.String(), rd)
	if err != nil {
		return 0, nil, nil, &localError{"build request", err}
	}
	req.Header.Set("Accept", "application/json")
	if cl.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("User-Agent", c.userAgent)
	switch {
	case c.signer != nil:
		if err := c.signer.sign(ctx, req, cl.body); err != nil {
			return 0, nil, nil, &localError{"sigv4", err}
		}
	case c.token != "":
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		return 0, nil, nil, fmt.Errorf("read answer (status %d): %w", resp.StatusCode, err)
	}
	return resp.StatusCode, resp.Header, body, nil
}

// localError is a failure before sending (building or signing the request,
// e.g. no credentials): nothing reached the server and trying again would
// fail the same way.
type localError struct {
	stage string
	err   error
}

func (e *localError) Error() string { return e.stage + ": " + e.err.Error() }
func (e *localError) Unwrap() error { return e.err }

// decode reads a 200 body into out.
func (r *result) decode(out any) error {
	if err := json.Unmarshal(r.body, out); err != nil {
		return fmt.Errorf("client: %s: decode answer: %w", r.call, err)
	}
	return nil
}

// mustJSON encodes a wire type, which cannot fail.
func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("client: encode %T: %v", v, err))
	}
	return b
}
