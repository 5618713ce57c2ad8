package cli

import (
	"bytes"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
)

// WriteMarkdown renders the command tree as one Markdown reference (the
// source of docs/cli.md; `go test ./cli -run TestDocs -update` rewrites it).
func WriteMarkdown(w io.Writer) error {
	env := newEnv(strings.NewReader(""), io.Discard, io.Discard, func(string) string { return "" })
	root := newRootCmd(env)
	var b bytes.Buffer
	b.WriteString("# zae-limiter CLI reference\n\n")
	b.WriteString("<!-- Generated from the cobra tree by cli.WriteMarkdown; do not edit. " +
		"Regenerate with: go test ./cli -run TestDocs -update -->\n\n")
	b.WriteString(root.Long + "\n\n")
	b.WriteString(`## Conventions

- Exit codes: 0 success; 1 failure, including invalid values (one line on stderr naming the field
  and value); 2 usage error (unknown command or flag, missing argument, bad -o value, missing --yes
  without a terminal); 3 rate limited.
- Results go to stdout, progress and hints to stderr. Read commands take ` + "`-o table|json`" + `; JSON is
  one document. A read that finds nothing prints nothing (JSON ` + "`[]` or `{}`" + `) and exits 0; only
  ` + "`show`" + ` of a missing object exits 1.
- A limit in JSON is ` + "`{\"name\", \"capacity\", \"refill_amount\", \"refill_period_seconds\"}`" + `, plus
  ` + "`\"calendar\": \"day|week|month\"`" + ` for a calendar quota and ` + "`\"shadow\": true`" + ` for a shadow limit.
- Limit syntax: ` + "`-l name:rate[/period][:burst]`" + `, period ` + "`[N]sec|min|hour|day`" + ` (default ` + "`/min`" + `); burst
  is the capacity (default: the rate) and may not be below the rate (` + "`rpm:10:5`" + ` is refused; the same
  bucket, 10 a minute and at most 5 at once, is ` + "`rpm:5/30sec`" + `).
- Calendar quota syntax: ` + "`-l name:amount/calendar-day|calendar-week|calendar-month`" + ` (UTC; weeks start on
  Monday): the whole amount again at each boundary, debt carried into the next period. The
  commands that set limits take ` + "`--shadow NAME`" + ` to make a limit a shadow limit: counted and reported
  (the denial it would have made), never denying.
- A namespace is registered by the first write to it (other than ` + "`default`" + `, a line on stderr says
  so); reads of a namespace never registered find nothing and register nothing. Data commands never
  create the table.
- Destructive commands ask y/N on a terminal and need ` + "`-y/--yes`" + ` otherwise.

## Global flags

Accepted before or after the subcommand.

` + "```" + `
` + root.PersistentFlags().FlagUsages() + "```\n\n")
	b.WriteString("## Commands\n\n")
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for _, s := range c.Commands() {
			if s.Hidden || s.Name() == "help" {
				continue
			}
			writeCommand(&b, s)
			walk(s)
		}
	}
	walk(root)
	_, err := w.Write(b.Bytes())
	return err
}

func writeCommand(b *bytes.Buffer, c *cobra.Command) {
	fmt.Fprintf(b, "### %s\n\n", c.CommandPath())
	if c.Long != "" {
		b.WriteString(c.Long + "\n\n")
	} else {
		b.WriteString(c.Short + "\n\n")
	}
	if c.HasAvailableSubCommands() {
		b.WriteString("Subcommands:\n\n")
		for _, s := range c.Commands() {
			if !s.Hidden && s.Name() != "help" {
				fmt.Fprintf(b, "- `%s`: %s\n", s.CommandPath(), s.Short)
			}
		}
		b.WriteString("\n")
	} else {
		fmt.Fprintf(b, "```\n%s\n```\n\n", c.UseLine())
	}
	if fl := c.LocalNonPersistentFlags(); fl.HasAvailableFlags() {
		fmt.Fprintf(b, "Flags:\n\n```\n%s```\n\n", fl.FlagUsages())
	}
	if c.Example != "" {
		fmt.Fprintf(b, "Examples:\n\n```\n%s\n```\n\n", c.Example)
	}
}
