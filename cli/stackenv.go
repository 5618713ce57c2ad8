package cli

import (
	"context"
	"fmt"
	"io/fs"
	"os"

	"github.com/zeroae/zae-limiter-go/shared/stack"
)

// FunctionZips holds <function>.zip for every function when the CLI is
// built with `make build` (cmd/zae-limiter, build tag embedfunctions): what
// deploy uploads and lambda-export writes. Nil in a plain `go build`.
var FunctionZips fs.FS

// functionZipsEnv names a folder of <function>.zip that replaces every
// other source of the functions' code.
const functionZipsEnv = "ZAEL_FUNCTION_ZIPS"

// functionCode says where the functions' zips come from, in this order:
// ZAEL_FUNCTION_ZIPS, the zips embedded in this binary, a build from the
// checkout the CLI runs in (Go toolchain needed). Env.Code, when set (tests),
// wins over all of them.
func (e *Env) functionCode() (stack.Code, string, error) {
	if e.Code != nil {
		return e.Code, "the test's code", nil
	}
	if dir := e.Getenv(functionZipsEnv); dir != "" {
		if _, err := os.Stat(dir); err != nil {
			return nil, "", fmt.Errorf("%s=%s: %w", functionZipsEnv, dir, err)
		}
		return stack.FSCode{FS: os.DirFS(dir), Where: dir}, dir, nil
	}
	if FunctionZips != nil {
		return stack.FSCode{FS: FunctionZips, Where: "this zae-limiter binary"}, "this zae-limiter binary", nil
	}
	wd, err := os.Getwd()
	if err == nil {
		var root string
		if root, err = stack.FindModuleRoot(wd); err == nil {
			return stack.BuildCode{Root: root}, "a build of the checkout " + root, nil
		}
	}
	return nil, "", fmt.Errorf("this zae-limiter was built without the functions' code: build it with `make build` "+
		"(which embeds it), run it inside a checkout with Go installed, or set %s to a folder of <function>.zip (%v)",
		functionZipsEnv, err)
}

// stack returns the stack named by --name, reporting on stderr.
func (e *Env) stack(ctx context.Context) (*stack.Stack, error) {
	if err := stack.ValidateName(e.Name); err != nil {
		return nil, err
	}
	cfg, err := e.AWSConfig(ctx)
	if err != nil {
		return nil, err
	}
	principal, _ := e.principal(ctx)
	return stack.New(cfg, e.Name, stack.Config{
		Progress: e.Err, Version: version(), UpdatedBy: "cli:" + version(), Principal: principal,
		PollInterval: e.PollInterval,
	})
}

// deployer is the stack and where its functions' code comes from: what
// deploy, upgrade and lease-keys rotate need.
func (e *Env) deployer(ctx context.Context) (*stack.Stack, stack.Code, string, error) {
	code, where, err := e.functionCode()
	if err != nil {
		return nil, nil, "", err
	}
	s, err := e.stack(ctx)
	if err != nil {
		return nil, nil, "", err
	}
	return s, code, where, nil
}
