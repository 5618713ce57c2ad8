package cli

import (
	"errors"
	"fmt"
	"io"
	"net"
	"strings"

	"github.com/aws/smithy-go"
	"github.com/spf13/cobra"

	"github.com/zeroae/zae-limiter-go/shared/limits"
)

// Exit codes (DECISIONS §4.1).
const (
	exitOK      = 0
	exitError   = 1 // any failure, including invalid values
	exitUsage   = 2 // unknown command or flag, missing argument, bad flag value
	exitLimited = 3 // rate limited (acquire)
)

// UsageError marks a command-line usage problem: exit code 2.
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

func usageErr(err error) error { return &UsageError{Err: err} }

func usageErrorf(format string, a ...any) error { return usageErr(fmt.Errorf(format, a...)) }

// errCancelled: the user declined a confirmation prompt.
var errCancelled = errors.New("cancelled")

// exitCode maps an error to the process exit code.
func exitCode(err error) int {
	var ue *UsageError
	var ex *limits.ExceededError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ue):
		return exitUsage
	case errors.As(err, &ex):
		return exitLimited
	}
	return exitError
}

// reportError prints the error as one line on stderr and returns its exit
// code. Usage errors point at the command's help.
func reportError(w io.Writer, cmd *cobra.Command, err error) int {
	code := exitCode(err)
	msg := oneLine(err)
	if code == exitUsage && cmd != nil {
		msg += fmt.Sprintf(" (see '%s --help')", cmd.CommandPath())
	}
	fmt.Fprintln(w, "Error: "+msg)
	return code
}

// oneLine renders err as a single line without the SDK's wrapped noise: an
// AWS operation error becomes "<Service> <Operation>: <Code>: <message>", a
// connection failure "cannot connect to <host>: <reason>".
func oneLine(err error) string {
	msg := err.Error()
	var op *smithy.OperationError
	if errors.As(err, &op) {
		full := op.Error()
		short := op.ServiceID + " " + op.OperationName + ": " + causeText(op.Err)
		msg = strings.Replace(msg, full, short, 1)
	}
	msg = strings.Join(strings.Fields(msg), " ")
	return msg
}

// credentialsFailed reports whether err is the SDK's credential chain
// finding no credentials (DynamoDB was never asked).
func credentialsFailed(err error) bool {
	return strings.Contains(err.Error(), "failed to refresh cached credentials")
}

func causeText(err error) string {
	if credentialsFailed(err) {
		return "no usable AWS credentials (configure a profile or AWS_ACCESS_KEY_ID, or pass --endpoint-url for a local DynamoDB): " +
			innermost(err).Error()
	}
	var api smithy.APIError
	if errors.As(err, &api) {
		if m := api.ErrorMessage(); m != "" {
			return api.ErrorCode() + ": " + m
		}
		return api.ErrorCode()
	}
	var ne *net.OpError
	if errors.As(err, &ne) {
		addr := ""
		if ne.Addr != nil {
			addr = " " + ne.Addr.String()
		}
		return "cannot connect to" + addr + ": " + innermost(ne.Err).Error()
	}
	return innermost(err).Error()
}

func innermost(err error) error {
	for {
		u := errors.Unwrap(err)
		if u == nil {
			return err
		}
		err = u
	}
}
