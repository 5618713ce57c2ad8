package main

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// config is the function's environment contract. The SDK reads its own
// variables (AWS_REGION, credentials, AWS_ENDPOINT_URL_DYNAMODB, ...) itself.
type config struct {
	// Table is TABLE_NAME (required): the limiter's DynamoDB table. A custom
	// resource naming another TableName fails.
	Table string
	// Tracing is AWS_XRAY_TRACING_ENABLED (optional, default false): trace
	// the DynamoDB calls with X-Ray (the template sets it with EnableTracing).
	Tracing bool
}

// Environment variable names.
const (
	envTable   = "TABLE_NAME"
	envTracing = "AWS_XRAY_TRACING_ENABLED"
)

var tableNameRe = regexp.MustCompile(`^[A-Za-z0-9_.-]{3,255}$`)

// loadConfig reads the configuration through lookup (os.LookupEnv in main).
// Every error names the variable at fault.
func loadConfig(lookup func(string) (string, bool)) (config, error) {
	get := func(k string) string {
		v, _ := lookup(k)
		return strings.TrimSpace(v)
	}
	var c config
	var errs []error
	switch c.Table = get(envTable); {
	case c.Table == "":
		errs = append(errs, fmt.Errorf("%s is required", envTable))
	case !tableNameRe.MatchString(c.Table):
		errs = append(errs, fmt.Errorf("%s=%q: want 3-255 letters, digits, '_', '-' or '.'", envTable, c.Table))
	}
	if v := get(envTracing); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s=%q: want true or false", envTracing, v))
		}
		c.Tracing = b
	}
	return c, errors.Join(errs...)
}
