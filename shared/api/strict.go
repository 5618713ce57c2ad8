package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/zeroae/zae-limiter-go/shared/limits"
)

// strictCheck walks a request body against the Go type it decodes into and
// rejects what encoding/json would let through silently: a key that matches
// a field only case-insensitively ("Entity_ID" for entity_id), a key given
// twice in one object (the last would win), null anywhere but an optional
// (omitempty) field (it would decode as a zero nobody sent), a number where
// a whole number is wanted or out of its range, a value of the wrong JSON
// kind, and a missing field tagged `required:"true"`. Every error names the
// path of the value, e.g. consume.rpm or limits[1].capacity.
//
// Malformed JSON is left to the decoder that runs afterwards, which names
// the syntax error.
func strictCheck(data []byte, t reflect.Type) error {
	if !json.Valid(data) {
		return nil // the decoder names the syntax error
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	w := walker{dec: dec}
	err := w.value(t, "", false)
	if errors.Is(err, errSyntax) {
		return nil
	}
	return err
}

type walker struct{ dec *json.Decoder }

// errSyntax stops the walk at malformed JSON; decodeJSON reports it.
var errSyntax = errors.New("syntax")

func (w walker) token() (json.Token, error) {
	tok, err := w.dec.Token()
	if err != nil {
		return nil, errSyntax
	}
	return tok, nil
}

// value checks the next JSON value against t (nil: anything, unchecked).
// nullOK is true only for optional (omitempty) struct fields.
func (w walker) value(t reflect.Type, path string, nullOK bool) error {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	tok, err := w.token()
	if err != nil {
		return err
	}
	switch v := tok.(type) {
	case json.Delim:
		switch v {
		case '{':
			return w.object(t, path)
		case '[':
			return w.array(t, path)
		}
		return errSyntax
	case nil:
		if !nullOK {
			return invalid(subject(path) + " must not be null")
		}
		return nil
	}
	if t == nil {
		return nil
	}
	return scalar(tok, t, path)
}

// scalar checks a string, number or boolean against t's kind.
func scalar(tok json.Token, t reflect.Type, path string) error {
	var got string
	switch v := tok.(type) {
	case string:
		if t.Kind() == reflect.String {
			return nil
		}
		got = "string " + strconv.Quote(truncate(v))
	case bool:
		if t.Kind() == reflect.Bool {
			return nil
		}
		got = strconv.FormatBool(v)
	case json.Number:
		switch t.Kind() {
		case reflect.Int, reflect.Int64, reflect.Int32:
			_, err := strconv.ParseInt(string(v), 10, 64)
			if err == nil {
				return nil
			}
			if errors.Is(err, strconv.ErrRange) {
				return invalid(fmt.Sprintf("%s must be at most %d in size, not %s", subject(path), limits.MaxTokens, truncate(string(v))))
			}
			return invalid(fmt.Sprintf("%s must be a whole number, not %s", subject(path), truncate(string(v))))
		case reflect.Float64, reflect.Float32:
			return nil
		}
		got = "number " + truncate(string(v))
	default:
		return nil
	}
	return invalid(fmt.Sprintf("%s must be %s, not %s", subject(path), kind(t), got))
}

func (w walker) object(t reflect.Type, path string) error {
	var fields []field
	switch {
	case t == nil || t.Kind() == reflect.Map:
	case t.Kind() == reflect.Struct:
		fields = jsonFields(t)
	default:
		return invalid(fmt.Sprintf("%s must be %s, not a JSON object", subject(path), kind(t)))
	}
	seen := make(map[string]bool)
	for w.dec.More() {
		tok, err := w.token()
		if err != nil {
			return err
		}
		key, _ := tok.(string)
		sub := join(path, key)
		if seen[key] {
			return invalid(subject(sub) + " is given more than once")
		}
		seen[key] = true
		var vt reflect.Type
		nullOK := false
		switch {
		case t == nil:
			nullOK = true
		case t.Kind() == reflect.Map:
			vt, nullOK = t.Elem(), false
		default:
			i := slices.IndexFunc(fields, func(f field) bool { return f.name == key })
			if i < 0 {
				return invalid(fmt.Sprintf("unknown field %s in the request body", quoteTrunc(sub)))
			}
			vt, nullOK = fields[i].typ, fields[i].optional
		}
		if err := w.value(vt, sub, nullOK); err != nil {
			return err
		}
	}
	if _, err := w.token(); err != nil { // '}'
		return err
	}
	for _, f := range fields { // declaration order: the same body, the same message
		if f.required && !seen[f.name] {
			return invalid(subject(join(path, f.name)) + " is required")
		}
	}
	return nil
}

func (w walker) array(t reflect.Type, path string) error {
	var et reflect.Type
	if t != nil {
		if t.Kind() != reflect.Slice && t.Kind() != reflect.Array {
			return invalid(fmt.Sprintf("%s must be %s, not a JSON array", subject(path), kind(t)))
		}
		et = t.Elem()
	}
	for i := 0; w.dec.More(); i++ {
		if err := w.value(et, path+"["+strconv.Itoa(i)+"]", false); err != nil {
			return err
		}
	}
	_, err := w.token() // ']'
	return err
}

// field is one JSON field of a struct: its exact name, its type, whether
// it may be null (optional: tagged omitempty) and whether it must be given
// (tagged required:"true").
type field struct {
	name               string
	typ                reflect.Type
	optional, required bool
}

// jsonFields lists t's exported fields by JSON name, in declaration order.
func jsonFields(t reflect.Type) []field {
	out := make([]field, 0, t.NumField())
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch name {
		case "-":
			continue
		case "":
			name = f.Name
		}
		out = append(out, field{
			name: name, typ: f.Type,
			optional: slices.Contains(strings.Split(opts, ","), "omitempty"),
			required: f.Tag.Get("required") == "true",
		})
	}
	return out
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// subject names the value at path in a message.
func subject(path string) string {
	if path == "" {
		return "the request body"
	}
	return "field " + quoteTrunc(path)
}

func truncate(s string) string { return cut(s, 40) }

// cut shortens s to at most n bytes and an ellipsis, never splitting a
// UTF-8 sequence.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "..."
}
