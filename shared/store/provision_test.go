package store

import (
	"context"
	"slices"
	"sync"
	"testing"

	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/smithy-go/middleware"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zeroae/zae-limiter-go/shared/ddblocal/ddbtest"
	"github.com/zeroae/zae-limiter-go/shared/limits"
)

// actionRecorder records the IAM action of every request a client sends,
// transactions as the item actions inside them.
type actionRecorder struct {
	mu      sync.Mutex
	actions map[string]bool
}

func (a *actionRecorder) install(stack *middleware.Stack) error {
	return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("recordActions",
		func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			var acts []string
			if tx, ok := in.Parameters.(*dynamodb.TransactWriteItemsInput); ok {
				for _, it := range tx.TransactItems {
					switch {
					case it.Put != nil:
						acts = append(acts, "dynamodb:PutItem")
					case it.Update != nil:
						acts = append(acts, "dynamodb:UpdateItem")
					case it.Delete != nil:
						acts = append(acts, "dynamodb:DeleteItem")
					case it.ConditionCheck != nil:
						acts = append(acts, "dynamodb:ConditionCheckItem")
					}
				}
			} else {
				acts = append(acts, "dynamodb:"+awsmiddleware.GetOperationName(ctx))
			}
			a.mu.Lock()
			for _, x := range acts {
				a.actions[x] = true
			}
			a.mu.Unlock()
			return next.HandleInitialize(ctx, in)
		}), middleware.After)
}

func (a *actionRecorder) list() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []string
	for x := range a.actions {
		out = append(out, x)
	}
	slices.Sort(out)
	return out
}

// TestProvisionCalls: every store call the provisioner makes, at every
// level and in both directions (create, replace, delete, delete of what is
// gone), reaches DynamoDB only through the actions of ProvisionCalls.
func TestProvisionCalls(t *testing.T) {
	ctx := context.Background()
	rec := &actionRecorder{actions: map[string]bool{}}
	cfg := ddbtest.Config(t)
	db := dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) {
		o.DisableValidateResponseChecksum = true
		o.APIOptions = append(o.APIOptions, rec.install)
	})
	st := New(db, Options{Table: ddbtest.NewTable(t)})
	_, err := st.RegisterNamespace(ctx, "tenant")
	require.NoError(t, err)
	ns, err := st.Namespace(ctx, "tenant")
	require.NoError(t, err)
	ls := []limits.Limit{limits.PerMinute("rpm", 10, 0)}
	for range 2 { // create, then replace
		require.NoError(t, ns.SetSystemDefaults(ctx, ls, limits.Allow))
		require.NoError(t, ns.SetResourceDefaults(ctx, "gpt-4", ls))
		require.NoError(t, ns.SetLimits(ctx, "u1", "gpt-4", ls))
		require.NoError(t, ns.SetLimits(ctx, "u1", limits.DefaultResource, ls))
	}
	got, err := ns.ReadConfigs(ctx, []ConfigRef{{}, {Resource: "gpt-4"}, {Entity: "u1", Resource: "gpt-4"},
		{Entity: "u1", Resource: limits.DefaultResource}, {Entity: "u2", Resource: "gpt-4"}})
	require.NoError(t, err)
	assert.Equal(t, map[ConfigRef]StoredConfig{
		{}:                                {Limits: ls, OnUnavailable: limits.Allow},
		{Resource: "gpt-4"}:               {Limits: ls},
		{Entity: "u1", Resource: "gpt-4"}: {Limits: ls},
		{Entity: "u1", Resource: limits.DefaultResource}: {Limits: ls},
	}, got, "u2 has no config: absent")
	for range 2 { // delete, then delete what is gone
		_ = ns.DeleteSystemDefaults(ctx)
		_ = ns.DeleteResourceDefaults(ctx, "gpt-4")
		_ = ns.DeleteLimits(ctx, "u1", "gpt-4")
	}
	got, err = ns.ReadConfigs(ctx, []ConfigRef{{}, {Resource: "gpt-4"}, {Entity: "u1", Resource: "gpt-4"}})
	require.NoError(t, err)
	assert.Empty(t, got)

	assert.Equal(t, ProvisionCalls, rec.list(), "the provisioner's store calls reach DynamoDB through other actions than ProvisionCalls")

	_, err = ns.ReadConfigs(ctx, []ConfigRef{{Entity: "bad#id", Resource: "r"}})
	assert.ErrorIs(t, err, limits.ErrInvalid)
}
