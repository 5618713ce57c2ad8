package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/zeroae/zae-limiter-go/shared/provision"
)

// ProvisionerFunction is the name of a stack's provisioner function, by
// convention (as the acquire function is {stack}-acquire).
func ProvisionerFunction(stack string) string { return stack + "-provisioner" }

// maxInvokePayload is Lambda's limit on a synchronous invocation's request.
const maxInvokePayload = 6 << 20

// invoke runs action on the stack's provisioner function with the CLI
// event. The Lambda endpoint is the SDK's: AWS_ENDPOINT_URL_LAMBDA, else
// --endpoint-url (or AWS_ENDPOINT_URL), else AWS.
func (opts *limitsOptions) invoke(ctx context.Context, action string) (*provision.Result, error) {
	env := opts.env
	cfg, err := env.AWSConfig(ctx)
	if err != nil {
		return nil, err
	}
	name := ProvisionerFunction(env.Name)
	principal, _ := env.principal(ctx)
	if principal == unknownPrincipal {
		principal = "" // the function records its own ARN
	}
	payload, err := json.Marshal(provision.Event{Action: action, Manifest: opts.Manifest, Principal: principal})
	if err != nil {
		return nil, err
	}
	if len(payload) > maxInvokePayload {
		return nil, fmt.Errorf("the manifest is %d bytes as an event, over Lambda's %d: use --direct", len(payload), maxInvokePayload)
	}
	if action == provision.EventApply {
		env.progress("Applying %s to namespace %q through the function %s", opts.File, opts.Manifest.Namespace, name)
	}
	out, err := lambda.NewFromConfig(cfg).Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String(name), Payload: payload})
	var rnf *lambdatypes.ResourceNotFoundException
	if errors.As(err, &rnf) {
		return nil, fmt.Errorf("function %s not found at %s: deploy the stack (or run 'zae-limiter local up'), or pass --direct to use your own DynamoDB credentials",
			name, lambdaEndpoint(cfg))
	}
	if err != nil {
		return nil, fmt.Errorf("invoke %s: %w", name, err)
	}
	if out.FunctionError != nil {
		var fe struct {
			Type    string `json:"errorType"`
			Message string `json:"errorMessage"`
		}
		_ = json.Unmarshal(out.Payload, &fe)
		if fe.Type == provision.ErrorInvalidManifest {
			for _, line := range strings.Split(fe.Message, "\n") {
				env.progress("%s", line)
			}
		}
		if fe.Message == "" {
			fe.Message = string(out.Payload)
		}
		return nil, fmt.Errorf("function %s failed (%s): %s", name, fe.Type, fe.Message)
	}
	var resp provision.Response
	if err := json.Unmarshal(out.Payload, &resp); err != nil {
		return nil, fmt.Errorf("function %s answered %q: %w", name, out.Payload, err)
	}
	return &resp.Result, nil
}

// lambdaEndpoint describes where Lambda is called, for messages.
func lambdaEndpoint(cfg aws.Config) string {
	if ep := lambda.NewFromConfig(cfg).Options().BaseEndpoint; ep != nil {
		return *ep
	}
	return "AWS region " + cfg.Region
}
