package store

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/zeroae/zae-limiter-go/shared/dynamo"
	"github.com/zeroae/zae-limiter-go/shared/schema"
)

// The config version: a counter per namespace, raised in the same
// transaction as every change of limits at any level (set or delete; entity,
// resource or system). Limits are resolved together with it (one snapshot,
// see readSnapshot), and bucket items record the version their parameters
// came from: a process holding an older config learns from the first bucket
// written with a newer one that its cache is stale, instead of rewriting the
// bucket back to old limits until its cache expires (ADR-004).
//
// It lives on the namespace's resource registry item ({ns}/SYSTEM#
// #RESOURCES), which no config deletion removes.
const attrConfigSeq = "cfg_seq"

// seqAdd is the clause (and its aliases) raising the counter, for an
// update of the resource registry item.
func seqAdd(u *dynamo.Update) { u.Add(attrConfigSeq, 1) }

// seqBump is the transaction item raising the counter alone.
func (n *NS) seqBump() types.TransactWriteItem {
	k := schema.ResourcesRegistryKey(n.ID)
	u := &dynamo.Update{}
	seqAdd(u)
	u.Set(schema.GSI4PK, schema.NamespaceGSI4PK(n.ID))
	u.Set(schema.GSI4SK, schema.GSI4SKFor(k))
	return types.TransactWriteItem{Update: &types.Update{
		TableName: aws.String(n.s.table), Key: keyItem(k), UpdateExpression: aws.String(u.Expression()),
		ExpressionAttributeNames: u.Names(), ExpressionAttributeValues: u.Values(),
	}}
}

// ConfigVersion reads the namespace's config version (strongly consistent).
func (n *NS) ConfigVersion(ctx context.Context) (int64, error) {
	it, err := n.s.getItem(ctx, schema.ResourcesRegistryKey(n.ID), true)
	if err != nil {
		return 0, fmt.Errorf("read config version: %w", err)
	}
	v, _ := dynamo.GetN(it, attrConfigSeq)
	return v, nil
}

// readSnapshot reads keys and the config version in one transaction, so the
// items are exactly those of that version (serializable with the writes
// that raise it). Absent items are missing from the map.
func (n *NS) readSnapshot(ctx context.Context, keys []schema.Key) (map[schema.Key]dynamo.Item, int64, error) {
	all := append([]schema.Key{schema.ResourcesRegistryKey(n.ID)}, keys...)
	in := &dynamodb.TransactGetItemsInput{}
	for _, k := range all {
		in.TransactItems = append(in.TransactItems, types.TransactGetItem{Get: &types.Get{
			TableName: aws.String(n.s.table), Key: keyItem(k),
		}})
	}
	for attempt := 0; ; attempt++ {
		out, err := n.s.db.TransactGetItems(ctx, in)
		if err != nil {
			// A read racing a config write is cancelled: read again.
			if _, cancelled := dynamo.CancelReasons(err); cancelled && attempt+1 < retryAttempts {
				if err := sleep(ctx, attempt); err != nil {
					return nil, 0, err
				}
				continue
			}
			return nil, 0, err
		}
		found := make(map[schema.Key]dynamo.Item, len(keys))
		var version int64
		for i, r := range out.Responses {
			if len(r.Item) == 0 {
				continue
			}
			if i == 0 {
				version, _ = dynamo.GetN(r.Item, attrConfigSeq)
				continue
			}
			found[all[i]] = r.Item
		}
		return found, version, nil
	}
}
