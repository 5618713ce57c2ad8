package cli

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
	"github.com/spf13/cobra"

	"github.com/zeroae/zae-limiter-go/shared/archive"
	"github.com/zeroae/zae-limiter-go/shared/awsenv"
	"github.com/zeroae/zae-limiter-go/shared/limits"
	"github.com/zeroae/zae-limiter-go/shared/store"
)

// archiveBucketOutput is the stack output naming the archive bucket.
const archiveBucketOutput = "AuditArchiveBucketName"

var bucketNameRe = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)

// S3 returns the S3 client, built once (path-style on a custom endpoint).
func (e *Env) S3(ctx context.Context) (*s3.Client, error) {
	if e.s3 == nil {
		cfg, err := e.AWSConfig(ctx)
		if err != nil {
			return nil, err
		}
		e.s3 = awsenv.NewS3(cfg)
	}
	return e.s3, nil
}

// archiveBucket finds the audit archive bucket: --bucket when given; on a
// custom S3 endpoint (the local stack) the bucket `local up` creates,
// archive.LocalBucketName(--name); on AWS the output AuditArchiveBucketName
// of the stack --name.
func (e *Env) archiveBucket(ctx context.Context, flag string) (string, error) {
	if flag != "" {
		if !bucketNameRe.MatchString(flag) {
			return "", limits.Invalid("bucket", flag, "must be an S3 bucket name (3-63 lower-case letters, digits, '.' or '-')")
		}
		return flag, nil
	}
	if err := validateTableName(e.Name); err != nil {
		return "", err
	}
	cfg, err := e.AWSConfig(ctx)
	if err != nil {
		return "", err
	}
	if awsenv.S3Endpoint(cfg) != "" {
		return archive.LocalBucketName(e.Name), nil
	}
	out, err := cloudformation.NewFromConfig(cfg).DescribeStacks(ctx, &cloudformation.DescribeStacksInput{StackName: aws.String(e.Name)})
	if err != nil {
		var ae smithy.APIError
		if errors.As(err, &ae) && ae.ErrorCode() == "ValidationError" {
			return "", fmt.Errorf("stack %q not found in %s: pass --bucket with the audit archive bucket", e.Name, e.endpoint())
		}
		return "", fmt.Errorf("find the audit archive bucket of stack %q: %w (or pass --bucket)", e.Name, err)
	}
	for _, st := range out.Stacks {
		for _, o := range st.Outputs {
			if aws.ToString(o.OutputKey) == archiveBucketOutput && aws.ToString(o.OutputValue) != "" {
				return aws.ToString(o.OutputValue), nil
			}
		}
	}
	return "", fmt.Errorf("stack %q has no audit archive (output %s; EnableAuditArchival is false?): pass --bucket", e.Name, archiveBucketOutput)
}

// archiveErr turns a missing bucket into one clear line.
func (e *Env) archiveErr(bucket string, err error) error {
	var ae smithy.APIError
	if errors.As(err, &ae) && ae.ErrorCode() == "NoSuchBucket" {
		return fmt.Errorf("audit archive bucket %q not found: run 'zae-limiter local up', deploy with EnableAuditArchival=true, or pass --bucket", bucket)
	}
	return e.tableErr(err)
}

// ageValue is a --older-than flag: a Go duration ("36h", "0s") or whole
// days ("90d").
type ageValue struct{ d time.Duration }

func (a *ageValue) String() string {
	if a.d%(24*time.Hour) == 0 && a.d > 0 {
		return strconv.FormatInt(int64(a.d/(24*time.Hour)), 10) + "d"
	}
	return a.d.String()
}

func (a *ageValue) Type() string { return "duration" }

func (a *ageValue) Set(s string) error {
	if n, ok := strings.CutSuffix(s, "d"); ok {
		days, err := strconv.Atoi(n)
		if err != nil || days < 0 || days > 36500 {
			return fmt.Errorf("want a duration such as 90d, 36h or 0s")
		}
		a.d = time.Duration(days) * 24 * time.Hour
		return nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return fmt.Errorf("want a duration such as 90d, 36h or 0s")
	}
	a.d = d
	return nil
}

type auditArchiveOptions struct {
	env           *Env
	OlderThan     time.Duration
	AllNamespaces bool
	Bucket        string
	Output        outputFormat
}

// auditArchiveJSON is the JSON document of `audit archive`.
type auditArchiveJSON struct {
	Archived int      `json:"archived"`
	Objects  []string `json:"objects"`
}

func newCmdAuditArchive(env *Env, runF func(*auditArchiveOptions) error) *cobra.Command {
	opts := &auditArchiveOptions{env: env}
	age := &ageValue{d: store.DefaultAuditRetention}
	cmd := &cobra.Command{
		Use:   "archive",
		Short: "Move due audit events to the S3 archive now",
		Long: `Run an audit archival now, as the scheduled archiver function does: the namespace's audit
events that are at least --older-than old (default 90d, the default retention), or within 72 hours of
their TTL, are written to the archive bucket as gzip JSON Lines and deleted from DynamoDB once the
object reads back intact. --older-than 0s archives every event. A run interrupted anywhere is
completed by the next one, and no event is ever in the archive twice.

The bucket is --bucket; else, with a custom S3 endpoint (the local stack), '<name>-audit-archive';
else the output AuditArchiveBucketName of the stack --name. Progress goes to stderr; the objects
written go to stdout (-o json: {"archived": n, "objects": ["s3://..."]}).`,
		Example: `  zae-limiter audit archive
  zae-limiter audit archive --older-than 0s -o json
  zae-limiter audit archive --all-namespaces --bucket my-audit-archive`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts.OlderThan = age.d
			if opts.Bucket != "" && !bucketNameRe.MatchString(opts.Bucket) {
				return limits.Invalid("bucket", opts.Bucket, "must be an S3 bucket name (3-63 lower-case letters, digits, '.' or '-')")
			}
			if runF != nil {
				return runF(opts)
			}
			return auditArchiveRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().Var(age, "older-than", "archive events at least `AGE` old (e.g. --older-than 30d; 0s: every event)")
	cmd.Flags().BoolVar(&opts.AllNamespaces, "all-namespaces", false, "archive every namespace's events, as the schedule does (e.g. --all-namespaces --older-than 0s)")
	addBucketFlag(cmd, &opts.Bucket)
	addOutputFlag(cmd, &opts.Output)
	return cmd
}

func addBucketFlag(cmd *cobra.Command, b *string) {
	cmd.Flags().StringVar(b, "bucket", "", "audit archive `BUCKET` (e.g. --bucket my-audit-archive; default: <name>-audit-archive locally, else the stack's output AuditArchiveBucketName)")
}

func auditArchiveRun(ctx context.Context, opts *auditArchiveOptions) error {
	env := opts.env
	if err := validateTableName(env.Name); err != nil {
		return err
	}
	res := auditArchiveJSON{Objects: []string{}}
	nsID := ""
	if !opts.AllNamespaces {
		ns, err := env.readNS(ctx)
		if err != nil {
			return err
		}
		if ns == nil {
			return writeArchiveResult(env, opts, res)
		}
		nsID = ns.ID
	}
	bucket, err := env.archiveBucket(ctx, opts.Bucket)
	if err != nil {
		return err
	}
	db, err := env.DynamoDB(ctx)
	if err != nil {
		return err
	}
	s3c, err := env.S3(ctx)
	if err != nil {
		return err
	}
	a, err := archive.New(archive.Options{DB: db, S3: s3c, Table: env.Name, Bucket: bucket,
		Progress: func(p archive.Progress) {
			env.progress("Archived %d events in %d objects (day %s)", p.Archived, p.Objects, p.Day)
		}})
	if err != nil {
		return err
	}
	rep, err := a.Run(ctx, archive.Request{OlderThan: opts.OlderThan, Namespace: nsID})
	if err != nil {
		if rep.Archived > 0 {
			env.progress("Archived %d events before the failure; the next run completes the rest", rep.Archived)
		}
		return env.archiveErr(bucket, err)
	}
	res.Archived = rep.Archived
	res.Objects = append(res.Objects, rep.Objects...)
	if rep.Incomplete {
		env.note("the run stopped at its deadline; run it again to archive the rest")
	}
	return writeArchiveResult(env, opts, res)
}

func writeArchiveResult(env *Env, opts *auditArchiveOptions, res auditArchiveJSON) error {
	if opts.Output.json() {
		return writeJSON(env.Out, res)
	}
	for _, o := range res.Objects {
		fmt.Fprintln(env.Out, o)
	}
	switch res.Archived {
	case 0:
		env.progress("No audit events due in namespace %q", env.Namespace)
	default:
		env.progress("Archived %d audit events in %d objects", res.Archived, len(res.Objects))
	}
	return nil
}

// archivedEvents reads an entity's archived events (audit list --archived).
func archivedEvents(ctx context.Context, opts *auditListOptions, nsID string) ([]store.AuditEvent, error) {
	env := opts.env
	bucket, err := env.archiveBucket(ctx, opts.Bucket)
	if err != nil {
		return nil, err
	}
	s3c, err := env.S3(ctx)
	if err != nil {
		return nil, err
	}
	r := &archive.Reader{S3: s3c, Bucket: bucket}
	lastShown := 0
	evs, err := r.Events(ctx, archive.Query{
		Namespace: nsID, EntityID: opts.EntityID, Limit: opts.Limit, StartAfter: opts.StartAfter,
		Progress: func(read, total int) {
			if total >= archiveProgressMin && read-lastShown >= total/10 {
				env.progress("Read %d of %d archive objects", read, total)
				lastShown = read
			}
		},
	})
	if err != nil {
		return nil, env.archiveErr(bucket, err)
	}
	return evs, nil
}

// archiveProgressMin is the archive size (objects) from which reading it
// back shows progress.
const archiveProgressMin = 50
