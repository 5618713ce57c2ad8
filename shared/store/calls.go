package store

// AcquireCalls are the DynamoDB actions the store issues on an acquire's
// behalf: resolving the namespace and reading an entity (GetItem, cached),
// resolving limits with the config version (TransactGetItems, which IAM
// authorizes as GetItem on each item; cached) and the on_unavailable
// setting (GetItem, cached). With limiter.Calls they are the acquire-only
// IAM policy; a test keeps template.yaml equal to the union.
var AcquireCalls = []string{"dynamodb:GetItem"}
