package stack

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
)

// The acquire API signs lease tokens with the first of a comma-separated
// list of keys and verifies them with any. Its instances read the list
// once, at start; a new LeaseKeysRevision replaces them all.

const (
	leaseKeysRevision = "LeaseKeysRevision"
	leaseKeyLen       = 64
	leaseKeyAlphabet  = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
)

// NewLeaseKey returns a random key of 64 letters and digits (about 380
// bits), like the one the stack generates.
func NewLeaseKey() string {
	// Bytes at or above 248 (4 x 62) are drawn again: no letter is likelier.
	limit := byte(256 / len(leaseKeyAlphabet) * len(leaseKeyAlphabet))
	out := make([]byte, 0, leaseKeyLen)
	var buf [1]byte
	for len(out) < leaseKeyLen {
		_, _ = rand.Read(buf[:]) // never fails (crypto/rand)
		if buf[0] < limit {
			out = append(out, leaseKeyAlphabet[int(buf[0])%len(leaseKeyAlphabet)])
		}
	}
	return string(out)
}

// RotateLeaseKey replaces the stack's lease-signing key with a new one
// without failing a lease in flight, in two steps that each replace every
// acquire instance (a new LeaseKeysRevision, every other parameter kept):
//
//  1. the keys become "CURRENT,NEW": every instance learns to verify NEW
//     while all still sign with CURRENT;
//  2. the keys become "NEW,CURRENT": instances sign with NEW, and tokens
//     signed with CURRENT stay valid until they expire.
//
// Keys older than CURRENT are dropped, so rotate again only after the
// lease TTL (LeaseTTLSeconds) has passed. Only a stack that made its own
// key (LeaseKeysSecret) is rotated here; your own SSM parameter is yours
// to rotate the same way.
func (s *Stack) RotateLeaseKey(ctx context.Context, code Code) error {
	secret, err := s.leaseKeysSecret(ctx)
	if err != nil {
		return err
	}
	return s.rotate(ctx, secret, NewLeaseKey(), code)
}

func (s *Stack) rotate(ctx context.Context, secretID, newKey string, code Code) error {
	out, err := s.sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(secretID)})
	if err != nil {
		return fmt.Errorf("read the lease keys: %w", err)
	}
	current, _, _ := strings.Cut(aws.ToString(out.SecretString), ",")
	current = strings.TrimSpace(current)
	if current == "" {
		return errors.New("the lease-keys secret holds no key")
	}
	for i, keys := range []string{current + "," + newKey, newKey + "," + current} {
		if _, err := s.sm.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{
			SecretId: aws.String(secretID), SecretString: aws.String(keys),
		}); err != nil {
			return fmt.Errorf("rotation step %d of 2: write the lease keys: %w", i+1, err)
		}
		step := [...]string{"the new key verifies", "the new key signs, the old one still verifies"}[i]
		s.progress("Rotation step %d of 2: %s; replacing the acquire instances", i+1, step)
		if err := s.bumpRevision(ctx, code); err != nil {
			return fmt.Errorf("rotation step %d of 2: %w (the keys are %q-first: run the rotation again to finish)",
				i+1, err, [...]string{"old", "new"}[i])
		}
	}
	s.progress("Rotated: the new key signs; the previous one verifies until the next rotation")
	return nil
}

// bumpRevision updates the stack with the next LeaseKeysRevision, keeping
// every other parameter.
func (s *Stack) bumpRevision(ctx context.Context, code Code) error {
	cur, err := s.describe(ctx)
	if err != nil {
		return err
	}
	if cur == nil {
		return fmt.Errorf("no stack %s", s.name)
	}
	rev, _ := strconv.Atoi(stackParams(cur)[leaseKeysRevision])
	_, err = s.Ensure(ctx, Options{KeepParameters: true, Code: code,
		Parameters: map[string]string{leaseKeysRevision: strconv.Itoa(rev + 1)}})
	return err
}

// leaseKeysSecret finds the stack's own lease-keys secret (its physical id
// is the ARN).
func (s *Stack) leaseKeysSecret(ctx context.Context) (string, error) {
	p := cloudformation.NewListStackResourcesPaginator(s.cfn, &cloudformation.ListStackResourcesInput{StackName: aws.String(s.name)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if notFound(err) {
			return "", fmt.Errorf("no stack %s", s.name)
		}
		if err != nil {
			return "", fmt.Errorf("read the resources of stack %s: %w", s.name, err)
		}
		for _, r := range page.StackResourceSummaries {
			if aws.ToString(r.LogicalResourceId) == "LeaseKeysSecret" && aws.ToString(r.PhysicalResourceId) != "" {
				return aws.ToString(r.PhysicalResourceId), nil
			}
		}
	}
	return "", fmt.Errorf("stack %s has no lease-keys secret of its own (it reads LeaseKeysParameterName, which you rotate: "+
		"docs/production.md)", s.name)
}
