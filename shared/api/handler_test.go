package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zeroae/zae-limiter-go/shared/limits"
	"github.com/zeroae/zae-limiter-go/shared/store"
	"github.com/zeroae/zae-limiter-go/shared/wire"
)

func wl(l limits.Limit) wire.Limit {
	return wire.Limit{Name: l.Name, Capacity: l.Capacity, RefillAmount: l.RefillAmount, RefillPeriodSeconds: l.RefillPeriodSeconds}
}

func TestAcquire(t *testing.T) {
	f := newFixture(t)
	rec := f.post(wire.PathAcquire, wire.AcquireRequest{EntityID: "user-1", Resource: "gpt-4",
		Consume: map[string]int64{"rpm": 1, "tpm": 500},
		Limits:  []wire.Limit{wl(limits.PerMinute("rpm", 10, 0)), wl(limits.PerMinute("tpm", 1000, 0))}})
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	assert.Equal(t, "application/json", rec.Header().Get("Content-Type"))
	resp := decode[wire.AcquireResponse](t, rec)
	assert.NotEmpty(t, resp.Lease)
	assert.Equal(t, "user-1", resp.EntityID)
	assert.Equal(t, "gpt-4", resp.Resource)
	assert.Equal(t, map[string]int64{"rpm": 1, "tpm": 500}, resp.Consumed)
	assert.False(t, resp.Degraded)
	// A bucket's first booking may be charged up to one grid step more
	// than exact (limiter.Options.Tick): tpm may show 499.
	require.Len(t, resp.Limits, 2)
	tpm := resp.Limits[1]
	assert.InDelta(t, 500, tpm.Available, 1)
	assert.Equal(t, []wire.LimitState{
		{EntityID: "user-1", Name: "rpm", Available: 9, Capacity: 10},
		{EntityID: "user-1", Name: "tpm", Available: tpm.Available, Capacity: 1000},
	}, resp.Limits)
	// The tightest limit is tpm (~500/1000 < 9/10); full again in ~30 s.
	assert.Equal(t, "1000", rec.Header().Get(wire.HeaderLimit))
	assert.Equal(t, strconv.FormatInt(tpm.Available, 10), rec.Header().Get(wire.HeaderRemaining))
	reset := (1000 - tpm.Available) * 60 / 1000
	if (1000-tpm.Available)*60%1000 != 0 {
		reset++
	}
	assert.Equal(t, strconv.FormatInt(reset, 10), rec.Header().Get(wire.HeaderReset))
	assert.Empty(t, rec.Header().Get(wire.HeaderRetryAfter))

	c := payload(t, resp.Lease)
	assert.Equal(t, f.ns.ID, c.NS)
	assert.Equal(t, f.clock.Now().Add(DefaultLeaseTTL).UnixMilli(), c.Exp)
	require.Len(t, c.Entries, 1)
	assert.Equal(t, map[string]int64{"rpm": 1000, "tpm": 500_000}, c.Entries[0].Initial)
}

func TestAcquireStoredLimitsAndNamespace(t *testing.T) {
	f := newFixture(t)
	_, err := f.store.RegisterNamespace(f.ctx, "tenant-a")
	require.NoError(t, err)
	ta, err := f.store.Namespace(f.ctx, "tenant-a")
	require.NoError(t, err)
	require.NoError(t, ta.SetResourceDefaults(f.ctx, "gpt-4", []limits.Limit{limits.PerMinute("rpm", 3, 0)}))

	resp := f.acquire(wire.AcquireRequest{Namespace: "tenant-a", EntityID: "u", Resource: "gpt-4", Consume: map[string]int64{"rpm": 2}})
	assert.Equal(t, []wire.LimitState{{EntityID: "u", Name: "rpm", Available: 1, Capacity: 3}}, resp.Limits)
	assert.Equal(t, ta.ID, payload(t, resp.Lease).NS)

	// Nothing configured in "default" for this resource: the limiter's
	// validation error, in our words.
	rec := f.post(wire.PathAcquire, wire.AcquireRequest{EntityID: "u", Resource: "gpt-4", Consume: map[string]int64{"rpm": 1}})
	e := errorBody(t, rec, http.StatusBadRequest, wire.CodeInvalidRequest)
	assert.Contains(t, e.Message, "no limits configured")
	// A name no limit has.
	f.setDefaults("", limits.PerMinute("rpm", 3, 0))
	rec = f.post(wire.PathAcquire, wire.AcquireRequest{EntityID: "u", Resource: "gpt-4", Consume: map[string]int64{"rpn": 1}})
	e = errorBody(t, rec, http.StatusBadRequest, wire.CodeInvalidRequest)
	assert.Contains(t, e.Message, `no limit "rpn"`)
}

func TestAcquireRateLimited(t *testing.T) {
	f := newFixture(t)
	f.setDefaults("", limits.PerMinute("rpm", 10, 0), limits.PerMinute("tpm", 1000, 0))
	f.acquire(wire.AcquireRequest{EntityID: "user-1", Resource: "gpt-4", Consume: map[string]int64{"rpm": 10}})
	rec := f.post(wire.PathAcquire, wire.AcquireRequest{EntityID: "user-1", Resource: "gpt-4", Consume: map[string]int64{"rpm": 1, "tpm": 1}})
	e := errorBody(t, rec, http.StatusTooManyRequests, wire.CodeRateLimited)
	assert.InDelta(t, 6.0, e.RetryAfterSeconds, 0.02)
	assert.Equal(t, e.RetryAfterSeconds, float64(int64(e.RetryAfterSeconds*1000))/1000, "ms precision")
	assert.Equal(t, []wire.Violation{{EntityID: "user-1", Resource: "gpt-4", Limit: "rpm", Available: 0, Requested: 1}}, e.Violations)
	assert.Contains(t, e.Message, "rate limit exceeded")
	require.NotNil(t, e.Retryable)
	assert.True(t, *e.Retryable)
	assert.Equal(t, "6", rec.Header().Get(wire.HeaderRetryAfter))
	assert.Equal(t, "10", rec.Header().Get(wire.HeaderLimit))
	assert.Equal(t, "0", rec.Header().Get(wire.HeaderRemaining))
	assert.Equal(t, "6", rec.Header().Get(wire.HeaderReset))

	// After the wait it is admitted again.
	f.clock.Advance(time.Duration(e.RetryAfterSeconds * float64(time.Second)))
	f.acquire(wire.AcquireRequest{EntityID: "user-1", Resource: "gpt-4", Consume: map[string]int64{"rpm": 1}})
}

// A request above a limit's capacity is still a 429 with a finite wait
// (the reference's contract), but its body says plainly that it can never
// be admitted at the current limits: retryable false, and a message with
// no wait in it. Within capacity the same denial is retryable.
func TestAcquireNeverAdmissible(t *testing.T) {
	f := newFixture(t)
	f.setDefaults("", limits.PerMinute("rpm", 10, 0), limits.PerMinute("tpm", 1000, 0))
	rec := f.post(wire.PathAcquire, wire.AcquireRequest{EntityID: "user-1", Resource: "gpt-4", Consume: map[string]int64{"rpm": 1, "tpm": 5000}})
	e := errorBody(t, rec, http.StatusTooManyRequests, wire.CodeRateLimited)
	require.NotNil(t, e.Retryable, "a 429 always says whether to retry")
	assert.False(t, *e.Retryable)
	assert.Positive(t, e.RetryAfterSeconds, "the wait stays finite")
	assert.NotEmpty(t, rec.Header().Get(wire.HeaderRetryAfter))
	assert.Equal(t, "rate limit exceeded for user-1/gpt-4, and the request can never be admitted at the current limits "+
		"(user-1/tpm: requested 5000 exceeds the capacity 1000); do not retry it", e.Message)
	assert.Equal(t, []wire.Violation{{EntityID: "user-1", Resource: "gpt-4", Limit: "tpm", Available: 1000, Requested: 5000}}, e.Violations)

	// The raw body names the field, so clients without this module's types
	// can read it.
	rec = f.post(wire.PathAcquire, wire.AcquireRequest{EntityID: "user-1", Resource: "gpt-4", Consume: map[string]int64{"tpm": 1001}})
	assert.Contains(t, rec.Body.String(), `"retryable":false`)
}

func TestBadRequests(t *testing.T) {
	f := newFixture(t)
	f.setDefaults("", limits.PerMinute("rpm", 10, 0))
	big := strconv.FormatInt(limits.MaxTokens+1, 10)
	var many []string
	for i := range limits.MaxLimits + 1 {
		many = append(many, fmt.Sprintf(`{"name":"l%d","capacity":5,"refill_amount":5,"refill_period_seconds":60}`, i))
	}
	for _, tc := range []struct {
		name, body, want string
	}{
		{"empty", ``, "empty"},
		{"not json", `{"entity_id": `, "truncated"},
		{"syntax", `{"entity_id" "u"}`, "not valid JSON"},
		{"array", `[1]`, "must be a JSON object"},
		{"two values", `{"entity_id":"u","resource":"r","consume":{"rpm":1}} {}`, "exactly one JSON object"},
		{"unknown field", `{"entity_id":"u","resource":"r","consume":{"rpm":1},"consum":{}}`, `unknown field "consum"`},
		{"wrong type", `{"entity_id":1,"resource":"r","consume":{"rpm":1}}`, `field "entity_id" must be a string`},
		{"fraction", `{"entity_id":"u","resource":"r","consume":{"rpm":1.5}}`, "must be a whole number"},
		{"negative", `{"entity_id":"u","resource":"r","consume":{"rpm":-1}}`, `invalid consume.rpm "-1"`},
		{"too big", `{"entity_id":"u","resource":"r","consume":{"rpm":` + big + `}}`, "must be at most"},
		{"no consume", `{"entity_id":"u","resource":"r"}`, "consume"},
		{"bad entity", `{"entity_id":"a#b","resource":"r","consume":{"rpm":1}}`, "entity_id"},
		{"empty entity", `{"resource":"r","consume":{"rpm":1}}`, "entity_id"},
		{"bad resource", `{"entity_id":"u","resource":"9r","consume":{"rpm":1}}`, "resource"},
		{"bad limit name", `{"entity_id":"u","resource":"r","consume":{"wcu":1}}`, "reserved"},
		{"bad namespace", `{"namespace":"_","entity_id":"u","resource":"r","consume":{"rpm":1}}`, "namespace"},
		{"empty limits", `{"entity_id":"u","resource":"r","consume":{"rpm":1},"limits":[]}`, "limits"},
		{"key case", `{"entity_id":"u","resource":"r","consume":{"rpm":1},"Entity_ID":"victim"}`, `unknown field "Entity_ID"`},
		{"only key case", `{"ENTITY_ID":"u","resource":"r","consume":{"rpm":1}}`, `unknown field "ENTITY_ID"`},
		{"nested key case", `{"entity_id":"u","resource":"r","consume":{"rpm":1},"limits":[{"NAME":"rpm","capacity":5,"refill_amount":5,"refill_period_seconds":60}]}`, `unknown field "limits[0].NAME"`},
		{"duplicate key", `{"entity_id":"u","entity_id":"v","resource":"r","consume":{"rpm":1}}`, `field "entity_id" is given more than once`},
		{"duplicate amount", `{"entity_id":"u","resource":"r","consume":{"rpm":1,"rpm":2}}`, `field "consume.rpm" is given more than once`},
		{"null amount", `{"entity_id":"u","resource":"r","consume":{"rpm":null}}`, `field "consume.rpm" must not be null`},
		{"fraction path", `{"entity_id":"u","resource":"r","consume":{"tpm":1.5}}`, `field "consume.tpm" must be a whole number, not 1.5`},
		{"limit field missing", `{"entity_id":"u","resource":"r","consume":{"rpm":1},"limits":[{"name":"rpm","capacity":5,"refill_period_seconds":60}]}`, `field "limits[0].refill_amount" is required`},
		{"limit wrong type", `{"entity_id":"u","resource":"r","consume":{"rpm":1},"limits":[{"name":"rpm","capacity":5,"refill_amount":5,"refill_period_seconds":60},{"name":"tpm","capacity":"5","refill_amount":5,"refill_period_seconds":60}]}`, `field "limits[1].capacity" must be a whole number, not string "5"`},
		{"too many limits", `{"entity_id":"u","resource":"r","consume":{"l0":1},"limits":[` + strings.Join(many, ",") + `]}`, fmt.Sprintf("at most %d limits", limits.MaxLimits)},
		{"bad limit", `{"entity_id":"u","resource":"r","consume":{"rpm":1},"limits":[{"name":"rpm","capacity":0,"refill_amount":1,"refill_period_seconds":60}]}`, "capacity"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := errorBody(t, f.post(wire.PathAcquire, tc.body), http.StatusBadRequest, wire.CodeInvalidRequest)
			assert.Contains(t, e.Message, tc.want)
		})
	}
}

// Messages are plain JSON strings: ">=" is not escaped as HTML.
func TestMessagesNotHTMLEscaped(t *testing.T) {
	f := newFixture(t)
	rec := f.post(wire.PathAcquire, `{"entity_id":"u","resource":"r","consume":{"rpm":-1}}`)
	require.Equal(t, http.StatusBadRequest, rec.Code)
	assert.Contains(t, rec.Body.String(), ">= 0")
	assert.NotContains(t, rec.Body.String(), `\u003e`)
}

func TestBodyTooLarge(t *testing.T) {
	f := newFixture(t)
	huge := `{"entity_id":"` + strings.Repeat("a", 70<<10) + `","resource":"r","consume":{"rpm":1}}`
	for _, path := range []string{wire.PathAcquire, wire.PathAdjust, wire.PathRelease} {
		errorBody(t, f.post(path, huge), http.StatusRequestEntityTooLarge, wire.CodeTooLarge)
	}
	// Trailing bytes past the limit after one valid object count too.
	pad := `{"entity_id":"u","resource":"r","consume":{"rpm":1}}` + strings.Repeat(" ", 70<<10)
	errorBody(t, f.post(wire.PathAcquire, pad), http.StatusRequestEntityTooLarge, wire.CodeTooLarge)
}

// Every POST body must be declared application/json (charset allowed):
// anything else, or nothing, is 415 with the JSON error shape and changes
// nothing, so a web page cannot post a form to an unauthenticated serve.
func TestPostRequiresJSONContentType(t *testing.T) {
	f := newFixture(t)
	f.setDefaults("", limits.PerMinute("rpm", 10, 0))
	body := `{"entity_id":"u","resource":"r","consume":{"rpm":1}}`
	for _, ct := range []string{"", "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
		"application/jsonx", "application/json;;", "text/json"} {
		for _, path := range []string{wire.PathAcquire, wire.PathAdjust, wire.PathRelease} {
			e := errorBody(t, f.do(nil, http.MethodPost, path, body, "Content-Type", ct), http.StatusUnsupportedMediaType, wire.CodeUnsupportedType)
			assert.Contains(t, e.Message, "Content-Type: application/json", "%s %q", path, ct)
		}
	}
	assert.Equal(t, map[string]int64{"u/rpm": 10}, f.avail("u", "r"), "nothing was taken")
	for _, ct := range []string{"application/json", "application/json; charset=utf-8", "Application/JSON"} {
		rec := f.do(nil, http.MethodPost, wire.PathAcquire, body, "Content-Type", ct)
		assert.Equal(t, http.StatusOK, rec.Code, "%q: %s", ct, rec.Body.String())
	}
	// GET routes take no body and need no Content-Type; auth comes first.
	assert.Equal(t, http.StatusOK, f.do(nil, http.MethodGet, wire.PathHealth, nil).Code)
	g := newFixture(t, func(o *Options) { o.Token = "s3cret" })
	errorBody(t, g.do(nil, http.MethodPost, wire.PathAcquire, body, "Content-Type", "text/plain"), http.StatusUnauthorized, wire.CodeUnauthorized)
}

func TestRouting(t *testing.T) {
	f := newFixture(t)
	errorBody(t, f.do(nil, http.MethodGet, "/v1/nope", nil), http.StatusNotFound, wire.CodeNotFound)
	errorBody(t, f.do(nil, http.MethodPost, "/v1/acquire/", nil), http.StatusNotFound, wire.CodeNotFound)

	rec := f.do(nil, http.MethodGet, wire.PathAcquire, nil)
	errorBody(t, rec, http.StatusMethodNotAllowed, wire.CodeMethodNotAllowed)
	assert.Equal(t, "POST", rec.Header().Get("Allow"))
	rec = f.do(nil, http.MethodPut, wire.PathRelease, nil)
	errorBody(t, rec, http.StatusMethodNotAllowed, wire.CodeMethodNotAllowed)
	assert.Equal(t, "POST", rec.Header().Get("Allow"))
	rec = f.do(nil, http.MethodPost, wire.PathAvailable, nil)
	errorBody(t, rec, http.StatusMethodNotAllowed, wire.CodeMethodNotAllowed)
	assert.Equal(t, "GET, HEAD", rec.Header().Get("Allow"))

	rec = f.do(nil, http.MethodGet, wire.PathHealth, nil)
	require.Equal(t, http.StatusOK, rec.Code)
	assert.JSONEq(t, `{"status":"ok"}`, rec.Body.String())
	assert.Equal(t, http.StatusOK, f.do(nil, http.MethodHead, wire.PathHealth, nil).Code)
}

func TestUnknownNamespace(t *testing.T) {
	f := newFixture(t)
	e := errorBody(t, f.post(wire.PathAcquire, wire.AcquireRequest{Namespace: "nope", EntityID: "u", Resource: "r", Consume: map[string]int64{"rpm": 1}}),
		http.StatusNotFound, wire.CodeNotFound)
	assert.Contains(t, e.Message, "zae-limiter namespace register nope")
	errorBody(t, f.do(nil, http.MethodGet, wire.PathAvailable+"?entity_id=u&resource=r&namespace=nope", nil), http.StatusNotFound, wire.CodeNotFound)

	// An unregistered default namespace is not registered by the handler.
	f.store.InvalidateCache()
	require.NoError(t, f.store.DeleteNamespace(f.ctx, "default"))
	e = errorBody(t, f.post(wire.PathAcquire, wire.AcquireRequest{EntityID: "u", Resource: "r", Consume: map[string]int64{"rpm": 1},
		Limits: []wire.Limit{wl(limits.PerMinute("rpm", 1, 0))}}), http.StatusNotFound, wire.CodeNotFound)
	assert.Contains(t, e.Message, `namespace "default" is not registered`)
	_, err := f.store.Namespace(f.ctx, "default")
	assert.ErrorIs(t, err, limits.ErrNotFound)
}

func TestUnavailable(t *testing.T) {
	f := newFixture(t)
	f.setDefaults(limits.Block, limits.PerMinute("rpm", 10, 0))
	f.db.failWhen(func(string, string) error { return injected })
	for _, rec := range []*httptest.ResponseRecorder{
		f.post(wire.PathAcquire, wire.AcquireRequest{EntityID: "u", Resource: "r", Consume: map[string]int64{"rpm": 1}}),
		f.do(nil, http.MethodGet, wire.PathAvailable+"?entity_id=u&resource=r", nil),
	} {
		e := errorBody(t, rec, http.StatusServiceUnavailable, wire.CodeUnavailable)
		assert.NotContains(t, e.Message, "SECRET")
		assert.NotContains(t, e.Message, "ServiceUnavailable")
	}
	assert.Contains(t, f.logs.String(), "SECRET-SDK-TEXT", "the cause is logged")

	// Policy allow: a degraded lease, which holds no bucket.
	f.setDefaults(limits.Allow)
	f.store.InvalidateCache()
	rec := f.post(wire.PathAcquire, wire.AcquireRequest{EntityID: "u", Resource: "r", Consume: map[string]int64{"rpm": 1}})
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	resp := decode[wire.AcquireResponse](t, rec)
	assert.True(t, resp.Degraded)
	assert.Empty(t, resp.Consumed)
	assert.Empty(t, rec.Header().Get(wire.HeaderLimit))
	f.db.failWhen(nil)
	rec = f.post(wire.PathAdjust, wire.AdjustRequest{Lease: resp.Lease, Adjust: map[string]int64{"rpm": 5}})
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	assert.Equal(t, 0, f.leaseItems(), "a degraded lease's adjust writes nothing")
	require.Equal(t, http.StatusOK, f.post(wire.PathRelease, wire.ReleaseRequest{Lease: resp.Lease, Rollback: true}).Code)
	errorBody(t, f.post(wire.PathRelease, wire.ReleaseRequest{Lease: resp.Lease}), http.StatusConflict, wire.CodeLeaseClosed)
}

func TestAvailable(t *testing.T) {
	f := newFixture(t)
	// Nothing configured: an empty result.
	rec := f.do(nil, http.MethodGet, wire.PathAvailable+"?entity_id=u&resource=gpt-4", nil)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	assert.JSONEq(t, `{"limits": []}`, rec.Body.String())

	f.setDefaults("", limits.PerMinute("rpm", 10, 0), limits.PerMinute("tpm", 1000, 0))
	f.acquire(wire.AcquireRequest{EntityID: "u", Resource: "gpt-4", Consume: map[string]int64{"rpm": 10, "tpm": 100}})
	rec = f.do(nil, http.MethodGet, wire.PathAvailable+"?entity_id=u&resource=gpt-4&namespace=default", nil)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	resp := decode[wire.AvailableResponse](t, rec)
	require.Len(t, resp.Limits, 2)
	rpm, tpm := resp.Limits[0], resp.Limits[1]
	assert.Equal(t, "rpm", rpm.Name)
	assert.Equal(t, int64(0), rpm.Available)
	require.NotNil(t, rpm.RetryAfterSeconds)
	assert.InDelta(t, 6.0, *rpm.RetryAfterSeconds, 0.02, "one token of rpm:10 takes 6 s")
	assert.InDelta(t, 900, tpm.Available, 1)
	assert.Equal(t, wire.LimitState{EntityID: "u", Name: "tpm", Available: tpm.Available, Capacity: 1000, RetryAfterSeconds: new(float64)}, tpm)

	for _, q := range []string{"", "?entity_id=u", "?resource=gpt-4", "?entity_id=u&resource=gpt-4&entity=x",
		"?entity_id=u&entity_id=v&resource=gpt-4", "?entity_id=a%23b&resource=gpt-4", "?entity_id=u&resource=gpt-4&namespace=",
		"?entity_id=u&resource=gpt-4&x=%zz"} {
		errorBody(t, f.do(nil, http.MethodGet, wire.PathAvailable+q, nil), http.StatusBadRequest, wire.CodeInvalidRequest)
	}
}

func TestAuth(t *testing.T) {
	f := newFixture(t, func(o *Options) { o.Token = "s3cret" })
	f.setDefaults("", limits.PerMinute("rpm", 10, 0))
	body := wire.AcquireRequest{EntityID: "u", Resource: "r", Consume: map[string]int64{"rpm": 1}}
	rec := f.do(nil, http.MethodPost, wire.PathAcquire, body)
	errorBody(t, rec, http.StatusUnauthorized, wire.CodeUnauthorized)
	assert.Contains(t, rec.Header().Get("WWW-Authenticate"), "Bearer")
	errorBody(t, f.do(nil, http.MethodPost, wire.PathAcquire, body, "Authorization", "Bearer wrong"), http.StatusUnauthorized, wire.CodeUnauthorized)
	errorBody(t, f.do(nil, http.MethodGet, wire.PathAvailable+"?entity_id=u&resource=r", nil, "Authorization", "Basic s3cret"), http.StatusUnauthorized, wire.CodeUnauthorized)
	assert.Equal(t, http.StatusOK, f.do(nil, http.MethodPost, wire.PathAcquire, body, "Authorization", "Bearer s3cret").Code)
	assert.Equal(t, http.StatusOK, f.do(nil, http.MethodPost, wire.PathAcquire, body, "Authorization", "bearer s3cret").Code)
	assert.Equal(t, http.StatusOK, f.do(nil, http.MethodGet, wire.PathHealth, nil).Code, "health needs no token")
}

// N parallel acquires over real HTTP on a bucket of capacity C (refilling
// one token a day) admit exactly C.
func TestContentionOverHTTP(t *testing.T) {
	const n, capacity = 40, 25
	f := newFixture(t)
	f.setDefaults("", limits.Limit{Name: "rpd", Capacity: capacity, RefillAmount: 1, RefillPeriodSeconds: 86400})
	srv := httptest.NewServer(f.h)
	defer srv.Close()
	body, err := json.Marshal(wire.AcquireRequest{EntityID: "hot", Resource: "r", Consume: map[string]int64{"rpd": 1}})
	require.NoError(t, err)
	codes := make([]int, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			resp, err := srv.Client().Post(srv.URL+wire.PathAcquire, "application/json", bytes.NewReader(body))
			if err != nil {
				codes[i] = -1
				return
			}
			defer resp.Body.Close()
			codes[i] = resp.StatusCode
		}()
	}
	close(start)
	wg.Wait()
	count := map[int]int{}
	for _, c := range codes {
		count[c]++
	}
	assert.Equal(t, map[int]int{http.StatusOK: capacity, http.StatusTooManyRequests: n - capacity}, count)
	assert.Equal(t, map[string]int64{"hot/rpd": 0}, f.avail("hot", "r"))
}

// The store's namespace handle and the handler's limiter are shared: a
// second handler is another process on the same table.
func TestLimiterPerNamespace(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	_, err := f.store.RegisterNamespace(ctx, "b")
	require.NoError(t, err)
	ls := []wire.Limit{wl(limits.PerMinute("rpm", 1, 0))}
	f.acquire(wire.AcquireRequest{EntityID: "u", Resource: "r", Consume: map[string]int64{"rpm": 1}, Limits: ls})
	f.acquire(wire.AcquireRequest{Namespace: "b", EntityID: "u", Resource: "r", Consume: map[string]int64{"rpm": 1}, Limits: ls})
	assert.Len(t, f.h.lims, 2)
	var nsB *store.NS
	nsB, err = f.store.Namespace(ctx, "b")
	require.NoError(t, err)
	assert.NotNil(t, f.h.cachedLimiter(nsB.ID))
}
