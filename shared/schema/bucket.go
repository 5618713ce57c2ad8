package schema

// Attributes of a bucket shard item (SK #STATE). One item holds every limit
// of one (entity, resource, shard); limit L is stored flat as
//
//	b_{L}_tk  tokens, millitokens (may be negative: debt)
//	b_{L}_cp  capacity of this shard, millitokens
//	b_{L}_ra  refill amount of this shard per period, millitokens
//	b_{L}_rp  refill period, milliseconds
//	b_{L}_tc  net consumed, millitokens (never changed by refill)
//
// The presence of b_{L}_tk defines that L exists on the bucket. All limits
// share one refill timestamp rf. The hidden limit "wcu" models the
// per-partition write ceiling and triggers shard doubling.
const (
	AttrEntityID   = "entity_id"
	AttrResource   = "resource"
	AttrShard      = "shard"
	AttrShardCount = "shard_count"
	// AttrRefill is the shared last-refill time, epoch milliseconds.
	AttrRefill = "rf"
	// AttrParams fingerprints the stored limit parameters (and shard count):
	// fast-path writes are conditioned on it, so a change of limits or of
	// shard count is synced by the next write.
	AttrParams = "pv"
)

// Limit attribute suffixes.
const (
	SuffixTokens   = "_tk"
	SuffixCapacity = "_cp"
	SuffixRefill   = "_ra"
	SuffixPeriod   = "_rp"
	SuffixConsumed = "_tc"
)

// BucketAttr is the attribute name of a limit field, e.g. ("rpm", SuffixTokens).
func BucketAttr(limit, suffix string) string { return "b_" + limit + suffix }

// ConfigAttr is the attribute name of a config item's limit field; config
// items store whole tokens and seconds: l_{L}_cp, l_{L}_ra, l_{L}_rp.
func ConfigAttr(limit, suffix string) string { return "l_" + limit + suffix }

// LimitNameFromAttr returns L for an attribute "{prefix}{L}{suffix}".
func LimitNameFromAttr(attr, prefix, suffix string) (string, bool) {
	if len(attr) <= len(prefix)+len(suffix) || attr[:len(prefix)] != prefix || attr[len(attr)-len(suffix):] != suffix {
		return "", false
	}
	return attr[len(prefix) : len(attr)-len(suffix)], true
}
