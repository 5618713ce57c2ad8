package cli

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/zeroae/zae-limiter-go/shared/limits"
	"github.com/zeroae/zae-limiter-go/shared/store"
)

func newCmdEntity(env *Env) *cobra.Command {
	return newGroup("entity", "Manage entities and their limits",
		`  zae-limiter entity create org-acme
  zae-limiter entity create user-1 --parent org-acme --cascade
  zae-limiter entity set-limits user-premium --resource gpt-4 -l rpm:500 -l tpm:500000
  zae-limiter entity grant org-acme --resource gpt-4 -c tpm=1000000
  zae-limiter entity block sk-abuse --until 2h`,
		newCmdEntityCreate(env, nil),
		newCmdEntityShow(env, nil),
		newCmdEntityDelete(env, nil),
		newCmdEntityList(env, nil),
		newCmdEntitySetLimits(env, nil),
		newCmdEntityGetLimits(env, nil),
		newCmdEntityDeleteLimits(env, nil),
		newCmdEntityReset(env, nil),
		newCmdEntityGrant(env, nil),
		newCmdEntityBlock(env, nil),
		newCmdEntityUnblock(env, nil),
	)
}

// entityJSON is the JSON of an entity (`entity show`, `entity list`).
type entityJSON struct {
	EntityID  string            `json:"entity_id"`
	Name      string            `json:"name,omitempty"`
	ParentID  string            `json:"parent_id,omitempty"`
	Cascade   bool              `json:"cascade"`
	Metadata  map[string]string `json:"metadata,omitempty"`
	CreatedAt string            `json:"created_at,omitempty"`
	// Blocked (ADR-032), until BlockedUntil when set.
	Blocked      bool   `json:"blocked,omitempty"`
	BlockedUntil string `json:"blocked_until,omitempty"`
}

func toEntityJSON(e store.Entity) entityJSON {
	j := entityJSON{EntityID: e.ID, Name: e.Name, ParentID: e.ParentID, Cascade: e.Cascade, Metadata: e.Metadata,
		Blocked: e.Blocked}
	if !e.CreatedAt.IsZero() {
		j.CreatedAt = timestamp(e.CreatedAt)
	}
	if !e.BlockedUntil.IsZero() {
		j.BlockedUntil = timestamp(e.BlockedUntil)
	}
	return j
}

// entity create

type entityCreateOptions struct {
	env         *Env
	ID          string
	Parent      string
	Cascade     bool
	DisplayName string
}

func newCmdEntityCreate(env *Env, runF func(*entityCreateOptions) error) *cobra.Command {
	opts := &entityCreateOptions{env: env}
	cmd := &cobra.Command{
		Use:   "create ENTITY_ID",
		Short: "Create an entity (a user, key or tenant that consumes capacity)",
		Long: `Create an entity. A child entity names its --parent; with --cascade every acquire by the
child also consumes from the parent's buckets. Creating an existing entity fails.`,
		Example: `  zae-limiter entity create org-acme --display-name "Acme Inc."
  zae-limiter entity create key-123 --parent org-acme --cascade`,
		Args: exactArgs("ENTITY_ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.ID = args[0]
			if err := limits.ValidateEntityID(opts.ID); err != nil {
				return err
			}
			if cmd.Flags().Changed("parent") {
				if err := limits.ValidateIdentifier("parent_id", opts.Parent); err != nil {
					return err
				}
			}
			if opts.Cascade && opts.Parent == "" {
				return usageErrorf("--cascade needs --parent")
			}
			if runF != nil {
				return runF(opts)
			}
			return entityCreateRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVar(&opts.Parent, "parent", "", "parent entity `ID` (e.g. --parent org-acme)")
	cmd.Flags().BoolVar(&opts.Cascade, "cascade", false,
		"also consume from the parent's limits on every acquire (needs --parent; e.g. --parent org-acme --cascade)")
	cmd.Flags().StringVar(&opts.DisplayName, "display-name", "", "human-readable `NAME` (e.g. --display-name \"Acme Inc.\")")
	return cmd
}

func entityCreateRun(ctx context.Context, opts *entityCreateOptions) error {
	env := opts.env
	ns, err := env.writeNS(ctx)
	if err != nil {
		return err
	}
	e, err := ns.CreateEntity(ctx, store.Entity{
		ID: opts.ID, Name: opts.DisplayName, ParentID: opts.Parent, Cascade: opts.Cascade,
	})
	if errors.Is(err, limits.ErrExists) {
		return fmt.Errorf("entity_id %q already exists in namespace %q: nothing changed", opts.ID, env.Namespace)
	}
	if err != nil {
		return env.tableErr(err)
	}
	env.progress("Created entity %q in namespace %q", e.ID, env.Namespace)
	if e.ParentID != "" {
		// Like the reference, a parent need not exist yet; say so, since a
		// typo in --parent would otherwise go unseen.
		if _, err := ns.GetEntity(ctx, e.ParentID); errors.Is(err, limits.ErrNotFound) {
			env.progress("Note: parent %q does not exist (yet) in namespace %q", e.ParentID, env.Namespace)
		}
	}
	return nil
}

// entity show

type entityShowOptions struct {
	env    *Env
	ID     string
	Output outputFormat
}

func newCmdEntityShow(env *Env, runF func(*entityShowOptions) error) *cobra.Command {
	opts := &entityShowOptions{env: env}
	cmd := &cobra.Command{
		Use:   "show ENTITY_ID",
		Short: "Show an entity (exit 1 when it does not exist)",
		Example: `  zae-limiter entity show org-acme
  zae-limiter entity show key-123 -o json`,
		Args: exactArgs("ENTITY_ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.ID = args[0]
			if err := limits.ValidateEntityID(opts.ID); err != nil {
				return err
			}
			if runF != nil {
				return runF(opts)
			}
			return entityShowRun(cmd.Context(), opts)
		},
	}
	addOutputFlag(cmd, &opts.Output)
	return cmd
}

func entityShowRun(ctx context.Context, opts *entityShowOptions) error {
	env := opts.env
	notFound := fmt.Errorf("entity %q not found in namespace %q", opts.ID, env.Namespace)
	ns, err := env.readNS(ctx)
	if err != nil {
		return err
	}
	if ns == nil {
		return notFound
	}
	e, err := ns.GetEntity(ctx, opts.ID)
	if errors.Is(err, limits.ErrNotFound) {
		return notFound
	}
	if err != nil {
		return env.tableErr(err)
	}
	if opts.Output.json() {
		return writeJSON(env.Out, toEntityJSON(e))
	}
	t := newTable(env.Out)
	t.row("Entity:", e.ID)
	t.row("Name:", orDash(e.Name))
	t.row("Parent:", orDash(e.ParentID))
	t.row("Cascade:", strconv.FormatBool(e.Cascade))
	if len(e.Metadata) > 0 {
		keys := make([]string, 0, len(e.Metadata))
		for k := range e.Metadata {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var kv []string
		for _, k := range keys {
			kv = append(kv, k+"="+e.Metadata[k])
		}
		t.row("Metadata:", strings.Join(kv, ", "))
	}
	t.row("Created:", timestamp(e.CreatedAt))
	if e.Blocked {
		until := "until unblocked"
		if !e.BlockedUntil.IsZero() {
			until = "until " + timestamp(e.BlockedUntil)
		}
		t.row("Blocked:", until)
	}
	return t.flush()
}

// entity delete

type entityDeleteOptions struct {
	env *Env
	ID  string
	Yes bool
}

func newCmdEntityDelete(env *Env, runF func(*entityDeleteOptions) error) *cobra.Command {
	opts := &entityDeleteOptions{env: env}
	cmd := &cobra.Command{
		Use:   "delete ENTITY_ID",
		Short: "Delete an entity with its limits and buckets",
		Long: `Delete an entity, its limit configs and its buckets. Audit events are kept. Deleting an
entity that does not exist does nothing.`,
		Example: `  zae-limiter entity delete key-123 --yes`,
		Args:    exactArgs("ENTITY_ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.ID = args[0]
			if err := limits.ValidateEntityID(opts.ID); err != nil {
				return err
			}
			if err := env.requireYes(opts.Yes); err != nil {
				return err
			}
			if runF != nil {
				return runF(opts)
			}
			return entityDeleteRun(cmd.Context(), opts)
		},
	}
	addYesFlag(cmd, &opts.Yes)
	return cmd
}

func entityDeleteRun(ctx context.Context, opts *entityDeleteOptions) error {
	env := opts.env
	none := fmt.Sprintf("Entity %q not found in namespace %q: nothing deleted", opts.ID, env.Namespace)
	var n int
	deleted, err := env.deleteInNS(ctx, nsDeletion{
		yes: opts.Yes, question: "Delete entity " + quote(opts.ID) + " with its limits and buckets?",
		noNS: none, notFound: none,
		del: func(ns *store.NS) (err error) {
			n, err = ns.DeleteEntity(ctx, opts.ID)
			return err
		},
	})
	if deleted {
		env.progress("Deleted entity %q (%d records)", opts.ID, n)
	}
	return err
}

// entity list

type entityListOptions struct {
	env    *Env
	Parent string
	Output outputFormat
}

func newCmdEntityList(env *Env, runF func(*entityListOptions) error) *cobra.Command {
	opts := &entityListOptions{env: env}
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List entities (all, or the children of --parent)",
		Example: `  zae-limiter entity list
  zae-limiter entity list --parent org-acme -o json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cmd.Flags().Changed("parent") {
				if err := limits.ValidateIdentifier("parent_id", opts.Parent); err != nil {
					return err
				}
			}
			if runF != nil {
				return runF(opts)
			}
			return entityListRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().StringVar(&opts.Parent, "parent", "", "list only the children of the entity `ID` (e.g. --parent org-acme)")
	addOutputFlag(cmd, &opts.Output)
	return cmd
}

func entityListRun(ctx context.Context, opts *entityListOptions) error {
	env := opts.env
	var es []store.Entity
	ns, err := env.readNS(ctx)
	if err != nil {
		return err
	}
	if ns != nil {
		if es, err = ns.ListEntities(ctx, opts.Parent); err != nil {
			return env.tableErr(err)
		}
	}
	if opts.Output.json() {
		out := make([]entityJSON, 0, len(es))
		for _, e := range es {
			out = append(out, toEntityJSON(e))
		}
		return writeJSON(env.Out, out)
	}
	if len(es) == 0 {
		env.progress("No entities in namespace %q", env.Namespace)
		return nil
	}
	t := newTable(env.Out, "ENTITY", "NAME", "PARENT", "CASCADE", "CREATED")
	for _, e := range es {
		t.row(e.ID, orDash(e.Name), orDash(e.ParentID), strconv.FormatBool(e.Cascade), timestamp(e.CreatedAt))
	}
	return t.flush()
}

// entity set-limits

type entitySetLimitsOptions struct {
	env      *Env
	ID       string
	Resource string
	Limits   []limits.Limit
}

func newCmdEntitySetLimits(env *Env, runF func(*entitySetLimitsOptions) error) *cobra.Command {
	opts := &entitySetLimitsOptions{env: env}
	var specs, shadow []string
	cmd := &cobra.Command{
		Use:   "set-limits ENTITY_ID [--resource RESOURCE] -l LIMIT...",
		Short: "Set an entity's own limits for a resource",
		Long: `Set ENTITY_ID's own limits for --resource (default _default_: every resource without its
own entity limits). They override the resource and system defaults. The entity need not have
been created.`,
		Example: `  zae-limiter entity set-limits user-premium --resource gpt-4 -l rpm:500 -l tpm:500000
  zae-limiter entity set-limits user-premium -l rpm:1000      # all resources (_default_)
  zae-limiter entity set-limits org-acme --resource gpt-4 -l tpm:5000000/calendar-month
  zae-limiter entity set-limits org-acme --resource gpt-4 -l rpm:500 -l rpd:2000/day --shadow rpd`,
		Args: exactArgs("ENTITY_ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.ID = args[0]
			if err := limits.ValidateEntityID(opts.ID); err != nil {
				return err
			}
			if err := limits.ValidateConfigResource(opts.Resource); err != nil {
				return err
			}
			var err error
			if opts.Limits, err = parseShadowLimits(specs, shadow); err != nil {
				return err
			}
			if runF != nil {
				return runF(opts)
			}
			return entitySetLimitsRun(cmd.Context(), opts)
		},
	}
	addResourceFlag(cmd, &opts.Resource, limits.DefaultResource)
	addLimitFlag(cmd, &specs)
	addShadowFlag(cmd, &shadow)
	return cmd
}

func addResourceFlag(cmd *cobra.Command, r *string, def string) {
	usage := "`RESOURCE` the limits apply to (e.g. --resource gpt-4)"
	if def != "" {
		usage = "`RESOURCE` the limits apply to, _default_ for all (e.g. --resource gpt-4)"
	}
	cmd.Flags().StringVarP(r, "resource", "r", def, usage)
}

func entitySetLimitsRun(ctx context.Context, opts *entitySetLimitsOptions) error {
	env := opts.env
	ns, err := env.writeNS(ctx)
	if err != nil {
		return err
	}
	if err := ns.SetLimits(ctx, opts.ID, opts.Resource, opts.Limits); err != nil {
		return env.tableErr(err)
	}
	env.progress("Limits of entity %q for resource %q set in namespace %q", opts.ID, opts.Resource, env.Namespace)
	return nil
}

// entity get-limits

type entityGetLimitsOptions struct {
	env      *Env
	ID       string
	Resource string // "" = every config of the entity
	Output   outputFormat
}

// entityLimitsJSON is the JSON of `entity get-limits --resource R`; without
// --resource the command prints an array of them, sorted by resource.
type entityLimitsJSON struct {
	EntityID string         `json:"entity_id"`
	Resource string         `json:"resource"`
	Limits   []limits.Limit `json:"limits"`
}

func newCmdEntityGetLimits(env *Env, runF func(*entityGetLimitsOptions) error) *cobra.Command {
	opts := &entityGetLimitsOptions{env: env}
	cmd := &cobra.Command{
		Use:   "get-limits ENTITY_ID [--resource RESOURCE]",
		Short: "Show an entity's own limits",
		Long: `Show ENTITY_ID's own limits for --resource, or for every resource when --resource is not
given. JSON: with --resource one object {entity_id, resource, limits} ({} when none), without
an array of them ([] when none).`,
		Example: `  zae-limiter entity get-limits user-premium
  zae-limiter entity get-limits user-premium --resource gpt-4 -o json`,
		Args: exactArgs("ENTITY_ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.ID = args[0]
			if err := limits.ValidateEntityID(opts.ID); err != nil {
				return err
			}
			if cmd.Flags().Changed("resource") {
				if err := limits.ValidateConfigResource(opts.Resource); err != nil {
					return err
				}
			}
			if runF != nil {
				return runF(opts)
			}
			return entityGetLimitsRun(cmd.Context(), opts)
		},
	}
	addResourceFlag(cmd, &opts.Resource, "")
	addOutputFlag(cmd, &opts.Output)
	return cmd
}

func entityGetLimitsRun(ctx context.Context, opts *entityGetLimitsOptions) error {
	env := opts.env
	ns, err := env.readNS(ctx)
	if err != nil {
		return err
	}
	if opts.Resource != "" {
		var ls []limits.Limit
		if ns != nil {
			if ls, err = ns.GetLimits(ctx, opts.ID, opts.Resource); err != nil && !errors.Is(err, limits.ErrNotFound) {
				return env.tableErr(err)
			}
		}
		return writeLimits(env, opts.Output, entityLimitsJSON{EntityID: opts.ID, Resource: opts.Resource, Limits: ls}, opts.Resource, ls,
			fmt.Sprintf("No limits for entity %q and resource %q in namespace %q", opts.ID, opts.Resource, env.Namespace))
	}

	var cfgs map[string][]limits.Limit
	if ns != nil {
		if cfgs, err = ns.EntityConfigs(ctx, opts.ID); err != nil {
			return env.tableErr(err)
		}
	}
	resources := make([]string, 0, len(cfgs))
	for r, ls := range cfgs {
		if len(ls) > 0 {
			resources = append(resources, r)
		}
	}
	sort.Strings(resources)
	if opts.Output.json() {
		out := make([]entityLimitsJSON, 0, len(resources))
		for _, r := range resources {
			out = append(out, entityLimitsJSON{EntityID: opts.ID, Resource: r, Limits: cfgs[r]})
		}
		return writeJSON(env.Out, out)
	}
	if len(resources) == 0 {
		env.progress("No limits for entity %q in namespace %q", opts.ID, env.Namespace)
		return nil
	}
	t := newTable(env.Out, "RESOURCE", "LIMIT")
	for _, r := range resources {
		t.limitRows(r, cfgs[r])
	}
	return t.flush()
}

// entity delete-limits

type entityDeleteLimitsOptions struct {
	env      *Env
	ID       string
	Resource string
	Yes      bool
}

func newCmdEntityDeleteLimits(env *Env, runF func(*entityDeleteLimitsOptions) error) *cobra.Command {
	opts := &entityDeleteLimitsOptions{env: env}
	cmd := &cobra.Command{
		Use:   "delete-limits ENTITY_ID --resource RESOURCE",
		Short: "Delete an entity's own limits for a resource",
		Example: `  zae-limiter entity delete-limits user-premium --resource gpt-4 --yes
  zae-limiter entity delete-limits user-premium --resource _default_ -y`,
		Args: exactArgs("ENTITY_ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.ID = args[0]
			if err := limits.ValidateEntityID(opts.ID); err != nil {
				return err
			}
			if !cmd.Flags().Changed("resource") {
				return usageErrorf("--resource is required (use --resource _default_ for the entity's default limits)")
			}
			if err := limits.ValidateConfigResource(opts.Resource); err != nil {
				return err
			}
			if err := env.requireYes(opts.Yes); err != nil {
				return err
			}
			if runF != nil {
				return runF(opts)
			}
			return entityDeleteLimitsRun(cmd.Context(), opts)
		},
	}
	addResourceFlag(cmd, &opts.Resource, "")
	addYesFlag(cmd, &opts.Yes)
	return cmd
}

func entityDeleteLimitsRun(ctx context.Context, opts *entityDeleteLimitsOptions) error {
	env := opts.env
	none := fmt.Sprintf("No limits for entity %q and resource %q: nothing deleted", opts.ID, opts.Resource)
	deleted, err := env.deleteInNS(ctx, nsDeletion{
		yes:      opts.Yes,
		question: "Delete the limits of entity " + quote(opts.ID) + " for resource " + quote(opts.Resource) + "?",
		noNS:     none, notFound: none,
		del: func(ns *store.NS) error { return ns.DeleteLimits(ctx, opts.ID, opts.Resource) },
	})
	if deleted {
		env.progress("Limits of entity %q for resource %q deleted in namespace %q", opts.ID, opts.Resource, env.Namespace)
	}
	return err
}
