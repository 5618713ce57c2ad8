package stack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"

	"github.com/zeroae/zae-limiter-go/shared/awsenv"
	"github.com/zeroae/zae-limiter-go/shared/store"
)

// The AWS calls this package makes, one interface per service. They are
// also the permissions a deployer needs (docs/production.md lists them; a
// test keeps the two equal).

// CloudFormation is what deploy, status, list and delete ask of
// CloudFormation.
type CloudFormation interface {
	CreateChangeSet(context.Context, *cloudformation.CreateChangeSetInput, ...func(*cloudformation.Options)) (*cloudformation.CreateChangeSetOutput, error)
	DescribeChangeSet(context.Context, *cloudformation.DescribeChangeSetInput, ...func(*cloudformation.Options)) (*cloudformation.DescribeChangeSetOutput, error)
	ExecuteChangeSet(context.Context, *cloudformation.ExecuteChangeSetInput, ...func(*cloudformation.Options)) (*cloudformation.ExecuteChangeSetOutput, error)
	DeleteChangeSet(context.Context, *cloudformation.DeleteChangeSetInput, ...func(*cloudformation.Options)) (*cloudformation.DeleteChangeSetOutput, error)
	DescribeStacks(context.Context, *cloudformation.DescribeStacksInput, ...func(*cloudformation.Options)) (*cloudformation.DescribeStacksOutput, error)
	DescribeStackEvents(context.Context, *cloudformation.DescribeStackEventsInput, ...func(*cloudformation.Options)) (*cloudformation.DescribeStackEventsOutput, error)
	ListStackResources(context.Context, *cloudformation.ListStackResourcesInput, ...func(*cloudformation.Options)) (*cloudformation.ListStackResourcesOutput, error)
	DeleteStack(context.Context, *cloudformation.DeleteStackInput, ...func(*cloudformation.Options)) (*cloudformation.DeleteStackOutput, error)
}

// S3 is what deploy asks of S3: the artifacts bucket and the functions'
// zips (and the template, when it is too large to send inline).
type S3 interface {
	HeadBucket(context.Context, *s3.HeadBucketInput, ...func(*s3.Options)) (*s3.HeadBucketOutput, error)
	CreateBucket(context.Context, *s3.CreateBucketInput, ...func(*s3.Options)) (*s3.CreateBucketOutput, error)
	PutPublicAccessBlock(context.Context, *s3.PutPublicAccessBlockInput, ...func(*s3.Options)) (*s3.PutPublicAccessBlockOutput, error)
	PutBucketEncryption(context.Context, *s3.PutBucketEncryptionInput, ...func(*s3.Options)) (*s3.PutBucketEncryptionOutput, error)
	HeadObject(context.Context, *s3.HeadObjectInput, ...func(*s3.Options)) (*s3.HeadObjectOutput, error)
	PutObject(context.Context, *s3.PutObjectInput, ...func(*s3.Options)) (*s3.PutObjectOutput, error)
}

// Lambda is what status asks of Lambda.
type Lambda interface {
	GetFunction(context.Context, *lambda.GetFunctionInput, ...func(*lambda.Options)) (*lambda.GetFunctionOutput, error)
	GetFunctionUrlConfig(context.Context, *lambda.GetFunctionUrlConfigInput, ...func(*lambda.Options)) (*lambda.GetFunctionUrlConfigOutput, error)
	ListEventSourceMappings(context.Context, *lambda.ListEventSourceMappingsInput, ...func(*lambda.Options)) (*lambda.ListEventSourceMappingsOutput, error)
}

// DynamoDB is what status asks of DynamoDB directly (the version record
// and the default namespace go through the store).
type DynamoDB interface {
	DescribeTable(context.Context, *dynamodb.DescribeTableInput, ...func(*dynamodb.Options)) (*dynamodb.DescribeTableOutput, error)
}

// SecretsManager is what a lease-key rotation asks of Secrets Manager.
type SecretsManager interface {
	GetSecretValue(context.Context, *secretsmanager.GetSecretValueInput, ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error)
	PutSecretValue(context.Context, *secretsmanager.PutSecretValueInput, ...func(*secretsmanager.Options)) (*secretsmanager.PutSecretValueOutput, error)
}

// SSM is what a rotation of a stack's own SSM parameter of keys
// (LeaseKeysParameterName) asks of SSM.
type SSM interface {
	GetParameter(context.Context, *ssm.GetParameterInput, ...func(*ssm.Options)) (*ssm.GetParameterOutput, error)
	PutParameter(context.Context, *ssm.PutParameterInput, ...func(*ssm.Options)) (*ssm.PutParameterOutput, error)
}

// STS is asked for the account on AWS only (never at a custom endpoint):
// it names the artifacts bucket and proves the bucket is ours.
type STS interface {
	GetCallerIdentity(context.Context, *sts.GetCallerIdentityInput, ...func(*sts.Options)) (*sts.GetCallerIdentityOutput, error)
}

// NamespacePrincipalTag is the principal tag the namespace-scoped policies
// read: an IAM principal tagged zael_namespace_id=<namespace id> reaches
// that namespace only.
const NamespacePrincipalTag = "zael_namespace_id"

// Config says how a Stack reaches AWS and reports; what to deploy is in
// Options.
type Config struct {
	// Progress receives the steps and the stack's events, one line each;
	// nil discards them.
	Progress io.Writer
	// PollInterval is how often a wait asks CloudFormation; 0 means 5 s on
	// AWS and 200 ms at a custom endpoint.
	PollInterval time.Duration
	// Version is the deploying tool's version: it tags the stack and goes
	// into the version record (lambda_version).
	Version string
	// UpdatedBy names the writer in the version record (e.g. "cli:v1.2.0").
	UpdatedBy string
	// Principal is the audit principal of the default namespace's
	// registration; empty means "unknown".
	Principal string
	// Now is the clock of elapsed times; nil means time.Now.
	Now func() time.Time
}

// Stack is one zae-limiter stack: its name is the stack's, the table's and
// the prefix of every function.
type Stack struct {
	name   string
	cfg    aws.Config
	c      Config
	local  bool
	tpl    *Template
	cfn    CloudFormation
	s3     S3
	lambda Lambda
	ddb    *dynamodb.Client
	sm     SecretsManager
	ssm    SSM
	sts    STS

	progressMu sync.Mutex
}

// New returns the stack called name, reached with cfg (as built by
// awsenv.Load: a custom endpoint is honoured per service).
func New(cfg aws.Config, name string, c Config) (*Stack, error) {
	if err := ValidateName(name); err != nil {
		return nil, err
	}
	tpl, err := Load()
	if err != nil {
		return nil, err
	}
	if c.Progress == nil {
		c.Progress = io.Discard
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Version == "" {
		c.Version = "dev"
	}
	cfn := cloudformation.NewFromConfig(cfg)
	s := &Stack{
		name: name, cfg: cfg, c: c, tpl: tpl,
		cfn:    cfn,
		s3:     s3.NewFromConfig(cfg, s3Options),
		lambda: lambda.NewFromConfig(cfg),
		ddb:    awsenv.NewDynamoDB(cfg),
		sm:     secretsmanager.NewFromConfig(cfg),
		ssm:    ssm.NewFromConfig(cfg),
		sts:    sts.NewFromConfig(cfg),
		local:  cfn.Options().BaseEndpoint != nil,
	}
	if s.c.PollInterval <= 0 {
		s.c.PollInterval = 5 * time.Second
		if s.local {
			s.c.PollInterval = 200 * time.Millisecond
		}
	}
	return s, nil
}

// s3Options: a custom endpoint (a local S3 server) is addressed path-style.
func s3Options(o *s3.Options) {
	if o.BaseEndpoint != nil {
		o.UsePathStyle = true
	}
}

// Name is the stack's name.
func (s *Stack) Name() string { return s.name }

// Template is the plain template this stack deploys.
func (s *Stack) Template() *Template { return s.tpl }

// Local reports whether CloudFormation is reached at a custom endpoint (a
// local stand-in such as moto) rather than AWS.
func (s *Stack) Local() bool { return s.local }

// store is the limiter's store on the stack's table.
func (s *Stack) store() *store.Store {
	principal := s.c.Principal
	if principal == "" {
		principal = "unknown"
	}
	return store.New(s.ddb, store.Options{Table: s.name, Principal: principal})
}

// progress writes one line; function uploads report concurrently.
func (s *Stack) progress(format string, a ...any) {
	s.progressMu.Lock()
	defer s.progressMu.Unlock()
	fmt.Fprintf(s.c.Progress, format+"\n", a...)
}

// notFound reports whether err is CloudFormation saying the stack does not
// exist.
func notFound(err error) bool {
	var api smithy.APIError
	return errors.As(err, &api) && api.ErrorCode() == "ValidationError" &&
		strings.Contains(api.ErrorMessage(), "does not exist")
}
