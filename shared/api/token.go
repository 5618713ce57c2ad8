package api

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"maps"
	"net/http"
	"strings"
	"time"

	"github.com/zeroae/zae-limiter-go/shared/limiter"
	"github.com/zeroae/zae-limiter-go/shared/limits"
	"github.com/zeroae/zae-limiter-go/shared/wire"
)

// tokenVersion is the version of the lease token payload.
const tokenVersion = 1

// maxTokenLen bounds what is parsed (a real token is a few hundred bytes).
const maxTokenLen = 16 << 10

// claims is the payload of a lease token: everything that names the lease
// and never changes. What changes (adjustments, closed) is server-side.
type claims struct {
	V        int    `json:"v"`
	ID       string `json:"id"`  // lease id: 128 random bits, base64url
	NS       string `json:"ns"`  // namespace id (the keys' prefix)
	NSName   string `json:"nsn"` // namespace name (to resolve its config)
	Entity   string `json:"e"`
	Resource string `json:"r"`
	Exp      int64  `json:"exp"` // expiry, unix milliseconds
	// Degraded: admitted without a check (backend unavailable, policy
	// allow); the lease holds no bucket.
	Degraded bool         `json:"d,omitempty"`
	Entries  []claimEntry `json:"b,omitempty"`
}

// claimEntry is one bucket shard the lease holds (a limiter.Entry) with
// its initial consumption.
type claimEntry struct {
	Entity   string           `json:"e"`
	Resource string           `json:"r"`
	Shard    int              `json:"s"`
	Limits   []claimLimit     `json:"l"`
	Initial  map[string]int64 `json:"m,omitempty"` // millitokens
	Gen      int64            `json:"g,omitempty"` // the shard item's generation
	// Credit is the part of Initial paid from credits (ADR-030): a
	// rollback gives it back to them.
	Credit map[string]int64 `json:"cr,omitempty"`
}

type claimLimit struct {
	Name     string `json:"n"`
	Capacity int64  `json:"c"`
	Refill   int64  `json:"a"`
	Period   int64  `json:"p"`
	Calendar string `json:"k,omitempty"` // a calendar quota's period (ADR-029)
}

func newLeaseID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return base64.RawURLEncoding.EncodeToString(b)
}

func claimsFor(id, nsID, nsName string, req wire.AcquireRequest, lease *limiter.Lease, exp time.Time) claims {
	c := claims{V: tokenVersion, ID: id, NS: nsID, NSName: nsName, Entity: req.EntityID, Resource: req.Resource,
		Exp: exp.UnixMilli(), Degraded: lease.Degraded()}
	for _, e := range lease.Entries() {
		ce := claimEntry{Entity: e.EntityID, Resource: e.Resource, Shard: e.Shard, Gen: e.Gen}
		for _, l := range e.Limits {
			ce.Limits = append(ce.Limits, claimLimit{l.Name, l.Capacity, l.RefillAmount, l.RefillPeriodSeconds, l.Calendar})
		}
		for name, v := range e.Credit {
			if v > 0 {
				if ce.Credit == nil {
					ce.Credit = map[string]int64{}
				}
				ce.Credit[name] = v
			}
		}
		for name, v := range e.Consumed {
			if v != 0 {
				if ce.Initial == nil {
					ce.Initial = map[string]int64{}
				}
				ce.Initial[name] = v
			}
		}
		c.Entries = append(c.Entries, ce)
	}
	return c
}

// entries are the limiter entries of the lease, each with its initial
// consumption plus adj[i] (millitokens; adj may be nil).
func (c *claims) entries(adj []map[string]int64) []limiter.Entry {
	out := make([]limiter.Entry, len(c.Entries))
	for i, ce := range c.Entries {
		e := limiter.Entry{EntityID: ce.Entity, Resource: ce.Resource, Shard: ce.Shard, Gen: ce.Gen, Consumed: map[string]int64{},
			Credit: maps.Clone(ce.Credit)}
		for _, l := range ce.Limits {
			e.Limits = append(e.Limits, limits.Limit{Name: l.Name, Capacity: l.Capacity, RefillAmount: l.Refill, RefillPeriodSeconds: l.Period,
				Calendar: l.Calendar})
		}
		for name, v := range ce.Initial {
			e.Consumed[name] += v
		}
		if i < len(adj) {
			for name, v := range adj[i] {
				e.Consumed[name] += v
			}
		}
		out[i] = e
	}
	return out
}

// holds reports whether any bucket of the lease has the limit.
func (c *claims) holds(name string) bool {
	for _, ce := range c.Entries {
		if ce.has(name) {
			return true
		}
	}
	return false
}

func (ce claimEntry) has(name string) bool {
	for _, l := range ce.Limits {
		if l.Name == name {
			return true
		}
	}
	return false
}

func (c *claims) request() limiter.Request {
	return limiter.Request{EntityID: c.Entity, Resource: c.Resource}
}

// sign renders the token: base64url(payload) "." base64url(HMAC-SHA256 of
// the first part under key), both without padding.
func sign(c claims, key []byte) string {
	payload, _ := json.Marshal(c) // plain structs: cannot fail
	p := base64.RawURLEncoding.EncodeToString(payload)
	return p + "." + base64.RawURLEncoding.EncodeToString(mac(key, p))
}

func mac(key []byte, signed string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(signed))
	return m.Sum(nil)
}

var (
	errBadLease = &apiError{status: http.StatusBadRequest, code: wire.CodeInvalidLease,
		msg: "the lease token is not valid: it is malformed, altered or signed with an unknown key"}
	errExpired = &apiError{status: http.StatusGone, code: wire.CodeLeaseExpired,
		msg: "the lease has expired: it can no longer be adjusted or released"}
)

// verify checks the token's signature against every key, then its expiry;
// it returns the claims or an *apiError (400 invalid_lease, 410
// lease_expired). Whether the lease is closed is the lease state's business.
func verify(tok string, keys [][]byte, now time.Time) (*claims, error) {
	if tok == "" {
		return nil, invalid("lease is required: the token an acquire returned")
	}
	if len(tok) > maxTokenLen {
		return nil, errBadLease
	}
	p, s, ok := strings.Cut(tok, ".")
	if !ok {
		return nil, errBadLease
	}
	sig, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, errBadLease
	}
	signed := false
	for _, k := range keys {
		if hmac.Equal(sig, mac(k, p)) {
			signed = true
			break
		}
	}
	if !signed {
		return nil, errBadLease
	}
	payload, err := base64.RawURLEncoding.DecodeString(p)
	if err != nil {
		return nil, errBadLease
	}
	var c claims
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil || c.V != tokenVersion || c.ID == "" || c.NS == "" {
		return nil, errBadLease
	}
	if now.UnixMilli() >= c.Exp {
		return nil, errExpired
	}
	return &c, nil
}
