// Package limits is the vocabulary shared by the store, the limiter, the CLI
// and the HTTP API: limits, validation of ids and names, the error sentinels
// and the typed denial. It imports only the standard library.
package limits
