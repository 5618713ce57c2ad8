package cli

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zeroae/zae-limiter-go/shared/limits"
)

// Parse-only tests of the commands beyond the reference (ADR-029 to 032):
// calendar and shadow limits on the set commands, entity reset, grant,
// block and unblock.

func shadowed(l limits.Limit) limits.Limit { l.Shadow = true; return l }

func TestNewCmdSetLimitsCalendarShadow(t *testing.T) {
	month := limits.PerCalendar("tpm", 5000000, limits.CalendarMonth)
	checkParse(t, []string{"entity", "set-limits"}, newCmdEntitySetLimits,
		func(o *entitySetLimitsOptions) { o.env = nil },
		[]parseCase[entitySetLimitsOptions]{
			{name: "calendar month", args: []string{"entity", "set-limits", "org", "-r", "gpt-4", "-l", "tpm:5000000/calendar-month"},
				want: &entitySetLimitsOptions{ID: "org", Resource: "gpt-4", Limits: []limits.Limit{month}}},
			{name: "calendar day and week", args: []string{"entity", "set-limits", "org", "-l", "rpd:100/calendar-day", "-l", "rpw:500/calendar-week"},
				want: &entitySetLimitsOptions{ID: "org", Resource: limits.DefaultResource, Limits: []limits.Limit{
					limits.PerCalendar("rpd", 100, limits.CalendarDay), limits.PerCalendar("rpw", 500, limits.CalendarWeek)}}},
			{name: "shadow", args: []string{"entity", "set-limits", "org", "-r", "gpt-4", "-l", "rpm:500", "-l", "rpd:2000/day", "--shadow", "rpd"},
				want: &entitySetLimitsOptions{ID: "org", Resource: "gpt-4", Limits: []limits.Limit{
					limits.PerMinute("rpm", 500, 0), shadowed(limits.PerDay("rpd", 2000, 0))}}},
			{name: "shadow calendar", args: []string{"entity", "set-limits", "org", "-l", "tpm:5000000/calendar-month", "--shadow", "tpm"},
				want: &entitySetLimitsOptions{ID: "org", Resource: limits.DefaultResource, Limits: []limits.Limit{shadowed(month)}}},
			{name: "shadow of no -l limit", args: []string{"entity", "set-limits", "org", "-l", "rpm:5", "--shadow", "rpd"},
				wantCode: exitError, wantErr: `invalid shadow "rpd": names no -l limit`},
			{name: "shadow alone", args: []string{"entity", "set-limits", "org", "--shadow", "rpd"},
				wantCode: exitUsage, wantErr: "at least one -l/--limit is required"},
			{name: "calendar with a burst", args: []string{"entity", "set-limits", "org", "-l", "q:5/calendar-day:10"},
				wantCode: exitError, wantErr: `invalid limit q burst "10": a calendar quota has no burst`},
			{name: "unknown calendar", args: []string{"entity", "set-limits", "org", "-l", "q:5/calendar-year"},
				wantCode: exitError, wantErr: `invalid limit period "/calendar-year": use /calendar-day, /calendar-week or /calendar-month`},
		})
	checkParse(t, []string{"resource", "set-defaults"}, newCmdResourceSetDefaults,
		func(o *resourceSetDefaultsOptions) { o.env = nil },
		[]parseCase[resourceSetDefaultsOptions]{
			{name: "resource shadow calendar", args: []string{"resource", "set-defaults", "gpt-4", "-l", "rpm:50", "-l", "tpm:5000000/calendar-month", "--shadow", "tpm"},
				want: &resourceSetDefaultsOptions{Resource: "gpt-4", Limits: []limits.Limit{limits.PerMinute("rpm", 50, 0), shadowed(month)}}},
			{name: "resource shadow of no -l limit", args: []string{"resource", "set-defaults", "gpt-4", "-l", "rpm:50", "--shadow", "tpm"},
				wantCode: exitError, wantErr: `invalid shadow "tpm"`},
		})
	checkParse(t, []string{"system", "set-defaults"}, newCmdSystemSetDefaults,
		func(o *systemSetDefaultsOptions) { o.env = nil },
		[]parseCase[systemSetDefaultsOptions]{
			{name: "system shadow", args: []string{"system", "set-defaults", "-l", "rpm:100", "-l", "rpd:1000/calendar-day", "--shadow", "rpd"},
				want: &systemSetDefaultsOptions{Limits: []limits.Limit{limits.PerMinute("rpm", 100, 0), shadowed(limits.PerCalendar("rpd", 1000, limits.CalendarDay))}}},
			{name: "system shadow without -l", args: []string{"system", "set-defaults", "--on-unavailable", "allow", "--shadow", "rpd"},
				wantCode: exitUsage, wantErr: "--shadow names a -l limit"},
		})
	checkParse(t, []string{"acquire"}, newCmdAcquire,
		func(o *acquireOptions) { o.env = nil },
		[]parseCase[acquireOptions]{
			{name: "acquire with a calendar override", args: []string{"acquire", "u1", "gpt-4", "-c", "tpm=10", "-l", "tpm:1000/calendar-week"},
				want: &acquireOptions{EntityID: "u1", Resource: "gpt-4", Consume: map[string]int64{"tpm": 10},
					Limits: []limits.Limit{limits.PerCalendar("tpm", 1000, limits.CalendarWeek)}, Output: formatTable}},
		})
}

func TestNewCmdEntityReset(t *testing.T) {
	checkParse(t, []string{"entity", "reset"}, newCmdEntityReset,
		func(o *entityResetOptions) { o.env = nil },
		[]parseCase[entityResetOptions]{
			{name: "every limit", args: []string{"entity", "reset", "key-1", "--resource", "gpt-4", "--yes"},
				want: &entityResetOptions{ID: "key-1", Resource: "gpt-4", Yes: true}},
			{name: "named limits", args: []string{"entity", "reset", "key-1", "-r", "gpt-4", "--limit", "tpm", "--limit", "rpm", "-y"},
				want: &entityResetOptions{ID: "key-1", Resource: "gpt-4", Limits: []string{"tpm", "rpm"}, Yes: true}},
			{name: "no resource", args: []string{"entity", "reset", "key-1", "-y"},
				wantCode: exitUsage, wantErr: "--resource is required"},
			{name: "no yes", args: []string{"entity", "reset", "key-1", "-r", "gpt-4"},
				wantCode: exitUsage, wantErr: "--yes is required"},
			{name: "bad limit name", args: []string{"entity", "reset", "key-1", "-r", "gpt-4", "--limit", "9x", "-y"},
				wantCode: exitError, wantErr: `invalid limit name "9x"`},
			{name: "bad entity", args: []string{"entity", "reset", "key#1", "-r", "gpt-4", "-y"},
				wantCode: exitError, wantErr: `invalid entity_id "key#1"`},
			{name: "bad resource", args: []string{"entity", "reset", "key-1", "-r", "9lives", "-y"},
				wantCode: exitError, wantErr: `invalid resource "9lives"`},
			{name: "no entity", args: []string{"entity", "reset", "-r", "gpt-4", "-y"},
				wantCode: exitUsage, wantErr: "missing argument ENTITY_ID"},
		})
}

func TestNewCmdEntityGrant(t *testing.T) {
	checkParse(t, []string{"entity", "grant"}, newCmdEntityGrant,
		func(o *entityGrantOptions) { o.env = nil },
		[]parseCase[entityGrantOptions]{
			{name: "one limit", args: []string{"entity", "grant", "org-acme", "--resource", "gpt-4", "-c", "tpm=1000000"},
				want: &entityGrantOptions{ID: "org-acme", Resource: "gpt-4", Credits: map[string]int64{"tpm": 1000000}}},
			{name: "two limits", args: []string{"entity", "grant", "k", "-r", "gpt-4", "-c", "rpm=100", "--consume", "tpm=50000"},
				want: &entityGrantOptions{ID: "k", Resource: "gpt-4", Credits: map[string]int64{"rpm": 100, "tpm": 50000}}},
			{name: "no resource", args: []string{"entity", "grant", "k", "-c", "tpm=1"},
				wantCode: exitUsage, wantErr: "--resource is required"},
			{name: "no credits", args: []string{"entity", "grant", "k", "-r", "gpt-4"},
				wantCode: exitUsage, wantErr: "at least one -c/--consume NAME=AMOUNT is required"},
			{name: "zero", args: []string{"entity", "grant", "k", "-r", "gpt-4", "-c", "tpm=0"},
				wantCode: exitError, wantErr: `invalid credits.tpm "0": must be a whole number > 0`},
			{name: "negative", args: []string{"entity", "grant", "k", "-r", "gpt-4", "-c", "tpm=-5"},
				wantCode: exitError, wantErr: `invalid consume.tpm "-5"`},
			{name: "malformed", args: []string{"entity", "grant", "k", "-r", "gpt-4", "-c", "tpm:5"},
				wantCode: exitError, wantErr: `invalid consume "tpm:5": want NAME=AMOUNT`},
			{name: "reserved name", args: []string{"entity", "grant", "k", "-r", "gpt-4", "-c", "wcu=5"},
				wantCode: exitError, wantErr: `invalid limit name "wcu"`},
		})
}

func TestNewCmdEntityBlock(t *testing.T) {
	checkParse(t, []string{"entity", "block"}, newCmdEntityBlock,
		func(o *entityBlockOptions) { o.env = nil },
		[]parseCase[entityBlockOptions]{
			{name: "until unblocked", args: []string{"entity", "block", "sk-abuse"},
				want: &entityBlockOptions{ID: "sk-abuse"}},
			{name: "until an instant", args: []string{"entity", "block", "org", "--until", "2999-01-01T00:00:00Z"},
				want: &entityBlockOptions{ID: "org", Until: time.Date(2999, 1, 1, 0, 0, 0, 0, time.UTC)}},
			{name: "in the past", args: []string{"entity", "block", "org", "--until", "2001-01-01T00:00:00Z"},
				wantCode: exitError, wantErr: `invalid until "2001-01-01T00:00:00Z": must be in the future`},
			{name: "not a time", args: []string{"entity", "block", "org", "--until", "tomorrow"},
				wantCode: exitError, wantErr: `invalid until "tomorrow": want RFC 3339`},
			{name: "negative duration", args: []string{"entity", "block", "org", "--until", "-2h"},
				wantCode: exitError, wantErr: `invalid until "-2h"`},
			{name: "bad entity", args: []string{"entity", "block", "a b"},
				wantCode: exitError, wantErr: `invalid entity_id "a b"`},
		})
	checkParse(t, []string{"entity", "unblock"}, newCmdEntityUnblock,
		func(o *entityUnblockOptions) { o.env = nil },
		[]parseCase[entityUnblockOptions]{
			{name: "unblock", args: []string{"entity", "unblock", "org"}, want: &entityUnblockOptions{ID: "org"}},
			{name: "unblock bad entity", args: []string{"entity", "unblock", "a#b"},
				wantCode: exitError, wantErr: `invalid entity_id "a#b"`},
			{name: "unblock no entity", args: []string{"entity", "unblock"},
				wantCode: exitUsage, wantErr: "missing argument ENTITY_ID"},
		})
}

func TestParseUntil(t *testing.T) {
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Time
	}{
		{"2h", now.Add(2 * time.Hour)},
		{"90m", now.Add(90 * time.Minute)},
		{"7d", now.AddDate(0, 0, 7)},
		{"2026-12-01T00:00:00Z", time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)},
		{"2026-12-01T01:00:00+01:00", time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)},
	} {
		got, err := parseUntil(tc.in, now)
		require.NoError(t, err, tc.in)
		assert.True(t, tc.want.Equal(got), "%s: %v, want %v", tc.in, got, tc.want)
	}
	for _, bad := range []string{"0s", "0d", "-1h", "2026-11-30T12:00:00Z", "soon", ""} {
		_, err := parseUntil(bad, now)
		assert.ErrorIs(t, err, limits.ErrInvalid, bad)
	}
}
