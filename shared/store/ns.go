package store

import (
	"context"
	"golang.org/x/sync/singleflight"
	"strconv"
	"sync"
	"time"

	"github.com/zeroae/zae-limiter-go/shared/limits"
)

// NS is a handle on one namespace: every entity, config and audit method is
// scoped to it. Get one from Store.Namespace; Name and ID are read-only.
// It is safe for concurrent use.
type NS struct {
	Name string
	ID   string

	s *Store

	mu        sync.Mutex
	flight    singleflight.Group        // one read per cache miss, however many callers
	entities  map[string]entityEntry    // entity id -> record or absence
	entityCfg map[[2]string]configEntry // (entity, resource) -> entity config level
	resources map[string]configEntry    // resource -> resource defaults level
	system    *configEntry              // system defaults level
	lastOn    limits.OnUnavailable      // last on_unavailable seen in the system config
	// gen counts evictions: a read started before one must not cache its
	// (possibly older) result, nor be joined by a read started after it.
	gen uint64
}

type entityEntry struct {
	e       Entity
	found   bool
	expires time.Time
}

// configEntry is one cached level: nil limits mean "not configured".
type configEntry struct {
	limits  []limits.Limit
	on      limits.OnUnavailable // system level only
	expires time.Time
	// version is the config version the level was read at; -1 when read
	// without it (OnUnavailable's read), which ResolveLimits reads again.
	version int64
}

func newNS(s *Store, name, id string) *NS {
	n := &NS{Name: name, ID: id, s: s}
	n.resetLocked()
	return n
}

func (n *NS) resetLocked() {
	n.gen++
	n.entities = map[string]entityEntry{}
	n.entityCfg = map[[2]string]configEntry{}
	n.resources = map[string]configEntry{}
	n.system = nil
	n.lastOn = ""
}

// InvalidateCache drops this namespace's cached entities and configs and the
// last known on_unavailable.
func (n *NS) InvalidateCache() {
	n.mu.Lock()
	n.resetLocked()
	n.mu.Unlock()
}

// fresh reports whether an entry expiring at exp may be used now.
func (n *NS) fresh(exp time.Time) bool {
	return n.s.cacheTTL() > 0 && n.s.now().Before(exp)
}

func (n *NS) expiry() time.Time { return n.s.now().Add(n.s.cacheTTL()) }

func (n *NS) evictEntity(id string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.gen++
	delete(n.entities, id)
	for k := range n.entityCfg {
		if k[0] == id {
			delete(n.entityCfg, k)
		}
	}
}

// evictConfig drops every cached config level after a change of limits
// through this handle: the next resolution reads them all in one snapshot,
// so its config version is exactly the one it read (a level kept from
// before would label the resolution with its older version).
func (n *NS) evictConfig() {
	n.mu.Lock()
	n.gen++
	n.entityCfg = map[[2]string]configEntry{}
	n.resources = map[string]configEntry{}
	n.system = nil
	n.mu.Unlock()
}

// evictLevels drops every cached level (entity, resource) resolves through.
func (n *NS) evictLevels(id, resource string) {
	n.mu.Lock()
	n.gen++
	delete(n.entityCfg, [2]string{id, resource})
	delete(n.entityCfg, [2]string{id, limits.DefaultResource})
	delete(n.resources, resource)
	n.system = nil
	n.mu.Unlock()
}

// sharedReadTimeout bounds a read shared by concurrent cache misses.
const sharedReadTimeout = 10 * time.Second

// shared runs read once for every concurrent caller of key (within one
// cache generation). The read does not inherit one caller's cancellation,
// so a client that goes away fails nobody else; each caller stops waiting
// on its own context.
func (n *NS) shared(ctx context.Context, key string, gen uint64, read func(context.Context) (any, error)) (any, error) {
	ch := n.flight.DoChan(strconv.FormatUint(gen, 10)+"\x00"+key, func() (any, error) {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), sharedReadTimeout)
		defer cancel()
		return read(rctx)
	})
	select {
	case r := <-ch:
		return r.Val, r.Err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
