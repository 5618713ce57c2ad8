package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/zeroae/zae-limiter-go/shared/limits"
)

// Output formats of read commands.
const (
	formatTable = "table"
	formatJSON  = "json"
)

// outputFormat is the -o/--output flag value: table or json. A bad value is
// a flag error (usage, exit 2).
type outputFormat string

func (o *outputFormat) String() string {
	if *o == "" {
		return formatTable
	}
	return string(*o)
}

func (o *outputFormat) Set(s string) error {
	switch s {
	case formatTable, formatJSON:
		*o = outputFormat(s)
		return nil
	}
	return fmt.Errorf("want table or json")
}

func (o *outputFormat) Type() string { return "format" }

func (o outputFormat) json() bool { return o == formatJSON }

// addOutputFlag adds -o/--output to a read command.
func addOutputFlag(cmd *cobra.Command, o *outputFormat) {
	*o = formatTable
	cmd.Flags().VarP(o, "output", "o", "output `FORMAT`: table or json (e.g. -o json)")
}

// addYesFlag adds -y/--yes to a destructive command.
func addYesFlag(cmd *cobra.Command, yes *bool) {
	cmd.Flags().BoolVarP(yes, "yes", "y", false,
		"do not ask for confirmation; required when stdin is not a terminal (e.g. -y)")
}

// addLimitFlag adds the repeatable -l/--limit flag.
func addLimitFlag(cmd *cobra.Command, specs *[]string) {
	cmd.Flags().StringArrayVarP(specs, "limit", "l", nil,
		"`LIMIT` name:rate[/period][:burst], period [N]sec|min|hour|day (default /min), or a calendar quota name:amount/calendar-day|calendar-week|calendar-month, repeatable (e.g. -l rpm:100 -l tpm:5000000/calendar-month)")
}

// addShadowFlag adds the repeatable --shadow flag of the commands that set
// limits: the named -l limits count and report but never deny (ADR-031).
func addShadowFlag(cmd *cobra.Command, names *[]string) {
	cmd.Flags().StringArrayVar(names, "shadow", nil,
		"make the -l limit `NAME` a shadow limit: counted and reported, never denying, repeatable (e.g. -l rpm:100 --shadow rpm)")
}

// parseShadowLimits parses every -l value and marks those --shadow names.
func parseShadowLimits(specs, shadow []string) ([]limits.Limit, error) {
	ls, err := parseLimits(specs)
	if err != nil {
		return nil, err
	}
	for _, name := range shadow {
		i := slices.IndexFunc(ls, func(l limits.Limit) bool { return l.Name == name })
		if i < 0 {
			return nil, limits.Invalid("shadow", name, "names no -l limit")
		}
		ls[i].Shadow = true
	}
	return ls, nil
}

// addLimitOverrideFlag adds -l/--limit to a command whose limits otherwise
// come from the stored configuration.
func addLimitOverrideFlag(cmd *cobra.Command, specs *[]string) {
	addLimitFlag(cmd, specs)
	cmd.Flags().Lookup("limit").Usage = "`LIMIT` overriding the stored limits, name:rate[/period][:burst] or name:amount/calendar-day|calendar-week|calendar-month, repeatable (e.g. -l rpm:10 -l tpd:100000/calendar-day)"
}

// parseOptionalLimits parses the -l values of a command where -l is
// optional: none given is nil.
func parseOptionalLimits(specs []string) ([]limits.Limit, error) {
	if len(specs) == 0 {
		return nil, nil
	}
	return parseLimits(specs)
}

// parseLimits parses every -l value; none given is a usage error.
func parseLimits(specs []string) ([]limits.Limit, error) {
	if len(specs) == 0 {
		return nil, usageErrorf("at least one -l/--limit is required")
	}
	out := make([]limits.Limit, 0, len(specs))
	for _, s := range specs {
		l, err := limits.Parse(s)
		if err != nil {
			return nil, err
		}
		out = append(out, l)
	}
	if err := limits.ValidateSet(out); err != nil {
		return nil, err
	}
	return out, nil
}

// writeJSON writes v as one indented JSON document.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// emptyObject and emptyList are the JSON results of reads that find nothing.
var (
	emptyObject = struct{}{}
	emptyList   = []struct{}{}
)

// jsonLimits never renders null for an empty set of limits.
func jsonLimits(ls []limits.Limit) []limits.Limit {
	if ls == nil {
		return []limits.Limit{}
	}
	return ls
}

// table writes aligned columns.
type table struct{ tw *tabwriter.Writer }

func newTable(w io.Writer, header ...string) *table {
	t := &table{tw: tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)}
	if len(header) > 0 {
		t.row(header...)
	}
	return t
}

func (t *table) row(cells ...string) {
	for len(cells) > 1 && cells[len(cells)-1] == "" { // no trailing padding
		cells = cells[:len(cells)-1]
	}
	for i, c := range cells {
		cells[i] = strings.ReplaceAll(c, "\t", " ")
	}
	fmt.Fprintln(t.tw, strings.Join(cells, "\t"))
}

func (t *table) flush() error { return t.tw.Flush() }

// limitRows adds one row per limit, naming their owner in the first column
// of the first row only.
func (t *table) limitRows(owner string, ls []limits.Limit) {
	for _, l := range ls {
		t.row(owner, formatLimit(l))
		owner = ""
	}
}

// writeLimits prints the limits of a resource (its defaults, or an entity's
// limits for it): with -o json the document doc, {} when there are none;
// else a RESOURCE/LIMIT table, or the line none on stderr when there are
// none.
func writeLimits(env *Env, o outputFormat, doc any, resource string, ls []limits.Limit, none string) error {
	if o.json() {
		if len(ls) == 0 {
			return writeJSON(env.Out, emptyObject)
		}
		return writeJSON(env.Out, doc)
	}
	if len(ls) == 0 {
		env.progress("%s", none)
		return nil
	}
	t := newTable(env.Out, "RESOURCE", "LIMIT")
	t.limitRows(resource, ls)
	return t.flush()
}

// formatLimit renders a limit for people: "rpm: 100/min",
// "tpm: 10,000/min (burst 15,000)", "rp5m: 100/5min".
func formatLimit(l limits.Limit) string {
	s := l.Name + ": " + thousands(l.RefillAmount) + "/" + limits.FormatPeriod(l.RefillPeriodSeconds)
	if l.Calendar != "" {
		s = l.Name + ": " + thousands(l.Capacity) + "/calendar-" + l.Calendar
	} else if l.Capacity != l.RefillAmount {
		s += " (burst " + thousands(l.Capacity) + ")"
	}
	if l.Shadow {
		s += " (shadow)"
	}
	return s
}

// thousands renders n with comma separators.
func thousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	if neg {
		s = s[1:]
	}
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// timestamp renders t in UTC (RFC 3339), "-" for the zero time.
func timestamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

// orDash renders an empty cell as "-".
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
