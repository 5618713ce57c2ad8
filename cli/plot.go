package cli

import (
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
)

// Chart size: rows of bars and the most columns (one per point; more
// points are averaged down to this many).
const (
	chartHeight = 10
	chartWidth  = 60
)

// writeChart draws ys (one value per window, from the window starting at
// from to the one ending at end) as an ASCII bar chart: a title, chartHeight rows with
// the value scale on the left (bars grow up from 0, down for negative
// values), and the time range under it. More than chartWidth points are
// averaged in consecutive groups.
func writeChart(w io.Writer, title string, from, end time.Time, ys []float64) error {
	cols := downsample(ys, chartWidth)
	lo, hi := 0.0, 0.0
	for _, v := range cols {
		lo, hi = math.Min(lo, v), math.Max(hi, v)
	}
	if hi == lo {
		hi = lo + 1
	}
	// Row r (0 at the top) covers the values in (top(r+1), top(r)].
	step := (hi - lo) / chartHeight
	top := func(r int) float64 { return hi - float64(r)*step }
	label := func(v float64) string { return thousandsFloat(v) }
	width := 0
	for _, v := range []float64{hi, lo, 0} {
		width = max(width, len(label(v)))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s (%d points)\n", title, len(ys))
	for r := range chartHeight {
		upper, lower := top(r), top(r+1)
		axis := ""
		switch r {
		case 0:
			axis = label(hi)
		case chartHeight - 1:
			axis = label(lo)
		}
		if lower <= 0 && 0 < upper && r != 0 && r != chartHeight-1 {
			axis = label(0)
		}
		fmt.Fprintf(&b, "%*s |", width, axis)
		for _, v := range cols {
			mid := (upper + lower) / 2
			switch {
			case v > 0 && mid > 0 && v >= mid, v < 0 && mid < 0 && v <= mid:
				b.WriteByte('#')
			default:
				b.WriteByte(' ')
			}
		}
		b.WriteString("\n")
	}
	fmt.Fprintf(&b, "%*s +%s\n", width, "", strings.Repeat("-", len(cols)))
	fmt.Fprintf(&b, "%*s  %s to %s\n", width, "", from.UTC().Format(time.RFC3339), end.UTC().Format(time.RFC3339))
	_, err := io.WriteString(w, b.String())
	return err
}

// downsample averages ys into at most n consecutive groups of (nearly)
// equal size.
func downsample(ys []float64, n int) []float64 {
	if len(ys) <= n {
		return ys
	}
	out := make([]float64, n)
	for i := range n {
		from, to := i*len(ys)/n, (i+1)*len(ys)/n
		var sum float64
		for _, v := range ys[from:to] {
			sum += v
		}
		out[i] = sum / float64(to-from)
	}
	return out
}

// thousandsFloat renders a number with comma separators and two decimals
// when it has a fraction ("1,234", "1,234.50").
func thousandsFloat(v float64) string {
	r := math.Round(v*100) / 100
	whole := int64(r)
	s := thousands(whole)
	if frac := math.Abs(r - float64(whole)); frac >= 0.005 {
		if whole == 0 && r < 0 {
			s = "-0"
		}
		s += strconv.FormatFloat(frac, 'f', 2, 64)[1:]
	}
	return s
}

// decimals2 renders v with comma separators and two decimals ("1,234.50").
func decimals2(v float64) string {
	s := strconv.FormatFloat(math.Abs(v), 'f', 2, 64)
	whole, frac, _ := strings.Cut(s, ".")
	n, _ := strconv.ParseInt(whole, 10, 64)
	out := thousands(n) + "." + frac
	if v < 0 && s != "0.00" {
		out = "-" + out
	}
	return out
}

// writeNumbers writes rows as columns: the first left-aligned, the others
// (numbers) right-aligned, two spaces apart.
func writeNumbers(w io.Writer, rows [][]string) error {
	var widths []int
	for _, r := range rows {
		for i, c := range r {
			if i >= len(widths) {
				widths = append(widths, 0)
			}
			widths[i] = max(widths[i], len(c))
		}
	}
	var b strings.Builder
	for _, r := range rows {
		for i, c := range r {
			switch {
			case i == 0 && len(r) > 1:
				fmt.Fprintf(&b, "%-*s", widths[i], c)
			case i == 0:
				b.WriteString(c)
			default:
				fmt.Fprintf(&b, "  %*s", widths[i], c)
			}
		}
		b.WriteString("\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}
