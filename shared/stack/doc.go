// Package stack deploys, inspects and deletes a zae-limiter stack: the
// programmatic creation and cleanup of the deployment guide, used by the
// CLI's deploy, status, list, delete, upgrade and check. See Example for
// the whole life of a stack (New, Ensure, Delete), compiled with the tests.
//
// One template, two doors: template.yaml is the AWS SAM template `sam
// deploy` reads; this package deploys its plain CloudFormation form,
// translated at build time (`make template` runs the SAM translator,
// scripts/sam-translate.py, into template.cfn.json, embedded here) so that
// no Python is needed at run time. A test fails when the two drift apart.
// The plain form takes each function's zip from CodeBucket and
// <Function>CodeKey parameters; Ensure uploads the zips (linux/arm64
// bootstrap binaries, see Code) to an artifacts bucket and sets them.
//
// Ensure creates or updates the stack through a change set, says so plainly
// when nothing changed, reports the stack's events with the elapsed time
// while it waits, and names the failing resource and its reason when the
// stack fails. Parameters are declarative: one not given takes the
// template's default (except state such as LeaseKeysRevision); upgrades
// keep every deployed value (Options.KeepParameters). Every value is
// checked against the template, and the names it makes (roles, policies,
// functions) against AWS's limits, before any AWS call.
package stack
