package cli

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/zeroae/zae-limiter-go/shared/limits"
	"github.com/zeroae/zae-limiter-go/shared/store"
)

func newCmdSystem(env *Env) *cobra.Command {
	return newGroup("system", "Manage the system-wide default limits of a namespace",
		`  zae-limiter system set-defaults -l rpm:100 -l tpm:10000 --on-unavailable block
  zae-limiter system get-defaults -o json`,
		newCmdSystemSetDefaults(env, nil),
		newCmdSystemGetDefaults(env, nil),
		newCmdSystemDeleteDefaults(env, nil),
	)
}

// system set-defaults

type systemSetDefaultsOptions struct {
	env           *Env
	Limits        []limits.Limit
	OnUnavailable limits.OnUnavailable
}

func newCmdSystemSetDefaults(env *Env, runF func(*systemSetDefaultsOptions) error) *cobra.Command {
	opts := &systemSetDefaultsOptions{env: env}
	var specs, shadow []string
	var onUnavailable string
	cmd := &cobra.Command{
		Use:   "set-defaults [-l LIMIT...] [--on-unavailable POLICY]",
		Short: "Set the system default limits (the fallback for every resource)",
		Long: `Set the system default limits of the namespace: the limits of every entity and resource
that has no more specific configuration. The given limits replace the stored ones.
Without --on-unavailable the stored policy is kept; without -l the stored limits are kept.`,
		Example: `  # 100 requests and 10,000 tokens per minute, reject when DynamoDB is unreachable
  zae-limiter system set-defaults -l rpm:100 -l tpm:10000 --on-unavailable block

  # 5 requests per second with a burst of 20
  zae-limiter system set-defaults -l rps:5/sec:20

  # only change the policy: admit requests when DynamoDB is unreachable
  zae-limiter system set-defaults --on-unavailable allow`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var err error
			policy := cmd.Flags().Changed("on-unavailable")
			switch {
			case len(specs) == 0 && !policy:
				return usageErrorf("at least one -l/--limit or --on-unavailable is required")
			case len(specs) == 0 && len(shadow) > 0:
				return usageErrorf("--shadow names a -l limit")
			case len(specs) > 0:
				if opts.Limits, err = parseShadowLimits(specs, shadow); err != nil {
					return err
				}
			}
			if policy {
				if opts.OnUnavailable, err = limits.ParseOnUnavailable(onUnavailable); err != nil {
					return err
				}
			}
			if runF != nil {
				return runF(opts)
			}
			return systemSetDefaultsRun(cmd.Context(), opts)
		},
	}
	addLimitFlag(cmd, &specs)
	addShadowFlag(cmd, &shadow)
	cmd.Flags().StringVar(&onUnavailable, "on-unavailable", "",
		"`POLICY` when DynamoDB cannot be reached: block or allow (e.g. --on-unavailable allow; default: keep the stored policy, initially block)")
	return cmd
}

func systemSetDefaultsRun(ctx context.Context, opts *systemSetDefaultsOptions) error {
	env := opts.env
	ns, err := env.writeNS(ctx)
	if err != nil {
		return err
	}
	if err := ns.SetSystemDefaults(ctx, opts.Limits, opts.OnUnavailable); err != nil {
		return env.tableErr(err)
	}
	env.progress("System defaults set in namespace %q", env.Namespace)
	return nil
}

// system get-defaults

type systemGetDefaultsOptions struct {
	env    *Env
	Output outputFormat
}

// systemDefaultsJSON is the JSON of `system get-defaults`.
type systemDefaultsJSON struct {
	Limits        []limits.Limit `json:"limits"`
	OnUnavailable string         `json:"on_unavailable,omitempty"`
}

func newCmdSystemGetDefaults(env *Env, runF func(*systemGetDefaultsOptions) error) *cobra.Command {
	opts := &systemGetDefaultsOptions{env: env}
	cmd := &cobra.Command{
		Use:   "get-defaults",
		Short: "Show the system default limits",
		Long: `Show the system default limits and the on-unavailable policy of the namespace.
Nothing configured prints nothing (JSON: {}) and exits 0.`,
		Example: `  zae-limiter system get-defaults
  zae-limiter system get-defaults -o json -N tenant-a`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if runF != nil {
				return runF(opts)
			}
			return systemGetDefaultsRun(cmd.Context(), opts)
		},
	}
	addOutputFlag(cmd, &opts.Output)
	return cmd
}

func systemGetDefaultsRun(ctx context.Context, opts *systemGetDefaultsOptions) error {
	env := opts.env
	var doc systemDefaultsJSON
	ns, err := env.readNS(ctx)
	if err != nil {
		return err
	}
	if ns != nil {
		d, err := ns.GetSystemDefaults(ctx)
		if err != nil && !errors.Is(err, limits.ErrNotFound) {
			return env.tableErr(err)
		}
		doc = systemDefaultsJSON{Limits: d.Limits, OnUnavailable: string(d.OnUnavailable)}
	}
	empty := len(doc.Limits) == 0 && doc.OnUnavailable == ""
	if opts.Output.json() {
		if empty {
			return writeJSON(env.Out, emptyObject)
		}
		doc.Limits = jsonLimits(doc.Limits)
		return writeJSON(env.Out, doc)
	}
	if empty {
		env.progress("No system defaults configured in namespace %q", env.Namespace)
		return nil
	}
	t := newTable(env.Out, "LIMIT", "ON UNAVAILABLE")
	policy := orDash(doc.OnUnavailable)
	if len(doc.Limits) == 0 {
		t.row("-", policy)
	}
	for _, l := range doc.Limits {
		t.row(formatLimit(l), policy)
		policy = ""
	}
	return t.flush()
}

// system delete-defaults

type systemDeleteDefaultsOptions struct {
	env *Env
	Yes bool
}

func newCmdSystemDeleteDefaults(env *Env, runF func(*systemDeleteDefaultsOptions) error) *cobra.Command {
	opts := &systemDeleteDefaultsOptions{env: env}
	cmd := &cobra.Command{
		Use:   "delete-defaults",
		Short: "Delete the system default limits and policy",
		Example: `  zae-limiter system delete-defaults --yes
  zae-limiter system delete-defaults -y -N tenant-a`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := env.requireYes(opts.Yes); err != nil {
				return err
			}
			if runF != nil {
				return runF(opts)
			}
			return systemDeleteDefaultsRun(cmd.Context(), opts)
		},
	}
	addYesFlag(cmd, &opts.Yes)
	return cmd
}

func systemDeleteDefaultsRun(ctx context.Context, opts *systemDeleteDefaultsOptions) error {
	env := opts.env
	none := fmt.Sprintf("No system defaults configured in namespace %q", env.Namespace)
	deleted, err := env.deleteInNS(ctx, nsDeletion{
		yes: opts.Yes, question: "Delete the system defaults of namespace " + quote(env.Namespace) + "?",
		noNS: none, notFound: none + ": nothing deleted",
		del: func(ns *store.NS) error { return ns.DeleteSystemDefaults(ctx) },
	})
	if deleted {
		env.progress("System defaults deleted in namespace %q", env.Namespace)
	}
	return err
}
