package lambdarun

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
)

// BuildOptions describe a bootstrap build.
type BuildOptions struct {
	// Package is what to build, e.g. "./functions/acquire" (relative to Dir).
	Package string
	// Output is the path of the binary to write.
	Output string
	// GOOS and GOARCH default to this machine's; use linux/arm64 for the
	// deployable binary.
	GOOS, GOARCH string
	// Dir is the directory `go build` runs in (default: the current one).
	Dir string
}

// Build compiles a bootstrap the way it is deployed: CGO_ENABLED=0,
// -tags lambda.norpc, -trimpath and a stripped binary (-ldflags=-s -w). It
// runs the `go` command found on PATH and returns its output on failure.
func Build(ctx context.Context, o BuildOptions) error {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return fmt.Errorf("lambdarun: build %s: %w", o.Package, err)
	}
	cmd := exec.CommandContext(ctx, goBin, "build", "-tags", "lambda.norpc", "-trimpath",
		"-ldflags=-s -w", "-o", o.Output, o.Package)
	cmd.Dir = o.Dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if o.GOOS != "" {
		cmd.Env = append(cmd.Env, "GOOS="+o.GOOS)
	}
	if o.GOARCH != "" {
		cmd.Env = append(cmd.Env, "GOARCH="+o.GOARCH)
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("lambdarun: go build %s: %w\n%s", o.Package, err, out)
	}
	return nil
}

var placeholder = regexp.MustCompile(`\{\{([A-Za-z0-9_]+)\}\}`)

// Placeholders lists the distinct {{NAME}} placeholders in an event.
func Placeholders(event []byte) []string {
	var out []string
	seen := map[string]bool{}
	for _, m := range placeholder.FindAllSubmatch(event, -1) {
		if n := string(m[1]); !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	return out
}

// FillPlaceholders implements the events/ convention for chained events: a
// {{NAME}} placeholder in an event is replaced by the top-level field
// lower(NAME) of the previous invocation's response, e.g. {{LEASE}} by the
// "lease" of an acquire. When the previous response is a Function URL
// response ({"statusCode", "body", ...}) the field is looked up in its JSON
// body. The value must be a string or number needing no JSON escaping (it may
// sit inside an escaped body string). An event without placeholders is
// returned unchanged.
func FillPlaceholders(event, prev []byte) ([]byte, error) {
	names := Placeholders(event)
	if len(names) == 0 {
		return event, nil
	}
	fields, err := responseFields(prev)
	if err != nil {
		return nil, err
	}
	out := string(event)
	for _, n := range names {
		raw, ok := fields[strings.ToLower(n)]
		if !ok {
			return nil, fmt.Errorf("lambdarun: placeholder {{%s}}: the previous response has no field %q", n, strings.ToLower(n))
		}
		var v string
		var num json.Number
		if err := json.Unmarshal(raw, &v); err != nil {
			if err := json.Unmarshal(raw, &num); err != nil {
				return nil, fmt.Errorf("lambdarun: placeholder {{%s}}: field %q is not a string or number", n, strings.ToLower(n))
			}
			v = num.String()
		}
		if strings.ContainsAny(v, "\"\\") || strings.ContainsFunc(v, func(r rune) bool { return r < 0x20 }) {
			return nil, fmt.Errorf("lambdarun: placeholder {{%s}}: value needs JSON escaping", n)
		}
		out = strings.ReplaceAll(out, "{{"+n+"}}", v)
	}
	return []byte(out), nil
}

// responseFields decodes a response payload, looking into the body of a
// Function URL response.
func responseFields(prev []byte) (map[string]json.RawMessage, error) {
	if len(prev) == 0 {
		return nil, fmt.Errorf("lambdarun: an event has placeholders but there is no previous response to fill them from")
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(prev, &top); err != nil {
		return nil, fmt.Errorf("lambdarun: previous response is not a JSON object: %w", err)
	}
	if _, ok := top["statusCode"]; !ok {
		return top, nil
	}
	var fu struct {
		Body            string `json:"body"`
		IsBase64Encoded bool   `json:"isBase64Encoded"`
	}
	if err := json.Unmarshal(prev, &fu); err != nil {
		return nil, fmt.Errorf("lambdarun: previous Function URL response: %w", err)
	}
	body := []byte(fu.Body)
	if fu.IsBase64Encoded {
		b, err := base64.StdEncoding.DecodeString(fu.Body)
		if err != nil {
			return nil, fmt.Errorf("lambdarun: previous Function URL response body: %w", err)
		}
		body = b
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil {
		return nil, fmt.Errorf("lambdarun: previous Function URL response body is not a JSON object: %w", err)
	}
	return fields, nil
}
