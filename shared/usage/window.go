package usage

import (
	"fmt"
	"strings"
	"time"
)

// Window is the length of a usage snapshot's time window. Windows are
// aligned in UTC: an hour, a day from 00:00, a month from its first day.
type Window string

const (
	Hourly  Window = "hourly"
	Daily   Window = "daily"
	Monthly Window = "monthly"
)

// Windows are every window, finest first.
var Windows = []Window{Hourly, Daily, Monthly}

// DefaultWindows are the windows the aggregator writes unless told
// otherwise (the reference's default; monthly is one write more per batch).
var DefaultWindows = []Window{Hourly, Daily}

// ParseWindow reads one window name.
func ParseWindow(s string) (Window, error) {
	for _, w := range Windows {
		if string(w) == s {
			return w, nil
		}
	}
	return "", fmt.Errorf("window %q: want hourly, daily or monthly", s)
}

// ParseWindows reads a comma-separated list of window names (spaces
// around names and repeated names are ignored), finest first.
func ParseWindows(s string) ([]Window, error) {
	seen := map[Window]bool{}
	for _, part := range strings.Split(s, ",") {
		w, err := ParseWindow(strings.TrimSpace(part))
		if err != nil {
			return nil, err
		}
		seen[w] = true
	}
	var out []Window
	for _, w := range Windows {
		if seen[w] {
			out = append(out, w)
		}
	}
	return out, nil
}

// Start is the start of the window holding t.
func (w Window) Start(t time.Time) time.Time {
	t = t.UTC()
	switch w {
	case Hourly:
		return t.Truncate(time.Hour)
	case Daily:
		return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
	case Monthly:
		return time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
	}
	panic(fmt.Sprintf("usage: unknown window %q", string(w)))
}

// End is the end (exclusive) of the window that starts at start.
func (w Window) End(start time.Time) time.Time {
	switch w {
	case Hourly:
		return start.Add(time.Hour)
	case Daily:
		return start.AddDate(0, 0, 1)
	case Monthly:
		return start.AddDate(0, 1, 0)
	}
	panic(fmt.Sprintf("usage: unknown window %q", string(w)))
}

// TimeLayout is how a window start is stored and shown: RFC 3339, UTC,
// whole seconds. It has a fixed width, so starts sort as strings.
const TimeLayout = "2006-01-02T15:04:05Z"

// formatStart renders a window start.
func formatStart(t time.Time) string { return t.UTC().Format(TimeLayout) }
