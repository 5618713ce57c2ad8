// Package zaelimiter holds what the module root owns: the SAM template,
// embedded so that `zae-limiter local up` runs the stack outside a checkout
// too.
package zaelimiter

import _ "embed"

// Template is template.yaml as built into this binary.
//
//go:embed template.yaml
var Template []byte
