package stack

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"
	"golang.org/x/sync/errgroup"
)

// ArtifactsPrefix starts every object deploy writes to the artifacts
// bucket: <prefix>functions/<name>/<sha256>.zip and
// <prefix>templates/<sha256>.json. Keys are content hashes: an unchanged
// function keeps its key (the stack sees no change), and any stack of the
// account and region can share the bucket.
const ArtifactsPrefix = "zae-limiter/"

// artifacts is the bucket the functions' zips are uploaded to.
type artifacts struct {
	s      *Stack
	bucket string
	owner  string // the account expected to own the bucket ("" at a custom endpoint)
}

// DefaultArtifactsBucket names the artifacts bucket of an account and
// region (account "" at a custom endpoint, where STS is never asked).
func DefaultArtifactsBucket(account, region string) string {
	if account == "" {
		return "zae-limiter-artifacts-" + region
	}
	return "zae-limiter-artifacts-" + account + "-" + region
}

// artifacts finds (or creates) the artifacts bucket. On AWS every call
// names the account that must own the bucket, so a bucket of the same
// name in another account is never written to.
func (s *Stack) artifacts(ctx context.Context, bucket string) (*artifacts, error) {
	a := &artifacts{s: s, bucket: bucket}
	if !s.local {
		id, err := s.sts.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
		if err != nil {
			return nil, fmt.Errorf("find the AWS account (for the artifacts bucket): %w", err)
		}
		a.owner = aws.ToString(id.Account)
	}
	if a.bucket == "" {
		a.bucket = DefaultArtifactsBucket(a.owner, s.cfg.Region)
	}
	_, err := s.s3.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(a.bucket), ExpectedBucketOwner: a.expected()})
	switch {
	case err == nil:
		return a, nil
	case !isNotFound(err):
		return nil, fmt.Errorf("artifacts bucket %s: %w (is it another account's? name another with --artifacts-bucket)", a.bucket, err)
	}
	s.progress("Creating the artifacts bucket %s", a.bucket)
	in := &s3.CreateBucketInput{Bucket: aws.String(a.bucket)}
	if r := s.cfg.Region; r != "" && r != "us-east-1" {
		in.CreateBucketConfiguration = &s3types.CreateBucketConfiguration{LocationConstraint: s3types.BucketLocationConstraint(r)}
	}
	if _, err := s.s3.CreateBucket(ctx, in); err != nil {
		var owned *s3types.BucketAlreadyOwnedByYou
		if !errors.As(err, &owned) {
			return nil, fmt.Errorf("create the artifacts bucket %s: %w", a.bucket, err)
		}
	}
	if _, err := s.s3.PutPublicAccessBlock(ctx, &s3.PutPublicAccessBlockInput{
		Bucket: aws.String(a.bucket), ExpectedBucketOwner: a.expected(),
		PublicAccessBlockConfiguration: &s3types.PublicAccessBlockConfiguration{
			BlockPublicAcls: aws.Bool(true), BlockPublicPolicy: aws.Bool(true),
			IgnorePublicAcls: aws.Bool(true), RestrictPublicBuckets: aws.Bool(true),
		},
	}); err != nil {
		return nil, fmt.Errorf("block public access to the artifacts bucket %s: %w", a.bucket, err)
	}
	if _, err := s.s3.PutBucketEncryption(ctx, &s3.PutBucketEncryptionInput{
		Bucket: aws.String(a.bucket), ExpectedBucketOwner: a.expected(),
		ServerSideEncryptionConfiguration: &s3types.ServerSideEncryptionConfiguration{
			Rules: []s3types.ServerSideEncryptionRule{{ApplyServerSideEncryptionByDefault: &s3types.ServerSideEncryptionByDefault{
				SSEAlgorithm: s3types.ServerSideEncryptionAes256,
			}}},
		},
	}); err != nil {
		return nil, fmt.Errorf("encrypt the artifacts bucket %s: %w", a.bucket, err)
	}
	return a, nil
}

func (a *artifacts) expected() *string {
	if a.owner == "" {
		return nil
	}
	return aws.String(a.owner)
}

// upload puts a function's zip under its content hash, unless it is there.
func (a *artifacts) upload(ctx context.Context, code Code, function string) (key string, size int64, err error) {
	zip, err := code.Zip(ctx, function)
	if err != nil {
		return "", 0, err
	}
	sum := sha256.Sum256(zip)
	key = ArtifactsPrefix + "functions/" + function + "/" + hex.EncodeToString(sum[:]) + ".zip"
	return key, int64(len(zip)), a.put(ctx, key, zip, "application/zip", sum)
}

// uploadAll builds (or reads) and uploads every function's zip, two at a
// time (a build from a checkout is mostly a single-threaded link), and
// returns the code key parameters.
func (a *artifacts) uploadAll(ctx context.Context, code Code, fns []Function) (map[string]string, error) {
	keys := make([]string, len(fns))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(2)
	for i, f := range fns {
		g.Go(func() error {
			key, size, err := a.upload(gctx, code, f.Name)
			if err != nil {
				return err
			}
			keys[i] = key
			a.s.progress("Function %-12s s3://%s/%s (%s)", f.Name, a.bucket, key, kib(size))
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	out := make(map[string]string, len(fns))
	for i, f := range fns {
		out[f.CodeKeyParameter] = keys[i]
	}
	return out, nil
}

// uploadTemplate puts a template too large to send inline and returns the
// URL CloudFormation reads it from: an S3 URL, which a local stand-in of
// CloudFormation (moto) also resolves against its own S3.
func (a *artifacts) uploadTemplate(ctx context.Context, body []byte) (string, error) {
	sum := sha256.Sum256(body)
	key := ArtifactsPrefix + "templates/" + hex.EncodeToString(sum[:]) + ".json"
	if err := a.put(ctx, key, body, "application/json", sum); err != nil {
		return "", err
	}
	host := "s3." + a.s.cfg.Region + ".amazonaws.com"
	if strings.HasPrefix(a.s.cfg.Region, "cn-") {
		host += ".cn"
	}
	return (&url.URL{Scheme: "https", Host: a.bucket + "." + host, Path: "/" + key}).String(), nil
}

func (a *artifacts) put(ctx context.Context, key string, body []byte, contentType string, sum [32]byte) error {
	_, err := a.s.s3.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(a.bucket), Key: aws.String(key), ExpectedBucketOwner: a.expected()})
	if err == nil {
		return nil // content-addressed: already there
	}
	if !isNotFound(err) {
		return fmt.Errorf("s3://%s/%s: %w", a.bucket, key, err)
	}
	_, err = a.s.s3.PutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String(a.bucket), Key: aws.String(key), Body: bytes.NewReader(body),
		ContentType: aws.String(contentType), ExpectedBucketOwner: a.expected(),
		ChecksumSHA256: aws.String(base64.StdEncoding.EncodeToString(sum[:])),
	})
	if err != nil {
		return fmt.Errorf("upload s3://%s/%s: %w", a.bucket, key, err)
	}
	return nil
}

// isNotFound: a HEAD of a missing bucket or object (S3 answers 404 with no
// body, so the error code is "NotFound").
func isNotFound(err error) bool {
	var api smithy.APIError
	if errors.As(err, &api) {
		switch api.ErrorCode() {
		case "NotFound", "NoSuchBucket", "NoSuchKey":
			return true
		}
	}
	var nf *s3types.NotFound
	return errors.As(err, &nf)
}
