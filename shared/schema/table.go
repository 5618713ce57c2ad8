package schema

import (
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Version is the schema version written to the version record. Major
// versions are incompatible with each other.
const Version = "1.0.0"

// Index describes one global secondary index.
type Index struct {
	Name       string
	PK, SK     string
	Projection types.ProjectionType
}

// Indexes lists every GSI of the table, in order.
var Indexes = []Index{
	{GSI1, GSI1PK, GSI1SK, types.ProjectionTypeAll},
	{GSI2, GSI2PK, GSI2SK, types.ProjectionTypeAll},
	{GSI3, GSI3PK, GSI3SK, types.ProjectionTypeKeysOnly},
	{GSI4, GSI4PK, GSI4SK, types.ProjectionTypeKeysOnly},
}

// KeyAttributes are every attribute used in a table or index key (all S).
func KeyAttributes() []string {
	out := []string{PK, SK}
	for _, ix := range Indexes {
		out = append(out, ix.PK, ix.SK)
	}
	return out
}

// StreamViewType of the table's stream (the aggregator diffs images).
const StreamViewType = types.StreamViewTypeNewAndOldImages

// CreateTableInput is the table definition used by local tables and tests;
// template.yaml declares the same table (a test keeps them equal). TTL is a
// separate call: see TTLInput.
func CreateTableInput(name string) *dynamodb.CreateTableInput {
	in := &dynamodb.CreateTableInput{
		TableName:   aws.String(name),
		BillingMode: types.BillingModePayPerRequest,
		KeySchema: []types.KeySchemaElement{
			{AttributeName: aws.String(PK), KeyType: types.KeyTypeHash},
			{AttributeName: aws.String(SK), KeyType: types.KeyTypeRange},
		},
		StreamSpecification: &types.StreamSpecification{
			StreamEnabled:  aws.Bool(true),
			StreamViewType: StreamViewType,
		},
	}
	for _, a := range KeyAttributes() {
		in.AttributeDefinitions = append(in.AttributeDefinitions, types.AttributeDefinition{
			AttributeName: aws.String(a), AttributeType: types.ScalarAttributeTypeS,
		})
	}
	for _, ix := range Indexes {
		in.GlobalSecondaryIndexes = append(in.GlobalSecondaryIndexes, types.GlobalSecondaryIndex{
			IndexName: aws.String(ix.Name),
			KeySchema: []types.KeySchemaElement{
				{AttributeName: aws.String(ix.PK), KeyType: types.KeyTypeHash},
				{AttributeName: aws.String(ix.SK), KeyType: types.KeyTypeRange},
			},
			Projection: &types.Projection{ProjectionType: ix.Projection},
		})
	}
	return in
}

// TTLInput enables TTL on the table's ttl attribute.
func TTLInput(name string) *dynamodb.UpdateTimeToLiveInput {
	return &dynamodb.UpdateTimeToLiveInput{
		TableName: aws.String(name),
		TimeToLiveSpecification: &types.TimeToLiveSpecification{
			AttributeName: aws.String(TTL), Enabled: aws.Bool(true),
		},
	}
}
