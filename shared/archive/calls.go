package archive

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// DynamoDB lists exactly the DynamoDB calls an archival run makes: Query
// (the time index), BatchWriteItem (deleting archived events) and UpdateItem
// (the checkpoint and its lease). The archiver's IAM role grants
// dynamodb:<Method> for each (tests/template_test.go derives them from this
// interface). *dynamodb.Client satisfies it.
type DynamoDB interface {
	Query(ctx context.Context, in *dynamodb.QueryInput, optFns ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
	BatchWriteItem(ctx context.Context, in *dynamodb.BatchWriteItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.BatchWriteItemOutput, error)
	UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
}

// S3 lists exactly the S3 calls an archival run makes: PutObject (an
// object) and GetObject (reading it back before any delete, and completing
// an interrupted run). The role grants s3:PutObject and s3:GetObject on
// the archive's objects. *s3.Client satisfies it.
type S3 interface {
	PutObject(ctx context.Context, in *s3.PutObjectInput, optFns ...func(*s3.Options)) (*s3.PutObjectOutput, error)
	GetObject(ctx context.Context, in *s3.GetObjectInput, optFns ...func(*s3.Options)) (*s3.GetObjectOutput, error)
}

// ReaderS3 lists the S3 calls reading the archive back makes:
// ListObjectsV2 (IAM action s3:ListBucket on the bucket) and GetObject.
type ReaderS3 interface {
	ListObjectsV2(ctx context.Context, in *s3.ListObjectsV2Input, optFns ...func(*s3.Options)) (*s3.ListObjectsV2Output, error)
	GetObject(ctx context.Context, in *s3.GetObjectInput, optFns ...func(*s3.Options)) (*s3.GetObjectOutput, error)
}

var (
	_ DynamoDB = (*dynamodb.Client)(nil)
	_ S3       = (*s3.Client)(nil)
	_ ReaderS3 = (*s3.Client)(nil)
)
