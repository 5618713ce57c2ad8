package cli

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/zeroae/zae-limiter-go/shared/limits"
	"github.com/zeroae/zae-limiter-go/shared/store"
)

func newCmdAudit(env *Env) *cobra.Command {
	return newGroup("audit", "Show the audit trail of admin changes and archive it to S3",
		`  zae-limiter audit list user-premium
  zae-limiter audit list '$SYSTEM' -o json
  zae-limiter audit archive --older-than 0s
  zae-limiter audit list user-premium --archived`,
		newCmdAuditList(env, nil),
		newCmdAuditArchive(env, nil),
	)
}

type auditListOptions struct {
	env        *Env
	EntityID   string
	Limit      int
	StartAfter string
	Archived   bool
	Bucket     string
	Output     outputFormat
}

// auditEventJSON is one element of the JSON array of `audit list`.
type auditEventJSON struct {
	EventID   string         `json:"event_id"`
	Timestamp string         `json:"timestamp"`
	Action    string         `json:"action"`
	EntityID  string         `json:"entity_id"`
	Principal string         `json:"principal"`
	Resource  string         `json:"resource,omitempty"`
	Details   map[string]any `json:"details,omitempty"`
}

func toAuditEventJSON(e store.AuditEvent) auditEventJSON {
	return auditEventJSON{
		EventID: e.EventID, Timestamp: timestamp(e.Timestamp), Action: e.Action,
		EntityID: e.EntityID, Principal: e.Principal, Resource: e.Resource, Details: e.Details,
	}
}

const defaultAuditLimit = 100

func newCmdAuditList(env *Env, runF func(*auditListOptions) error) *cobra.Command {
	opts := &auditListOptions{env: env}
	cmd := &cobra.Command{
		Use:   "list ENTITY_ID",
		Short: "List the audit events of an entity, newest first",
		Long: `List the audit events of ENTITY_ID, newest first. System defaults are audited under the
entity '$SYSTEM' and resource defaults under '$RESOURCE:<resource>'. When --limit events are
printed, the last event id is the --start-after of the next page (a hint goes to stderr).

Only DynamoDB is read, unless --archived: then only the S3 archive is read (events that
'audit archive' or the scheduled archiver moved there), in the same shape and order. The bucket
is found as for 'audit archive'.`,
		Example: `  zae-limiter audit list user-premium
  zae-limiter audit list user-premium --limit 10 --start-after 01J9Z6Y5W3Q8K2N4M7P1R0S2T3
  zae-limiter audit list '$RESOURCE:gpt-4' -o json
  zae-limiter audit list user-premium --archived -o json`,
		Args: exactArgs("ENTITY_ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.EntityID = args[0]
			if err := validateAuditEntity(opts.EntityID); err != nil {
				return err
			}
			if opts.Limit <= 0 {
				return limits.Invalid("limit", strconv.Itoa(opts.Limit), "must be a positive number")
			}
			if opts.Bucket != "" && !opts.Archived {
				return usageErrorf("--bucket applies only with --archived")
			}
			if runF != nil {
				return runF(opts)
			}
			return auditListRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().IntVar(&opts.Limit, "limit", defaultAuditLimit, "maximum number `N` of events (e.g. --limit 20)")
	cmd.Flags().StringVar(&opts.StartAfter, "start-after", "",
		"list events older than `EVENT_ID`, for paging (e.g. --start-after 01J9Z6Y5W3Q8K2N4M7P1R0S2T3)")
	cmd.Flags().BoolVar(&opts.Archived, "archived", false, "read the S3 archive instead of DynamoDB (e.g. --archived -o json)")
	addBucketFlag(cmd, &opts.Bucket)
	addOutputFlag(cmd, &opts.Output)
	return cmd
}

// validateAuditEntity accepts entity ids and the audit pseudo-entities
// $SYSTEM and $RESOURCE:<resource>.
func validateAuditEntity(id string) error {
	if id == store.SystemAuditID {
		return nil
	}
	if res, ok := strings.CutPrefix(id, store.ResourceAuditID("")); ok {
		return limits.ValidateResource(res)
	}
	return limits.ValidateEntityID(id)
}

func auditListRun(ctx context.Context, opts *auditListOptions) error {
	env := opts.env
	var evs []store.AuditEvent
	ns, err := env.readNS(ctx)
	if err != nil {
		return err
	}
	switch {
	case ns == nil:
	case opts.Archived:
		if evs, err = archivedEvents(ctx, opts, ns.ID); err != nil {
			return err
		}
	default:
		if evs, err = ns.AuditEvents(ctx, opts.EntityID, opts.Limit, opts.StartAfter); err != nil {
			return env.tableErr(err)
		}
	}
	if opts.Output.json() {
		out := make([]auditEventJSON, 0, len(evs))
		for _, e := range evs {
			out = append(out, toAuditEventJSON(e))
		}
		return writeJSON(env.Out, out)
	}
	if len(evs) == 0 {
		where := ""
		if opts.Archived {
			where = " in the archive"
		}
		env.progress("No audit events for %q in namespace %q%s", opts.EntityID, env.Namespace, where)
		return nil
	}
	t := newTable(env.Out, "TIMESTAMP", "ACTION", "PRINCIPAL", "RESOURCE", "EVENT ID", "DETAILS")
	for _, e := range evs {
		details := ""
		if len(e.Details) > 0 {
			b, _ := json.Marshal(e.Details)
			details = string(b)
		}
		t.row(timestamp(e.Timestamp), e.Action, orDash(e.Principal), orDash(e.Resource), e.EventID, details)
	}
	if err := t.flush(); err != nil {
		return err
	}
	if len(evs) == opts.Limit {
		env.progress("More events may exist: add --start-after %s", evs[len(evs)-1].EventID)
	}
	return nil
}
