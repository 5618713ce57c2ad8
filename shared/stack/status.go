package stack

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/zeroae/zae-limiter-go/shared/limits"
	"github.com/zeroae/zae-limiter-go/shared/store"
)

// Status is what `zae-limiter status` shows: the stack, its table, its
// functions and stream mappings, the policies and roles to hand out, the
// version record and how long the table takes to answer.
type Status struct {
	Name   string `json:"name"`
	Region string `json:"region"`
	// Stack is nil when there is no stack of that name.
	Stack *StackInfo `json:"stack"`
	// Table is nil when there is no table of that name.
	Table *TableInfo `json:"table"`
	// Connectivity: whether the table answered DescribeTable, and how fast.
	Connectivity   Connectivity      `json:"connectivity"`
	Functions      []FunctionInfo    `json:"functions"`
	StreamMappings []StreamMapping   `json:"stream_mappings"`
	Policies       map[string]string `json:"policies"`
	Roles          map[string]string `json:"roles"`
	AcquireURL     string            `json:"acquire_url,omitempty"`
	// Version is the table's version record (nil when there is none).
	Version *store.VersionRecord `json:"version"`
	// Problems lists the parts that could not be read, one line each.
	Problems []string `json:"problems,omitempty"`
}

// StackInfo is the CloudFormation side.
type StackInfo struct {
	ID           string            `json:"id"`
	Status       string            `json:"status"`
	StatusReason string            `json:"status_reason,omitempty"`
	Created      time.Time         `json:"created"`
	Updated      *time.Time        `json:"updated,omitempty"`
	Version      string            `json:"version,omitempty"`
	Outputs      map[string]string `json:"outputs"`
	Parameters   map[string]string `json:"parameters"`
	Tags         map[string]string `json:"tags"`
}

// TableInfo is the DynamoDB side. ItemCount and SizeBytes are DynamoDB's
// own figures, refreshed about every six hours.
type TableInfo struct {
	Name               string `json:"name"`
	Status             string `json:"status"`
	ARN                string `json:"arn,omitempty"`
	ItemCount          int64  `json:"item_count"`
	SizeBytes          int64  `json:"size_bytes"`
	BillingMode        string `json:"billing_mode,omitempty"`
	StreamViewType     string `json:"stream_view_type,omitempty"`
	DeletionProtection bool   `json:"deletion_protection"`
}

// Connectivity is one DescribeTable round trip.
type Connectivity struct {
	Available bool    `json:"available"`
	LatencyMS float64 `json:"latency_ms,omitempty"`
	Error     string  `json:"error,omitempty"`
}

// FunctionInfo is one function of the stack.
type FunctionInfo struct {
	Name          string   `json:"name"`
	LogicalID     string   `json:"logical_id"`
	State         string   `json:"state,omitempty"`
	Runtime       string   `json:"runtime,omitempty"`
	Architectures []string `json:"architectures,omitempty"`
	MemoryMB      int32    `json:"memory_mb,omitempty"`
	TimeoutS      int32    `json:"timeout_s,omitempty"`
	CodeSHA256    string   `json:"code_sha256,omitempty"`
	CodeSize      int64    `json:"code_size,omitempty"`
	LastModified  string   `json:"last_modified,omitempty"`
	Version       string   `json:"version,omitempty"`
	URL           string   `json:"url,omitempty"`
}

// StreamMapping is one event source mapping of a function of the stack.
type StreamMapping struct {
	Function             string `json:"function"`
	UUID                 string `json:"uuid"`
	State                string `json:"state"`
	EventSourceARN       string `json:"event_source_arn"`
	BatchSize            int32  `json:"batch_size,omitempty"`
	LastProcessingResult string `json:"last_processing_result,omitempty"`
}

// Healthy: the stack is complete and the table answers.
func (st *Status) Healthy() bool {
	return st.Stack != nil && !Failed(st.Stack.Status) && !inProgressS(st.Stack.Status) && st.Connectivity.Available
}

// Failed reports a failed or rolled-back stack status.
func Failed(status string) bool {
	return strings.Contains(status, "FAILED") || strings.Contains(status, "ROLLBACK")
}

func inProgressS(status string) bool { return strings.HasSuffix(status, "_IN_PROGRESS") }

// Status reads everything it can; a part that cannot be read (even the
// stack itself) is a line in Problems, not an error.
func (s *Stack) Status(ctx context.Context) (*Status, error) {
	out := &Status{Name: s.name, Region: s.cfg.Region, Policies: map[string]string{}, Roles: map[string]string{},
		Functions: []FunctionInfo{}, StreamMappings: []StreamMapping{}}
	cur, err := s.describe(ctx)
	if err != nil {
		// No CloudFormation there (a table made by `local up`): the table
		// still tells what it can.
		out.Problems = append(out.Problems, err.Error())
	}
	if cur != nil {
		info := &StackInfo{ID: aws.ToString(cur.StackId), Status: string(cur.StackStatus),
			StatusReason: aws.ToString(cur.StackStatusReason), Created: aws.ToTime(cur.CreationTime),
			Updated: cur.LastUpdatedTime, Outputs: stackOutputs(cur), Parameters: stackParams(cur), Tags: stackTags(cur)}
		info.Version = info.Tags[TagVersion]
		out.Stack = info
		out.AcquireURL = info.Outputs["AcquireUrl"]
		s.functionsStatus(ctx, out)
	}
	s.tableStatus(ctx, out)
	return out, nil
}

func (s *Stack) tableStatus(ctx context.Context, out *Status) {
	t0 := time.Now()
	d, err := s.ddb.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(s.name)})
	if err != nil {
		out.Connectivity.Error = err.Error()
		return
	}
	out.Connectivity = Connectivity{Available: true, LatencyMS: float64(time.Since(t0).Microseconds()) / 1000}
	t := d.Table
	info := &TableInfo{Name: aws.ToString(t.TableName), Status: string(t.TableStatus), ARN: aws.ToString(t.TableArn),
		ItemCount: aws.ToInt64(t.ItemCount), SizeBytes: aws.ToInt64(t.TableSizeBytes),
		DeletionProtection: aws.ToBool(t.DeletionProtectionEnabled)}
	if t.BillingModeSummary != nil {
		info.BillingMode = string(t.BillingModeSummary.BillingMode)
	}
	if t.StreamSpecification != nil && aws.ToBool(t.StreamSpecification.StreamEnabled) {
		info.StreamViewType = string(t.StreamSpecification.StreamViewType)
	}
	out.Table = info
	rec, err := s.store().Version(ctx)
	switch {
	case err == nil:
		out.Version = &rec
	case !errors.Is(err, limits.ErrNotFound):
		out.Problems = append(out.Problems, "version record: "+err.Error())
	}
}

// functionsStatus reads the stack's resources: its managed policies and
// roles (ARNs to hand out), and its functions with their stream mappings.
// Resources rather than outputs: they are what the stack has whichever
// version deployed it, and moto reports no outputs for a stack created
// through a change set.
func (s *Stack) functionsStatus(ctx context.Context, out *Status) {
	partition, account := arnAccount(out.Stack.ID)
	ids := map[string]string{} // function name -> logical id
	p := cloudformation.NewListStackResourcesPaginator(s.cfn, &cloudformation.ListStackResourcesInput{StackName: aws.String(s.name)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			out.Problems = append(out.Problems, "stack resources: "+err.Error())
			return
		}
		for _, r := range page.StackResourceSummaries {
			id, phys := aws.ToString(r.LogicalResourceId), aws.ToString(r.PhysicalResourceId)
			if phys == "" || strings.HasSuffix(string(r.ResourceStatus), "_FAILED") {
				continue
			}
			switch aws.ToString(r.ResourceType) {
			case "AWS::Lambda::Function":
				ids[phys] = id
			case "AWS::IAM::ManagedPolicy": // the physical id is the ARN
				out.Policies[strings.TrimSuffix(id, "Policy")] = phys
			case "AWS::IAM::Role": // the physical id is the name
				if account != "" {
					out.Roles[strings.TrimSuffix(id, "Role")] = "arn:" + partition + ":iam::" + account + ":role/" + phys
				}
			}
		}
	}
	for _, name := range slices.Sorted(maps.Keys(ids)) {
		fi := FunctionInfo{Name: name, LogicalID: ids[name]}
		f, err := s.lambda.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String(name)})
		if err != nil {
			out.Problems = append(out.Problems, "function "+name+": "+err.Error())
			out.Functions = append(out.Functions, fi)
			continue
		}
		if c := f.Configuration; c != nil {
			fi.State, fi.Runtime = string(c.State), string(c.Runtime)
			for _, a := range c.Architectures {
				fi.Architectures = append(fi.Architectures, string(a))
			}
			fi.MemoryMB, fi.TimeoutS = aws.ToInt32(c.MemorySize), aws.ToInt32(c.Timeout)
			fi.CodeSHA256, fi.CodeSize, fi.LastModified = aws.ToString(c.CodeSha256), c.CodeSize, aws.ToString(c.LastModified)
		}
		fi.Version = f.Tags[TagVersion]
		if fi.Version == "" && out.Stack != nil {
			fi.Version = out.Stack.Version // tags not copied (moto): the stack's
		}
		// The URL through the Lambda API: moto has no function URLs in
		// stacks, and a stack may not export one.
		if u, err := s.lambda.GetFunctionUrlConfig(ctx, &lambda.GetFunctionUrlConfigInput{FunctionName: aws.String(name)}); err == nil {
			fi.URL = aws.ToString(u.FunctionUrl)
			if fi.LogicalID == "AcquireFunction" && out.AcquireURL == "" {
				out.AcquireURL = fi.URL
			}
		} else if !isLambdaNotFound(err) {
			out.Problems = append(out.Problems, "function URL of "+name+": "+err.Error())
		}
		out.Functions = append(out.Functions, fi)
		s.mappingsStatus(ctx, name, out)
	}
}

func (s *Stack) mappingsStatus(ctx context.Context, function string, out *Status) {
	p := lambda.NewListEventSourceMappingsPaginator(s.lambda, &lambda.ListEventSourceMappingsInput{FunctionName: aws.String(function)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			out.Problems = append(out.Problems, fmt.Sprintf("stream mappings of %s: %v", function, err))
			return
		}
		for _, m := range page.EventSourceMappings {
			out.StreamMappings = append(out.StreamMappings, StreamMapping{
				Function: function, UUID: aws.ToString(m.UUID), State: aws.ToString(m.State),
				EventSourceARN: aws.ToString(m.EventSourceArn), BatchSize: aws.ToInt32(m.BatchSize),
				LastProcessingResult: aws.ToString(m.LastProcessingResult),
			})
		}
	}
}

func isLambdaNotFound(err error) bool {
	var nf *lambdatypes.ResourceNotFoundException
	return errors.As(err, &nf)
}

// arnAccount returns the partition and account of an ARN.
func arnAccount(arn string) (partition, account string) {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) < 6 {
		return "", ""
	}
	return parts[1], parts[4]
}
