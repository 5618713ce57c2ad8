// Package stream reads the records of the table's DynamoDB stream as the
// stream functions (aggregator, refill) receive them from an event source
// mapping: events.DynamoDBEvent batches in Lambda's JSON.
//
// It does three things every stream reader needs, and nothing specific to
// one of them:
//
//   - Decoding. Event unmarshals a batch record by record, so one record
//     that does not decode is kept with its error (and its sequence number
//     when that could be read) instead of failing the whole batch. Decode
//     turns a record into a Record: its images as dynamo.Item (the SDK's
//     attribute values, the type every item codec of the project reads), its
//     kind, its position and its time. Item images are never read here by
//     attribute name: the package owning an item decodes it (for bucket
//     shards, shard.Decode).
//   - Classification. Kind says what happened to the item: Insert, Modify,
//     Remove (a delete by a caller) or Expire (a delete by DynamoDB's time
//     to live). DynamoDB marks a TTL delete with eventName REMOVE and
//     userIdentity {type: Service, principalId: dynamodb.amazonaws.com};
//     DynamoDB Local sends eventName "UNKNOWN_TO_SDK_VERSION" without
//     userIdentity and without a new image instead, and both are Expire.
//   - Ordering. The records of one item arrive in order within a stream
//     shard, and a child shard's records follow its parent's. Position is a
//     record's sequence number (21 to 40 digits) left-padded with zeros to
//     40, so positions compare as strings, in DynamoDB condition
//     expressions too; Stream names the stream a position belongs to (the
//     label that ends the stream ARN), since positions of two streams of a
//     table (after the stream was turned off and on) are not comparable.
//
// Failures collects the records a handler could not process and renders
// them as events.DynamoDBEventResponse batch item failures: the mapping
// retries from the lowest one, so a handler reports every record it did
// not finish and never drops one silently.
//
// The package imports aws-lambda-go's events types; the acquire function
// never imports it. Package streamtest reads a table's stream from DynamoDB
// Local into the same event shape for tests.
package stream
