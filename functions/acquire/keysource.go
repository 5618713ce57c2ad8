package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// The lease keys are read once at init with a single signed JSON request to
// SSM or Secrets Manager: the binary needs no service client for one call
// (an SSM client costs about 1.2 MB of the 25 MB budget).

// keyService is an AWS JSON-protocol service the keys can be read from.
type keyService struct {
	signingName string // SigV4 service name and endpoint prefix
	endpointEnv string // the SDK's AWS_ENDPOINT_URL_<SERVICE>
	target      string // X-Amz-Target of the read
	label       string // for messages
}

var (
	ssmGetParameter = keyService{"ssm", "AWS_ENDPOINT_URL_SSM", "AmazonSSM.GetParameter", "SSM GetParameter"}
	smGetSecret     = keyService{"secretsmanager", "AWS_ENDPOINT_URL_SECRETS_MANAGER", "secretsmanager.GetSecretValue", "Secrets Manager GetSecretValue"}
)

// getParameter reads one SSM parameter, decrypted.
func getParameter(ctx context.Context, cfg aws.Config, lookup func(string) (string, bool), name string) (string, error) {
	var out struct {
		Parameter struct {
			Value *string `json:"Value"`
		} `json:"Parameter"`
	}
	in := map[string]any{"Name": name, "WithDecryption": true}
	if err := ssmGetParameter.call(ctx, cfg, lookup, in, &out); err != nil {
		return "", err
	}
	if out.Parameter.Value == nil {
		return "", fmt.Errorf("the parameter has no value")
	}
	return *out.Parameter.Value, nil
}

// getSecret reads the current version of a Secrets Manager secret (a string).
func getSecret(ctx context.Context, cfg aws.Config, lookup func(string) (string, bool), id string) (string, error) {
	var out struct {
		SecretString *string `json:"SecretString"`
	}
	if err := smGetSecret.call(ctx, cfg, lookup, map[string]any{"SecretId": id}, &out); err != nil {
		return "", err
	}
	if out.SecretString == nil {
		return "", fmt.Errorf("the secret has no string value")
	}
	return *out.SecretString, nil
}

// call sends one signed request and decodes the answer into out.
func (s keyService) call(ctx context.Context, cfg aws.Config, lookup func(string) (string, bool), in, out any) error {
	body, err := json.Marshal(in)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.endpoint(cfg, lookup), bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", s.target)
	creds, err := cfg.Credentials.Retrieve(ctx)
	if err != nil {
		return fmt.Errorf("credentials: %w", err)
	}
	sum := sha256.Sum256(body)
	if err := v4.NewSigner().SignHTTP(ctx, creds, req, hex.EncodeToString(sum[:]), s.signingName, cfg.Region, time.Now()); err != nil {
		return fmt.Errorf("sign: %w", err)
	}
	hc := cfg.HTTPClient
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Type    string `json:"__type"`
			Message string `json:"message"`
		}
		_ = json.Unmarshal(raw, &e)
		code := e.Type[strings.LastIndex(e.Type, "#")+1:]
		return fmt.Errorf("%s: %d %s %s", s.label, resp.StatusCode, code, e.Message)
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("%s: decode the answer: %w", s.label, err)
	}
	return nil
}

// endpoint follows the SDK's rules: AWS_ENDPOINT_URL_<SERVICE>, else the
// configuration's endpoint for every service, else the regional endpoint.
func (s keyService) endpoint(cfg aws.Config, lookup func(string) (string, bool)) string {
	if v, ok := lookup(s.endpointEnv); ok && v != "" {
		return v
	}
	if cfg.BaseEndpoint != nil && *cfg.BaseEndpoint != "" {
		return *cfg.BaseEndpoint
	}
	domain := "amazonaws.com"
	if strings.HasPrefix(cfg.Region, "cn-") {
		domain = "amazonaws.com.cn"
	}
	return "https://" + s.signingName + "." + cfg.Region + "." + domain
}
