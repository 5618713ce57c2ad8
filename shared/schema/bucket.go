package schema

// Attributes of a bucket shard item (SK #STATE). One item holds every limit
// of one (entity, resource, shard); limit L is stored flat as
//
//	b_{L}_w   the limit's virtual time in millitokens (GCRA "theoretical
//	          arrival time"): the shard holds (cp - max(0, w - clock(now)))
//	          / shard_level millitokens, where clock(now) counts the
//	          millitokens the limit refilled since the epoch (package
//	          bucket); consuming n millitokens on a shard adds n*shard_level
//	b_{L}_cp  capacity of the whole limit, millitokens
//	b_{L}_ra  refill amount of the whole limit per period, millitokens
//	b_{L}_rp  refill period, milliseconds
//	b_{L}_tc  net consumed, millitokens (never changed by refill)
//	b_{L}_cr  credit balance (ADR-030): granted tokens an acquire uses once
//	          the bucket cannot take it, in millitokens of the whole limit
//	          (a shard holds cr / shard_level of them); absent means 0
//	b_{L}_sd  requests a shadow limit would have denied (ADR-031)
//
// A calendar limit (ADR-029) stores its period code (-1 day, -2 week, -3
// month) in b_{L}_rp.
//
// Each limit keeps its own state, so writers never contend on a shared
// refill timestamp: a busy bucket takes a commutative conditional ADD, an
// idle one a conditional SET. The hidden limit "wcu" models the partition's
// write ceiling and triggers shard doubling.
const (
	AttrEntityID = "entity_id"
	AttrResource = "resource"
	AttrShard    = "shard"
	// AttrShardCount is the number of shards clients spread over; it is
	// authoritative on shard 0 and only ever doubles.
	AttrShardCount = "shard_count"
	// AttrShardLevel is the shard count this item's parameters are divided
	// by; a shard below the target count is split before it is written.
	AttrShardLevel = "shard_level"
	// AttrParams fingerprints the stored limit parameters and shard level:
	// writes are conditioned on it, so a change of limits is synced by the
	// next write instead of being ignored.
	AttrParams = "pv"
	// AttrParamsEpoch orders parameter sets: the config epoch they came from.
	AttrParamsEpoch = "pe"
	// AttrWriterTime is the latest writer clock (Unix ms) a shard has seen:
	// the write budget is judged at it, so a writer whose clock lags never
	// mistakes other writers' bookings for load.
	AttrWriterTime = "wt"
	// AttrMerged marks a shard merged back into its sibling (a tombstone,
	// expiring within the hour): no writer may recreate it meanwhile.
	AttrMerged = "merged"
	// AttrGeneration stamps an item's creation (Unix ms): a lease refunds
	// only the generation it took from, never a bucket recreated since.
	AttrGeneration = "gen"
	// AttrGrant is the id of the last grant written to the shard: a grant
	// is conditioned on another id, so an SDK retry never adds it twice.
	AttrGrant = "gid"
)

// Limit attribute suffixes.
const (
	SuffixVirtualTime = "_w"
	SuffixCapacity    = "_cp"
	SuffixRefill      = "_ra"
	SuffixPeriod      = "_rp"
	SuffixConsumed    = "_tc"
	SuffixCredit      = "_cr"
	SuffixShadow      = "_sd"
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
