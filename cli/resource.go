package cli

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/zeroae/zae-limiter-go/shared/limits"
	"github.com/zeroae/zae-limiter-go/shared/store"
)

func newCmdResource(env *Env) *cobra.Command {
	return newGroup("resource", "Manage the default limits of a resource",
		`  zae-limiter resource set-defaults gpt-4 -l rpm:50 -l tpm:100000
  zae-limiter resource list`,
		newCmdResourceSetDefaults(env, nil),
		newCmdResourceGetDefaults(env, nil),
		newCmdResourceDeleteDefaults(env, nil),
		newCmdResourceList(env, nil),
	)
}

// resource set-defaults

type resourceSetDefaultsOptions struct {
	env      *Env
	Resource string
	Limits   []limits.Limit
}

func newCmdResourceSetDefaults(env *Env, runF func(*resourceSetDefaultsOptions) error) *cobra.Command {
	opts := &resourceSetDefaultsOptions{env: env}
	var specs, shadow []string
	cmd := &cobra.Command{
		Use:   "set-defaults RESOURCE -l LIMIT...",
		Short: "Set the default limits of a resource",
		Long: `Set the default limits of RESOURCE: they apply to every entity without its own limits
for it, and override the system defaults. The given limits replace the stored ones.`,
		Example: `  zae-limiter resource set-defaults gpt-4 -l rpm:50 -l tpm:100000
  zae-limiter resource set-defaults gpt-3.5-turbo -l rpm:200 -l tpm:500000/min:750000`,
		Args: exactArgs("RESOURCE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Resource = args[0]
			if err := limits.ValidateResource(opts.Resource); err != nil {
				return err
			}
			var err error
			if opts.Limits, err = parseShadowLimits(specs, shadow); err != nil {
				return err
			}
			if runF != nil {
				return runF(opts)
			}
			return resourceSetDefaultsRun(cmd.Context(), opts)
		},
	}
	addLimitFlag(cmd, &specs)
	addShadowFlag(cmd, &shadow)
	return cmd
}

func resourceSetDefaultsRun(ctx context.Context, opts *resourceSetDefaultsOptions) error {
	env := opts.env
	ns, err := env.writeNS(ctx)
	if err != nil {
		return err
	}
	if err := ns.SetResourceDefaults(ctx, opts.Resource, opts.Limits); err != nil {
		return env.tableErr(err)
	}
	env.progress("Defaults of resource %q set in namespace %q", opts.Resource, env.Namespace)
	return nil
}

// resource get-defaults

type resourceGetDefaultsOptions struct {
	env      *Env
	Resource string
	Output   outputFormat
}

// resourceDefaultsJSON is the JSON of `resource get-defaults`.
type resourceDefaultsJSON struct {
	Resource string         `json:"resource"`
	Limits   []limits.Limit `json:"limits"`
}

func newCmdResourceGetDefaults(env *Env, runF func(*resourceGetDefaultsOptions) error) *cobra.Command {
	opts := &resourceGetDefaultsOptions{env: env}
	cmd := &cobra.Command{
		Use:   "get-defaults RESOURCE",
		Short: "Show the default limits of a resource",
		Long: `Show the default limits of RESOURCE. Nothing configured prints nothing (JSON: {}) and
exits 0.`,
		Example: `  zae-limiter resource get-defaults gpt-4
  zae-limiter resource get-defaults gpt-4 -o json`,
		Args: exactArgs("RESOURCE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Resource = args[0]
			if err := limits.ValidateResource(opts.Resource); err != nil {
				return err
			}
			if runF != nil {
				return runF(opts)
			}
			return resourceGetDefaultsRun(cmd.Context(), opts)
		},
	}
	addOutputFlag(cmd, &opts.Output)
	return cmd
}

func resourceGetDefaultsRun(ctx context.Context, opts *resourceGetDefaultsOptions) error {
	env := opts.env
	var ls []limits.Limit
	ns, err := env.readNS(ctx)
	if err != nil {
		return err
	}
	if ns != nil {
		if ls, err = ns.GetResourceDefaults(ctx, opts.Resource); err != nil && !errors.Is(err, limits.ErrNotFound) {
			return env.tableErr(err)
		}
	}
	return writeLimits(env, opts.Output, resourceDefaultsJSON{Resource: opts.Resource, Limits: ls}, opts.Resource, ls,
		fmt.Sprintf("No defaults configured for resource %q in namespace %q", opts.Resource, env.Namespace))
}

// resource delete-defaults

type resourceDeleteDefaultsOptions struct {
	env      *Env
	Resource string
	Yes      bool
}

func newCmdResourceDeleteDefaults(env *Env, runF func(*resourceDeleteDefaultsOptions) error) *cobra.Command {
	opts := &resourceDeleteDefaultsOptions{env: env}
	cmd := &cobra.Command{
		Use:   "delete-defaults RESOURCE",
		Short: "Delete the default limits of a resource",
		Example: `  zae-limiter resource delete-defaults gpt-4 --yes
  zae-limiter resource delete-defaults gpt-4 -y -N tenant-a`,
		Args: exactArgs("RESOURCE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Resource = args[0]
			if err := limits.ValidateResource(opts.Resource); err != nil {
				return err
			}
			if err := env.requireYes(opts.Yes); err != nil {
				return err
			}
			if runF != nil {
				return runF(opts)
			}
			return resourceDeleteDefaultsRun(cmd.Context(), opts)
		},
	}
	addYesFlag(cmd, &opts.Yes)
	return cmd
}

func resourceDeleteDefaultsRun(ctx context.Context, opts *resourceDeleteDefaultsOptions) error {
	env := opts.env
	none := fmt.Sprintf("No defaults configured for resource %q in namespace %q", opts.Resource, env.Namespace)
	deleted, err := env.deleteInNS(ctx, nsDeletion{
		yes: opts.Yes, question: "Delete the defaults of resource " + quote(opts.Resource) + "?",
		noNS: none, notFound: none + ": nothing deleted",
		del: func(ns *store.NS) error { return ns.DeleteResourceDefaults(ctx, opts.Resource) },
	})
	if deleted {
		env.progress("Defaults of resource %q deleted in namespace %q", opts.Resource, env.Namespace)
	}
	return err
}

// resource list

type resourceListOptions struct {
	env    *Env
	Output outputFormat
}

func newCmdResourceList(env *Env, runF func(*resourceListOptions) error) *cobra.Command {
	opts := &resourceListOptions{env: env}
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the resources that have default limits",
		Long:  `List the resources of the namespace that have default limits. JSON: an array of names.`,
		Example: `  zae-limiter resource list
  zae-limiter resource list -o json -N tenant-a`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if runF != nil {
				return runF(opts)
			}
			return resourceListRun(cmd.Context(), opts)
		},
	}
	addOutputFlag(cmd, &opts.Output)
	return cmd
}

func resourceListRun(ctx context.Context, opts *resourceListOptions) error {
	env := opts.env
	var names []string
	ns, err := env.readNS(ctx)
	if err != nil {
		return err
	}
	if ns != nil {
		if names, err = ns.ListResources(ctx); err != nil {
			return env.tableErr(err)
		}
	}
	if opts.Output.json() {
		if names == nil {
			names = []string{}
		}
		return writeJSON(env.Out, names)
	}
	if len(names) == 0 {
		env.progress("No resources with defaults in namespace %q", env.Namespace)
		return nil
	}
	t := newTable(env.Out, "RESOURCE")
	for _, n := range names {
		t.row(n)
	}
	return t.flush()
}
