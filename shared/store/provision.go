package store

import (
	"context"
	"fmt"

	"github.com/zeroae/zae-limiter-go/shared/dynamo"
	"github.com/zeroae/zae-limiter-go/shared/limits"
	"github.com/zeroae/zae-limiter-go/shared/schema"
)

// ProvisionCalls are the DynamoDB actions (as IAM names) of what the limits
// provisioner asks of the store: resolving and registering a namespace
// (Namespace, RegisterNamespace), setting and deleting limits at every level
// with their registries and audit events (SetSystemDefaults,
// DeleteSystemDefaults, SetResourceDefaults, DeleteResourceDefaults,
// SetLimits, DeleteLimits) and ReadConfigs. Transactions are listed as the
// item actions inside them. TestProvisionCalls runs each method and compares
// what reached DynamoDB with this list (sorted); the provisioner's IAM role is built
// from it (tests/template_test.go).
var ProvisionCalls = []string{
	"dynamodb:BatchGetItem", "dynamodb:DeleteItem", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem",
}

// ConfigRef names one config item of a namespace: the system defaults
// (both fields ""), a resource's defaults (Entity ""), or an entity's
// limits for a resource (limits.DefaultResource for every resource).
type ConfigRef struct {
	Entity, Resource string
}

// StoredConfig is one config item's content as stored.
type StoredConfig struct {
	// Limits sorted by name; empty when the item holds none.
	Limits []limits.Limit
	// OnUnavailable is the system item's policy ("" when not set).
	OnUnavailable limits.OnUnavailable
}

func (n *NS) configKey(r ConfigRef) (schema.Key, error) {
	switch {
	case r.Entity == "" && r.Resource == "":
		return schema.SystemConfigKey(n.ID), nil
	case r.Entity == "":
		return schema.ResourceConfigKey(n.ID, r.Resource), limits.ValidateResource(r.Resource)
	}
	if err := limits.ValidateEntityID(r.Entity); err != nil {
		return schema.Key{}, err
	}
	return schema.EntityConfigKey(n.ID, r.Entity, r.Resource), limits.ValidateConfigResource(r.Resource)
}

// ReadConfigs reads the config items refs name, consistently, 100 keys per
// request, without the caches. Items that do not exist are absent from the
// result.
func (n *NS) ReadConfigs(ctx context.Context, refs []ConfigRef) (map[ConfigRef]StoredConfig, error) {
	keys := make([]schema.Key, 0, len(refs))
	byKey := make(map[schema.Key]ConfigRef, len(refs))
	for _, r := range refs {
		k, err := n.configKey(r)
		if err != nil {
			return nil, err
		}
		if _, dup := byKey[k]; !dup {
			keys = append(keys, k)
			byKey[k] = r
		}
	}
	found, err := n.s.batchGet(ctx, keys, true)
	if err != nil {
		return nil, fmt.Errorf("read %d config items: %w", len(keys), err)
	}
	out := make(map[ConfigRef]StoredConfig, len(found))
	for k, it := range found {
		out[byKey[k]] = StoredConfig{
			Limits:        decodeLimits(it),
			OnUnavailable: limits.OnUnavailable(dynamo.GetS(it, attrOnUnavailable)),
		}
	}
	return out, nil
}
