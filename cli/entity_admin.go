package cli

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/zeroae/zae-limiter-go/shared/limiter"
	"github.com/zeroae/zae-limiter-go/shared/limits"
)

// The admin commands on an entity's buckets and its record beyond its
// limits (ADR-030, ADR-032): reset, grant, block, unblock.

// bucketTarget checks the bucket an admin command writes: ENTITY_ID and
// the required --resource.
func bucketTarget(cmd *cobra.Command, entity, resource string) error {
	if !cmd.Flags().Changed("resource") {
		return usageErrorf("--resource is required")
	}
	return validateTarget(entity, resource)
}

// entity reset

type entityResetOptions struct {
	env      *Env
	ID       string
	Resource string
	Limits   []string
	Yes      bool
}

func newCmdEntityReset(env *Env, runF func(*entityResetOptions) error) *cobra.Command {
	opts := &entityResetOptions{env: env}
	cmd := &cobra.Command{
		Use:   "reset ENTITY_ID --resource RESOURCE [--limit NAME...]",
		Short: "Fill an entity's bucket for a resource (forgive what it used)",
		Long: `Fill ENTITY_ID's bucket for --resource: every limit in force, or only those named with
--limit, on every shard, debt forgiven. Credits granted with 'entity grant' are kept. Exact
under concurrent acquires: what lands after the reset takes from the full bucket. Audited
(bucket_reset).`,
		Example: `  zae-limiter entity reset key-123 --resource gpt-4 --yes
  zae-limiter entity reset key-123 --resource gpt-4 --limit tpm -y`,
		Args: exactArgs("ENTITY_ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.ID = args[0]
			if err := bucketTarget(cmd, opts.ID, opts.Resource); err != nil {
				return err
			}
			for _, name := range opts.Limits {
				if err := limits.ValidateLimitName(name); err != nil {
					return err
				}
			}
			if err := env.requireYes(opts.Yes); err != nil {
				return err
			}
			if runF != nil {
				return runF(opts)
			}
			return entityResetRun(cmd.Context(), opts)
		},
	}
	addResourceFlag(cmd, &opts.Resource, "")
	cmd.Flags().StringArrayVar(&opts.Limits, "limit", nil, "reset only the limit `NAME`, repeatable (e.g. --limit tpm)")
	addYesFlag(cmd, &opts.Yes)
	return cmd
}

func entityResetRun(ctx context.Context, opts *entityResetOptions) error {
	env := opts.env
	what := "every limit"
	if len(opts.Limits) > 0 {
		what = strings.Join(opts.Limits, ", ")
	}
	if err := env.confirm(opts.Yes, fmt.Sprintf("Fill %s of %s/%s, forgiving what it used?", what, opts.ID, opts.Resource)); err != nil {
		return err
	}
	lim, err := env.adminLimiter(ctx)
	if err != nil {
		return err
	}
	if lim == nil {
		env.progress("Nothing to reset: namespace %q holds no bucket", env.Namespace)
		return nil
	}
	n, err := lim.Reset(ctx, opts.ID, opts.Resource, opts.Limits)
	if err != nil {
		return env.tableErr(err)
	}
	if n == 0 {
		env.progress("Bucket %s/%s holds nothing to reset in namespace %q (it is full)", opts.ID, opts.Resource, env.Namespace)
		return nil
	}
	env.progress("Reset %s of %s/%s on %d shard(s) in namespace %q", what, opts.ID, opts.Resource, n, env.Namespace)
	return nil
}

// entity grant

type entityGrantOptions struct {
	env      *Env
	ID       string
	Resource string
	Credits  map[string]int64
}

func newCmdEntityGrant(env *Env, runF func(*entityGrantOptions) error) *cobra.Command {
	opts := &entityGrantOptions{env: env}
	var specs []string
	cmd := &cobra.Command{
		Use:   "grant ENTITY_ID --resource RESOURCE -c NAME=AMOUNT...",
		Short: "Add tokens to an entity's bucket once, above its capacity if need be (credits)",
		Long: `Add AMOUNT tokens of limit NAME to ENTITY_ID's bucket for --resource, once: credits, such as a
customer bought. An acquire uses them when the bucket's own tokens cannot pay for it (the
bucket's tokens go first), above the limit's capacity if need be; a rolled-back acquire gives
them back. They keep the bucket from expiring. Exact under concurrent acquires; audited
(credits_granted).`,
		Example: `  zae-limiter entity grant org-acme --resource gpt-4 -c tpm=1000000
  zae-limiter entity grant key-123 --resource gpt-4 -c rpm=100 -c tpm=50000`,
		Args: exactArgs("ENTITY_ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.ID = args[0]
			if err := bucketTarget(cmd, opts.ID, opts.Resource); err != nil {
				return err
			}
			if len(specs) == 0 {
				return usageErrorf("at least one -c/--consume NAME=AMOUNT is required")
			}
			var err error
			if opts.Credits, err = parseAmounts(specs); err != nil {
				return err
			}
			for _, name := range slices.Sorted(maps.Keys(opts.Credits)) {
				if opts.Credits[name] <= 0 {
					return limits.Invalid("credits."+name, fmt.Sprint(opts.Credits[name]), "must be a whole number > 0")
				}
			}
			if runF != nil {
				return runF(opts)
			}
			return entityGrantRun(cmd.Context(), opts)
		},
	}
	addResourceFlag(cmd, &opts.Resource, "")
	addConsumeFlag(cmd, &specs, "to grant")
	return cmd
}

func entityGrantRun(ctx context.Context, opts *entityGrantOptions) error {
	env := opts.env
	lim, err := env.adminLimiter(ctx)
	if err != nil {
		return err
	}
	if lim == nil {
		return fmt.Errorf("namespace %q is not registered: it has no limits to grant credits to", env.Namespace)
	}
	n, err := lim.Grant(ctx, opts.ID, opts.Resource, opts.Credits)
	if err != nil {
		return env.tableErr(err)
	}
	env.progress("Granted %s to %s/%s (credits, used once the bucket's own tokens cannot pay) on %d shard(s) in namespace %q",
		formatAmounts(opts.Credits), opts.ID, opts.Resource, n, env.Namespace)
	return nil
}

// adminLimiter is a limiter for an admin write to buckets of the
// --namespace: nil when the namespace was never registered (it holds no
// bucket and no limits).
func (e *Env) adminLimiter(ctx context.Context) (*limiter.Limiter, error) {
	ns, err := e.readNS(ctx)
	if err != nil || ns == nil {
		return nil, err
	}
	db, err := e.DynamoDB(ctx)
	if err != nil {
		return nil, err
	}
	return limiter.New(db, ns, limiter.Options{Table: e.Name, Namespace: ns.ID, Timeout: callTimeout}), nil
}

// entity block

type entityBlockOptions struct {
	env   *Env
	ID    string
	Until time.Time // zero: until unblocked
}

func newCmdEntityBlock(env *Env, runF func(*entityBlockOptions) error) *cobra.Command {
	opts := &entityBlockOptions{env: env}
	var until string
	cmd := &cobra.Command{
		Use:   "block ENTITY_ID [--until T]",
		Short: "Deny every acquire of an entity and of the children that cascade to it",
		Long: `Deny every acquire of ENTITY_ID, and of its children that cascade to it, with reason
blocked, until 'entity unblock' or --until T (RFC 3339, or a duration from now such as 2h
or 7d). Blocking again replaces the block's end. No bucket is written for a blocked
acquire: it costs no DynamoDB request once the entity's record is cached. Other processes
see the block within their cache lifetime (60 s by default). An id without a record gets
one. Audited (entity_blocked).`,
		Example: `  zae-limiter entity block sk-abuse
  zae-limiter entity block org-acme --until 2h
  zae-limiter entity block org-acme --until 2027-01-01T00:00:00Z`,
		Args: exactArgs("ENTITY_ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.ID = args[0]
			if err := limits.ValidateEntityID(opts.ID); err != nil {
				return err
			}
			if cmd.Flags().Changed("until") {
				t, err := parseUntil(until, time.Now())
				if err != nil {
					return err
				}
				opts.Until = t
			}
			if runF != nil {
				return runF(opts)
			}
			return entityBlockRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVar(&until, "until", "", "end the block at `T`: RFC 3339 or a duration from now (e.g. --until 2h, --until 7d)")
	return cmd
}

// parseUntil reads an instant after now: RFC 3339, or a positive duration
// from now (Go's, or whole days: 7d).
func parseUntil(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		if !t.After(now) {
			return time.Time{}, limits.Invalid("until", s, "must be in the future")
		}
		return t, nil
	}
	var d ageValue
	if err := d.Set(s); err == nil && d.d > 0 {
		return now.Add(d.d), nil
	}
	return time.Time{}, limits.Invalid("until", s, "want RFC 3339 (2027-01-01T00:00:00Z) or a duration from now (2h, 7d)")
}

func entityBlockRun(ctx context.Context, opts *entityBlockOptions) error {
	env := opts.env
	ns, err := env.writeNS(ctx)
	if err != nil {
		return err
	}
	e, err := ns.BlockEntity(ctx, opts.ID, opts.Until)
	if err != nil {
		return env.tableErr(err)
	}
	until := "until it is unblocked"
	if !e.BlockedUntil.IsZero() {
		until = "until " + timestamp(e.BlockedUntil)
	}
	env.progress("Blocked entity %q in namespace %q %s (and the children that cascade to it)", opts.ID, env.Namespace, until)
	return nil
}

// entity unblock

type entityUnblockOptions struct {
	env *Env
	ID  string
}

func newCmdEntityUnblock(env *Env, runF func(*entityUnblockOptions) error) *cobra.Command {
	opts := &entityUnblockOptions{env: env}
	cmd := &cobra.Command{
		Use:     "unblock ENTITY_ID",
		Short:   "Lift an entity's block",
		Long:    `Lift ENTITY_ID's block. Other processes see it within their cache lifetime. Audited (entity_unblocked).`,
		Example: `  zae-limiter entity unblock org-acme`,
		Args:    exactArgs("ENTITY_ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.ID = args[0]
			if err := limits.ValidateEntityID(opts.ID); err != nil {
				return err
			}
			if runF != nil {
				return runF(opts)
			}
			return entityUnblockRun(cmd.Context(), opts)
		},
	}
	return cmd
}

func entityUnblockRun(ctx context.Context, opts *entityUnblockOptions) error {
	env := opts.env
	notFound := fmt.Errorf("entity %q not found in namespace %q", opts.ID, env.Namespace)
	ns, err := env.readNS(ctx)
	if err != nil {
		return err
	}
	if ns == nil {
		return notFound
	}
	_, was, err := ns.UnblockEntity(ctx, opts.ID)
	if errors.Is(err, limits.ErrNotFound) {
		return notFound
	}
	if err != nil {
		return env.tableErr(err)
	}
	if !was {
		env.progress("Entity %q was not blocked in namespace %q: nothing changed", opts.ID, env.Namespace)
		return nil
	}
	env.progress("Unblocked entity %q in namespace %q", opts.ID, env.Namespace)
	return nil
}
