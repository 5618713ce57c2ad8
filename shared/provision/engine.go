package provision

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"sync"
	"time"

	"github.com/zeroae/zae-limiter-go/shared/limits"
	"github.com/zeroae/zae-limiter-go/shared/manifest"
	"github.com/zeroae/zae-limiter-go/shared/store"
)

// Admin is what an apply asks of a namespace: the imperative admin calls,
// so a limit applied from a manifest is written, audited and reaches
// buckets exactly like one set with the CLI. *store.NS satisfies it.
type Admin interface {
	SetSystemDefaults(ctx context.Context, ls []limits.Limit, on limits.OnUnavailable) error
	DeleteSystemDefaults(ctx context.Context) error
	SetResourceDefaults(ctx context.Context, resource string, ls []limits.Limit) error
	DeleteResourceDefaults(ctx context.Context, resource string) error
	SetLimits(ctx context.Context, entityID, resource string, ls []limits.Limit) error
	DeleteLimits(ctx context.Context, entityID, resource string) error
	ReadConfigs(ctx context.Context, refs []store.ConfigRef) (map[store.ConfigRef]store.StoredConfig, error)
}

// DefaultConcurrency is how many changes an apply makes at once.
const DefaultConcurrency = 8

// lockTTL bounds an apply without a deadline of its own (the CLI's
// --direct); a Lambda's apply holds the lock until its deadline.
const lockTTL = 15 * time.Minute

// timeReserve is kept from a deadline to record what landed: changes not
// started by then are reported as not attempted.
const timeReserve = 10 * time.Second

// Engine plans, applies and diffs manifests on one table. The zero value
// is not usable: DB and Table are required.
type Engine struct {
	DB    store.DynamoDB
	Table string
	// Concurrency bounds the changes in flight (DefaultConcurrency when 0).
	Concurrency int
	// Now is the clock (time.Now when nil).
	Now func() time.Time
	// PrincipalFunc finds the audit principal of a request that names none
	// (see store.Options); else it is store.UnknownPrincipal.
	PrincipalFunc func(context.Context) (string, error)

	// wrap, when set, wraps the namespace handle (tests inject failures).
	wrap func(Admin) Admin
}

// Request is one plan, apply or diff.
type Request struct {
	Manifest *manifest.Manifest
	// Namespace is the namespace name (see Manifest.WithNamespace).
	Namespace string
	// Principal is recorded in the audit events and the record ("" =
	// Engine.PrincipalFunc).
	Principal string
	// Progress, when set, is called after each change an apply makes.
	Progress func(done, total int)
}

// Result is the outcome. Counts are of changes that landed; Errors name
// each change that did not (and a record that could not be written).
type Result struct {
	Namespace string   `json:"namespace"`
	Changes   []Change `json:"changes"`
	Created   int      `json:"created"`
	Updated   int      `json:"updated"`
	Deleted   int      `json:"deleted"`
	Errors    []string `json:"errors"`
}

func newResult(ns string, cs []Change) *Result {
	if cs == nil {
		cs = []Change{}
	}
	return &Result{Namespace: ns, Changes: cs, Errors: []string{}}
}

func (e *Engine) now() time.Time {
	if e.Now != nil {
		return e.Now()
	}
	return time.Now()
}

func (e *Engine) store(req Request) *store.Store {
	return store.New(e.DB, store.Options{
		Table: e.Table, Principal: req.Principal, PrincipalFunc: e.PrincipalFunc, CacheTTL: -1, Now: e.Now,
	})
}

func (e *Engine) records(nsID string) *recordStore {
	return &recordStore{db: e.DB, table: e.Table, ns: nsID, now: e.now}
}

// open returns the namespace's handle; nil (and no error) when it is not
// registered and register is false.
func (e *Engine) open(ctx context.Context, st *store.Store, name string, register bool) (*store.NS, error) {
	ns, err := st.Namespace(ctx, name)
	if errors.Is(err, limits.ErrNotFound) {
		if !register {
			return nil, nil
		}
		if _, err := st.RegisterNamespace(ctx, name); err != nil {
			return nil, err
		}
		ns, err = st.Namespace(ctx, name)
	}
	return ns, err
}

func (e *Engine) admin(ns *store.NS) Admin {
	if e.wrap != nil {
		return e.wrap(ns)
	}
	return ns
}

// Plan reads the record and lists the changes an apply would make; it
// writes nothing. A namespace never registered plans every item as a
// create.
func (e *Engine) Plan(ctx context.Context, req Request) (*Result, error) {
	ns, err := e.open(ctx, e.store(req), req.Namespace, false)
	if err != nil {
		return nil, err
	}
	rec := Record{}
	if ns != nil {
		if rec, _, err = e.records(ns.ID).read(ctx); err != nil {
			return nil, err
		}
	}
	return newResult(req.Namespace, Plan(req.Manifest, rec)), nil
}

// Diff compares the manifest with the live items (see Drift); it writes
// nothing.
func (e *Engine) Diff(ctx context.Context, req Request) (*Result, error) {
	ns, err := e.open(ctx, e.store(req), req.Namespace, false)
	if err != nil {
		return nil, err
	}
	rec := Record{}
	live := map[manifest.Target]store.StoredConfig{}
	if ns != nil {
		if rec, _, err = e.records(ns.ID).read(ctx); err != nil {
			return nil, err
		}
		targets := liveTargets(req.Manifest, rec)
		refs := make([]store.ConfigRef, len(targets))
		for i, t := range targets {
			refs[i] = configRef(t)
		}
		got, err := e.admin(ns).ReadConfigs(ctx, refs)
		if err != nil {
			return nil, err
		}
		for _, t := range targets {
			if c, ok := got[configRef(t)]; ok {
				live[t] = c
			}
		}
	}
	return newResult(req.Namespace, Drift(req.Manifest, rec, live)), nil
}

// Apply makes the planned changes through the store's admin calls, at most
// Concurrency at a time, under the namespace's record lock, then records
// what landed. An unchanged manifest writes nothing. A change that fails is
// listed in Errors and left out of the record (a failed update or delete
// keeps its previous entry), so the next apply tries it again. The error is
// for failures before any change (a bad principal, DynamoDB unreachable,
// another apply in progress).
func (e *Engine) Apply(ctx context.Context, req Request) (*Result, error) {
	st := e.store(req)
	principal, err := st.Principal(ctx)
	if err != nil {
		return nil, err
	}
	// An empty manifest for a namespace that does not exist (a deleted
	// stack's limits) has nothing to do: do not register it.
	ns, err := e.open(ctx, st, req.Namespace, req.Manifest.Len() > 0)
	if err != nil || ns == nil {
		return newResult(req.Namespace, nil), err
	}
	rs := e.records(ns.ID)
	lockID := newLockID()
	var rec Record
	var changes []Change
	for attempt := 0; ; attempt++ {
		if rec, _, err = rs.read(ctx); err != nil {
			return nil, err
		}
		if changes = Plan(req.Manifest, rec); len(changes) == 0 {
			return newResult(req.Namespace, nil), nil
		}
		err = rs.lock(ctx, req.Namespace, rec.Generation, lockID, e.lockExpiry(ctx))
		if errors.Is(err, errStale) && attempt < 3 {
			continue
		}
		if err != nil {
			return nil, err
		}
		break
	}

	errs := e.run(ctx, e.admin(ns), changes, req.Progress)
	res := newResult(req.Namespace, changes)
	for i, c := range changes {
		if errs[i] != nil {
			res.Errors = append(res.Errors, c.Describe()+": "+errs[i].Error())
			continue
		}
		switch c.Action {
		case ActionCreate:
			res.Created++
		case ActionUpdate:
			res.Updated++
		case ActionDelete:
			res.Deleted++
		}
	}

	// Record what landed, even when the caller's context is done.
	wctx := ctx
	if ctx.Err() != nil {
		var cancel context.CancelFunc
		wctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), timeReserve)
		defer cancel()
	}
	if res.Created+res.Updated+res.Deleted == 0 {
		if err := rs.unlock(wctx, lockID); err != nil {
			res.Errors = append(res.Errors, err.Error())
		}
		return res, nil
	}
	next := Record{Entries: applied(rec, changes, errs), LastApplied: e.now(), AppliedBy: principal}
	if len(res.Errors) == 0 {
		next.ManifestHash = req.Manifest.Hash()
	}
	if err := rs.write(wctx, rec.Generation, next, lockID); err != nil {
		res.Errors = append(res.Errors, err.Error()+
			"; the changes listed without an error landed but are not recorded as managed: apply again")
	}
	return res, nil
}

func (e *Engine) lockExpiry(ctx context.Context) time.Time {
	if d, ok := ctx.Deadline(); ok {
		return d.Add(time.Minute)
	}
	return e.now().Add(lockTTL)
}

func newLockID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// errNotAttempted: the apply ran out of time or was cancelled first.
var errNotAttempted = errors.New("not attempted: the apply ran out of time or was cancelled")

// run makes the changes, Concurrency at a time, and returns each one's
// error. Changes are started only until timeReserve before ctx's deadline.
func (e *Engine) run(ctx context.Context, a Admin, cs []Change, progress func(int, int)) []error {
	errs := make([]error, len(cs))
	startBy := time.Time{}
	if d, ok := ctx.Deadline(); ok {
		startBy = d.Add(-min(timeReserve, time.Until(d)/2))
	}
	workers := e.Concurrency
	if workers <= 0 {
		workers = DefaultConcurrency
	}
	next := make(chan int)
	var mu sync.Mutex
	done := 0
	var wg sync.WaitGroup
	for range min(workers, len(cs)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				errs[i] = applyOne(ctx, a, cs[i])
				if progress != nil {
					mu.Lock()
					done++
					progress(done, len(cs))
					mu.Unlock()
				}
			}
		}()
	}
	for i := range cs {
		if ctx.Err() != nil || (!startBy.IsZero() && time.Now().After(startBy)) {
			errs[i] = errNotAttempted
			continue
		}
		next <- i
	}
	close(next)
	wg.Wait()
	return errs
}

// applyOne makes one change. Deleting what is already gone succeeds.
func applyOne(ctx context.Context, a Admin, c Change) error {
	var err error
	switch {
	case c.Level == manifest.LevelSystem && c.Action == ActionDelete:
		err = a.DeleteSystemDefaults(ctx)
	case c.Level == manifest.LevelSystem:
		err = a.SetSystemDefaults(ctx, c.Item.Limits, c.Item.OnUnavailable)
	case c.Level == manifest.LevelResource && c.Action == ActionDelete:
		err = a.DeleteResourceDefaults(ctx, c.Resource)
	case c.Level == manifest.LevelResource:
		err = a.SetResourceDefaults(ctx, c.Resource, c.Item.Limits)
	case c.Action == ActionDelete:
		err = a.DeleteLimits(ctx, c.Entity, c.Resource)
	default:
		err = a.SetLimits(ctx, c.Entity, c.Resource, c.Item.Limits)
	}
	if c.Action == ActionDelete && errors.Is(err, limits.ErrNotFound) {
		return nil
	}
	return err
}
