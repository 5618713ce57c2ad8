package store

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/zeroae/zae-limiter-go/shared/dynamo"
	"github.com/zeroae/zae-limiter-go/shared/limits"
	"github.com/zeroae/zae-limiter-go/shared/schema"
)

// Namespace lifecycle states.
const (
	StatusActive  = "active"
	StatusDeleted = "deleted"
	StatusPurging = "purging"
	// StatusReRegistered is reported by RecoverNamespace when the name was
	// registered again under another id.
	StatusReRegistered = "re-registered"
)

// Namespace is a registry record.
type Namespace struct {
	Name      string    `json:"name"`
	ID        string    `json:"namespace_id"`
	Status    string    `json:"status"`
	CreatedAt time.Time `json:"created_at"`
	DeletedAt time.Time `json:"deleted_at,omitzero"`
}

// ErrNamespaceState matches every *NamespaceStateError.
var ErrNamespaceState = errors.New("namespace is in the wrong state")

// NamespaceStateError: a namespace operation met a lifecycle state that does
// not allow it (e.g. purging an active namespace).
type NamespaceStateError struct {
	Op, Name, ID, State string
}

func (e *NamespaceStateError) Error() string {
	var why string
	switch e.State {
	case StatusActive:
		why = "namespace is active; delete it first"
	case StatusPurging:
		why = "namespace is being purged"
	case StatusReRegistered:
		why = "the name was registered again under another id"
	default:
		why = "namespace is " + e.State
	}
	return fmt.Sprintf("%s namespace %q (id %s): %s", e.Op, e.Name, e.ID, why)
}

// Is makes errors.Is(err, ErrNamespaceState) true.
func (e *NamespaceStateError) Is(target error) bool { return target == ErrNamespaceState }

// newNamespaceID returns 8 random bytes, URL-safe base64 without padding,
// never starting with '-' (so the id never reads as a CLI flag).
func newNamespaceID() string {
	for {
		b := make([]byte, 8)
		_, _ = rand.Read(b)
		id := base64.RawURLEncoding.EncodeToString(b)
		if !strings.HasPrefix(id, "-") {
			return id
		}
	}
}

func validateNamespaceID(id string) error {
	if id == "" || len(id) > 64 || strings.Trim(id,
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-") != "" {
		return limits.Invalid("namespace_id", id, "must be a namespace id (letters, digits, _ and -)")
	}
	return nil
}

func namespaceItem(k schema.Key, ns Namespace) dynamo.Item {
	it := keyItem(k)
	it["namespace_id"] = dynamo.S(ns.ID)
	it["namespace_name"] = dynamo.S(ns.Name)
	it["status"] = dynamo.S(ns.Status)
	it["created_at"] = dynamo.S(fmtTime(ns.CreatedAt))
	if !ns.DeletedAt.IsZero() {
		it["deleted_at"] = dynamo.S(fmtTime(ns.DeletedAt))
	}
	setGSI4(it, schema.TableNS, k)
	return it
}

func decodeNamespace(it dynamo.Item) Namespace {
	return Namespace{
		Name:      dynamo.GetS(it, "namespace_name"),
		ID:        dynamo.GetS(it, "namespace_id"),
		Status:    dynamo.GetS(it, "status"),
		CreatedAt: parseTime(dynamo.GetS(it, "created_at")),
		DeletedAt: parseTime(dynamo.GetS(it, "deleted_at")),
	}
}

// lookupNamespace reads the forward record; nil when absent or not active.
func (s *Store) lookupNamespace(ctx context.Context, name string) (*Namespace, error) {
	it, err := s.getItem(ctx, schema.NamespaceKey(name), true)
	if err != nil || it == nil {
		return nil, err
	}
	ns := decodeNamespace(it)
	if ns.Status != StatusActive {
		return nil, nil
	}
	return &ns, nil
}

// RegisterNamespace registers name with a new random id, or returns the
// existing registration (idempotent). The forward (by name) and reverse (by
// id) records are written in one transaction.
func (s *Store) RegisterNamespace(ctx context.Context, name string) (Namespace, error) {
	if err := limits.ValidateNamespaceName(name); err != nil {
		return Namespace{}, err
	}
	fail := func(err error) (Namespace, error) {
		return Namespace{}, fmt.Errorf("register namespace %q: %w", name, err)
	}
	for range 5 {
		if ns, err := s.lookupNamespace(ctx, name); err != nil {
			return fail(err)
		} else if ns != nil {
			s.cacheNamespace(ns.Name, ns.ID)
			return *ns, nil
		}
		ns := Namespace{Name: name, ID: newNamespaceID(), Status: StatusActive, CreatedAt: s.now()}
		var e dynamo.Expr
		cond := notExists(&e)
		err := s.transact(ctx, []types.TransactWriteItem{
			{Put: &types.Put{TableName: aws.String(s.table), Item: namespaceItem(schema.NamespaceKey(name), ns),
				ConditionExpression: aws.String(cond), ExpressionAttributeNames: e.Names()}},
			{Put: &types.Put{TableName: aws.String(s.table), Item: namespaceItem(schema.NamespaceIDKey(ns.ID), ns),
				ConditionExpression: aws.String(cond), ExpressionAttributeNames: e.Names()}},
		})
		if err == nil {
			s.cacheNamespace(name, ns.ID)
			return ns, nil
		}
		if _, cancelled := dynamo.CancelReasons(err); !cancelled {
			return fail(err)
		}
		// Registered concurrently (or an id collision): look again.
	}
	return fail(errors.New("gave up after repeated conflicts"))
}

// GetNamespace returns the active namespace called name.
func (s *Store) GetNamespace(ctx context.Context, name string) (Namespace, error) {
	if err := limits.ValidateNamespaceName(name); err != nil {
		return Namespace{}, err
	}
	ns, err := s.lookupNamespace(ctx, name)
	if err != nil {
		return Namespace{}, fmt.Errorf("get namespace %q: %w", name, err)
	}
	if ns == nil {
		return Namespace{}, fmt.Errorf("namespace %q: %w", name, limits.ErrNotFound)
	}
	return *ns, nil
}

// queryRegistry lists the registry records whose sort key starts with prefix.
func (s *Store) queryRegistry(ctx context.Context, prefix string) ([]Namespace, error) {
	var e dynamo.Expr
	out := []Namespace{}
	err := s.queryAll(ctx, &dynamodb.QueryInput{
		KeyConditionExpression: aws.String(e.Name(schema.PK) + " = " + e.Value(dynamo.S(schema.SystemPK(schema.TableNS))) +
			" AND begins_with(" + e.Name(schema.SK) + ", " + e.Value(dynamo.S(prefix)) + ")"),
		ExpressionAttributeNames:  e.Names(),
		ExpressionAttributeValues: e.Values(),
		ConsistentRead:            aws.Bool(true),
	}, func(it dynamo.Item) error {
		out = append(out, decodeNamespace(it))
		return nil
	})
	return out, err
}

// ListNamespaces returns every active namespace, sorted by name.
func (s *Store) ListNamespaces(ctx context.Context) ([]Namespace, error) {
	all, err := s.queryRegistry(ctx, schema.SKNamespacePrefix)
	if err != nil {
		return nil, fmt.Errorf("list namespaces: %w", err)
	}
	out := slices.DeleteFunc(all, func(ns Namespace) bool { return ns.Status != StatusActive })
	slices.SortFunc(out, func(a, b Namespace) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// DeleteNamespace soft-deletes: the name is released and the id's record is
// marked deleted; the namespace's data stays until PurgeNamespace.
func (s *Store) DeleteNamespace(ctx context.Context, name string) error {
	if err := limits.ValidateNamespaceName(name); err != nil {
		return err
	}
	ns, err := s.lookupNamespace(ctx, name)
	if err != nil {
		return fmt.Errorf("delete namespace %q: %w", name, err)
	}
	if ns == nil {
		return fmt.Errorf("delete namespace %q: %w", name, limits.ErrNotFound)
	}
	var fe, re dynamo.Expr
	fcond := fe.Name("namespace_id") + " = " + fe.Value(dynamo.S(ns.ID))
	rupd := "SET " + re.Name("status") + " = " + re.Value(dynamo.S(StatusDeleted)) + ", " +
		re.Name("deleted_at") + " = " + re.Value(dynamo.S(fmtTime(s.now())))
	rcond := exists(&re)
	err = s.transact(ctx, []types.TransactWriteItem{
		{Delete: &types.Delete{TableName: aws.String(s.table), Key: keyItem(schema.NamespaceKey(name)),
			ConditionExpression: aws.String(fcond), ExpressionAttributeNames: fe.Names(),
			ExpressionAttributeValues: fe.Values()}},
		{Update: &types.Update{TableName: aws.String(s.table), Key: keyItem(schema.NamespaceIDKey(ns.ID)),
			UpdateExpression: aws.String(rupd), ConditionExpression: aws.String(rcond),
			ExpressionAttributeNames: re.Names(), ExpressionAttributeValues: re.Values()}},
	})
	s.forgetNamespace(name)
	if codes, ok := dynamo.CancelReasons(err); ok && failedCondition(codes, 0) {
		return fmt.Errorf("delete namespace %q: %w", name, limits.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("delete namespace %q: %w", name, err)
	}
	return nil
}

// namespaceByID reads the reverse record.
func (s *Store) namespaceByID(ctx context.Context, id string) (*Namespace, error) {
	it, err := s.getItem(ctx, schema.NamespaceIDKey(id), true)
	if err != nil || it == nil {
		return nil, err
	}
	ns := decodeNamespace(it)
	return &ns, nil
}

// RecoverNamespace re-activates a soft-deleted namespace under its old name.
// It fails with ErrNotFound for an unknown id, and with a
// *NamespaceStateError when the namespace is active, being purged, or its
// name was registered again meanwhile.
func (s *Store) RecoverNamespace(ctx context.Context, id string) (Namespace, error) {
	if err := validateNamespaceID(id); err != nil {
		return Namespace{}, err
	}
	ns, err := s.namespaceByID(ctx, id)
	if err != nil {
		return Namespace{}, fmt.Errorf("recover namespace id %q: %w", id, err)
	}
	if ns == nil {
		return Namespace{}, fmt.Errorf("recover namespace id %q: %w", id, limits.ErrNotFound)
	}
	if ns.Status != StatusDeleted {
		return Namespace{}, &NamespaceStateError{Op: "recover", Name: ns.Name, ID: id, State: ns.Status}
	}
	active := *ns
	active.Status, active.DeletedAt = StatusActive, time.Time{}
	var fe, re dynamo.Expr
	fcond := notExists(&fe)
	rupd := "SET " + re.Name("status") + " = " + re.Value(dynamo.S(StatusActive)) + " REMOVE " + re.Name("deleted_at")
	rcond := re.Name("status") + " = " + re.Value(dynamo.S(StatusDeleted))
	err = s.transact(ctx, []types.TransactWriteItem{
		{Put: &types.Put{TableName: aws.String(s.table), Item: namespaceItem(schema.NamespaceKey(ns.Name), active),
			ConditionExpression: aws.String(fcond), ExpressionAttributeNames: fe.Names()}},
		{Update: &types.Update{TableName: aws.String(s.table), Key: keyItem(schema.NamespaceIDKey(id)),
			UpdateExpression: aws.String(rupd), ConditionExpression: aws.String(rcond),
			ExpressionAttributeNames: re.Names(), ExpressionAttributeValues: re.Values()}},
	})
	if codes, ok := dynamo.CancelReasons(err); ok {
		if failedCondition(codes, 0) {
			return Namespace{}, &NamespaceStateError{Op: "recover", Name: ns.Name, ID: id, State: StatusReRegistered}
		}
		if failedCondition(codes, 1) {
			state := "changed concurrently"
			if cur, _ := s.namespaceByID(ctx, id); cur != nil {
				state = cur.Status
			}
			return Namespace{}, &NamespaceStateError{Op: "recover", Name: ns.Name, ID: id, State: state}
		}
	}
	if err != nil {
		return Namespace{}, fmt.Errorf("recover namespace %q (id %s): %w", ns.Name, id, err)
	}
	s.cacheNamespace(active.Name, id)
	return active, nil
}

// ListOrphanNamespaces lists soft-deleted namespaces (status deleted, or
// purging when a purge was interrupted), sorted by name then id.
func (s *Store) ListOrphanNamespaces(ctx context.Context) ([]Namespace, error) {
	all, err := s.queryRegistry(ctx, schema.SKNamespaceIDPrefix)
	if err != nil {
		return nil, fmt.Errorf("list orphan namespaces: %w", err)
	}
	out := slices.DeleteFunc(all, func(ns Namespace) bool { return ns.Status == StatusActive })
	slices.SortFunc(out, func(a, b Namespace) int {
		if c := strings.Compare(a.Name, b.Name); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out, nil
}

// PurgeNamespace deletes every item of a soft-deleted namespace (found
// through GSI4, all pages) and finally its registry record. It returns the
// number of items deleted and reports the running total to progress (may be
// nil). An interrupted purge can be run again.
func (s *Store) PurgeNamespace(ctx context.Context, id string, progress func(deleted int)) (int, error) {
	if err := validateNamespaceID(id); err != nil {
		return 0, err
	}
	ns, err := s.namespaceByID(ctx, id)
	if err != nil {
		return 0, fmt.Errorf("purge namespace id %q: %w", id, err)
	}
	if ns == nil {
		return 0, fmt.Errorf("purge namespace id %q: %w", id, limits.ErrNotFound)
	}
	if ns.Status == StatusActive {
		return 0, &NamespaceStateError{Op: "purge", Name: ns.Name, ID: id, State: ns.Status}
	}
	fail := func(n int, err error) (int, error) {
		return n, fmt.Errorf("purge namespace %q (id %s): %w", ns.Name, id, err)
	}
	var ue dynamo.Expr
	_, err = s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 aws.String(s.table),
		Key:                       keyItem(schema.NamespaceIDKey(id)),
		UpdateExpression:          aws.String("SET " + ue.Name("status") + " = " + ue.Value(dynamo.S(StatusPurging))),
		ConditionExpression:       aws.String(ue.Name("status") + " <> " + ue.Value(dynamo.S(StatusActive))),
		ExpressionAttributeNames:  ue.Names(),
		ExpressionAttributeValues: ue.Values(),
	})
	if dynamo.IsCondFailed(err) {
		return 0, &NamespaceStateError{Op: "purge", Name: ns.Name, ID: id, State: StatusActive}
	}
	if err != nil {
		return fail(0, err)
	}

	// Delete page by page so memory stays bounded for large namespaces.
	total := 0
	report := func(n int) {
		if progress != nil {
			progress(total + n)
		}
	}
	in := indexQuery(schema.GSI4, schema.GSI4PK, schema.NamespaceGSI4PK(id))
	in.TableName = aws.String(s.table)
	if s.pageSize > 0 {
		in.Limit = aws.Int32(s.pageSize)
	}
	for {
		out, err := s.db.Query(ctx, in)
		if err != nil {
			return fail(total, err)
		}
		keys := make([]schema.Key, 0, len(out.Items))
		for _, it := range out.Items {
			keys = append(keys, keyOf(it))
		}
		n, err := s.batchDelete(ctx, dedupe(keys), report)
		total += n
		if err != nil {
			return fail(total, err)
		}
		if len(out.LastEvaluatedKey) == 0 {
			break
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
	if _, err := s.db.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName: aws.String(s.table), Key: keyItem(schema.NamespaceIDKey(id)),
	}); err != nil {
		return fail(total, err)
	}
	s.nsMu.Lock()
	delete(s.handles, id)
	s.nsMu.Unlock()
	return total, nil
}

func (s *Store) cacheNamespace(name, id string) {
	ttl := s.cacheTTL()
	if ttl <= 0 {
		return
	}
	s.nsMu.Lock()
	s.nsNames[name] = nsCacheEntry{id: id, expires: s.now().Add(ttl)}
	s.nsMu.Unlock()
}

func (s *Store) forgetNamespace(name string) {
	s.nsMu.Lock()
	delete(s.nsNames, name)
	s.nsMu.Unlock()
}

// Namespace resolves name to its id through the namespace cache and returns
// the namespace's handle. Handles are shared: the same id always yields the
// same *NS (and its caches). limits.ErrNotFound when name is not registered.
func (s *Store) Namespace(ctx context.Context, name string) (*NS, error) {
	if err := limits.ValidateNamespaceName(name); err != nil {
		return nil, err
	}
	s.nsMu.Lock()
	c, ok := s.nsNames[name]
	if ok && s.now().Before(c.expires) {
		h := s.handleLocked(name, c.id)
		s.nsMu.Unlock()
		return h, nil
	}
	s.nsMu.Unlock()

	ns, err := s.lookupNamespace(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("resolve namespace %q: %w", name, err)
	}
	if ns == nil {
		s.forgetNamespace(name)
		return nil, fmt.Errorf("namespace %q: %w", name, limits.ErrNotFound)
	}
	s.cacheNamespace(name, ns.ID)
	s.nsMu.Lock()
	defer s.nsMu.Unlock()
	return s.handleLocked(name, ns.ID), nil
}

func (s *Store) handleLocked(name, id string) *NS {
	h, ok := s.handles[id]
	if !ok || h.Name != name {
		h = newNS(s, name, id)
		s.handles[id] = h
	}
	return h
}
