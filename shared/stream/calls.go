package stream

// MappingCalls are the DynamoDB Streams actions an event source mapping
// makes with its function's role to read the table's stream (Lambda's
// documented permissions for a DynamoDB event source). The role of every
// stream function grants exactly these, on the table's stream (ListStreams
// has no resource: it is granted on "*"); tests/template_test.go checks it.
var MappingCalls = []string{"dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator", "dynamodb:ListStreams"}
