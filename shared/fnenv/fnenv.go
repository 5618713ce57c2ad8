// Package fnenv reads a Lambda function's environment contract: each
// variable parsed and checked, every problem collected and named by its
// variable, so one init failure says everything that is wrong at once.
package fnenv

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

var tableNameRe = regexp.MustCompile(`^[A-Za-z0-9_.-]{3,255}$`)

// Reader reads variables through lookup (os.LookupEnv in main) and
// collects the errors.
type Reader struct {
	lookup func(string) (string, bool)
	errs   []error
}

// New returns a Reader over lookup.
func New(lookup func(string) (string, bool)) *Reader { return &Reader{lookup: lookup} }

// Get returns variable k, trimmed ("" when unset).
func (r *Reader) Get(k string) string {
	v, _ := r.lookup(k)
	return strings.TrimSpace(v)
}

// Fail records a problem with variable k's value v.
func (r *Reader) Fail(k, v, want string) {
	r.errs = append(r.errs, fmt.Errorf("%s=%q: %s", k, v, want))
}

// Required returns variable k, recording an error when it is unset.
func (r *Reader) Required(k string) string {
	v := r.Get(k)
	if v == "" {
		r.errs = append(r.errs, fmt.Errorf("%s is required", k))
	}
	return v
}

// TableName returns variable k, required and a valid DynamoDB table name.
func (r *Reader) TableName(k string) string {
	v := r.Required(k)
	if v != "" && !tableNameRe.MatchString(v) {
		r.Fail(k, v, "want 3-255 letters, digits, '_', '-' or '.'")
	}
	return v
}

// Bool returns variable k as true or false (def when unset).
func (r *Reader) Bool(k string, def bool) bool {
	v := r.Get(k)
	if v == "" {
		return def
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		r.Fail(k, v, "want true or false")
		return def
	}
	return b
}

// Int returns variable k as a whole number from lo to hi (def when unset);
// want describes the range in the error ("whole days from 1 to 3650").
func (r *Reader) Int(k string, def, lo, hi int, want string) int {
	v := r.Get(k)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		r.Fail(k, v, "want "+want)
		return def
	}
	return n
}

// Err is every problem recorded, joined (nil when none).
func (r *Reader) Err() error { return errors.Join(r.errs...) }
