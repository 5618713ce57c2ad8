package store

import (
	"golang.org/x/sync/singleflight"
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
}

func newNS(s *Store, name, id string) *NS {
	n := &NS{Name: name, ID: id, s: s}
	n.resetLocked()
	return n
}

func (n *NS) resetLocked() {
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
	delete(n.entities, id)
	for k := range n.entityCfg {
		if k[0] == id {
			delete(n.entityCfg, k)
		}
	}
}

func (n *NS) evictEntityConfig(id, resource string) {
	n.mu.Lock()
	delete(n.entityCfg, [2]string{id, resource})
	n.mu.Unlock()
}

func (n *NS) evictResource(resource string) {
	n.mu.Lock()
	delete(n.resources, resource)
	n.mu.Unlock()
}

func (n *NS) evictSystem() {
	n.mu.Lock()
	n.system = nil
	n.mu.Unlock()
}
