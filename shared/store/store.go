package store

import (
	"context"
	"crypto/rand"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/oklog/ulid/v2"

	"github.com/zeroae/zae-limiter-go/shared/limits"
)

// DynamoDB lists exactly the DynamoDB calls this package makes; the IAM
// parity test maps each method to its dynamodb:<Method> action.
// *dynamodb.Client satisfies it.
type DynamoDB interface {
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	PutItem(ctx context.Context, in *dynamodb.PutItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error)
	Query(ctx context.Context, in *dynamodb.QueryInput, optFns ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
	BatchGetItem(ctx context.Context, in *dynamodb.BatchGetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error)
	BatchWriteItem(ctx context.Context, in *dynamodb.BatchWriteItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.BatchWriteItemOutput, error)
	TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, optFns ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error)
	TransactGetItems(ctx context.Context, in *dynamodb.TransactGetItemsInput, optFns ...func(*dynamodb.Options)) (*dynamodb.TransactGetItemsOutput, error)
	CreateTable(ctx context.Context, in *dynamodb.CreateTableInput, optFns ...func(*dynamodb.Options)) (*dynamodb.CreateTableOutput, error)
	UpdateTimeToLive(ctx context.Context, in *dynamodb.UpdateTimeToLiveInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateTimeToLiveOutput, error)
	DescribeTable(ctx context.Context, in *dynamodb.DescribeTableInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DescribeTableOutput, error)
}

// Defaults applied by New.
const (
	DefaultCacheTTL       = 60 * time.Second
	DefaultAuditRetention = 90 * 24 * time.Hour
	// UnknownPrincipal is recorded when no principal is configured or found.
	UnknownPrincipal = "unknown"
)

// MaxCacheTTL is the longest cache lifetime the deployables accept
// (`zae-limiter serve --config-cache-ttl`, the acquire function's
// CONFIG_CACHE_TTL): a limit change reaches them within it.
const MaxCacheTTL = time.Hour

// CacheTTLSetting is Options.CacheTTL for a configured lifetime d, where 0
// means no cache (every acquire reads the configuration), as the
// deployables' settings spell it.
func CacheTTLSetting(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}

// Options configure a Store. Only Table is required.
type Options struct {
	// Table is the DynamoDB table name (the stack name).
	Table string
	// Principal is recorded in audit events. Empty: PrincipalFunc, else
	// UnknownPrincipal. It is validated (limits.ValidatePrincipal) before
	// every write, so a bad principal changes nothing.
	Principal string
	// PrincipalFunc finds the principal (e.g. the STS caller ARN) the first
	// time one is needed; an error or "" falls back to UnknownPrincipal.
	PrincipalFunc func(context.Context) (string, error)
	// CacheTTL bounds the age of cached namespaces, entities and configs.
	// 0 means DefaultCacheTTL; negative disables caching.
	CacheTTL time.Duration
	// AuditRetention is how long audit events live (their ttl). 0 means
	// DefaultAuditRetention.
	AuditRetention time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Store is the admin API over one table. It is safe for concurrent use.
type Store struct {
	db    DynamoDB
	table string
	opts  Options
	now   func() time.Time

	// pageSize, when positive, is the Limit of every paginated query; tests
	// lower it to exercise pagination with few items.
	pageSize int32

	principalMu  sync.Mutex
	principalVal string
	principalSet bool

	ulidMu  sync.Mutex
	entropy *ulid.MonotonicEntropy
	lastMs  uint64

	nsMu    sync.Mutex
	nsNames map[string]nsCacheEntry // name -> resolved id
	handles map[string]*NS          // id -> shared handle
}

type nsCacheEntry struct {
	id      string
	expires time.Time
}

// New returns a Store over db; it makes no call.
func New(db DynamoDB, o Options) *Store {
	if o.AuditRetention <= 0 {
		o.AuditRetention = DefaultAuditRetention
	}
	now := o.Now
	if now == nil {
		now = time.Now
	}
	return &Store{
		db:      db,
		table:   o.Table,
		opts:    o,
		now:     now,
		entropy: ulid.Monotonic(rand.Reader, 0),
		nsNames: map[string]nsCacheEntry{},
		handles: map[string]*NS{},
	}
}

// Table is the table name.
func (s *Store) Table() string { return s.table }

// cacheTTL is the effective cache lifetime; 0 means caching is off.
func (s *Store) cacheTTL() time.Duration {
	switch {
	case s.opts.CacheTTL == 0:
		return DefaultCacheTTL
	case s.opts.CacheTTL < 0:
		return 0
	}
	return s.opts.CacheTTL
}

// Principal is the audit principal: Options.Principal, else the result of
// Options.PrincipalFunc (asked once), else UnknownPrincipal. A principal that
// fails limits.ValidatePrincipal is returned with the validation error.
func (s *Store) Principal(ctx context.Context) (string, error) {
	s.principalMu.Lock()
	defer s.principalMu.Unlock()
	if !s.principalSet {
		p := s.opts.Principal
		if p == "" && s.opts.PrincipalFunc != nil {
			if v, err := s.opts.PrincipalFunc(ctx); err == nil {
				p = v
			}
		}
		if p == "" {
			p = UnknownPrincipal
		}
		s.principalVal, s.principalSet = p, true
	}
	return s.principalVal, limits.ValidatePrincipal(s.principalVal)
}

// InvalidateCache drops the namespace cache and every handle's caches.
func (s *Store) InvalidateCache() {
	s.nsMu.Lock()
	s.nsNames = map[string]nsCacheEntry{}
	hs := make([]*NS, 0, len(s.handles))
	for _, h := range s.handles {
		hs = append(hs, h)
	}
	s.nsMu.Unlock()
	for _, h := range hs {
		h.InvalidateCache()
	}
}

// newEventID returns a ULID for now that is strictly greater than every id
// this Store issued before, even when the clock steps back.
func (s *Store) newEventID(now time.Time) string {
	s.ulidMu.Lock()
	defer s.ulidMu.Unlock()
	ms := ulid.Timestamp(now)
	if ms < s.lastMs {
		ms = s.lastMs
	}
	id, err := ulid.New(ms, s.entropy)
	if err != nil { // entropy exhausted within one millisecond
		ms++
		id = ulid.MustNew(ms, s.entropy)
	}
	s.lastMs = ms
	return id.String()
}
