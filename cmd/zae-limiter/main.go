// Command zae-limiter is the command line of the zae-limiter rate limiter.
package main

import (
	"os"

	"github.com/zeroae/zae-limiter-go/cli"
)

func main() { os.Exit(cli.Main()) }
