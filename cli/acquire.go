package cli

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"github.com/spf13/cobra"

	"github.com/zeroae/zae-limiter-go/shared/api"
	"github.com/zeroae/zae-limiter-go/shared/limiter"
	"github.com/zeroae/zae-limiter-go/shared/limits"
	"github.com/zeroae/zae-limiter-go/shared/store"
	"github.com/zeroae/zae-limiter-go/shared/wire"
)

// limiter returns the in-process acquire engine for the --namespace. With
// register (the call brings its own limits, so it will write a bucket) a
// namespace never registered is registered; without, it is read only: it
// can hold no stored limits, so the acquire fails and leaves nothing behind
// (a nil limiter and a nil error).
func (e *Env) limiter(ctx context.Context, register bool) (*limiter.Limiter, error) {
	open := e.readNS
	if register {
		open = e.writeNS
	}
	ns, err := open(ctx)
	if err != nil {
		return nil, err
	}
	if ns == nil {
		return nil, nil
	}
	db, err := e.DynamoDB(ctx)
	if err != nil {
		return nil, err
	}
	return limiter.New(db, ns, limiter.Options{Table: e.Name, Namespace: ns.ID, Timeout: callTimeout}), nil
}

// callTimeout bounds one acquire or available of the CLI, every read
// included: a DynamoDB that hangs makes the command fail (or, with
// --on-unavailable allow, admit) within it. Longer than the limiter's 5 s
// default: a one-shot command also resolves its namespace and config.
const callTimeout = 10 * time.Second

// addConsumeFlag adds the repeatable -c/--consume name=amount flag.
func addConsumeFlag(cmd *cobra.Command, specs *[]string, what string) {
	cmd.Flags().StringArrayVarP(specs, "consume", "c", nil,
		"`NAME=AMOUNT` "+what+", repeatable (e.g. -c rpm=1 -c tpm=500)")
}

// parseAmounts reads name=amount pairs (whole tokens >= 0).
func parseAmounts(specs []string) (map[string]int64, error) {
	out := map[string]int64{}
	for _, s := range specs {
		name, v, ok := strings.Cut(s, "=")
		if !ok {
			return nil, limits.Invalid("consume", s, "want NAME=AMOUNT, e.g. rpm=1")
		}
		if err := limits.ValidateLimitName(name); err != nil {
			return nil, err
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return nil, limits.Invalid("consume."+name, v, "must be a whole number >= 0")
		}
		out[name] += n
	}
	return out, nil
}

// acquire

type acquireOptions struct {
	env           *Env
	EntityID      string
	Resource      string
	Consume       map[string]int64
	Limits        []limits.Limit
	OnUnavailable limits.OnUnavailable
	Output        outputFormat
}

func newCmdAcquire(env *Env, runF func(*acquireOptions) error) *cobra.Command {
	opts := &acquireOptions{env: env}
	var consume, specs []string
	var policy string
	cmd := &cobra.Command{
		Use:   "acquire ENTITY_ID RESOURCE -c NAME=AMOUNT...",
		Short: "Consume capacity once (exit 3 when rate limited)",
		Long: `Acquire capacity for an entity and resource and keep it (the lease is committed at once).
Limits come from the stored configuration (entity > entity default > resource > system) unless -l
gives them. Exits 3 and prints the violations and the wait when the request is rate limited (with -o json,
the HTTP API's 429 body: "retryable" is false when the request asks a limit for more than its capacity,
which waiting never fixes). A namespace that is not registered is an error naming it (-l registers it).`,
		Example: `  zae-limiter acquire user-123 gpt-4 -c rpm=1 -c tpm=500
  zae-limiter acquire user-123 gpt-4 -c rpm=1 -l rpm:10 -o json`,
		Args: exactArgs("ENTITY_ID", "RESOURCE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.EntityID, opts.Resource = args[0], args[1]
			if err := validateTarget(opts.EntityID, opts.Resource); err != nil {
				return err
			}
			var err error
			if len(consume) == 0 {
				return usageErrorf("at least one -c/--consume is required")
			}
			if opts.Consume, err = parseAmounts(consume); err != nil {
				return err
			}
			if opts.Limits, err = parseOptionalLimits(specs); err != nil {
				return err
			}
			if cmd.Flags().Changed("on-unavailable") {
				if opts.OnUnavailable, err = limits.ParseOnUnavailable(policy); err != nil {
					return err
				}
			}
			if runF != nil {
				return runF(opts)
			}
			return acquireRun(cmd.Context(), opts)
		},
	}
	addConsumeFlag(cmd, &consume, "to consume")
	addLimitOverrideFlag(cmd, &specs)
	cmd.Flags().StringVar(&policy, "on-unavailable", "", "`POLICY` for this call when DynamoDB cannot be reached: block or allow (e.g. --on-unavailable allow)")
	addOutputFlag(cmd, &opts.Output)
	return cmd
}

func validateTarget(entity, resource string) error {
	if err := limits.ValidateEntityID(entity); err != nil {
		return err
	}
	return limits.ValidateResource(resource)
}

func acquireRun(ctx context.Context, opts *acquireOptions) error {
	env := opts.env
	// Credentials first, outside the budget: a machine without any is a
	// setup error, never "DynamoDB unavailable" (which allow would admit).
	if err := env.credentials(ctx); err != nil {
		return err
	}
	// The whole acquire, namespace read included, within the limiter's
	// budget: a hung DynamoDB is "unavailable", never a hang.
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	if err := namesInLimits(opts.Consume, opts.Limits); err != nil {
		return err // before anything is registered: a failing acquire writes nothing
	}
	lim, err := env.limiter(ctx, opts.Limits != nil)
	if err != nil {
		// The namespace could not even be read: only a per-call allow
		// admits (the stored policy is out of reach too).
		if opts.OnUnavailable == limits.Allow && isUnreachable(err) {
			return writeAdmitted(env, opts, nil, true)
		}
		return err
	}
	if lim == nil {
		// A namespace never registered holds no limits: say which is
		// missing, as the HTTP API does (a typo in -N shows at once).
		return fmt.Errorf("namespace %q is not registered: register it with 'zae-limiter namespace register %s' (or pass -l: a write registers it)",
			env.Namespace, env.Namespace)
	}
	lease, err := lim.Acquire(ctx, limiter.Request{
		EntityID: opts.EntityID, Resource: opts.Resource, Consume: opts.Consume,
		Limits: opts.Limits, OnUnavailable: opts.OnUnavailable,
	})
	var ex *limits.ExceededError
	if errors.As(err, &ex) {
		if werr := writeDenial(env, opts.Output, ex); werr != nil {
			return werr
		}
		return ex
	}
	if err != nil {
		return env.tableErr(err)
	}
	if err := lease.Commit(ctx); err != nil {
		return err
	}
	return writeAdmitted(env, opts, lease, lease.Degraded())
}

// writeAdmitted prints an admitted acquire; degraded means admitted without
// a check under on_unavailable=allow (lease may then be nil).
func writeAdmitted(env *Env, opts *acquireOptions, lease *limiter.Lease, degraded bool) error {
	consumed, sts := map[string]int64{}, []limits.Status(nil)
	if lease != nil {
		consumed, sts = lease.Consumed(), lease.Statuses()
	}
	if opts.Output.json() {
		doc := map[string]any{
			"entity_id": opts.EntityID, "resource": opts.Resource,
			"consumed": consumed, "limits": statusJSON(sts, false),
		}
		if shadow := limits.ShadowViolations(sts); len(shadow) > 0 {
			doc["shadow_violations"] = api.Violations(shadow)
		}
		if degraded {
			doc["degraded"] = true
			env.progress("DynamoDB unavailable: admitted without a check (on_unavailable=allow)")
		}
		return writeJSON(env.Out, doc)
	}
	if degraded {
		_, err := fmt.Fprintln(env.Out, "Admitted without a check: DynamoDB unavailable (on_unavailable=allow); nothing consumed")
		return err
	}
	env.progress("Admitted %s for %s/%s", formatAmounts(opts.Consume), opts.EntityID, opts.Resource)
	for _, s := range limits.ShadowViolations(sts) {
		env.progress("Shadow limit %s/%s would have denied it (%d available, %d requested; retry after %s)",
			s.EntityID, s.Limit.Name, s.Available, s.Requested, limits.FormatSeconds(s.RetryAfter))
	}
	return writeStatusTable(env, sts, false)
}

// isUnreachable reports whether err is DynamoDB failing to answer (no
// connection, a timeout, a 5xx or throttling after the SDK's retries), as
// opposed to answering that something is missing or invalid.
func isUnreachable(err error) bool {
	if credentialsFailed(err) {
		return false // a setup error, whatever the chain's last attempt met
	}
	var op *net.OpError
	var dns *net.DNSError
	var re *smithyhttp.ResponseError
	var ae smithy.APIError
	switch {
	case errors.As(err, &op), errors.As(err, &dns), errors.Is(err, context.DeadlineExceeded):
		return true
	case errors.As(err, &re) && re.HTTPStatusCode() >= 500:
		return true
	case errors.As(err, &ae):
		return retry.ThrottleErrorCode{Codes: retry.DefaultThrottleErrorCodes}.IsErrorThrottle(err).Bool()
	}
	return false
}

// writeDenial prints a denial; its JSON is the HTTP API's 429 body.
func writeDenial(env *Env, o outputFormat, ex *limits.ExceededError) error {
	if o.json() {
		return writeJSON(env.Out, api.Denial(ex))
	}
	if len(ex.Violations()) == 0 {
		return nil // blocked, or contention: the error line says why
	}
	t := newTable(env.Out, "ENTITY", "RESOURCE", "LIMIT", "AVAILABLE", "REQUESTED", "RETRY AFTER")
	for _, v := range ex.Violations() {
		t.row(v.EntityID, v.Resource, v.Limit.Name, thousands(v.Available), thousands(v.Requested),
			limits.FormatSeconds(v.RetryAfter))
	}
	return t.flush()
}

// statusJSON renders statuses as the HTTP API's limit states.
func statusJSON(sts []limits.Status, withWait bool) []wire.LimitState {
	out := make([]wire.LimitState, 0, len(sts))
	for _, s := range sts {
		l := api.LimitState(s)
		if withWait {
			w := roundSeconds(s.RetryAfter.Seconds())
			l.RetryAfterSeconds = &w
		}
		out = append(out, l)
	}
	return out
}

func writeStatusTable(env *Env, sts []limits.Status, withWait bool) error {
	header := []string{"ENTITY", "LIMIT", "AVAILABLE", "CAPACITY"}
	if withWait {
		header = append(header, "WAIT")
	}
	// Credits and a calendar quota's boundary, when any limit has them.
	credit := slices.ContainsFunc(sts, func(s limits.Status) bool { return s.Credit != 0 })
	resets := slices.ContainsFunc(sts, func(s limits.Status) bool { return !s.ResetAt.IsZero() })
	if credit {
		header = append(header, "CREDIT")
	}
	if resets {
		header = append(header, "RESETS")
	}
	t := newTable(env.Out, header...)
	for _, s := range sts {
		name := s.Limit.Name
		if s.Limit.Shadow {
			name += " (shadow)"
		}
		row := []string{s.EntityID, name, thousands(s.Available), thousands(s.Limit.Capacity)}
		if withWait {
			row = append(row, limits.FormatSeconds(s.RetryAfter))
		}
		if credit {
			row = append(row, thousands(s.Credit))
		}
		if resets {
			row = append(row, timestamp(s.ResetAt))
		}
		t.row(row...)
	}
	return t.flush()
}

func roundSeconds(s float64) float64 { return math.Round(s*1000) / 1000 }

func formatAmounts(m map[string]int64) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, k+"="+thousands(m[k]))
	}
	return strings.Join(parts, " ")
}

// available

type availableOptions struct {
	env      *Env
	EntityID string
	Resource string
	Needed   map[string]int64
	Limits   []limits.Limit
	Output   outputFormat
}

func newCmdAvailable(env *Env, runF func(*availableOptions) error) *cobra.Command {
	opts := &availableOptions{env: env}
	var needed, specs []string
	cmd := &cobra.Command{
		Use:   "available ENTITY_ID RESOURCE",
		Short: "Show what every limit holds now (and, with -c, how long until that much is there)",
		Long: `Show the tokens every limit of the entity's bucket holds now, summed over shards, and the
parent's when the entity cascades. With -c, also how long until that amount is available. Reads only.`,
		Example: `  zae-limiter available user-123 gpt-4
  zae-limiter available user-123 gpt-4 -c tpm=5000 -o json`,
		Args: exactArgs("ENTITY_ID", "RESOURCE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.EntityID, opts.Resource = args[0], args[1]
			if err := validateTarget(opts.EntityID, opts.Resource); err != nil {
				return err
			}
			var err error
			if opts.Needed, err = parseAmounts(needed); err != nil {
				return err
			}
			if opts.Limits, err = parseOptionalLimits(specs); err != nil {
				return err
			}
			if runF != nil {
				return runF(opts)
			}
			return availableRun(cmd.Context(), opts)
		},
	}
	addConsumeFlag(cmd, &needed, "to wait for")
	addLimitOverrideFlag(cmd, &specs)
	addOutputFlag(cmd, &opts.Output)
	return cmd
}

func availableRun(ctx context.Context, opts *availableOptions) error {
	env := opts.env
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	ns, err := env.readNS(ctx)
	if err != nil {
		return err
	}
	// A read that finds nothing prints an empty result (DECISIONS §4.1):
	// the default namespace was never written, or no limits are configured
	// for the entity and resource. With -l it shows what a bucket holds.
	var cfg limiter.Config = unwrittenNS{}
	nsID := ""
	if ns != nil {
		cfg, nsID = ns, ns.ID
	}
	if opts.Limits == nil {
		if ns == nil {
			return writeAvailable(env, opts, nil)
		}
		// Ids are valid: the only invalid outcome is "no limits configured".
		if _, err := ns.ResolveLimits(ctx, opts.EntityID, opts.Resource); errors.Is(err, limits.ErrInvalid) {
			return writeAvailable(env, opts, nil)
		}
	}
	db, err := env.DynamoDB(ctx)
	if err != nil {
		return err
	}
	lim := limiter.New(db, cfg, limiter.Options{Table: env.Name, Namespace: nsID, Timeout: callTimeout})
	sts, err := lim.Available(ctx, opts.EntityID, opts.Resource, opts.Needed, opts.Limits)
	if err != nil {
		return env.tableErr(err)
	}
	for _, st := range sts {
		if st.Requested > st.ShardCapacity() {
			// The wait shown is when the amount would have accrued, but a
			// bucket never holds more than its capacity.
			env.note(fmt.Sprintf("%s/%s: %d exceeds the %d one acquire can take, so it is never available at once",
				st.EntityID, st.Limit.Name, st.Requested, st.ShardCapacity()))
		}
	}
	return writeAvailable(env, opts, sts)
}

func writeAvailable(env *Env, opts *availableOptions, sts []limits.Status) error {
	if opts.Output.json() {
		return writeJSON(env.Out, map[string]any{"limits": statusJSON(sts, true)})
	}
	if len(sts) == 0 {
		env.progress("No limits for entity %q and resource %q in namespace %q", opts.EntityID, opts.Resource, env.Namespace)
		return nil
	}
	return writeStatusTable(env, sts, true)
}

// unwrittenNS is the configuration of a namespace that was never written:
// no limits, no entities (its buckets do not exist either).
type unwrittenNS struct{}

func (unwrittenNS) ResolveLimits(_ context.Context, entityID, resource string) (store.Resolved, error) {
	return store.Resolved{OnUnavailable: limits.Block}, limits.Invalid("limits", "",
		fmt.Sprintf("no limits configured for entity %q and resource %q", entityID, resource))
}

func (u unwrittenNS) RefreshLimits(ctx context.Context, entityID, resource string) (store.Resolved, error) {
	return u.ResolveLimits(ctx, entityID, resource)
}

func (unwrittenNS) CachedEntity(context.Context, string) (store.Entity, bool, error) {
	return store.Entity{}, false, nil
}

func (unwrittenNS) OnUnavailable(context.Context) (limits.OnUnavailable, error) {
	return limits.Block, nil
}

// namesInLimits checks, when the call brings its own limits, that each
// consumed name is one of them (the limiter checks it again; this runs
// before the namespace is registered).
func namesInLimits(consume map[string]int64, ls []limits.Limit) error {
	if ls == nil {
		return nil
	}
	for _, name := range slices.Sorted(maps.Keys(consume)) {
		if !slices.ContainsFunc(ls, func(l limits.Limit) bool { return l.Name == name }) {
			return limits.Invalid("consume", name, fmt.Sprintf("no limit %q among those given with -l", name))
		}
	}
	return nil
}
