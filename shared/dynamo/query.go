package dynamo

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
)

// Querier is a client that can Query (*dynamodb.Client is one).
type Querier interface {
	Query(ctx context.Context, in *dynamodb.QueryInput, optFns ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
}

// QueryAll runs in page by page until the end, calling fn for every item;
// it stops at the first error of a page or of fn.
func QueryAll(ctx context.Context, db Querier, in *dynamodb.QueryInput, fn func(Item) error) error {
	for {
		out, err := db.Query(ctx, in)
		if err != nil {
			return err
		}
		for _, it := range out.Items {
			if err := fn(it); err != nil {
				return err
			}
		}
		if len(out.LastEvaluatedKey) == 0 {
			return nil
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
}
