package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"

	"github.com/zeroae/zae-limiter-go/shared/dynamo"
	"github.com/zeroae/zae-limiter-go/shared/limits"
	"github.com/zeroae/zae-limiter-go/shared/schema"
)

// ErrIncompatibleSchema: the table's schema major version differs from
// schema.Version.
var ErrIncompatibleSchema = errors.New("incompatible table schema")

// tableWaitLimit bounds CreateTable's wait for ACTIVE when ctx has no deadline.
const tableWaitLimit = 5 * time.Minute

// CreateTable creates the table (schema.CreateTableInput), waits until it
// and its indexes are ACTIVE, and enables TTL. An existing table is not an
// error: created is false and the call still waits and enables TTL.
func (s *Store) CreateTable(ctx context.Context) (created bool, err error) {
	_, err = s.db.CreateTable(ctx, schema.CreateTableInput(s.table))
	created = err == nil
	var inUse *types.ResourceInUseException
	if err != nil && !errors.As(err, &inUse) {
		return false, fmt.Errorf("create table %q: %w", s.table, err)
	}
	if err := s.waitActive(ctx); err != nil {
		return created, fmt.Errorf("create table %q: %w", s.table, err)
	}
	if _, err := s.db.UpdateTimeToLive(ctx, schema.TTLInput(s.table)); err != nil && !ttlAlreadyOn(err) {
		return created, fmt.Errorf("enable ttl on table %q: %w", s.table, err)
	}
	return created, nil
}

func ttlAlreadyOn(err error) bool {
	var api smithy.APIError
	return errors.As(err, &api) && api.ErrorCode() == "ValidationException" &&
		strings.Contains(strings.ToLower(api.ErrorMessage()), "already enabled")
}

func (s *Store) waitActive(ctx context.Context) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, tableWaitLimit)
		defer cancel()
	}
	for i := 0; ; i++ {
		out, err := s.db.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(s.table)})
		var nf *types.ResourceNotFoundException
		switch {
		case errors.As(err, &nf): // not visible yet
		case err != nil:
			return err
		case out.Table.TableStatus == types.TableStatusDeleting:
			return errors.New("table is being deleted")
		case out.Table.TableStatus == types.TableStatusActive && indexesActive(out.Table):
			return nil
		}
		if err := sleep(ctx, min(i, 3)); err != nil {
			return fmt.Errorf("waiting for ACTIVE: %w", err)
		}
	}
}

func indexesActive(t *types.TableDescription) bool {
	for _, ix := range t.GlobalSecondaryIndexes {
		if ix.IndexStatus != types.IndexStatusActive {
			return false
		}
	}
	return true
}

// Ping reads the version record to check that the table answers.
func (s *Store) Ping(ctx context.Context) error {
	if _, err := s.getItem(ctx, schema.VersionKey(), false); err != nil {
		return fmt.Errorf("ping table %q: %w", s.table, err)
	}
	return nil
}

// VersionRecord is the table-wide version record.
type VersionRecord struct {
	SchemaVersion    string    `json:"schema_version"`
	LambdaVersion    string    `json:"lambda_version,omitempty"`
	ClientMinVersion string    `json:"client_min_version"`
	UpdatedAt        time.Time `json:"updated_at"`
	UpdatedBy        string    `json:"updated_by,omitempty"`
}

// Version reads the version record; limits.ErrNotFound when there is none.
func (s *Store) Version(ctx context.Context) (VersionRecord, error) {
	it, err := s.getItem(ctx, schema.VersionKey(), true)
	if err != nil {
		return VersionRecord{}, fmt.Errorf("read version record of table %q: %w", s.table, err)
	}
	if it == nil {
		return VersionRecord{}, fmt.Errorf("version record of table %q: %w", s.table, limits.ErrNotFound)
	}
	return VersionRecord{
		SchemaVersion:    dynamo.GetS(it, "schema_version"),
		LambdaVersion:    dynamo.GetS(it, "lambda_version"),
		ClientMinVersion: dynamo.GetS(it, "client_min_version"),
		UpdatedAt:        parseTime(dynamo.GetS(it, "updated_at")),
		UpdatedBy:        dynamo.GetS(it, "updated_by"),
	}, nil
}

// PutVersion writes the version record. An empty SchemaVersion means
// schema.Version, an empty ClientMinVersion "0.0.0", a zero UpdatedAt now.
func (s *Store) PutVersion(ctx context.Context, r VersionRecord) error {
	return s.putVersion(ctx, r, false)
}

func (s *Store) putVersion(ctx context.Context, r VersionRecord, onlyNew bool) error {
	if r.SchemaVersion == "" {
		r.SchemaVersion = schema.Version
	}
	if r.ClientMinVersion == "" {
		r.ClientMinVersion = "0.0.0"
	}
	if r.UpdatedAt.IsZero() {
		r.UpdatedAt = s.now()
	}
	k := schema.VersionKey()
	it := keyItem(k)
	it["schema_version"] = dynamo.S(r.SchemaVersion)
	it["client_min_version"] = dynamo.S(r.ClientMinVersion)
	it["updated_at"] = dynamo.S(fmtTime(r.UpdatedAt))
	if r.LambdaVersion != "" {
		it["lambda_version"] = dynamo.S(r.LambdaVersion)
	}
	if r.UpdatedBy != "" {
		it["updated_by"] = dynamo.S(r.UpdatedBy)
	}
	setGSI4(it, schema.TableNS, k)
	in := &dynamodb.PutItemInput{TableName: aws.String(s.table), Item: it}
	if onlyNew {
		var e dynamo.Expr
		in.ConditionExpression = aws.String(notExists(&e))
		in.ExpressionAttributeNames = e.Names()
	}
	_, err := s.db.PutItem(ctx, in)
	return err
}

// EnsureVersion writes the version record (schema.Version) when the table
// has none, and fails with ErrIncompatibleSchema when the stored schema's
// major version differs from this build's.
func (s *Store) EnsureVersion(ctx context.Context, updatedBy string) error {
	rec, err := s.Version(ctx)
	if errors.Is(err, limits.ErrNotFound) {
		err = s.putVersion(ctx, VersionRecord{UpdatedBy: updatedBy}, true)
		if err == nil {
			return nil
		}
		if !dynamo.IsCondFailed(err) {
			return fmt.Errorf("write version record of table %q: %w", s.table, err)
		}
		rec, err = s.Version(ctx) // written concurrently
	}
	if err != nil {
		return err
	}
	if major(rec.SchemaVersion) != major(schema.Version) {
		return fmt.Errorf("table %q has schema %s, this build needs %s: %w",
			s.table, rec.SchemaVersion, schema.Version, ErrIncompatibleSchema)
	}
	return nil
}

func major(v string) string {
	m, _, _ := strings.Cut(strings.TrimPrefix(v, "v"), ".")
	return m
}
