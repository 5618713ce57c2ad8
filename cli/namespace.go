package cli

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/zeroae/zae-limiter-go/shared/limits"
	"github.com/zeroae/zae-limiter-go/shared/store"
)

func newCmdNamespace(env *Env) *cobra.Command {
	return newGroup("namespace", "Manage namespaces (isolated sets of limits and entities in one table)",
		`  zae-limiter namespace register tenant-a tenant-b
  zae-limiter namespace list
  zae-limiter entity set-limits user-1 -l rpm:10 -N tenant-a`,
		newCmdNamespaceRegister(env, nil),
		newCmdNamespaceList(env, nil),
		newCmdNamespaceShow(env, nil),
		newCmdNamespaceDelete(env, nil),
		newCmdNamespaceRecover(env, nil),
		newCmdNamespaceOrphans(env, nil),
		newCmdNamespacePurge(env, nil),
	)
}

// namespaceJSON is the JSON of a namespace (`namespace show|list|orphans`).
type namespaceJSON struct {
	Name      string `json:"name"`
	ID        string `json:"namespace_id"`
	Status    string `json:"status"`
	CreatedAt string `json:"created_at,omitempty"`
	DeletedAt string `json:"deleted_at,omitempty"`
}

func toNamespaceJSON(ns store.Namespace) namespaceJSON {
	j := namespaceJSON{Name: ns.Name, ID: ns.ID, Status: ns.Status}
	if !ns.CreatedAt.IsZero() {
		j.CreatedAt = timestamp(ns.CreatedAt)
	}
	if !ns.DeletedAt.IsZero() {
		j.DeletedAt = timestamp(ns.DeletedAt)
	}
	return j
}

// namespace register

type namespaceRegisterOptions struct {
	env   *Env
	Names []string
}

func newCmdNamespaceRegister(env *Env, runF func(*namespaceRegisterOptions) error) *cobra.Command {
	opts := &namespaceRegisterOptions{env: env}
	cmd := &cobra.Command{
		Use:   "register NAME...",
		Short: "Register namespaces (idempotent)",
		Long: `Register one or more namespaces and print their ids. Registering an existing namespace
prints its id. The namespace "default" is registered automatically on the first write.`,
		Example: `  zae-limiter namespace register tenant-a
  zae-limiter namespace register tenant-a tenant-b tenant-c`,
		Args: minArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			for _, n := range args {
				if err := limits.ValidateNamespaceName(n); err != nil {
					return err
				}
			}
			opts.Names = args
			if runF != nil {
				return runF(opts)
			}
			return namespaceRegisterRun(cmd.Context(), opts)
		},
	}
	return cmd
}

func namespaceRegisterRun(ctx context.Context, opts *namespaceRegisterOptions) error {
	env := opts.env
	st, err := env.Store(ctx)
	if err != nil {
		return err
	}
	var done []store.Namespace
	for _, n := range opts.Names {
		ns, err := st.RegisterNamespace(ctx, n)
		if err != nil {
			if len(done) > 0 {
				_ = writeNamespaces(env, formatTable, done, false)
			}
			return env.tableErr(err)
		}
		done = append(done, ns)
	}
	t := newTable(env.Out, "NAME", "NAMESPACE ID")
	for _, ns := range done {
		t.row(ns.Name, ns.ID)
	}
	return t.flush()
}

// namespace list

type namespaceListOptions struct {
	env    *Env
	Output outputFormat
}

func newCmdNamespaceList(env *Env, runF func(*namespaceListOptions) error) *cobra.Command {
	opts := &namespaceListOptions{env: env}
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the active namespaces",
		Example: `  zae-limiter namespace list
  zae-limiter namespace list -o json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if runF != nil {
				return runF(opts)
			}
			return namespaceListRun(cmd.Context(), opts)
		},
	}
	addOutputFlag(cmd, &opts.Output)
	return cmd
}

func namespaceListRun(ctx context.Context, opts *namespaceListOptions) error {
	return listNamespaces(ctx, opts.env, opts.Output, false)
}

// listNamespaces prints the active namespaces or, with orphans, the
// soft-deleted ones.
func listNamespaces(ctx context.Context, env *Env, o outputFormat, orphans bool) error {
	st, err := env.Store(ctx)
	if err != nil {
		return err
	}
	list := st.ListNamespaces
	if orphans {
		list = st.ListOrphanNamespaces
	}
	nss, err := list(ctx)
	if err != nil {
		return env.tableErr(err)
	}
	return writeNamespaces(env, o, nss, orphans)
}

func writeNamespaces(env *Env, o outputFormat, nss []store.Namespace, orphans bool) error {
	if o.json() {
		out := make([]namespaceJSON, 0, len(nss))
		for _, ns := range nss {
			out = append(out, toNamespaceJSON(ns))
		}
		return writeJSON(env.Out, out)
	}
	if len(nss) == 0 {
		if orphans {
			env.progress("No deleted namespaces")
		} else {
			env.progress("No namespaces registered")
		}
		return nil
	}
	if orphans {
		t := newTable(env.Out, "NAMESPACE ID", "NAME", "STATUS", "DELETED")
		for _, ns := range nss {
			t.row(ns.ID, ns.Name, ns.Status, timestamp(ns.DeletedAt))
		}
		return t.flush()
	}
	t := newTable(env.Out, "NAME", "NAMESPACE ID", "CREATED")
	for _, ns := range nss {
		t.row(ns.Name, ns.ID, timestamp(ns.CreatedAt))
	}
	return t.flush()
}

// namespace show

type namespaceShowOptions struct {
	env    *Env
	Name   string
	Output outputFormat
}

func newCmdNamespaceShow(env *Env, runF func(*namespaceShowOptions) error) *cobra.Command {
	opts := &namespaceShowOptions{env: env}
	cmd := &cobra.Command{
		Use:   "show NAME",
		Short: "Show a namespace (exit 1 when it is not registered)",
		Example: `  zae-limiter namespace show tenant-a
  zae-limiter namespace show default -o json`,
		Args: exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Name = args[0]
			if err := limits.ValidateNamespaceName(opts.Name); err != nil {
				return err
			}
			if runF != nil {
				return runF(opts)
			}
			return namespaceShowRun(cmd.Context(), opts)
		},
	}
	addOutputFlag(cmd, &opts.Output)
	return cmd
}

func namespaceShowRun(ctx context.Context, opts *namespaceShowOptions) error {
	env := opts.env
	_, ns, err := getNamespace(ctx, env, opts.Name)
	if err != nil {
		return err
	}
	if opts.Output.json() {
		return writeJSON(env.Out, toNamespaceJSON(ns))
	}
	t := newTable(env.Out)
	t.row("Namespace:", ns.Name)
	t.row("Namespace ID:", ns.ID)
	t.row("Status:", ns.Status)
	t.row("Created:", timestamp(ns.CreatedAt))
	return t.flush()
}

// getNamespace reads the registered namespace name, with the store; a name
// not registered is an error saying so.
func getNamespace(ctx context.Context, env *Env, name string) (*store.Store, store.Namespace, error) {
	st, err := env.Store(ctx)
	if err != nil {
		return nil, store.Namespace{}, err
	}
	ns, err := st.GetNamespace(ctx, name)
	if errors.Is(err, limits.ErrNotFound) {
		return nil, store.Namespace{}, namespaceNotFound(name)
	}
	if err != nil {
		return nil, store.Namespace{}, env.tableErr(err)
	}
	return st, ns, nil
}

func namespaceNotFound(name string) error { return fmt.Errorf("namespace %q not found", name) }

// namespace delete

type namespaceDeleteOptions struct {
	env  *Env
	Name string
	Yes  bool
}

func newCmdNamespaceDelete(env *Env, runF func(*namespaceDeleteOptions) error) *cobra.Command {
	opts := &namespaceDeleteOptions{env: env}
	cmd := &cobra.Command{
		Use:   "delete NAME",
		Short: "Soft-delete a namespace (its data stays until purge)",
		Long: `Soft-delete a namespace: the name is released and its data is orphaned under its id.
'namespace recover ID' undoes it; 'namespace purge ID' deletes the data for good.`,
		Example: `  zae-limiter namespace delete tenant-a --yes`,
		Args:    exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Name = args[0]
			if err := limits.ValidateNamespaceName(opts.Name); err != nil {
				return err
			}
			if err := env.requireYes(opts.Yes); err != nil {
				return err
			}
			if runF != nil {
				return runF(opts)
			}
			return namespaceDeleteRun(cmd.Context(), opts)
		},
	}
	addYesFlag(cmd, &opts.Yes)
	return cmd
}

func namespaceDeleteRun(ctx context.Context, opts *namespaceDeleteOptions) error {
	env := opts.env
	st, ns, err := getNamespace(ctx, env, opts.Name)
	if err != nil {
		return err
	}
	if err := env.confirm(opts.Yes, "Delete namespace "+quote(opts.Name)+" (id "+ns.ID+")?"); err != nil {
		return err
	}
	if err := st.DeleteNamespace(ctx, opts.Name); err != nil {
		if errors.Is(err, limits.ErrNotFound) {
			return namespaceNotFound(opts.Name)
		}
		return env.tableErr(err)
	}
	env.progress("Deleted namespace %q; recover with 'zae-limiter namespace recover %s', purge with 'zae-limiter namespace purge %s'",
		opts.Name, ns.ID, ns.ID)
	return nil
}

// namespace recover

type namespaceRecoverOptions struct {
	env *Env
	ID  string
}

func newCmdNamespaceRecover(env *Env, runF func(*namespaceRecoverOptions) error) *cobra.Command {
	opts := &namespaceRecoverOptions{env: env}
	cmd := &cobra.Command{
		Use:   "recover NAMESPACE_ID",
		Short: "Recover a soft-deleted namespace under its old name",
		Example: `  zae-limiter namespace orphans
  zae-limiter namespace recover Jk3x9_aQm2E`,
		Args: exactArgs("NAMESPACE_ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.ID = args[0]
			if runF != nil {
				return runF(opts)
			}
			return namespaceRecoverRun(cmd.Context(), opts)
		},
	}
	return cmd
}

func namespaceRecoverRun(ctx context.Context, opts *namespaceRecoverOptions) error {
	env := opts.env
	st, err := env.Store(ctx)
	if err != nil {
		return err
	}
	ns, err := st.RecoverNamespace(ctx, opts.ID)
	if errors.Is(err, limits.ErrNotFound) {
		return fmt.Errorf("namespace id %q not found (this takes an id, not a name: 'zae-limiter namespace orphans' lists deleted ones)", opts.ID)
	}
	if err != nil {
		return env.tableErr(err)
	}
	env.progress("Recovered namespace %q (id %s)", ns.Name, ns.ID)
	return nil
}

// namespace orphans

type namespaceOrphansOptions struct {
	env    *Env
	Output outputFormat
}

func newCmdNamespaceOrphans(env *Env, runF func(*namespaceOrphansOptions) error) *cobra.Command {
	opts := &namespaceOrphansOptions{env: env}
	cmd := &cobra.Command{
		Use:   "orphans",
		Short: "List soft-deleted namespaces whose data can be recovered or purged",
		Example: `  zae-limiter namespace orphans
  zae-limiter namespace orphans -o json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if runF != nil {
				return runF(opts)
			}
			return namespaceOrphansRun(cmd.Context(), opts)
		},
	}
	addOutputFlag(cmd, &opts.Output)
	return cmd
}

func namespaceOrphansRun(ctx context.Context, opts *namespaceOrphansOptions) error {
	return listNamespaces(ctx, opts.env, opts.Output, true)
}

// namespace purge

type namespacePurgeOptions struct {
	env *Env
	ID  string
	Yes bool
}

func newCmdNamespacePurge(env *Env, runF func(*namespacePurgeOptions) error) *cobra.Command {
	opts := &namespacePurgeOptions{env: env}
	cmd := &cobra.Command{
		Use:   "purge NAMESPACE_ID",
		Short: "Delete every item of a soft-deleted namespace (irreversible)",
		Long: `Delete every item of a soft-deleted namespace and its registry record. The namespace must
have been deleted with 'namespace delete' first. Progress goes to stderr.`,
		Example: `  zae-limiter namespace orphans
  zae-limiter namespace purge Jk3x9_aQm2E --yes`,
		Args: exactArgs("NAMESPACE_ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.ID = args[0]
			if err := env.requireYes(opts.Yes); err != nil {
				return err
			}
			if runF != nil {
				return runF(opts)
			}
			return namespacePurgeRun(cmd.Context(), opts)
		},
	}
	addYesFlag(cmd, &opts.Yes)
	return cmd
}

func namespacePurgeRun(ctx context.Context, opts *namespacePurgeOptions) error {
	env := opts.env
	st, err := env.Store(ctx)
	if err != nil {
		return err
	}
	if err := env.confirm(opts.Yes, "Purge every item of namespace id "+opts.ID+"? This cannot be undone."); err != nil {
		return err
	}
	last := 0
	n, err := st.PurgeNamespace(ctx, opts.ID, func(deleted int) {
		if deleted-last >= 100 {
			env.progress("  %d items deleted...", deleted)
			last = deleted
		}
	})
	if errors.Is(err, limits.ErrNotFound) {
		return fmt.Errorf("namespace id %q not found (this takes an id, not a name: 'zae-limiter namespace orphans' lists deleted ones)", opts.ID)
	}
	if err != nil {
		return env.tableErr(err)
	}
	env.progress("Purged namespace id %s (%d items deleted)", opts.ID, n)
	return nil
}
