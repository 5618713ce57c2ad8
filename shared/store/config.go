package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/zeroae/zae-limiter-go/shared/dynamo"
	"github.com/zeroae/zae-limiter-go/shared/limits"
	"github.com/zeroae/zae-limiter-go/shared/schema"
)

// Audit entity ids of the resource and system levels.
const SystemAuditID = "$SYSTEM"

// ResourceAuditID is the audit entity id of a resource's defaults.
func ResourceAuditID(resource string) string { return "$RESOURCE:" + resource }

// Attributes of config items besides the limits.
const (
	attrOnUnavailable = "on_unavailable"
	attrConfigVersion = "config_version"
	attrResources     = "resources"
)

// Config attributes of a limit besides its numbers: a calendar quota's
// period (ADR-029) and the shadow flag (ADR-031), present only when set.
const (
	suffixCalendar = "_cal"
	suffixShadow   = "_sh"
)

// putLimits stores ls as l_{L}_cp, l_{L}_ra, l_{L}_rp (whole tokens,
// seconds), and l_{L}_cal, l_{L}_sh when set.
func putLimits(it dynamo.Item, ls []limits.Limit) {
	for _, l := range ls {
		it[schema.ConfigAttr(l.Name, schema.SuffixCapacity)] = dynamo.N(l.Capacity)
		it[schema.ConfigAttr(l.Name, schema.SuffixRefill)] = dynamo.N(l.RefillAmount)
		it[schema.ConfigAttr(l.Name, schema.SuffixPeriod)] = dynamo.N(l.RefillPeriodSeconds)
		if l.Calendar != "" {
			it[schema.ConfigAttr(l.Name, suffixCalendar)] = dynamo.S(l.Calendar)
		}
		if l.Shadow {
			it[schema.ConfigAttr(l.Name, suffixShadow)] = dynamo.Bool(true)
		}
	}
}

// decodeLimits reads every limit of a config item, sorted by name; nil when
// there is none.
func decodeLimits(it dynamo.Item) []limits.Limit {
	var out []limits.Limit
	for attr := range it {
		name, ok := schema.LimitNameFromAttr(attr, "l_", schema.SuffixCapacity)
		if !ok {
			continue
		}
		cp, _ := dynamo.GetN(it, attr)
		ra, _ := dynamo.GetN(it, schema.ConfigAttr(name, schema.SuffixRefill))
		rp, _ := dynamo.GetN(it, schema.ConfigAttr(name, schema.SuffixPeriod))
		out = append(out, limits.Limit{Name: name, Capacity: cp, RefillAmount: ra, RefillPeriodSeconds: rp,
			Calendar: dynamo.GetS(it, schema.ConfigAttr(name, suffixCalendar)),
			Shadow:   dynamo.GetBool(it, schema.ConfigAttr(name, suffixShadow))})
	}
	sortLimits(out)
	return out
}

// limitAttrs lists the l_* attribute names of an item.
func limitAttrs(it dynamo.Item) []string {
	var out []string
	for attr := range it {
		if strings.HasPrefix(attr, "l_") {
			out = append(out, attr)
		}
	}
	slices.Sort(out)
	return out
}

func sortLimits(ls []limits.Limit) {
	slices.SortFunc(ls, func(a, b limits.Limit) int { return strings.Compare(a.Name, b.Name) })
}

// limitDetails renders limits for audit details.
func limitDetails(ls []limits.Limit) []any {
	out := make([]any, 0, len(ls))
	for _, l := range ls {
		d := map[string]any{
			"name": l.Name, "capacity": l.Capacity, "refill_amount": l.RefillAmount,
			"refill_period_seconds": l.RefillPeriodSeconds,
		}
		if l.Calendar != "" {
			d["calendar"] = l.Calendar
		}
		if l.Shadow {
			d["shadow"] = true
		}
		out = append(out, d)
	}
	return out
}

// validateLimits requires a non-empty, valid set.
func validateLimits(ls []limits.Limit) error {
	if len(ls) == 0 {
		return limits.Invalid("limits", "[]", "at least one limit is required")
	}
	return limits.ValidateSet(ls)
}

func (n *NS) entityConfigItem(entityID, resource string, ls []limits.Limit) dynamo.Item {
	k := schema.EntityConfigKey(n.ID, entityID, resource)
	it := keyItem(k)
	it["entity_id"] = dynamo.S(entityID)
	it["resource"] = dynamo.S(resource)
	it[attrConfigVersion] = dynamo.N(1)
	putLimits(it, ls)
	it[schema.GSI3PK] = dynamo.S(schema.EntityConfigGSI3PK(n.ID, resource))
	it[schema.GSI3SK] = dynamo.S(entityID)
	setGSI4(it, n.ID, k)
	return it
}

// registryUpdate is the update of the entity-config registry adding delta
// to resource's count (the registry item is created on first use).
func (n *NS) registryUpdate(resource string, delta int64) *types.Update {
	k := schema.ConfigRegistryKey(n.ID)
	var e dynamo.Expr
	upd := "ADD " + e.Name(resource) + " " + e.Num(delta) +
		" SET " + e.Name(schema.GSI4PK) + " = " + e.Value(dynamo.S(schema.NamespaceGSI4PK(n.ID))) +
		", " + e.Name(schema.GSI4SK) + " = " + e.Value(dynamo.S(schema.GSI4SKFor(k)))
	return &types.Update{
		TableName: aws.String(n.s.table), Key: keyItem(k), UpdateExpression: aws.String(upd),
		ExpressionAttributeNames: e.Names(), ExpressionAttributeValues: e.Values(),
	}
}

// pruneRegistry removes resource's count from the registry when it is <= 0.
func (n *NS) pruneRegistry(ctx context.Context, resource string) error {
	var e dynamo.Expr
	name := e.Name(resource)
	_, err := n.s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 aws.String(n.s.table),
		Key:                       keyItem(schema.ConfigRegistryKey(n.ID)),
		UpdateExpression:          aws.String("REMOVE " + name),
		ConditionExpression:       aws.String(name + " <= " + e.Num(0)),
		ExpressionAttributeNames:  e.Names(),
		ExpressionAttributeValues: e.Values(),
	})
	if dynamo.IsCondFailed(err) {
		return nil
	}
	return err
}

// SetLimits stores the limits of an entity for a resource (or for every
// resource with limits.DefaultResource), replacing any previous set. The
// entity record need not exist. The first config of (entity, resource)
// increments the entity-config registry in the same transaction.
func (n *NS) SetLimits(ctx context.Context, entityID, resource string, ls []limits.Limit) error {
	if err := limits.ValidateEntityID(entityID); err != nil {
		return err
	}
	if err := limits.ValidateConfigResource(resource); err != nil {
		return err
	}
	if err := validateLimits(ls); err != nil {
		return err
	}
	principal, err := n.s.Principal(ctx)
	if err != nil {
		return err
	}
	fail := func(err error) error {
		return fmt.Errorf("set limits of entity %q for resource %q: %w", entityID, resource, err)
	}
	it := n.entityConfigItem(entityID, resource, ls)
	for attempt := 0; ; attempt++ {
		if attempt == retryAttempts {
			return fail(errors.New("config changed concurrently too often"))
		}
		// A new config: put it and count it in the registry, atomically.
		var e dynamo.Expr
		err := n.s.transact(ctx, []types.TransactWriteItem{
			{Put: &types.Put{TableName: aws.String(n.s.table), Item: it,
				ConditionExpression: aws.String(notExists(&e)), ExpressionAttributeNames: e.Names()}},
			{Update: n.registryUpdate(resource, 1)},
			n.seqBump(),
		})
		if err == nil {
			break
		}
		if codes, ok := dynamo.CancelReasons(err); !ok || !failedCondition(codes, 0) {
			return fail(err)
		}
		// It exists: replace it, unless it vanished meanwhile.
		var r dynamo.Expr
		err = n.s.transact(ctx, []types.TransactWriteItem{
			{Put: &types.Put{TableName: aws.String(n.s.table), Item: it,
				ConditionExpression: aws.String(exists(&r)), ExpressionAttributeNames: r.Names()}},
			n.seqBump(),
		})
		if err == nil {
			break
		}
		if codes, ok := dynamo.CancelReasons(err); !ok || !failedCondition(codes, 0) {
			return fail(err)
		}
	}
	n.evictConfig()
	if err := n.audit(ctx, principal, ActionLimitsSet, entityID, resource,
		map[string]any{"limits": limitDetails(ls)}); err != nil {
		return fail(err)
	}
	return nil
}

// GetLimits reads the limits of an entity for a resource, sorted by name.
func (n *NS) GetLimits(ctx context.Context, entityID, resource string) ([]limits.Limit, error) {
	if err := limits.ValidateEntityID(entityID); err != nil {
		return nil, err
	}
	if err := limits.ValidateConfigResource(resource); err != nil {
		return nil, err
	}
	it, err := n.s.getItem(ctx, schema.EntityConfigKey(n.ID, entityID, resource), true)
	if err != nil {
		return nil, fmt.Errorf("get limits of entity %q for resource %q: %w", entityID, resource, err)
	}
	ls := decodeLimits(it)
	if len(ls) == 0 {
		return nil, fmt.Errorf("limits of entity %q for resource %q: %w", entityID, resource, limits.ErrNotFound)
	}
	return ls, nil
}

// EntityConfigs returns every resource config of the entity, keyed by
// resource (limits.DefaultResource included); empty when there is none.
func (n *NS) EntityConfigs(ctx context.Context, entityID string) (map[string][]limits.Limit, error) {
	if err := limits.ValidateEntityID(entityID); err != nil {
		return nil, err
	}
	out := map[string][]limits.Limit{}
	var e dynamo.Expr
	err := n.s.queryAll(ctx, &dynamodb.QueryInput{
		KeyConditionExpression: aws.String(e.Name(schema.PK) + " = " + e.Value(dynamo.S(schema.EntityPK(n.ID, entityID))) +
			" AND begins_with(" + e.Name(schema.SK) + ", " + e.Value(dynamo.S(schema.SKConfigPrefix)) + ")"),
		ExpressionAttributeNames:  e.Names(),
		ExpressionAttributeValues: e.Values(),
		ConsistentRead:            aws.Bool(true),
	}, func(it dynamo.Item) error {
		if ls := decodeLimits(it); len(ls) > 0 {
			out[strings.TrimPrefix(dynamo.GetS(it, schema.SK), schema.SKConfigPrefix)] = ls
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list configs of entity %q: %w", entityID, err)
	}
	return out, nil
}

// deleteConfig deletes one entity config and decrements the registry in one
// transaction; existed is false when there was no config.
func (n *NS) deleteConfig(ctx context.Context, entityID, resource string) (existed bool, err error) {
	var e dynamo.Expr
	err = n.s.transact(ctx, []types.TransactWriteItem{
		{Delete: &types.Delete{TableName: aws.String(n.s.table),
			Key:                 keyItem(schema.EntityConfigKey(n.ID, entityID, resource)),
			ConditionExpression: aws.String(exists(&e)), ExpressionAttributeNames: e.Names()}},
		{Update: n.registryUpdate(resource, -1)},
		n.seqBump(),
	})
	n.evictConfig()
	if codes, ok := dynamo.CancelReasons(err); ok && failedCondition(codes, 0) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return true, n.pruneRegistry(ctx, resource)
}

// DeleteLimits deletes the limits of an entity for a resource and decrements
// the registry. Existing buckets are not touched: the next acquire syncs
// their parameters to whatever level now applies.
func (n *NS) DeleteLimits(ctx context.Context, entityID, resource string) error {
	if err := limits.ValidateEntityID(entityID); err != nil {
		return err
	}
	if err := limits.ValidateConfigResource(resource); err != nil {
		return err
	}
	principal, err := n.s.Principal(ctx)
	if err != nil {
		return err
	}
	existed, err := n.deleteConfig(ctx, entityID, resource)
	if err != nil {
		return fmt.Errorf("delete limits of entity %q for resource %q: %w", entityID, resource, err)
	}
	if !existed {
		return fmt.Errorf("limits of entity %q for resource %q: %w", entityID, resource, limits.ErrNotFound)
	}
	if err := n.audit(ctx, principal, ActionLimitsDeleted, entityID, resource, nil); err != nil {
		return fmt.Errorf("delete limits of entity %q for resource %q: %w", entityID, resource, err)
	}
	return nil
}

// EntitiesWithCustomLimits lists the ids of entities having a config for
// resource (limits.DefaultResource lists entity defaults), sorted.
func (n *NS) EntitiesWithCustomLimits(ctx context.Context, resource string) ([]string, error) {
	if err := limits.ValidateConfigResource(resource); err != nil {
		return nil, err
	}
	out := []string{}
	in := indexQuery(schema.GSI3, schema.GSI3PK, schema.EntityConfigGSI3PK(n.ID, resource))
	err := n.s.queryAll(ctx, in, func(it dynamo.Item) error {
		out = append(out, dynamo.GetS(it, schema.GSI3SK))
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list entities with limits for resource %q: %w", resource, err)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// ResourcesWithEntityConfigs lists the resources (limits.DefaultResource
// included) that at least one entity config names, from the registry.
func (n *NS) ResourcesWithEntityConfigs(ctx context.Context) ([]string, error) {
	counts, err := n.ConfigRegistry(ctx)
	if err != nil {
		return nil, err
	}
	out := []string{}
	for r, c := range counts {
		if c > 0 {
			out = append(out, r)
		}
	}
	slices.Sort(out)
	return out, nil
}

// ConfigRegistry returns the entity-config registry: the number of entity
// configs per resource.
func (n *NS) ConfigRegistry(ctx context.Context) (map[string]int64, error) {
	it, err := n.s.getItem(ctx, schema.ConfigRegistryKey(n.ID), true)
	if err != nil {
		return nil, fmt.Errorf("read entity-config registry: %w", err)
	}
	out := map[string]int64{}
	for attr, v := range it {
		if _, isN := v.(*types.AttributeValueMemberN); !isN {
			continue
		}
		if c, ok := dynamo.GetN(it, attr); ok {
			out[attr] = c
		}
	}
	return out, nil
}

func (n *NS) resourceConfigItem(resource string, ls []limits.Limit) dynamo.Item {
	k := schema.ResourceConfigKey(n.ID, resource)
	it := keyItem(k)
	it["resource"] = dynamo.S(resource)
	it[attrConfigVersion] = dynamo.N(1)
	putLimits(it, ls)
	setGSI4(it, n.ID, k)
	return it
}

// resourcesUpdate adds (ADD) or removes (DELETE) resource in the registry
// set, and raises the config version (the same item).
func (n *NS) resourcesUpdate(op, resource string) *types.Update {
	k := schema.ResourcesRegistryKey(n.ID)
	u := &dynamo.Update{}
	set := &types.AttributeValueMemberSS{Value: []string{resource}}
	if op == "ADD" {
		u.Add(attrResources, set)
	} else {
		u.Delete(attrResources, set)
	}
	seqAdd(u)
	u.Set(schema.GSI4PK, schema.NamespaceGSI4PK(n.ID))
	u.Set(schema.GSI4SK, schema.GSI4SKFor(k))
	return &types.Update{
		TableName: aws.String(n.s.table), Key: keyItem(k), UpdateExpression: aws.String(u.Expression()),
		ExpressionAttributeNames: u.Names(), ExpressionAttributeValues: u.Values(),
	}
}

// SetResourceDefaults stores the default limits of a resource, replacing any
// previous set, and registers the resource.
func (n *NS) SetResourceDefaults(ctx context.Context, resource string, ls []limits.Limit) error {
	if err := limits.ValidateResource(resource); err != nil {
		return err
	}
	if err := validateLimits(ls); err != nil {
		return err
	}
	principal, err := n.s.Principal(ctx)
	if err != nil {
		return err
	}
	err = n.s.transact(ctx, []types.TransactWriteItem{
		{Put: &types.Put{TableName: aws.String(n.s.table), Item: n.resourceConfigItem(resource, ls)}},
		{Update: n.resourcesUpdate("ADD", resource)},
	})
	if err != nil {
		return fmt.Errorf("set defaults of resource %q: %w", resource, err)
	}
	n.evictConfig()
	if err := n.audit(ctx, principal, ActionLimitsSet, ResourceAuditID(resource), resource,
		map[string]any{"limits": limitDetails(ls)}); err != nil {
		return fmt.Errorf("set defaults of resource %q: %w", resource, err)
	}
	return nil
}

// GetResourceDefaults reads the default limits of a resource.
func (n *NS) GetResourceDefaults(ctx context.Context, resource string) ([]limits.Limit, error) {
	if err := limits.ValidateResource(resource); err != nil {
		return nil, err
	}
	it, err := n.s.getItem(ctx, schema.ResourceConfigKey(n.ID, resource), true)
	if err != nil {
		return nil, fmt.Errorf("get defaults of resource %q: %w", resource, err)
	}
	ls := decodeLimits(it)
	if len(ls) == 0 {
		return nil, fmt.Errorf("defaults of resource %q: %w", resource, limits.ErrNotFound)
	}
	return ls, nil
}

// DeleteResourceDefaults deletes the default limits of a resource and
// unregisters it.
func (n *NS) DeleteResourceDefaults(ctx context.Context, resource string) error {
	if err := limits.ValidateResource(resource); err != nil {
		return err
	}
	principal, err := n.s.Principal(ctx)
	if err != nil {
		return err
	}
	var e dynamo.Expr
	err = n.s.transact(ctx, []types.TransactWriteItem{
		{Delete: &types.Delete{TableName: aws.String(n.s.table), Key: keyItem(schema.ResourceConfigKey(n.ID, resource)),
			ConditionExpression: aws.String(exists(&e)), ExpressionAttributeNames: e.Names()}},
		{Update: n.resourcesUpdate("DELETE", resource)},
	})
	n.evictConfig()
	if codes, ok := dynamo.CancelReasons(err); ok && failedCondition(codes, 0) {
		return fmt.Errorf("defaults of resource %q: %w", resource, limits.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("delete defaults of resource %q: %w", resource, err)
	}
	if err := n.audit(ctx, principal, ActionLimitsDeleted, ResourceAuditID(resource), resource, nil); err != nil {
		return fmt.Errorf("delete defaults of resource %q: %w", resource, err)
	}
	return nil
}

// ListResources lists the resources that have defaults, sorted.
func (n *NS) ListResources(ctx context.Context) ([]string, error) {
	it, err := n.s.getItem(ctx, schema.ResourcesRegistryKey(n.ID), true)
	if err != nil {
		return nil, fmt.Errorf("list resources: %w", err)
	}
	out := []string{}
	if ss, ok := it[attrResources].(*types.AttributeValueMemberSS); ok {
		out = append(out, ss.Value...)
	}
	slices.Sort(out)
	return out, nil
}

// SystemDefaults is the namespace-wide last level of the hierarchy.
type SystemDefaults struct {
	Limits []limits.Limit `json:"limits"`
	// OnUnavailable is "" when not set (the limiter then blocks).
	OnUnavailable limits.OnUnavailable `json:"on_unavailable,omitempty"`
}

// SetSystemDefaults replaces the system limits (when ls is non-empty) and
// sets on_unavailable (when on is not ""); what is not given keeps its
// stored value, and no other attribute of the item is touched. At least one
// of the two is required.
func (n *NS) SetSystemDefaults(ctx context.Context, ls []limits.Limit, on limits.OnUnavailable) error {
	if len(ls) == 0 && on == "" {
		return limits.Invalid("limits", "[]", "give limits, on_unavailable or both")
	}
	if len(ls) > 0 {
		if err := limits.ValidateSet(ls); err != nil {
			return err
		}
	}
	if on != "" {
		if _, err := limits.ParseOnUnavailable(string(on)); err != nil {
			return err
		}
	}
	principal, err := n.s.Principal(ctx)
	if err != nil {
		return err
	}
	fail := func(err error) error { return fmt.Errorf("set system defaults: %w", err) }
	k := schema.SystemConfigKey(n.ID)
	var stored SystemDefaults
	for attempt := 0; ; attempt++ {
		if attempt == retryAttempts {
			return fail(errors.New("config changed concurrently too often"))
		}
		cur, err := n.s.getItem(ctx, k, true)
		if err != nil {
			return fail(err)
		}
		// Optimistic concurrency on config_version: the stale l_* attributes
		// removed here are exactly those of the version read.
		var e dynamo.Expr
		sets := []string{
			e.Name(schema.GSI4PK) + " = " + e.Value(dynamo.S(schema.NamespaceGSI4PK(n.ID))),
			e.Name(schema.GSI4SK) + " = " + e.Value(dynamo.S(schema.GSI4SKFor(k))),
		}
		var removes []string
		stored = SystemDefaults{Limits: decodeLimits(cur), OnUnavailable: limits.OnUnavailable(dynamo.GetS(cur, attrOnUnavailable))}
		if len(ls) > 0 {
			fresh := dynamo.Item{}
			putLimits(fresh, ls)
			for _, attr := range limitAttrs(fresh) {
				sets = append(sets, e.Name(attr)+" = "+e.Value(fresh[attr]))
			}
			for _, attr := range limitAttrs(cur) {
				if _, keep := fresh[attr]; !keep {
					removes = append(removes, e.Name(attr))
				}
			}
			stored.Limits = slices.Clone(ls)
			sortLimits(stored.Limits)
		}
		if on != "" {
			sets = append(sets, e.Name(attrOnUnavailable)+" = "+e.Value(dynamo.S(string(on))))
			stored.OnUnavailable = on
		}
		version, hasVersion := dynamo.GetN(cur, attrConfigVersion)
		sets = append(sets, e.Name(attrConfigVersion)+" = "+e.Num(version+1))
		var cond string
		if cur == nil {
			cond = notExists(&e)
		} else if hasVersion {
			cond = e.Name(attrConfigVersion) + " = " + e.Num(version)
		} else {
			cond = "attribute_not_exists(" + e.Name(attrConfigVersion) + ")"
		}
		upd := "SET " + strings.Join(sets, ", ")
		if len(removes) > 0 {
			upd += " REMOVE " + strings.Join(removes, ", ")
		}
		err = n.s.transact(ctx, []types.TransactWriteItem{
			{Update: &types.Update{
				TableName: aws.String(n.s.table), Key: keyItem(k),
				UpdateExpression: aws.String(upd), ConditionExpression: aws.String(cond),
				ExpressionAttributeNames: e.Names(), ExpressionAttributeValues: e.Values(),
			}},
			n.seqBump(),
		})
		if err == nil {
			break
		}
		if codes, ok := dynamo.CancelReasons(err); !ok || !failedCondition(codes, 0) {
			return fail(err)
		}
	}
	n.evictConfig()
	details := map[string]any{"limits": limitDetails(stored.Limits), "on_unavailable": string(stored.OnUnavailable)}
	if err := n.audit(ctx, principal, ActionLimitsSet, SystemAuditID, "", details); err != nil {
		return fail(err)
	}
	return nil
}

// GetSystemDefaults reads the system limits and on_unavailable;
// limits.ErrNotFound when neither is stored.
func (n *NS) GetSystemDefaults(ctx context.Context) (SystemDefaults, error) {
	it, err := n.s.getItem(ctx, schema.SystemConfigKey(n.ID), true)
	if err != nil {
		return SystemDefaults{}, fmt.Errorf("get system defaults: %w", err)
	}
	d := SystemDefaults{Limits: decodeLimits(it), OnUnavailable: limits.OnUnavailable(dynamo.GetS(it, attrOnUnavailable))}
	if len(d.Limits) == 0 && d.OnUnavailable == "" {
		return SystemDefaults{}, fmt.Errorf("system defaults: %w", limits.ErrNotFound)
	}
	return d, nil
}

// DeleteSystemDefaults deletes the system config item.
func (n *NS) DeleteSystemDefaults(ctx context.Context) error {
	principal, err := n.s.Principal(ctx)
	if err != nil {
		return err
	}
	fail := func(err error) error { return fmt.Errorf("delete system defaults: %w", err) }
	k := schema.SystemConfigKey(n.ID)
	var old dynamo.Item
	for attempt := 0; ; attempt++ {
		if attempt == retryAttempts {
			return fail(errors.New("config changed concurrently too often"))
		}
		if old, err = n.s.getItem(ctx, k, true); err != nil {
			return fail(err)
		}
		if old == nil {
			n.evictConfig()
			return fmt.Errorf("system defaults: %w", limits.ErrNotFound)
		}
		// Delete exactly the version read (its limits go into the audit
		// event), raising the config version with it.
		var e dynamo.Expr
		cond := exists(&e)
		if v, ok := dynamo.GetN(old, attrConfigVersion); ok {
			cond += " AND " + e.Name(attrConfigVersion) + " = " + e.Num(v)
		} else {
			cond += " AND attribute_not_exists(" + e.Name(attrConfigVersion) + ")"
		}
		err = n.s.transact(ctx, []types.TransactWriteItem{
			{Delete: &types.Delete{TableName: aws.String(n.s.table), Key: keyItem(k),
				ConditionExpression: aws.String(cond), ExpressionAttributeNames: e.Names(), ExpressionAttributeValues: e.Values()}},
			n.seqBump(),
		})
		if err == nil {
			break
		}
		if codes, ok := dynamo.CancelReasons(err); !ok || !failedCondition(codes, 0) {
			n.evictConfig()
			return fail(err)
		}
	}
	n.evictConfig()
	var names []string
	for _, l := range decodeLimits(old) {
		names = append(names, l.Name)
	}
	details := map[string]any{"limits": names, "on_unavailable": dynamo.GetS(old, attrOnUnavailable)}
	if err := n.audit(ctx, principal, ActionLimitsDeleted, SystemAuditID, "", details); err != nil {
		return fail(err)
	}
	return nil
}
