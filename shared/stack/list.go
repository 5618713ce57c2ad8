package stack

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation/types"
)

// Summary is one deployed limiter, as `zae-limiter list` shows it.
type Summary struct {
	Name          string     `json:"name"`
	StackName     string     `json:"stack_name"`
	Status        string     `json:"status"`
	Version       string     `json:"version,omitempty"`
	LambdaVersion string     `json:"lambda_version,omitempty"`
	SchemaVersion string     `json:"schema_version,omitempty"`
	Created       time.Time  `json:"created"`
	Updated       *time.Time `json:"updated,omitempty"`
	Region        string     `json:"region"`
}

// Healthy: created or updated, and nothing in progress.
func (s Summary) Healthy() bool {
	return s.Status == "CREATE_COMPLETE" || s.Status == "UPDATE_COMPLETE"
}

// InProgress: an operation is running.
func (s Summary) InProgress() bool { return inProgressS(s.Status) }

// Failed: failed or rolled back.
func (s Summary) Failed() bool { return Failed(s.Status) }

// List finds the limiters of cfg's region: the stacks (not deleted) that
// deploy tagged ManagedBy=zae-limiter and zae-limiter:type=limiter, sorted
// by name. Only DescribeStacks is needed, no tagging API.
func List(ctx context.Context, cfg aws.Config) ([]Summary, error) {
	return list(ctx, cloudformation.NewFromConfig(cfg), cfg.Region)
}

func list(ctx context.Context, cfn CloudFormation, region string) ([]Summary, error) {
	out := []Summary{}
	p := cloudformation.NewDescribeStacksPaginator(cfn, &cloudformation.DescribeStacksInput{})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list stacks: %w", err)
		}
		for _, st := range page.Stacks {
			if st.StackStatus == types.StackStatusDeleteComplete {
				continue
			}
			tags := stackTags(&st)
			if tags[TagManagedBy] != TagManagedByName || (tags[TagType] != "" && tags[TagType] != TagTypeLimiter) {
				continue
			}
			name := tags[TagName]
			if name == "" {
				name = aws.ToString(st.StackName)
			}
			out = append(out, Summary{
				Name: name, StackName: aws.ToString(st.StackName), Status: string(st.StackStatus),
				Version: tags[TagVersion], LambdaVersion: tags[TagLambdaVersion], SchemaVersion: tags[TagSchemaVersion],
				Created: aws.ToTime(st.CreationTime), Updated: st.LastUpdatedTime, Region: region,
			})
		}
	}
	slices.SortFunc(out, func(a, b Summary) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}
