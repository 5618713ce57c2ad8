// Package lambdarun runs an unmodified Lambda `bootstrap` binary (runtime
// provided.al2023, e.g. built with aws-lambda-go and -tags lambda.norpc)
// locally behind a small Lambda Runtime API server, so tests and `make
// invoke` exercise the same binary that is deployed, including its
// initialisation, environment and runtime loop.
//
// Start execs Options.Instances copies of the binary (default 1), each an
// "execution environment" with its own Runtime API endpoint on 127.0.0.1
// (AWS_LAMBDA_RUNTIME_API) and the environment Lambda would give it
// (AWS_LAMBDA_FUNCTION_NAME, _VERSION, _MEMORY_SIZE, AWS_REGION,
// LAMBDA_TASK_ROOT, ...; see Options.Env). It returns once every instance has
// asked for its first invocation; the time from process start to that first
// request is the cold init time (Runner.Init).
//
// Invoke queues a payload; the next idle instance takes it, and Invoke returns
// the response payload or the function's error (Result.Err) with the time the
// function took. Invocations beyond the number of idle instances wait in the
// queue. The server implements the four endpoints a runtime uses:
//
//	GET  /2018-06-01/runtime/invocation/next
//	POST /2018-06-01/runtime/invocation/{id}/response
//	POST /2018-06-01/runtime/invocation/{id}/error
//	POST /2018-06-01/runtime/init/error
//
// As in Lambda: an invocation that runs past Options.Timeout fails with
// Sandbox.Timedout and its instance is killed; an instance whose process
// exits (a panic, os.Exit) fails its in-flight invocation with
// Runtime.ExitError; either way a fresh process replaces it (a new cold
// start). An instance that fails its init (an error posted to
// /runtime/init/error, or an exit before the first /next) makes Start return
// an *InitError. Close stops every process (SIGTERM, then SIGKILL).
//
// Differences from Lambda worth knowing: instances start eagerly, not on the
// first invocation; there is no extensions API; the function's stdout and
// stderr go to Options.Output unchanged.
package lambdarun
