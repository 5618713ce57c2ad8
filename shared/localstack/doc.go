// Package localstack runs the whole product on one machine, driven by the
// SAM template: DynamoDB Local, an S3 server (versitygw), and a long-running
// daemon that hosts the one endpoint (package router), the Lambda Runtime
// API runner with each function of the template (package lambdarun), the
// DynamoDB stream mappings (package streams), the schedules (package
// schedule), the Lambda Invoke API (package invokeapi) and each function's
// Function URL (package fnurl).
//
// `zae-limiter local up` prepares what the daemon needs in the foreground
// (installs DynamoDB Local and versitygw when missing, builds the
// functions' bootstraps in a checkout), writes the stack's Config and
// starts the daemon detached (Up); the daemon (Run) starts or adopts the
// servers, records every process in the stack's state file as soon as it
// runs, and reports ready. Everything lives in one directory per stack
// (StackDir): config.json, state.json, the logs, the functions' logs, the
// on-failure destinations, the stream checkpoints and the S3 data. Down
// stops whatever the state file names, whether the daemon is alive or not.
//
// Local-only tooling: no Lambda imports it.
package localstack
