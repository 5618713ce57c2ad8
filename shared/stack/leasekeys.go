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
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
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
// lease TTL (LeaseTTLSeconds) has passed. The keys are where the stack
// reads them: its own secret (LeaseKeysSecret), or the SSM parameter named
// by LeaseKeysParameterName (kept a SecureString).
func (s *Stack) RotateLeaseKey(ctx context.Context, code Code) error {
	keys, err := s.leaseKeys(ctx)
	if err != nil {
		return err
	}
	return s.rotate(ctx, keys, NewLeaseKey(), code)
}

// keyList is where a stack's lease keys live.
type keyList interface {
	get(context.Context) (string, error)
	put(context.Context, string) error
}

type secretKeys struct {
	sm SecretsManager
	id string
}

func (k secretKeys) get(ctx context.Context) (string, error) {
	out, err := k.sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(k.id)})
	if err != nil {
		return "", err
	}
	return aws.ToString(out.SecretString), nil
}

func (k secretKeys) put(ctx context.Context, v string) error {
	_, err := k.sm.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String(k.id), SecretString: aws.String(v)})
	return err
}

type parameterKeys struct {
	ssm  SSM
	name string
}

func (k parameterKeys) get(ctx context.Context) (string, error) {
	out, err := k.ssm.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(k.name), WithDecryption: aws.Bool(true)})
	if err != nil {
		return "", err
	}
	return aws.ToString(out.Parameter.Value), nil
}

func (k parameterKeys) put(ctx context.Context, v string) error {
	_, err := k.ssm.PutParameter(ctx, &ssm.PutParameterInput{Name: aws.String(k.name), Value: aws.String(v),
		Type: ssmtypes.ParameterTypeSecureString, Overwrite: aws.Bool(true)})
	return err
}

func (s *Stack) rotate(ctx context.Context, keys keyList, newKey string, code Code) error {
	v, err := keys.get(ctx)
	if err != nil {
		return fmt.Errorf("read the lease keys: %w", err)
	}
	current, _, _ := strings.Cut(v, ",")
	current = strings.TrimSpace(current)
	if current == "" {
		return errors.New("the lease keys hold no key")
	}
	for i, list := range []string{current + "," + newKey, newKey + "," + current} {
		if err := keys.put(ctx, list); err != nil {
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

// leaseKeys finds where the stack reads its keys: the SSM parameter it was
// deployed with, else its own secret (whose physical id is the ARN).
func (s *Stack) leaseKeys(ctx context.Context) (keyList, error) {
	cur, err := s.describe(ctx)
	if err != nil {
		return nil, err
	}
	if cur == nil {
		return nil, fmt.Errorf("no stack %s", s.name)
	}
	if name := stackParams(cur)["LeaseKeysParameterName"]; name != "" {
		return parameterKeys{ssm: s.ssm, name: name}, nil
	}
	p := cloudformation.NewListStackResourcesPaginator(s.cfn, &cloudformation.ListStackResourcesInput{StackName: aws.String(s.name)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("read the resources of stack %s: %w", s.name, err)
		}
		for _, r := range page.StackResourceSummaries {
			if aws.ToString(r.LogicalResourceId) == "LeaseKeysSecret" && aws.ToString(r.PhysicalResourceId) != "" {
				return secretKeys{sm: s.sm, id: aws.ToString(r.PhysicalResourceId)}, nil
			}
		}
	}
	return nil, fmt.Errorf("stack %s has no lease-keys secret and no LeaseKeysParameterName: nothing to rotate", s.name)
}
