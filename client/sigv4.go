package client

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// signingService is the SigV4 service name of Lambda Function URLs.
const signingService = "lambda"

// headerContentSHA256 carries the payload hash; Function URLs want it signed.
const headerContentSHA256 = "X-Amz-Content-Sha256"

// sigv4 signs requests for an AWS_IAM Function URL.
type sigv4 struct {
	creds  aws.CredentialsProvider
	region string
	signer *v4.Signer
	now    func() time.Time
}

func newSigV4(cfg aws.Config, host string) (*sigv4, error) {
	if cfg.Credentials == nil {
		return nil, errors.New("client: sigv4: no credentials in the aws config")
	}
	region := regionFromHost(host)
	if region == "" {
		region = cfg.Region
	}
	if region == "" {
		return nil, fmt.Errorf("client: sigv4: no region: host %q is not <id>.lambda-url.<region>.on.aws and the aws config has none", host)
	}
	creds := cfg.Credentials
	if _, ok := creds.(*aws.CredentialsCache); !ok {
		creds = aws.NewCredentialsCache(creds)
	}
	return &sigv4{creds: creds, region: region, signer: v4.NewSigner(), now: time.Now}, nil
}

// regionFromHost reads the region of a Function URL host
// (<url-id>.lambda-url.<region>.on.aws), or "".
func regionFromHost(host string) string {
	parts := strings.Split(strings.ToLower(host), ".")
	if len(parts) == 5 && parts[1] == "lambda-url" && parts[3] == "on" && parts[4] == "aws" && parts[2] != "" {
		return parts[2]
	}
	return ""
}

// sign adds the payload hash and the SigV4 Authorization header to r.
func (s *sigv4) sign(ctx context.Context, r *http.Request, body []byte) error {
	sum := sha256.Sum256(body) // an empty body hashes as "" does
	hash := hex.EncodeToString(sum[:])
	r.Header.Set(headerContentSHA256, hash)
	creds, err := s.creds.Retrieve(ctx)
	if err != nil {
		return fmt.Errorf("retrieve credentials: %w", err)
	}
	if err := s.signer.SignHTTP(ctx, creds, r, hash, signingService, s.region, s.now()); err != nil {
		return err
	}
	return nil
}
