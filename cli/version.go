package cli

import (
	"context"
	"errors"

	"github.com/spf13/cobra"

	"github.com/zeroae/zae-limiter-go/shared/limits"
	"github.com/zeroae/zae-limiter-go/shared/schema"
	"github.com/zeroae/zae-limiter-go/shared/store"
)

type versionOptions struct {
	env    *Env
	Output outputFormat
}

// versionJSON is the JSON of `version`; Table is omitted when the table
// cannot be reached, and is {} when it has no version record.
type versionJSON struct {
	CLI    string            `json:"cli_version"`
	Schema string            `json:"schema_version"`
	Table  *tableVersionJSON `json:"table,omitempty"`
	Error  string            `json:"table_error,omitempty"`
}

type tableVersionJSON struct {
	SchemaVersion    string `json:"schema_version,omitempty"`
	LambdaVersion    string `json:"lambda_version,omitempty"`
	ClientMinVersion string `json:"client_min_version,omitempty"`
	UpdatedAt        string `json:"updated_at,omitempty"`
	UpdatedBy        string `json:"updated_by,omitempty"`
}

func newCmdVersion(env *Env, runF func(*versionOptions) error) *cobra.Command {
	opts := &versionOptions{env: env}
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Show the CLI version and, when reachable, the table's version record",
		Long: `Show the CLI and schema versions, then the version record of the table named by --name
when it can be reached. An unreachable or missing table is reported on stderr; the command
still exits 0.`,
		Example: `  zae-limiter version
  zae-limiter version -n prod --region us-east-1 -o json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if runF != nil {
				return runF(opts)
			}
			return versionRun(cmd.Context(), opts)
		},
	}
	addOutputFlag(cmd, &opts.Output)
	return cmd
}

func versionRun(ctx context.Context, opts *versionOptions) error {
	env := opts.env
	doc := versionJSON{CLI: version(), Schema: schema.Version}
	var rec store.VersionRecord
	st, err := env.Store(ctx)
	if err == nil {
		rec, err = st.Version(ctx)
	}
	switch {
	case err == nil:
		doc.Table = &tableVersionJSON{
			SchemaVersion: rec.SchemaVersion, LambdaVersion: rec.LambdaVersion,
			ClientMinVersion: rec.ClientMinVersion, UpdatedAt: timestamp(rec.UpdatedAt), UpdatedBy: rec.UpdatedBy,
		}
	case errors.Is(err, limits.ErrNotFound):
		doc.Table = &tableVersionJSON{}
	default:
		doc.Error = oneLine(env.tableErr(err))
	}
	if opts.Output.json() {
		return writeJSON(env.Out, doc)
	}
	t := newTable(env.Out)
	t.row("Client:", doc.CLI)
	t.row("Schema:", doc.Schema)
	switch {
	case doc.Table == nil:
		t.row("Table "+quote(env.Name)+":", "unreachable")
	case doc.Table.SchemaVersion == "":
		t.row("Table "+quote(env.Name)+":", "not initialized")
	default:
		t.row("Table "+quote(env.Name)+":", "schema "+doc.Table.SchemaVersion)
		if doc.Table.LambdaVersion != "" {
			t.row("Lambda:", doc.Table.LambdaVersion)
		}
		t.row("Min client:", doc.Table.ClientMinVersion)
		t.row("Updated:", doc.Table.UpdatedAt+" by "+orDash(doc.Table.UpdatedBy))
	}
	if err := t.flush(); err != nil {
		return err
	}
	if doc.Error != "" {
		env.progress("Note: %s", doc.Error)
	}
	return nil
}
