package stack

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation/types"
)

// Delete deletes the stack (its table and every item in it, its functions,
// roles, policies, alarms, dashboard and the lease-key secret) and waits
// until it is gone, printing its events. No stack is not an error: deleted
// is false. The artifacts bucket stays: other stacks share it.
func (s *Stack) Delete(ctx context.Context) (deleted bool, err error) {
	start := s.c.Now()
	cur, err := s.describe(ctx)
	if err != nil || cur == nil {
		return false, err
	}
	id := aws.ToString(cur.StackId)
	if inProgress(cur.StackStatus) && cur.StackStatus != types.StackStatusReviewInProgress {
		s.progress("Stack %s is %s: waiting for it first", s.name, cur.StackStatus)
		if cur, _, err = s.watch(ctx, id, "", start); err != nil {
			return false, err
		}
		if cur.StackStatus == types.StackStatusDeleteComplete {
			return true, nil
		}
	}
	last, err := s.lastEventID(ctx, id)
	if err != nil {
		return false, err
	}
	s.progress("Deleting stack %s", s.name)
	if _, err := s.cfn.DeleteStack(ctx, &cloudformation.DeleteStackInput{StackName: aws.String(id)}); err != nil {
		return false, fmt.Errorf("delete stack %s: %w", s.name, err)
	}
	final, events, err := s.watch(ctx, id, last, start)
	if err != nil {
		return false, err
	}
	if final.StackStatus != types.StackStatusDeleteComplete {
		fe := failure(s.name, "delete", final, events)
		if strings.Contains(strings.ToLower(fe.Reason), "deletion protection") {
			fe.Reason += " (turn it off first: zae-limiter deploy -n " + s.name + " --no-deletion-protection, with your other options)"
		}
		return false, fe
	}
	s.progress("Deleted stack %s in %s", s.name, s.c.Now().Sub(start).Round(100*time.Millisecond))
	return true, nil
}
