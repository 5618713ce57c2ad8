package stack

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/zeroae/zae-limiter-go/shared/schema"
	"github.com/zeroae/zae-limiter-go/shared/store"
)

// Compatibility is how a client build relates to a deployed table's
// version record (`zae-limiter check`).
type Compatibility string

// The results of CheckVersion.
const (
	// Compatible: nothing to do.
	Compatible Compatibility = "COMPATIBLE"
	// UpdateAvailable: compatible, but the deployed functions are another
	// (older) build than the client's; `upgrade` deploys the client's.
	UpdateAvailable Compatibility = "UPDATE_AVAILABLE"
	// Incompatible: the schema's major version differs, or the client is
	// below the table's minimum.
	Incompatible Compatibility = "INCOMPATIBLE"
	// NotInitialized: the table has no version record.
	NotInitialized Compatibility = "NOT_INITIALIZED"
)

// CheckVersion compares the client's version with the table's record (nil
// when it has none) and explains the result in one sentence.
func CheckVersion(client string, rec *store.VersionRecord) (Compatibility, string) {
	switch {
	case rec == nil:
		return NotInitialized, "the table has no version record: deploy it (zae-limiter deploy)"
	case major(rec.SchemaVersion) != major(schema.Version):
		return Incompatible, fmt.Sprintf("the table has schema %s and this build uses schema %s: a migration is needed",
			rec.SchemaVersion, schema.Version)
	}
	if c, ok := CompareVersions(client, rec.ClientMinVersion); ok && c < 0 {
		return Incompatible, fmt.Sprintf("this client (%s) is below the table's minimum client version %s: upgrade the client",
			client, rec.ClientMinVersion)
	}
	switch c, ok := CompareVersions(rec.LambdaVersion, client); {
	case rec.LambdaVersion == "":
		return UpdateAvailable, "the table records no functions' version: zae-limiter upgrade deploys this build's"
	case rec.LambdaVersion == client || (ok && c == 0):
		return Compatible, "the functions are this build (" + client + ")"
	case ok && c > 0:
		return Compatible, fmt.Sprintf("the functions (%s) are newer than this client (%s)", rec.LambdaVersion, client)
	case ok:
		return UpdateAvailable, fmt.Sprintf("the functions are %s, this client is %s: zae-limiter upgrade", rec.LambdaVersion, client)
	}
	return UpdateAvailable, fmt.Sprintf("the functions are build %s, this client is build %s: zae-limiter upgrade deploys this one",
		rec.LambdaVersion, client)
}

// semverRe: v1.2.3, 1.2, v1.2.3-rc.1, and git describe's v1.2.3-4-gabcdef(-dirty).
var semverRe = regexp.MustCompile(`^v?(\d+)(?:\.(\d+))?(?:\.(\d+))?(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$`)

var describeRe = regexp.MustCompile(`^(\d+)-g[0-9a-f]+(-dirty)?$`)

// CompareVersions compares two versions; ok is false when either is not a
// version (a commit hash, "dev"). A prerelease sorts before its release; a
// git describe suffix (-N-gHASH) after it, by N.
func CompareVersions(a, b string) (c int, ok bool) {
	pa, oka := parseVersion(a)
	pb, okb := parseVersion(b)
	if !oka || !okb {
		return 0, false
	}
	for i := range pa.n {
		if pa.n[i] != pb.n[i] {
			return cmpInt(pa.n[i], pb.n[i]), true
		}
	}
	if pa.rank != pb.rank {
		return cmpInt(pa.rank, pb.rank), true
	}
	switch pa.rank {
	case rankPost:
		return cmpInt(pa.post, pb.post), true
	case rankPre:
		return strings.Compare(pa.pre, pb.pre), true
	}
	return 0, true
}

const (
	rankPre = iota
	rankRelease
	rankPost
)

type version struct {
	n    [3]int
	rank int
	pre  string
	post int
}

func parseVersion(s string) (version, bool) {
	m := semverRe.FindStringSubmatch(strings.TrimSpace(s))
	if m == nil {
		return version{}, false
	}
	var v version
	for i := range 3 {
		if m[i+1] != "" {
			v.n[i], _ = strconv.Atoi(m[i+1])
		}
	}
	v.rank = rankRelease
	if m[4] != "" {
		if d := describeRe.FindStringSubmatch(m[4]); d != nil {
			v.rank = rankPost
			v.post, _ = strconv.Atoi(d[1])
		} else {
			v.rank, v.pre = rankPre, m[4]
		}
	}
	return v, true
}

func cmpInt(a, b int) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
