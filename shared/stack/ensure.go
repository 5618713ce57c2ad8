package stack

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation/types"

	"github.com/zeroae/zae-limiter-go/shared/limits"
	"github.com/zeroae/zae-limiter-go/shared/schema"
	"github.com/zeroae/zae-limiter-go/shared/store"
)

// Options say what Ensure deploys.
type Options struct {
	// Parameters are template parameter values by name (as `sam deploy
	// --parameter-overrides` takes them). One not given takes the
	// template's default, or keeps its deployed value when KeepParameters
	// is set (or it is stack state, such as LeaseKeysRevision).
	Parameters map[string]string
	// KeepParameters keeps the deployed value of every parameter not in
	// Parameters (an upgrade); otherwise deploy is declarative.
	KeepParameters bool
	// Tags are the stack's own tags, which CloudFormation copies to every
	// resource that takes tags. The discovery and version tags (Tag*) are
	// set by Ensure and may not be given. With KeepParameters, nil keeps
	// the deployed ones.
	Tags map[string]string
	// NoWait returns once the change set is executing: no events, and the
	// version record and default namespace wait for the next Ensure.
	NoWait bool
	// Code gives the functions' zips (required).
	Code Code
	// ArtifactsBucket is where the zips go; empty means this account and
	// region's zae-limiter-artifacts-<account>-<region>, created when
	// missing (zae-limiter-artifacts-<region> at a custom endpoint).
	ArtifactsBucket string
	// MaxTemplateBody is the largest template sent inline (CloudFormation
	// takes 51,200 bytes); a larger one is uploaded to the artifacts bucket.
	// 0 means 51,200.
	MaxTemplateBody int
}

// Tags Ensure sets on every stack (list discovers stacks by them).
const (
	TagManagedBy     = "ManagedBy"
	TagManagedByName = "zae-limiter"
	TagName          = "zae-limiter:name"
	TagType          = "zae-limiter:type"
	TagTypeLimiter   = "limiter"
	TagVersion       = "zae-limiter:version"
	TagSchemaVersion = "zae-limiter:schema-version"
	TagLambdaVersion = "zae-limiter:lambda-version"
)

// maxUserTags leaves room under CloudFormation's 50 tags for ours.
const maxUserTags = 50 - 6

// Result is what Ensure did.
type Result struct {
	// StackID is the stack's ARN.
	StackID string
	// Status is the stack's status at the end (CREATE_COMPLETE,
	// UPDATE_COMPLETE, or *_IN_PROGRESS with NoWait).
	Status string
	// Created: the stack is new. Changed: a change set was executed (false:
	// nothing to change).
	Created, Changed bool
	// Changes are the change set's resource changes (none when only
	// parameters changed).
	Changes []Change
	// Outputs and Parameters of the stack at the end.
	Outputs    map[string]string
	Parameters map[string]string
	// Elapsed is the whole call's duration.
	Elapsed time.Duration
}

// Change is one resource change of a change set.
type Change struct {
	Action, LogicalID, Type, Replacement string
}

// FailedError is a stack operation that failed: the first resource that
// failed, its reason and where the stack ended.
type FailedError struct {
	Stack, Operation, StackStatus string
	LogicalID, Type, Status       string
	Reason                        string
}

func (e *FailedError) Error() string {
	if e.LogicalID == "" {
		return fmt.Sprintf("%s of stack %s failed: %s (%s)", e.Operation, e.Stack, e.StackStatus, e.Reason)
	}
	return fmt.Sprintf("%s of stack %s failed: %s (%s) %s: %s; the stack is %s",
		e.Operation, e.Stack, e.LogicalID, e.Type, e.Status, e.Reason, e.StackStatus)
}

// Ensure makes the stack match opts: it creates it, updates it through a
// change set, or says "no changes". Then (unless NoWait) it writes the
// table's version record and registers the default namespace, as the CLI's
// deploy does.
func (s *Stack) Ensure(ctx context.Context, opts Options) (*Result, error) {
	start := s.c.Now()
	if opts.Code == nil {
		return nil, errors.New("stack: Options.Code is required (where the functions' zips come from)")
	}
	tags, err := s.tags(opts.Tags)
	if err != nil {
		return nil, err
	}
	cur, err := s.describe(ctx)
	if err != nil {
		return nil, err
	}
	if cur != nil && inProgress(cur.StackStatus) {
		s.progress("Stack %s is %s: waiting for it first", s.name, cur.StackStatus)
		if cur, _, err = s.watch(ctx, aws.ToString(cur.StackId), "", start); err != nil {
			return nil, err
		}
	}
	if opts.KeepParameters && opts.Tags == nil && cur != nil {
		// An upgrade keeps the user's tags too.
		tags, err = s.tags(userTags(cur))
		if err != nil {
			return nil, err
		}
	}
	create := cur == nil || cur.StackStatus == types.StackStatusReviewInProgress
	if cur != nil && !create && !updatable(cur.StackStatus) {
		return nil, fmt.Errorf("stack %s is %s (%s) and cannot be updated: delete it (zae-limiter delete -n %s) and deploy again",
			s.name, cur.StackStatus, aws.ToString(cur.StackStatusReason), s.name)
	}
	params, err := s.tpl.resolve(s.name, opts.Parameters, stackParams(cur), opts.KeepParameters)
	if err != nil {
		return nil, err
	}
	if s.local {
		// moto creates no function URL: its GetAtt would fail the create.
		params["AcquireUrlOutput"] = "false"
	}
	if !create {
		if err := s.checkSchema(ctx); err != nil {
			return nil, err
		}
	}
	art, err := s.artifacts(ctx, opts.ArtifactsBucket)
	if err != nil {
		return nil, err
	}
	keys, err := art.uploadAll(ctx, opts.Code, s.tpl.functions)
	if err != nil {
		return nil, err
	}
	maps.Copy(params, keys)
	params[CodeBucketParameter] = art.bucket

	in := &cloudformation.CreateChangeSetInput{
		StackName:     aws.String(s.name),
		ChangeSetName: aws.String(changeSetName(start)),
		ChangeSetType: types.ChangeSetTypeUpdate,
		Capabilities:  []types.Capability{types.CapabilityCapabilityIam, types.CapabilityCapabilityNamedIam},
		Parameters:    cfnParams(params),
		Tags:          tags,
		Description:   aws.String("zae-limiter " + s.c.Version),
	}
	if create {
		in.ChangeSetType = types.ChangeSetTypeCreate
	}
	body := s.tpl.JSON()
	max := opts.MaxTemplateBody
	if max <= 0 {
		max = 51200
	}
	if len(body) <= max {
		in.TemplateBody = aws.String(string(body))
	} else {
		url, err := art.uploadTemplate(ctx, body)
		if err != nil {
			return nil, err
		}
		in.TemplateURL = aws.String(url)
	}

	verb := "Updating"
	if create {
		verb = "Creating"
	}
	s.progress("%s stack %s (change set %s)", verb, s.name, aws.ToString(in.ChangeSetName))
	cs, err := s.cfn.CreateChangeSet(ctx, in)
	if err != nil {
		return nil, fmt.Errorf("create the change set of stack %s: %w", s.name, err)
	}
	changes, noop, err := s.waitChangeSet(ctx, aws.ToString(cs.Id))
	if err != nil {
		return nil, err
	}
	res := &Result{StackID: aws.ToString(cs.StackId), Created: create, Changes: changes}
	if noop {
		s.progress("No changes: stack %s is up to date", s.name)
		if _, err := s.cfn.DeleteChangeSet(ctx, &cloudformation.DeleteChangeSetInput{ChangeSetName: cs.Id}); err != nil {
			s.progress("Note: the empty change set was not deleted: %v", err)
		}
	} else {
		if err := s.execute(ctx, aws.ToString(cs.Id), aws.ToString(cs.StackId), changes, opts.NoWait, start, res); err != nil {
			return res, err
		}
		if opts.NoWait {
			res.Elapsed = s.c.Now().Sub(start)
			return res, nil
		}
	}
	final, err := s.describe(ctx)
	if err != nil {
		return res, err
	}
	if final == nil {
		return res, fmt.Errorf("stack %s vanished", s.name)
	}
	res.Status = string(final.StackStatus)
	res.Outputs, res.Parameters = stackOutputs(final), stackParams(final)
	if err := s.initTable(ctx); err != nil {
		return res, err
	}
	res.Elapsed = s.c.Now().Sub(start)
	return res, nil
}

// execute runs a change set and, unless noWait, watches it to the end.
func (s *Stack) execute(ctx context.Context, csID, stackID string, changes []Change, noWait bool, start time.Time, res *Result) error {
	if len(changes) == 0 {
		s.progress("Changes: parameters only")
	}
	for _, c := range changes {
		line := fmt.Sprintf("  %-7s %-32s %s", c.Action, c.LogicalID, c.Type)
		if c.Replacement == string(types.ReplacementTrue) {
			line += " (replaced)"
		}
		s.progress("%s", line)
	}
	// Events from here on are this operation's.
	last, err := s.lastEventID(ctx, stackID)
	if err != nil {
		return err
	}
	if _, err := s.cfn.ExecuteChangeSet(ctx, &cloudformation.ExecuteChangeSetInput{ChangeSetName: aws.String(csID)}); err != nil {
		return fmt.Errorf("execute the change set of stack %s: %w", s.name, err)
	}
	res.Changed = true
	if noWait {
		res.Status = "IN_PROGRESS"
		if st, err := s.describe(ctx); err == nil && st != nil {
			res.Status = string(st.StackStatus)
		}
		s.progress("Not waiting (--no-wait): follow it with `zae-limiter status -n %s`; deploy again once it is complete to write the version record", s.name)
		return nil
	}
	op := "update"
	if res.Created {
		op = "create"
	}
	final, events, err := s.watch(ctx, stackID, last, start)
	if err != nil {
		return err
	}
	if !succeeded(final.StackStatus) {
		return failure(s.name, op, final, events)
	}
	return nil
}

// waitChangeSet waits until the change set is ready. noop reports one that
// failed only because nothing changes.
func (s *Stack) waitChangeSet(ctx context.Context, id string) (changes []Change, noop bool, err error) {
	for {
		var out *cloudformation.DescribeChangeSetOutput
		changes = changes[:0]
		var token *string
		for {
			out, err = s.cfn.DescribeChangeSet(ctx, &cloudformation.DescribeChangeSetInput{ChangeSetName: aws.String(id), NextToken: token})
			if err != nil {
				return nil, false, fmt.Errorf("describe the change set of stack %s: %w", s.name, err)
			}
			for _, c := range out.Changes {
				if rc := c.ResourceChange; rc != nil {
					changes = append(changes, Change{Action: string(rc.Action), LogicalID: aws.ToString(rc.LogicalResourceId),
						Type: aws.ToString(rc.ResourceType), Replacement: string(rc.Replacement)})
				}
			}
			if token = out.NextToken; token == nil {
				break
			}
		}
		switch out.Status {
		case types.ChangeSetStatusCreateComplete:
			return changes, false, nil
		case types.ChangeSetStatusFailed:
			reason := aws.ToString(out.StatusReason)
			if strings.Contains(reason, "didn't contain changes") || strings.Contains(reason, "No updates are to be performed") {
				return nil, true, nil
			}
			return nil, false, fmt.Errorf("the change set of stack %s failed: %s", s.name, reason)
		}
		if err := sleep(ctx, s.c.PollInterval); err != nil {
			return nil, false, err
		}
	}
}

// checkSchema refuses to deploy over a table whose schema this build
// cannot read (a major version apart), before anything changes.
func (s *Stack) checkSchema(ctx context.Context) error {
	rec, err := s.store().Version(ctx)
	if err != nil {
		return nil // no table or no record yet: nothing to protect
	}
	if major(rec.SchemaVersion) != major(schema.Version) {
		return fmt.Errorf("table %s has schema %s and this build writes schema %s: %w (nothing was changed)",
			s.name, rec.SchemaVersion, schema.Version, store.ErrIncompatibleSchema)
	}
	return nil
}

// initTable writes the version record (this build's schema and version)
// and registers the default namespace: what a deployed table needs before
// the first acquire.
func (s *Stack) initTable(ctx context.Context) error {
	st := s.store()
	if err := st.EnsureVersion(ctx, s.c.UpdatedBy); err != nil {
		return err
	}
	rec, err := st.Version(ctx)
	if err != nil {
		return err
	}
	rec.LambdaVersion, rec.UpdatedBy, rec.UpdatedAt = s.c.Version, s.c.UpdatedBy, s.c.Now()
	if err := st.PutVersion(ctx, rec); err != nil {
		return fmt.Errorf("write the version record of table %s: %w", s.name, err)
	}
	s.progress("Version record: schema %s, functions %s", rec.SchemaVersion, rec.LambdaVersion)
	ns, err := st.RegisterNamespace(ctx, "default")
	if err != nil && !errors.Is(err, limits.ErrExists) {
		return fmt.Errorf("register the default namespace of table %s: %w", s.name, err)
	}
	s.progress("Namespace %q is registered (id %s)", ns.Name, ns.ID)
	return nil
}

// changeSetName is unique per call: a time stamp and a random suffix.
func changeSetName(t time.Time) string {
	var b [3]byte
	_, _ = rand.Read(b[:])
	return "zae-limiter-" + t.UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b[:])
}

// tags are the user's tags plus discovery and version tags.
func (s *Stack) tags(user map[string]string) ([]types.Tag, error) {
	ours := map[string]string{
		TagManagedBy: TagManagedByName, TagName: s.name, TagType: TagTypeLimiter,
		TagVersion: s.c.Version, TagLambdaVersion: s.c.Version, TagSchemaVersion: schema.Version,
	}
	if len(user) > maxUserTags {
		return nil, &ParameterError{Parameter: "tags", Value: fmt.Sprint(len(user)), Reason: fmt.Sprintf("at most %d tags", maxUserTags)}
	}
	for _, k := range slices.Sorted(maps.Keys(user)) {
		v := user[k]
		switch {
		case k == "" || len(k) > 128:
			return nil, &ParameterError{Parameter: "tag", Value: k, Reason: "a key is 1 to 128 characters"}
		case strings.HasPrefix(strings.ToLower(k), "aws:"):
			return nil, &ParameterError{Parameter: "tag", Value: k, Reason: "keys starting with aws: are AWS's"}
		case len(v) > 256:
			return nil, &ParameterError{Parameter: "tag", Value: k, Reason: "a value is at most 256 characters"}
		case ours[k] != "":
			return nil, &ParameterError{Parameter: "tag", Value: k, Reason: "zae-limiter sets this tag itself"}
		}
		ours[k] = v
	}
	out := make([]types.Tag, 0, len(ours))
	for _, k := range slices.Sorted(maps.Keys(ours)) {
		out = append(out, types.Tag{Key: aws.String(k), Value: aws.String(ours[k])})
	}
	return out, nil
}

// describe returns the stack, or nil when there is none.
func (s *Stack) describe(ctx context.Context) (*types.Stack, error) {
	out, err := s.cfn.DescribeStacks(ctx, &cloudformation.DescribeStacksInput{StackName: aws.String(s.name)})
	if notFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("describe stack %s: %w", s.name, err)
	}
	for _, st := range out.Stacks {
		if st.StackStatus != types.StackStatusDeleteComplete {
			return &st, nil
		}
	}
	return nil, nil
}

// userTags are a deployed stack's tags but the ones Ensure sets itself.
func userTags(st *types.Stack) map[string]string {
	out := map[string]string{}
	for k, v := range stackTags(st) {
		switch k {
		case TagManagedBy, TagName, TagType, TagVersion, TagLambdaVersion, TagSchemaVersion:
		default:
			out[k] = v
		}
	}
	return out
}

func cfnParams(m map[string]string) []types.Parameter {
	out := make([]types.Parameter, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out = append(out, types.Parameter{ParameterKey: aws.String(k), ParameterValue: aws.String(m[k])})
	}
	return out
}

func stackParams(st *types.Stack) map[string]string {
	if st == nil {
		return nil
	}
	out := map[string]string{}
	for _, p := range st.Parameters {
		out[aws.ToString(p.ParameterKey)] = aws.ToString(p.ParameterValue)
	}
	return out
}

func stackOutputs(st *types.Stack) map[string]string {
	out := map[string]string{}
	for _, o := range st.Outputs {
		out[aws.ToString(o.OutputKey)] = aws.ToString(o.OutputValue)
	}
	return out
}

func stackTags(st *types.Stack) map[string]string {
	out := map[string]string{}
	for _, t := range st.Tags {
		out[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return out
}

func inProgress(st types.StackStatus) bool { return strings.HasSuffix(string(st), "_IN_PROGRESS") }

func succeeded(st types.StackStatus) bool {
	switch st {
	case types.StackStatusCreateComplete, types.StackStatusUpdateComplete, types.StackStatusImportComplete:
		return true
	}
	return false
}

// updatable: a stack a change set can update (a failed create cannot).
func updatable(st types.StackStatus) bool {
	switch st {
	case types.StackStatusCreateComplete, types.StackStatusUpdateComplete, types.StackStatusUpdateRollbackComplete,
		types.StackStatusImportComplete, types.StackStatusImportRollbackComplete:
		return true
	}
	return false
}

func major(v string) string {
	m, _, _ := strings.Cut(strings.TrimPrefix(v, "v"), ".")
	return m
}

func kib(n int64) string {
	if n < 1<<20 {
		return fmt.Sprintf("%.1f KiB", float64(n)/1024)
	}
	return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
