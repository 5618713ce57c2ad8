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

// getParameter reads one SSM parameter, decrypted, with a single signed JSON
// request: the binary needs no SSM client for one call at init (the client
// costs about 1.2 MB of the 25 MB budget).
func getParameter(ctx context.Context, cfg aws.Config, lookup func(string) (string, bool), name string) (string, error) {
	body, err := json.Marshal(map[string]any{"Name": name, "WithDecryption": true})
	if err != nil {
		return "", err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ssmEndpoint(cfg, lookup), bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", "AmazonSSM.GetParameter")
	creds, err := cfg.Credentials.Retrieve(ctx)
	if err != nil {
		return "", fmt.Errorf("credentials: %w", err)
	}
	sum := sha256.Sum256(body)
	if err := v4.NewSigner().SignHTTP(ctx, creds, req, hex.EncodeToString(sum[:]), "ssm", cfg.Region, time.Now()); err != nil {
		return "", fmt.Errorf("sign: %w", err)
	}
	hc := cfg.HTTPClient
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Type    string `json:"__type"`
			Message string `json:"message"`
		}
		_ = json.Unmarshal(raw, &e)
		code := e.Type[strings.LastIndex(e.Type, "#")+1:]
		return "", fmt.Errorf("SSM GetParameter: %d %s %s", resp.StatusCode, code, e.Message)
	}
	var out struct {
		Parameter struct {
			Value *string `json:"Value"`
		} `json:"Parameter"`
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		return "", fmt.Errorf("SSM GetParameter: decode the answer: %w", err)
	}
	if out.Parameter.Value == nil {
		return "", fmt.Errorf("the parameter has no value")
	}
	return *out.Parameter.Value, nil
}

// ssmEndpoint follows the SDK's rules: AWS_ENDPOINT_URL_SSM, else the
// configuration's endpoint for every service, else the regional endpoint.
func ssmEndpoint(cfg aws.Config, lookup func(string) (string, bool)) string {
	if v, ok := lookup("AWS_ENDPOINT_URL_SSM"); ok && v != "" {
		return v
	}
	if cfg.BaseEndpoint != nil && *cfg.BaseEndpoint != "" {
		return *cfg.BaseEndpoint
	}
	domain := "amazonaws.com"
	if strings.HasPrefix(cfg.Region, "cn-") {
		domain = "amazonaws.com.cn"
	}
	return "https://ssm." + cfg.Region + "." + domain
}
