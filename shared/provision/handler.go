package provision

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/aws/aws-lambda-go/cfn"
	"github.com/aws/aws-lambda-go/lambda/messages"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/zeroae/zae-limiter-go/shared/limits"
	"github.com/zeroae/zae-limiter-go/shared/manifest"
)

// Actions of the CLI event.
const (
	EventPlan  = "plan"
	EventApply = "apply"
	EventDiff  = "diff"
)

// DefaultNamespace is the namespace of a manifest or custom resource that
// names none.
const DefaultNamespace = "default"

// Event is the CLI event: what `zae-limiter limits plan|apply|diff` sends
// the provisioner function (Lambda Invoke, RequestResponse). Unknown fields
// are rejected.
type Event struct {
	// Action is plan (the default), apply or diff.
	Action string `json:"action"`
	// Manifest is the manifest document (manifest.Manifest's JSON, or any
	// document the file format accepts); its namespace, else "default".
	Manifest *manifest.Manifest `json:"manifest"`
	// Principal is the audit principal as the caller names it (the function
	// cannot verify it; CloudTrail has the real invoker). Empty: the
	// function's own ARN.
	Principal string `json:"principal,omitempty"`
}

// Response answers a CLI event: Status is planned, applied or diffed;
// Errors lists the changes that did not land.
type Response struct {
	Status string `json:"status"`
	Result
}

// Function error types (the errorType of a failed invocation).
const (
	ErrorInvalidEvent    = "InvalidEvent"    // bad JSON, unknown field or action, bad principal
	ErrorInvalidManifest = "InvalidManifest" // the manifest's problems, all listed in the message
	ErrorBusy            = "Busy"            // another apply holds the namespace
	ErrorFailed          = "Failed"          // DynamoDB failed before any change
)

// Handler serves the provisioner function: the CLI event and the
// CloudFormation custom resource Custom::ZaeLimiterLimits.
type Handler struct {
	Engine *Engine
	// Log receives one record per invocation and one per failed change.
	Log *slog.Logger
	// FunctionARN is the default principal of CLI events (the invoked ARN).
	FunctionARN func(context.Context) string
}

// Handle dispatches one invocation: an event with a RequestType is
// CloudFormation's, anything else the CLI's. Errors are Lambda function
// errors (messages.InvokeResponse_Error, see the Error* types).
func (h *Handler) Handle(ctx context.Context, payload json.RawMessage) (any, error) {
	var probe struct {
		RequestType *string `json:"RequestType"`
	}
	if err := json.Unmarshal(payload, &probe); err != nil {
		return nil, functionError(ErrorInvalidEvent, fmt.Errorf("the event is not a JSON object: %w", err))
	}
	if probe.RequestType != nil {
		var ev cfn.Event
		if err := json.Unmarshal(payload, &ev); err != nil {
			return nil, functionError(ErrorInvalidEvent, err)
		}
		reason, err := cfn.LambdaWrap(h.customResource)(ctx, ev)
		if err != nil {
			// The answer could not reach CloudFormation: fail the invocation
			// so the log shows it (CloudFormation times the resource out).
			h.Log.ErrorContext(ctx, "custom resource response not delivered", "error", err.Error())
			return nil, functionError(ErrorFailed, err)
		}
		return reason, nil
	}
	return h.cli(ctx, payload)
}

func functionError(kind string, err error) error {
	return messages.InvokeResponse_Error{Type: kind, Message: err.Error()}
}

func (h *Handler) cli(ctx context.Context, payload []byte) (any, error) {
	var ev Event
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&ev); err != nil {
		var me *manifest.Error
		if errors.As(err, &me) {
			return nil, functionError(ErrorInvalidManifest, errors.New(problems(me)))
		}
		return nil, functionError(ErrorInvalidEvent, fmt.Errorf("bad CLI event: %w", err))
	}
	if ev.Manifest == nil {
		return nil, functionError(ErrorInvalidEvent, errors.New("bad CLI event: manifest is required"))
	}
	if ev.Action == "" {
		ev.Action = EventPlan
	}
	ns := ev.Manifest.Namespace
	if ns == "" {
		ns = DefaultNamespace
	}
	principal := ev.Principal
	if principal == "" && h.FunctionARN != nil {
		principal = h.FunctionARN(ctx)
	}
	if principal != "" {
		if err := limits.ValidatePrincipal(principal); err != nil {
			return nil, functionError(ErrorInvalidEvent, err)
		}
	}
	ops := map[string]struct {
		run    func(context.Context, Request) (*Result, error)
		status string
	}{
		EventPlan:  {h.Engine.Plan, "planned"},
		EventApply: {h.Engine.Apply, "applied"},
		EventDiff:  {h.Engine.Diff, "diffed"},
	}
	op, ok := ops[ev.Action]
	if !ok {
		return nil, functionError(ErrorInvalidEvent, fmt.Errorf("bad CLI event: unknown action %q; want plan, apply or diff", ev.Action))
	}
	req := Request{Manifest: ev.Manifest, Namespace: ns, Principal: principal}
	if ev.Action == EventApply {
		req.Progress = h.progress(ctx)
	}
	res, err := op.run(ctx, req)
	if err != nil {
		var busy *BusyError
		if errors.As(err, &busy) {
			return nil, functionError(ErrorBusy, err)
		}
		return nil, functionError(ErrorFailed, err)
	}
	h.logResult(ctx, ev.Action, res)
	return Response{Status: op.status, Result: *res}, nil
}

// progress logs an apply's progress every 500 changes.
func (h *Handler) progress(ctx context.Context) func(done, total int) {
	return func(done, total int) {
		if done%500 == 0 && done < total {
			h.Log.InfoContext(ctx, "applying", "done", done, "total", total)
		}
	}
}

func (h *Handler) logResult(ctx context.Context, action string, res *Result) {
	for _, e := range res.Errors {
		h.Log.WarnContext(ctx, "change failed", "namespace", res.Namespace, "error", e)
	}
	h.Log.InfoContext(ctx, action, "namespace", res.Namespace, "changes", len(res.Changes),
		"created", res.Created, "updated", res.Updated, "deleted", res.Deleted, "errors", len(res.Errors))
}

// problems lists every problem of a manifest, one per line.
func problems(me *manifest.Error) string {
	lines := make([]string, len(me.Problems))
	for i, p := range me.Problems {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// PhysicalID is the custom resource's physical id: stable for a table and
// namespace, so changing either replaces the resource (CloudFormation then
// deletes the old one, emptying the old namespace's managed limits).
func PhysicalID(table, namespace string) string { return table + "/" + namespace + "/limits" }

// maxReason bounds the Reason sent to CloudFormation (its response is
// limited to 4 KB).
const maxReason = 2000

// customResource applies Custom::ZaeLimiterLimits: Create and Update apply
// the properties' manifest, Delete applies an empty one. Partial failures
// fail the resource (so CloudFormation rolls back), naming the first
// changes that failed.
func (h *Handler) customResource(ctx context.Context, ev cfn.Event) (string, map[string]any, error) {
	props := ev.ResourceProperties
	table := stringProp(props, manifest.PropTableName, h.Engine.Table)
	ns := stringProp(props, manifest.PropNamespace, DefaultNamespace)
	id := PhysicalID(table, ns)
	log := h.Log.With("request_type", string(ev.RequestType), "logical_id", ev.LogicalResourceID, "physical_id", id)
	req := Request{Namespace: ns, Principal: ev.StackID}
	if limits.ValidatePrincipal(req.Principal) != nil {
		req.Principal = ""
	}
	if ev.RequestType == cfn.RequestDelete {
		if ev.PhysicalResourceID != id || table != h.Engine.Table {
			// A create that failed before applying anything (its physical
			// id is the request id), or one this provisioner refused: there
			// is nothing to undo, and failing would block the stack's delete.
			log.InfoContext(ctx, "delete of a resource never applied here: nothing to do")
			return ev.PhysicalResourceID, nil, nil
		}
		req.Manifest = &manifest.Manifest{Namespace: ns}
		res, err := h.Engine.Apply(ctx, req)
		var rnf *types.ResourceNotFoundException
		if errors.As(err, &rnf) {
			log.InfoContext(ctx, "the table is gone: nothing to delete")
			return id, nil, nil
		}
		return h.answer(ctx, log, id, res, err)
	}
	if table != h.Engine.Table {
		return "", nil, fmt.Errorf("%s %q: this provisioner serves table %q; use the ServiceToken of that stack's provisioner (!ImportValue %s)",
			manifest.PropTableName, table, h.Engine.Table, manifest.ProvisionerExport(table))
	}
	if err := limits.ValidateNamespaceName(ns); err != nil {
		return "", nil, err
	}

	m, err := manifest.ParseCFN(props)
	if err != nil {
		return "", nil, err
	}
	m.Namespace = ns
	req.Manifest = m
	res, err := h.Engine.Apply(ctx, req)
	if err != nil && ev.RequestType == cfn.RequestCreate {
		// Nothing landed: no physical resource, so the rollback's Delete
		// (with the request id as physical id) leaves the namespace alone.
		log.ErrorContext(ctx, "apply failed", "error", err.Error())
		return "", nil, err
	}
	if ev.RequestType == cfn.RequestUpdate && ev.PhysicalResourceID != id && (err != nil || len(res.Errors) > 0) {
		// A failed move to another table or namespace: empty what landed in
		// the new one; the rollback re-applies the old properties to the old.
		undo, uerr := h.Engine.Apply(context.WithoutCancel(ctx), Request{Manifest: &manifest.Manifest{Namespace: ns}, Namespace: ns, Principal: req.Principal})
		if uerr != nil || len(undo.Errors) > 0 {
			log.ErrorContext(ctx, "could not undo a failed update in the new namespace", "error", fmt.Sprint(uerr, undo))
		}
		_, _, err = h.answer(ctx, log, id, res, err)
		return ev.PhysicalResourceID, nil, err
	}
	return h.answer(ctx, log, id, res, err)
}

// answer turns an apply's result into the custom resource's response: a
// small Data (counts only) and an error when anything failed.
func (h *Handler) answer(ctx context.Context, log *slog.Logger, id string, res *Result, err error) (string, map[string]any, error) {
	if err != nil {
		log.ErrorContext(ctx, "apply failed", "error", err.Error())
		return id, nil, err
	}
	h.logResult(ctx, "apply", res)
	data := map[string]any{
		"Changes": len(res.Changes), "Created": res.Created, "Updated": res.Updated, "Deleted": res.Deleted,
		"Errors": len(res.Errors),
	}
	if len(res.Errors) > 0 {
		reason := fmt.Sprintf("%d of %d changes failed: %s", len(res.Errors), len(res.Changes), strings.Join(res.Errors, "; "))
		if len(reason) > maxReason {
			reason = reason[:maxReason] + "... (see the function's log)"
		}
		return id, data, errors.New(reason)
	}
	return id, data, nil
}

func stringProp(props map[string]any, key, def string) string {
	if s, ok := props[key].(string); ok && s != "" {
		return s
	}
	return def
}
