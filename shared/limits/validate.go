package limits

import (
	"regexp"
	"strconv"
	"strings"
)

var (
	identifierRe = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.\-:@]*$`)
	limitNameRe  = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9_.\-]*$`)
	resourceRe   = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9_.\-/]*$`)
	stackNameRe  = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9-]*$`)
	namespaceRe  = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.\-]*$`)
)

// Length limits of identifiers and names.
const (
	MaxIdentifierLen = 256
	MaxNameLen       = 64
	MaxStackNameLen  = 55
)

// ReservedLimitName is the hidden per-shard write-pressure limit.
const ReservedLimitName = "wcu"

// DefaultResource is the entity-config sentinel for "every resource".
const DefaultResource = "_default_"

// ReservedNamespace holds table-wide records; users cannot register it.
const ReservedNamespace = "_"

// ValidateEntityID checks an entity id (field "entity_id").
func ValidateEntityID(id string) error { return ValidateIdentifier("entity_id", id) }

// ValidateIdentifier checks entity ids, parent ids and principals: a letter or
// digit, then letters, digits and `_ . - : @`, at most 256 characters, no `#`.
func ValidateIdentifier(field, v string) error {
	return check(field, v, MaxIdentifierLen, identifierRe,
		"must start with a letter or digit and contain only letters, digits and _ . - : @")
}

// ValidatePrincipal accepts an ARN as is, else an identifier.
func ValidatePrincipal(p string) error {
	if strings.HasPrefix(p, "arn:") && len(p) <= 2048 && !strings.ContainsAny(p, "#\n") {
		return nil
	}
	return ValidateIdentifier("principal", p)
}

// ValidateLimitName checks a limit name: a letter, then letters, digits and
// `_ . -`, at most 64 characters, not the reserved name "wcu".
func ValidateLimitName(name string) error {
	if name == ReservedLimitName {
		return Invalid("limit name", name, "is reserved")
	}
	return check("limit name", name, MaxNameLen, limitNameRe,
		"must start with a letter and contain only letters, digits and _ . -")
}

// ValidateResource checks a resource name: a letter, then letters, digits and
// `_ . - /`, at most 64 characters.
func ValidateResource(r string) error {
	return check("resource", r, MaxNameLen, resourceRe,
		"must start with a letter and contain only letters, digits and _ . - /")
}

// ValidateConfigResource accepts a resource or the entity-default sentinel.
func ValidateConfigResource(r string) error {
	if r == DefaultResource {
		return nil
	}
	return ValidateResource(r)
}

// ValidateNamespaceName checks a namespace name; "_" is reserved.
func ValidateNamespaceName(n string) error {
	if n == ReservedNamespace {
		return Invalid("namespace", n, "is reserved")
	}
	return check("namespace", n, MaxNameLen, namespaceRe,
		"must start with a letter or digit and contain only letters, digits and _ . -")
}

// ValidateStackName checks a stack (and table) name.
func ValidateStackName(n string) error {
	switch {
	case strings.Contains(n, "_"):
		return Invalid("name", n, "underscores are not allowed (CloudFormation stack names); use hyphens")
	case strings.Contains(n, "."):
		return Invalid("name", n, "periods are not allowed; use hyphens")
	case strings.Contains(n, " "):
		return Invalid("name", n, "spaces are not allowed")
	}
	return check("name", n, MaxStackNameLen, stackNameRe,
		"must start with a letter and contain only letters, digits and hyphens")
}

func check(field, v string, maxLen int, re *regexp.Regexp, reason string) error {
	switch {
	case v == "":
		return Invalid(field, v, "must not be empty")
	case len(v) > maxLen:
		return Invalid(field, v, "must be at most "+strconv.Itoa(maxLen)+" characters")
	case strings.Contains(v, "#"):
		return Invalid(field, v, "must not contain '#'")
	case !re.MatchString(v):
		return Invalid(field, v, reason)
	}
	return nil
}
