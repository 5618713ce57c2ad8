package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"github.com/zeroae/zae-limiter-go/shared/limits"
	"github.com/zeroae/zae-limiter-go/shared/wire"
)

// decodeBody reads a request body of at most wire.MaxBodyBytes into v.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) error {
	return decodeJSON(http.MaxBytesReader(w, r.Body, wire.MaxBodyBytes), v)
}

// decodeJSON decodes exactly one JSON value into v, rejecting unknown
// fields, and names the problem in the error (an *apiError).
func decodeJSON(rd io.Reader, v any) error {
	data, err := io.ReadAll(rd)
	if err != nil {
		if ae := readError(err); ae != nil {
			return ae
		}
		return invalid("could not read the request body")
	}
	if err := strictCheck(data, reflect.TypeOf(v)); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		if err != nil {
			if ae := readError(err); ae != nil {
				return ae
			}
		}
		return invalid("the request body must hold exactly one JSON object")
	}
	return nil
}

func readError(err error) *apiError {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return &apiError{status: http.StatusRequestEntityTooLarge, code: wire.CodeTooLarge,
			msg: fmt.Sprintf("the request body is larger than %d bytes", wire.MaxBodyBytes)}
	}
	return nil
}

func jsonError(err error) error {
	if ae := readError(err); ae != nil {
		return ae
	}
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.Is(err, io.EOF):
		return invalid("the request body is empty; want a JSON object")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return invalid("the request body is truncated JSON")
	case errors.As(err, &se):
		return invalid(fmt.Sprintf("the request body is not valid JSON (byte %d): %s", se.Offset, se.Error()))
	case errors.As(err, &te):
		field := te.Field
		if field == "" {
			return invalid(fmt.Sprintf("the request body must be %s, not %s", kind(te.Type), te.Value))
		}
		return invalid(fmt.Sprintf("field %s must be %s, not %s", quoteTrunc(field), kind(te.Type), te.Value))
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return invalid(strings.TrimPrefix(err.Error(), "json: ") + " in the request body")
	}
	return invalid("could not read the request body")
}

func kind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Int, reflect.Int64, reflect.Int32:
		return "a whole number"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Map, reflect.Struct:
		return "a JSON object"
	case reflect.Slice:
		return "a JSON array"
	}
	return "of type " + t.String()
}

// decodeAcquire reads and validates an acquire body.
func decodeAcquire(rd io.Reader) (wire.AcquireRequest, error) {
	var req wire.AcquireRequest
	if err := decodeJSON(rd, &req); err != nil {
		return wire.AcquireRequest{}, err
	}
	if err := validateAcquire(req); err != nil {
		return wire.AcquireRequest{}, err
	}
	return req, nil
}

func validateAcquire(req wire.AcquireRequest) error {
	if req.Namespace != "" {
		if err := limits.ValidateNamespaceName(req.Namespace); err != nil {
			return err
		}
	}
	if err := limits.ValidateEntityID(req.EntityID); err != nil {
		return err
	}
	if err := limits.ValidateResource(req.Resource); err != nil {
		return err
	}
	if req.Consume == nil {
		return limits.Invalid("consume", "", `is required: an object of limit names and whole amounts >= 0, e.g. {"rpm": 1}`)
	}
	if err := validateAmounts("consume", req.Consume, false); err != nil {
		return err
	}
	if req.Limits != nil {
		if len(req.Limits) == 0 {
			return limits.Invalid("limits", "[]", "must not be empty when given")
		}
		return limits.ValidateSet(limitsOf(req.Limits))
	}
	return nil
}

// validateAmounts checks names and whole-token amounts (signed for
// adjustments), in name order so the first problem is always the same.
func validateAmounts(field string, m map[string]int64, signed bool) error {
	names := make([]string, 0, len(m))
	for name := range m {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		n := m[name]
		if err := limits.ValidateLimitName(name); err != nil {
			return err
		}
		if !signed && n < 0 {
			return limits.Invalid(field+"."+name, strconv.FormatInt(n, 10), "must be a whole number >= 0")
		}
		if n > limits.MaxTokens || n < -limits.MaxTokens {
			return limits.Invalid(field+"."+name, strconv.FormatInt(n, 10), fmt.Sprintf("must be at most %d in size", limits.MaxTokens))
		}
	}
	return nil
}

func limitsOf(ws []wire.Limit) []limits.Limit {
	if ws == nil {
		return nil
	}
	out := make([]limits.Limit, len(ws))
	for i, l := range ws {
		out[i] = limits.Limit{Name: l.Name, Capacity: l.Capacity, RefillAmount: l.RefillAmount, RefillPeriodSeconds: l.RefillPeriodSeconds,
			Calendar: l.Calendar, Shadow: l.Shadow}
	}
	return out
}

// availableQuery is the query of GET /v1/available.
type availableQuery struct {
	Namespace, EntityID, Resource string
}

// decodeAvailable reads the query string: entity_id and resource are
// required, namespace optional; other or repeated parameters are rejected.
func decodeAvailable(raw string) (availableQuery, error) {
	vals, err := url.ParseQuery(raw)
	if err != nil {
		return availableQuery{}, invalid("the query string is malformed")
	}
	var q availableQuery
	for k, vs := range vals {
		if len(vs) > 1 {
			return availableQuery{}, invalid("query parameter " + quoteTrunc(k) + " is given more than once")
		}
		switch k {
		case "namespace":
			q.Namespace = vs[0]
		case "entity_id":
			q.EntityID = vs[0]
		case "resource":
			q.Resource = vs[0]
		default:
			return availableQuery{}, invalid("unknown query parameter " + quoteTrunc(k) + "; want entity_id, resource and optionally namespace")
		}
	}
	if _, ok := vals["namespace"]; ok {
		if err := limits.ValidateNamespaceName(q.Namespace); err != nil {
			return availableQuery{}, err
		}
	}
	if err := limits.ValidateEntityID(q.EntityID); err != nil {
		return availableQuery{}, err
	}
	if err := limits.ValidateResource(q.Resource); err != nil {
		return availableQuery{}, err
	}
	return q, nil
}
