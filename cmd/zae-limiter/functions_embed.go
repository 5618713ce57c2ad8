//go:build embedfunctions

package main

import (
	"embed"
	"io/fs"

	"github.com/zeroae/zae-limiter-go/cli"
)

// functionZips are every function's deployment zip, written by `make build`
// (zae-limiter lambda-export into functions/) before it builds this binary
// with -tags embedfunctions: deploy and lambda-export then need no Go
// toolchain and no checkout.
//
//go:embed functions/*.zip
var functionZips embed.FS

func init() {
	sub, err := fs.Sub(functionZips, "functions")
	if err != nil {
		panic(err) // a fixed, embedded folder
	}
	cli.FunctionZips = sub
}
