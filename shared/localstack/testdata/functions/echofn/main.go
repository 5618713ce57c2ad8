// Command echofn is the local stack tests' all-purpose function: it appends
// every payload it gets to SINK, answers a Function URL request with what it
// saw (status 201), fails when the payload says "fail", and otherwise echoes
// the payload.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"os"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
)

func handle(ctx context.Context, payload json.RawMessage) (any, error) {
	if f, err := os.OpenFile(os.Getenv("SINK"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644); err == nil {
		_, _ = f.Write(append(append([]byte{}, payload...), '\n'))
		_ = f.Close()
	}
	var probe struct {
		Fail    bool   `json:"fail"`
		RawPath string `json:"rawPath"`
	}
	_ = json.Unmarshal(payload, &probe)
	if probe.Fail {
		return nil, errors.New("asked to fail")
	}
	if probe.RawPath == "" {
		return map[string]any{"echo": payload, "table": os.Getenv("TABLE"), "endpoint": os.Getenv("AWS_ENDPOINT_URL")}, nil
	}
	var req events.LambdaFunctionURLRequest
	if err := json.Unmarshal(payload, &req); err != nil {
		return nil, err
	}
	if req.Body == "fail" {
		return nil, errors.New("asked to fail")
	}
	seen := map[string]any{"method": req.RequestContext.HTTP.Method, "path": req.RawPath, "query": req.RawQueryString,
		"body": req.Body, "base64": req.IsBase64Encoded, "version": req.Version}
	if a := req.RequestContext.Authorizer; a != nil && a.IAM != nil {
		seen["access_key"] = a.IAM.AccessKey
	}
	b, _ := json.Marshal(seen)
	return events.LambdaFunctionURLResponse{StatusCode: 201, Headers: map[string]string{"Content-Type": "application/json", "X-Echo": "yes"},
		Body: string(b)}, nil
}

func main() { lambda.Start(handle) }
