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

// lastEventID is the newest event of the stack before an operation starts:
// the operation's events are the ones after it (no clock is compared).
func (s *Stack) lastEventID(ctx context.Context, stackID string) (string, error) {
	out, err := s.cfn.DescribeStackEvents(ctx, &cloudformation.DescribeStackEventsInput{StackName: aws.String(stackID)})
	if err != nil {
		return "", fmt.Errorf("read the events of stack %s: %w", s.name, err)
	}
	if len(out.StackEvents) == 0 {
		return "", nil
	}
	return aws.ToString(out.StackEvents[0].EventId), nil
}

// newEvents returns the events after the one with id since (all of them
// when since is ""), oldest first.
func (s *Stack) newEvents(ctx context.Context, stackID, since string) ([]types.StackEvent, error) {
	var fresh []types.StackEvent
	var token *string
	for {
		out, err := s.cfn.DescribeStackEvents(ctx, &cloudformation.DescribeStackEventsInput{StackName: aws.String(stackID), NextToken: token})
		if err != nil {
			return nil, fmt.Errorf("read the events of stack %s: %w", s.name, err)
		}
		for _, e := range out.StackEvents { // newest first
			if since != "" && aws.ToString(e.EventId) == since {
				slices.Reverse(fresh)
				return fresh, nil
			}
			fresh = append(fresh, e)
		}
		if token = out.NextToken; token == nil {
			slices.Reverse(fresh)
			return fresh, nil
		}
	}
}

// watch follows the stack until no operation is in progress, printing each
// new event with the time since start. It returns the final stack and the
// operation's events, oldest first. A stack deleted while watched ends as
// DELETE_COMPLETE.
func (s *Stack) watch(ctx context.Context, stackID, since string, start time.Time) (*types.Stack, []types.StackEvent, error) {
	var all []types.StackEvent
	for {
		out, err := s.cfn.DescribeStacks(ctx, &cloudformation.DescribeStacksInput{StackName: aws.String(stackID)})
		var st *types.Stack
		switch {
		case notFound(err):
			st = &types.Stack{StackId: aws.String(stackID), StackName: aws.String(s.name), StackStatus: types.StackStatusDeleteComplete}
		case err != nil:
			return nil, all, fmt.Errorf("describe stack %s: %w", s.name, err)
		case len(out.Stacks) == 0:
			return nil, all, fmt.Errorf("describe stack %s: no stack in the answer", s.name)
		default:
			st = &out.Stacks[0]
		}
		if st.StackStatus != types.StackStatusDeleteComplete || err == nil {
			evs, err := s.newEvents(ctx, stackID, since)
			if err != nil && !notFound(err) {
				return nil, all, err
			}
			for _, e := range evs {
				s.printEvent(e, start)
				since = aws.ToString(e.EventId)
			}
			all = append(all, evs...)
		}
		if !inProgress(st.StackStatus) {
			return st, all, nil
		}
		if err := sleep(ctx, s.c.PollInterval); err != nil {
			return nil, all, fmt.Errorf("waiting for stack %s (%s): %w", s.name, st.StackStatus, err)
		}
	}
}

func (s *Stack) printEvent(e types.StackEvent, start time.Time) {
	line := fmt.Sprintf("%s  %-36s %-30s %s", elapsed(s.c.Now().Sub(start)), e.ResourceStatus,
		aws.ToString(e.ResourceType), aws.ToString(e.LogicalResourceId))
	if r := aws.ToString(e.ResourceStatusReason); r != "" && strings.HasSuffix(string(e.ResourceStatus), "_FAILED") {
		line += ": " + r
	}
	s.progress("%s", strings.TrimRight(line, " "))
}

// elapsed renders a duration as a fixed-width "[  12.3s]" or "[ 2m05.3s]".
func elapsed(d time.Duration) string {
	if d < time.Minute {
		return fmt.Sprintf("[%6.1fs]", d.Seconds())
	}
	m := int(d / time.Minute)
	return fmt.Sprintf("[%2dm%04.1fs]", m, (d - time.Duration(m)*time.Minute).Seconds())
}

// failure explains a failed operation by its first failed resource (the
// cause; the others are usually cancelled because of it).
func failure(name, op string, st *types.Stack, events []types.StackEvent) *FailedError {
	e := &FailedError{Stack: name, Operation: op, StackStatus: string(st.StackStatus), Reason: aws.ToString(st.StackStatusReason)}
	var first, cause *types.StackEvent
	for i, ev := range events {
		if !strings.HasSuffix(string(ev.ResourceStatus), "_FAILED") || aws.ToString(ev.LogicalResourceId) == name {
			continue
		}
		if first == nil {
			first = &events[i]
		}
		if !strings.Contains(aws.ToString(ev.ResourceStatusReason), "cancelled") {
			cause = &events[i]
			break
		}
	}
	if cause == nil {
		cause = first
	}
	if cause != nil {
		e.LogicalID, e.Type, e.Status, e.Reason = aws.ToString(cause.LogicalResourceId), aws.ToString(cause.ResourceType),
			string(cause.ResourceStatus), aws.ToString(cause.ResourceStatusReason)
	}
	return e
}
