// Command fn is the bootstrap the lambdarun tests run: an aws-lambda-go
// function whose behaviour the event (and, for init, the environment) picks.
package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
)

type event struct {
	Echo    any    `json:"echo"`
	Error   string `json:"error"`
	Panic   string `json:"panic"`
	Exit    int    `json:"exit"`
	SleepMS int    `json:"sleep_ms"`
	Env     string `json:"env"`
	Hang    bool   `json:"hang"`
}

type response struct {
	Echo       any    `json:"echo,omitempty"`
	PID        int    `json:"pid"`
	RequestID  string `json:"request_id"`
	ARN        string `json:"arn"`
	DeadlineMS int64  `json:"deadline_ms"`
	Env        string `json:"env,omitempty"`
	Trace      string `json:"trace"`
}

func handle(ctx context.Context, ev event) (response, error) {
	lc, _ := lambdacontext.FromContext(ctx)
	d, _ := ctx.Deadline()
	if ev.SleepMS > 0 {
		select {
		case <-time.After(time.Duration(ev.SleepMS) * time.Millisecond):
		case <-ctx.Done():
		}
	}
	switch {
	case ev.Hang:
		time.Sleep(time.Hour)
	case ev.Error != "":
		return response{}, errors.New(ev.Error)
	case ev.Panic != "":
		panic(ev.Panic)
	case ev.Exit != 0:
		os.Exit(ev.Exit)
	}
	trace, _ := ctx.Value("x-amzn-trace-id").(string)
	return response{
		Echo: ev.Echo, PID: os.Getpid(), RequestID: lc.AwsRequestID, ARN: lc.InvokedFunctionArn,
		DeadlineMS: time.Until(d).Milliseconds(), Env: os.Getenv(ev.Env), Trace: trace,
	}, nil
}

func main() {
	switch os.Getenv("FN_INIT") {
	case "exit":
		fmt.Fprintln(os.Stderr, "fn: exiting during init")
		os.Exit(3)
	case "post":
		url := "http://" + os.Getenv("AWS_LAMBDA_RUNTIME_API") + "/2018-06-01/runtime/init/error"
		body := `{"errorType":"Config.Invalid","errorMessage":"TABLE_NAME is required"}`
		resp, err := http.Post(url, "application/json", strings.NewReader(body))
		if err == nil {
			resp.Body.Close()
		}
		os.Exit(1)
	case "hang":
		time.Sleep(time.Hour)
	}
	lambda.Start(handle)
}
