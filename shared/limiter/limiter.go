package limiter

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/zeroae/zae-limiter-go/shared/limits"
	"github.com/zeroae/zae-limiter-go/shared/shard"
	"github.com/zeroae/zae-limiter-go/shared/store"
)

// DynamoDB lists exactly the calls the limiter makes. *dynamodb.Client
// satisfies it. Calls is the same list as IAM actions.
type DynamoDB interface {
	UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	PutItem(ctx context.Context, in *dynamodb.PutItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	BatchGetItem(ctx context.Context, in *dynamodb.BatchGetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error)
}

// Calls are the DynamoDB actions the limiter itself issues: UpdateItem on
// every acquire, adjust and rollback; GetItem and PutItem only when a shard
// is split; BatchGetItem for capacity queries. The config
// lookups of an acquire go through the store (see store.AcquireCalls).
var Calls = []string{"dynamodb:UpdateItem", "dynamodb:PutItem", "dynamodb:GetItem", "dynamodb:BatchGetItem"}

// Config is what the limiter needs of the admin store; *store.NS has it.
type Config interface {
	ResolveLimits(ctx context.Context, entityID, resource string) (store.Resolved, error)
	// RefreshLimits resolves bypassing (and refilling) the config cache.
	RefreshLimits(ctx context.Context, entityID, resource string) (store.Resolved, error)
	CachedEntity(ctx context.Context, id string) (store.Entity, bool, error)
	OnUnavailable(ctx context.Context) (limits.OnUnavailable, error)
}

// Options tune a Limiter. The zero value of every field is a sound default.
type Options struct {
	// Table is the DynamoDB table name (required).
	Table string
	// Namespace is the namespace id the buckets are keyed under (required).
	Namespace string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Tick is the grid on which idle buckets book consumption while several
	// writes of this process are in flight on them, so that those writers
	// share it (it should exceed DynamoDB's latency a few times over). A
	// limit's grid step is also capped at 1% of its capacity. Default 100ms.
	// A writer alone on a bucket books exactly. Refill is never credited
	// early: at worst a bucket going from idle to busy under concurrency is
	// charged up to one grid step more than exact (at most 1% of capacity).
	Tick time.Duration
	// TTLMultiplier sets a bucket's time to live to this many times its
	// slowest limit's fill time (refreshed by every write). Default 7;
	// negative disables bucket TTL.
	TTLMultiplier int
	// ShardRetries is how many other shards an acquire tries when its first
	// shard has no tokens. Default 2.
	ShardRetries int
	// MaxAttempts bounds the writes of one acquire on one bucket. Default 12.
	MaxAttempts int
	// Rand picks shards; nil means math/rand/v2.
	Rand func(n int) int
	// NoDenialCache turns off the denial cache: by default a request that
	// the last state DynamoDB returned of its bucket cannot take is denied
	// without a request (reason limits.ReasonCached), until refill makes it
	// fit. Only denials are cached (an admit always writes), so the cache can
	// deny more, never admit more; a refund, reset or grant by another
	// process meanwhile is seen at the next write, at the latest once the
	// state is DenialCacheTTL old.
	NoDenialCache bool
	// DenialCacheTTL is how long a state DynamoDB returned may deny without
	// a request. Default DefaultDenialCacheTTL (60 s), the lifetime of the
	// cached config and entity records: limit changes, blocks, resets and
	// grants all reach a process within it.
	DenialCacheTTL time.Duration
	// Timeout bounds every call (Acquire with its config reads, a lease's
	// Consume, Adjust, Release and Rollback, Available), SDK retries
	// included, unless the caller's context ends sooner. Running out of it
	// is "unavailable": the on_unavailable policy decides. Default 5s.
	Timeout time.Duration
}

// DefaultDenialCacheTTL is Options.DenialCacheTTL's default: the store's
// cache lifetime.
const DefaultDenialCacheTTL = store.DefaultCacheTTL

// DefaultTimeout is Options.Timeout's default.
const DefaultTimeout = 5 * time.Second

// Limiter is the acquire engine for one namespace. It is safe for
// concurrent use and meant to live as long as the process: its caches of
// bucket state are what keep acquires at one request.
type Limiter struct {
	db    DynamoDB
	cfg   Config
	o     Options
	mu    sync.Mutex
	plan  sync.Mutex              // see consume
	items map[string]*shard.State // by shard PK, with this process's writes in flight
	seen  map[string]seenRec      // by shard PK: as DynamoDB last returned it
	// inflight counts this process's writes in flight per bucket PK.
	inflight map[string]int
	count    map[string]int // shard count by entity#resource
	stats    stats
	// policyAt is when an inline acquire last read the on_unavailable
	// policy (Unix ms of the limiter's clock; see learnPolicy).
	policyAt atomic.Int64
}

// New builds a limiter over db, resolving limits through cfg.
func New(db DynamoDB, cfg Config, o Options) *Limiter {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Tick <= 0 {
		o.Tick = 100 * time.Millisecond
	}
	if o.TTLMultiplier == 0 {
		o.TTLMultiplier = 7
	}
	if o.ShardRetries == 0 {
		o.ShardRetries = 2
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 12
	}
	if o.Rand == nil {
		o.Rand = rand.IntN
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.DenialCacheTTL <= 0 {
		o.DenialCacheTTL = DefaultDenialCacheTTL
	}
	return &Limiter{db: db, cfg: cfg, o: o, items: map[string]*shard.State{}, seen: map[string]seenRec{}, count: map[string]int{}, inflight: map[string]int{}}
}

// Request is one acquire.
type Request struct {
	EntityID string
	Resource string
	// Consume maps limit names to whole-token amounts (>= 0). Only limits
	// with a positive amount are checked; every limit of every bucket is
	// held by the lease all the same, so it can be adjusted later.
	Consume map[string]int64
	// Limits, when set, override the stored configuration for this call
	// (for the entity and its parent alike).
	Limits []limits.Limit
	// OnUnavailable overrides the namespace's system setting for this call.
	OnUnavailable limits.OnUnavailable
}

// ErrContention: a bucket changed under every one of MaxAttempts writes.
// An acquire reports it as a denial (reason limits.ReasonContention, a
// short retry-after), never as unavailability: losing races is not an
// outage (DECISIONS §3.19).
var ErrContention = errors.New("bucket kept changing under every attempt")

// UnavailableError is returned when the backend could not decide and the
// on_unavailable policy is block. errors.Is(err, limits.ErrUnavailable).
type UnavailableError struct {
	EntityID, Resource string
	Cause              error
}

func (e *UnavailableError) Error() string {
	return fmt.Sprintf("rate limiter unavailable for %s/%s: %v", e.EntityID, e.Resource, e.Cause)
}
func (e *UnavailableError) Is(target error) bool { return target == limits.ErrUnavailable }
func (e *UnavailableError) Unwrap() error        { return e.Cause }

// Acquire checks the request against every limit and, when all admit,
// writes the consumption before it returns. A denial is a
// *limits.ExceededError; invalid input a *limits.ValidationError; a backend
// failure an *UnavailableError unless the policy is allow, in which case the
// lease is a no-op (Lease.Degraded reports it).
func (l *Limiter) Acquire(ctx context.Context, req Request) (*Lease, error) {
	if err := validateRequest(req); err != nil {
		return nil, err
	}
	bctx, cancel := l.budget(ctx)
	defer cancel()
	learnt := l.learnPolicy(bctx, req)
	lease, err := l.acquire(bctx, req)
	learnt()
	if err == nil {
		return lease, nil
	}
	var ex *limits.ExceededError
	if errors.As(err, &ex) || errors.Is(err, limits.ErrInvalid) {
		return nil, err
	}
	if l.policy(bctx, req) == limits.Allow {
		return &Lease{l: l, req: req, degraded: true, closed: false}, nil
	}
	return nil, &UnavailableError{EntityID: req.EntityID, Resource: req.Resource, Cause: err}
}

// Do acquires, runs fn and commits; when fn returns an error or panics the
// lease is rolled back (and the panic continues). If fn itself committed or
// rolled back the lease, Do leaves it alone and returns fn's error as is
// (as client.Do does).
func (l *Limiter) Do(ctx context.Context, req Request, fn func(context.Context, *Lease) error) (err error) {
	lease, err := l.Acquire(ctx, req)
	if err != nil {
		return err
	}
	defer func() {
		if p := recover(); p != nil {
			_ = lease.Rollback(context.WithoutCancel(ctx))
			panic(p)
		}
	}()
	err = fn(ctx, lease)
	if lease.Closed() {
		// fn committed or rolled back itself: its choice stands.
		return err
	}
	if err != nil {
		if rerr := lease.Rollback(context.WithoutCancel(ctx)); rerr != nil {
			return errors.Join(err, fmt.Errorf("roll back: %w", rerr))
		}
		return err
	}
	return lease.Commit(ctx)
}

// PolicyEvery is how often an acquire whose limits are all inline reads the
// namespace's on_unavailable policy, beside its write (so it adds no
// latency): such an acquire resolves nothing, and a process that never read
// the policy would block whatever the namespace says when DynamoDB fails.
// It costs one GetItem per process and namespace a minute at most.
const PolicyEvery = time.Minute

// learnPolicy starts that read when it is due (by the limiter's clock) and
// returns what waits for it.
func (l *Limiter) learnPolicy(ctx context.Context, req Request) (wait func()) {
	if req.OnUnavailable != "" || len(req.Limits) == 0 {
		return func() {}
	}
	now := l.nowMs()
	last := l.policyAt.Load()
	if last != 0 && now-last < PolicyEvery.Milliseconds() || !l.policyAt.CompareAndSwap(last, now) {
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = l.cfg.OnUnavailable(ctx) // the store keeps what it read (or its last value)
	}()
	return func() { <-done }
}

func (l *Limiter) policy(ctx context.Context, req Request) limits.OnUnavailable {
	if req.OnUnavailable != "" {
		return req.OnUnavailable
	}
	// On a read error the store still answers with the last value it read
	// (else block): DynamoDB being down is exactly when the policy matters.
	on, _ := l.cfg.OnUnavailable(ctx)
	if on == "" {
		return limits.Block
	}
	return on
}

func validateRequest(req Request) error {
	if err := limits.ValidateEntityID(req.EntityID); err != nil {
		return err
	}
	if err := limits.ValidateResource(req.Resource); err != nil {
		return err
	}
	if req.OnUnavailable != "" {
		if _, err := limits.ParseOnUnavailable(string(req.OnUnavailable)); err != nil {
			return err
		}
	}
	if req.Limits != nil {
		if err := limits.ValidateSet(req.Limits); err != nil {
			return err
		}
		if len(req.Limits) == 0 {
			return limits.Invalid("limits", "[]", "must not be empty when given")
		}
	}
	return validateAmounts("consume", req.Consume, false)
}

func validateAmounts(field string, m map[string]int64, signed bool) error {
	if len(m) > limits.MaxLimits {
		return limits.Invalid(field, fmt.Sprintf("%d limits", len(m)), fmt.Sprintf("at most %d limits apply to one bucket", limits.MaxLimits))
	}
	for name, n := range m {
		if err := limits.ValidateLimitName(name); err != nil {
			return err
		}
		if !signed && n < 0 {
			return limits.Invalid(field+"."+name, fmt.Sprint(n), "must be a whole number >= 0")
		}
		if n > limits.MaxTokens || n < -limits.MaxTokens {
			return limits.Invalid(field+"."+name, fmt.Sprint(n), fmt.Sprintf("must be at most %d", limits.MaxTokens))
		}
	}
	return nil
}

// budget bounds one call by Options.Timeout.
func (l *Limiter) budget(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, l.o.Timeout)
}

// detached is for writes that must happen even when the caller's context
// is done (giving back what a failed acquire took): not cancelled with it,
// but bounded all the same.
func (l *Limiter) detached(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), l.o.Timeout)
}

// target is one bucket an acquire writes: the entity's, or its parent's.
type target struct {
	entity   string
	resource string
	limits   []limits.Limit
	// version is the config version the limits were resolved at (0: the
	// request's own limits).
	version int64
}

func (l *Limiter) bucketID(t *target) shard.ID {
	return shard.ID{Namespace: l.o.Namespace, Entity: t.entity, Resource: t.resource}
}

func (t target) has(name string) bool {
	for _, lm := range t.limits {
		if lm.Name == name {
			return true
		}
	}
	return false
}

// targets resolves the limits of the entity and, when it cascades, of its
// parent, and checks every consume name against them. gate denies the
// acquire of a blocked entity first (ADR-032).
func (l *Limiter) targets(ctx context.Context, entity, resource string, override []limits.Limit, names []string, gate bool) ([]target, error) {
	e, found, err := l.cfg.CachedEntity(ctx, entity)
	if err != nil {
		return nil, fmt.Errorf("read entity %q: %w", entity, err)
	}
	if gate {
		if err := l.blockedBy(ctx, e, found); err != nil {
			return nil, err
		}
	}
	t, err := l.current(ctx, entity, resource, override)
	if err != nil {
		return nil, err
	}
	ts := []target{t}
	if found && e.Cascade && e.ParentID != "" {
		pt, err := l.current(ctx, e.ParentID, resource, override)
		if err != nil {
			return nil, err
		}
		ts = append(ts, pt)
	}
	for _, name := range names {
		known := false
		for _, t := range ts {
			known = known || t.has(name)
		}
		if !known {
			return nil, limits.Invalid("consume", name,
				fmt.Sprintf("no limit %q applies to entity %q and resource %q", name, entity, resource))
		}
	}
	return ts, nil
}

// current is the bucket (entity, resource) with the limits in force: the
// request's own, else the resolved config.
func (l *Limiter) current(ctx context.Context, entity, resource string, override []limits.Limit) (target, error) {
	if override != nil {
		return target{entity: entity, resource: resource, limits: override}, nil
	}
	r, err := l.cfg.ResolveLimits(ctx, entity, resource)
	if err != nil {
		return target{}, err
	}
	return target{entity: entity, resource: resource, limits: r.Limits, version: r.Version}, nil
}

// refresh re-resolves t's limits bypassing the config cache: a bucket
// showed parameters of a newer config than the one cached.
func (l *Limiter) refresh(ctx context.Context, t *target) error {
	if t.version == 0 {
		return nil
	}
	r, err := l.cfg.RefreshLimits(ctx, t.entity, t.resource)
	if err != nil {
		return err
	}
	t.limits, t.version = r.Limits, r.Version
	return nil
}

func sortedNames(m map[string]int64) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func (l *Limiter) nowMs() int64 { return l.o.Now().UnixMilli() }
