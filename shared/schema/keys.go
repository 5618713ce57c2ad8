package schema

import (
	"fmt"
	"strconv"
	"strings"
)

// Key attribute names.
const (
	PK     = "PK"
	SK     = "SK"
	GSI1PK = "GSI1PK"
	GSI1SK = "GSI1SK"
	GSI2PK = "GSI2PK"
	GSI2SK = "GSI2SK"
	GSI3PK = "GSI3PK"
	GSI3SK = "GSI3SK"
	GSI4PK = "GSI4PK"
	GSI4SK = "GSI4SK"
	// TTL is the table's time-to-live attribute (epoch seconds).
	TTL = "ttl"
)

// Index names.
const (
	GSI1 = "GSI1" // parent -> children
	GSI2 = "GSI2" // usage by resource; audit time index
	GSI3 = "GSI3" // entity configs by resource; buckets by entity
	GSI4 = "GSI4" // everything in a namespace; buckets by resource
)

// TableNS is the reserved namespace of table-wide records.
const TableNS = "_"

// Sort keys of singleton records.
const (
	SKMeta                  = "#META"
	SKConfig                = "#CONFIG"
	SKState                 = "#STATE"
	SKVersion               = "#VERSION"
	SKArchiver              = "#ARCHIVER"
	SKResources             = "#RESOURCES"
	SKEntityConfigResources = "#ENTITY_CONFIG_RESOURCES"
	SKProvisioner           = "#PROVISIONER"
	SKLease                 = "#LEASE"
	SKConfigPrefix          = "#CONFIG#"
	SKUsagePrefix           = "#USAGE#"
	SKAuditPrefix           = "#AUDIT#"
	SKNamespacePrefix       = "#NAMESPACE#"
	SKNamespaceIDPrefix     = "#NSID#"
)

// Key is a primary key.
type Key struct{ PK, SK string }

// SystemPK is the partition of a namespace's system records.
func SystemPK(ns string) string { return ns + "/SYSTEM#" }

// EntityPK is the partition of an entity's records.
func EntityPK(ns, id string) string { return ns + "/ENTITY#" + id }

// ResourcePK is the partition of a resource's default config.
func ResourcePK(ns, res string) string { return ns + "/RESOURCE#" + res }

// AuditPK is the partition of an entity's audit events ($SYSTEM, $RESOURCE:x too).
func AuditPK(ns, entity string) string { return ns + "/AUDIT#" + entity }

// LeasePK is the partition of one HTTP lease's state.
func LeasePK(ns, leaseID string) string { return ns + "/LEASE#" + leaseID }

// BucketPK is the partition of one bucket shard.
func BucketPK(ns, entity, res string, shard int) string {
	return ns + "/BUCKET#" + entity + "#" + res + "#" + strconv.Itoa(shard)
}

func VersionKey() Key              { return Key{SystemPK(TableNS), SKVersion} }
func ArchiverKey() Key             { return Key{SystemPK(TableNS), SKArchiver} }
func NamespaceKey(name string) Key { return Key{SystemPK(TableNS), SKNamespacePrefix + name} }
func NamespaceIDKey(id string) Key { return Key{SystemPK(TableNS), SKNamespaceIDPrefix + id} }
func EntityKey(ns, id string) Key  { return Key{EntityPK(ns, id), SKMeta} }
func EntityConfigKey(ns, id, res string) Key {
	return Key{EntityPK(ns, id), SKConfigPrefix + res}
}
func ResourceConfigKey(ns, res string) Key { return Key{ResourcePK(ns, res), SKConfig} }
func SystemConfigKey(ns string) Key        { return Key{SystemPK(ns), SKConfig} }
func ResourcesRegistryKey(ns string) Key   { return Key{SystemPK(ns), SKResources} }
func ConfigRegistryKey(ns string) Key      { return Key{SystemPK(ns), SKEntityConfigResources} }
func ProvisionerKey(ns string) Key         { return Key{SystemPK(ns), SKProvisioner} }
func LeaseKey(ns, leaseID string) Key      { return Key{LeasePK(ns, leaseID), SKLease} }
func BucketKey(ns, entity, res string, shard int) Key {
	return Key{BucketPK(ns, entity, res, shard), SKState}
}
func AuditKey(ns, entity, eventID string) Key {
	return Key{AuditPK(ns, entity), SKAuditPrefix + eventID}
}
func UsageKey(ns, entity, res, window, start string) Key {
	return Key{EntityPK(ns, entity), SKUsagePrefix + res + "#" + window + "#" + start}
}

// Secondary-index key values.

func ParentGSI1PK(ns, parent string) string { return ns + "/PARENT#" + parent }
func ChildGSI1SK(id string) string          { return "CHILD#" + id }

func ResourceGSI2PK(ns, res string) string { return ns + "/RESOURCE#" + res }
func UsageGSI2SK(window, start, entity string) string {
	return "USAGE#" + window + "#" + start + "#" + entity
}

// AuditDayGSI2PK is the archiver's time index: all audit events of one UTC
// day, across namespaces, sorted by event id (a ULID, so by time).
func AuditDayGSI2PK(date string) string { return TableNS + "/AUDITDAY#" + date }

func EntityConfigGSI3PK(ns, res string) string { return ns + "/ENTITY_CONFIG#" + res }
func BucketGSI3PK(ns, entity string) string    { return EntityPK(ns, entity) }
func BucketGSI3SK(res string, shard int) string {
	return "BUCKET#" + res + "#" + strconv.Itoa(shard)
}

// NamespaceGSI4PK is the GSI4 partition of every item of a namespace.
func NamespaceGSI4PK(ns string) string { return ns }

// BucketGSI4SK orders a namespace's buckets by resource, so one GSI4 query
// with begins_with BucketsOfResourcePrefix lists a resource's buckets.
func BucketGSI4SK(res, entity string, shard int) string {
	return "BUCKET#" + res + "#" + entity + "#" + strconv.Itoa(shard)
}

// BucketsOfResourcePrefix is the GSI4SK prefix of every bucket of res.
func BucketsOfResourcePrefix(res string) string { return "BUCKET#" + res + "#" }

// GSI4SKFor is the GSI4 sort key of a non-bucket item: its SK, a "|", then
// its PK without the namespace prefix. Sorting by kind first lets one GSI4
// query list a kind, e.g. begins_with EntitiesGSI4Prefix lists entities.
func GSI4SKFor(k Key) string {
	_, rest, _ := strings.Cut(k.PK, "/")
	return k.SK + "|" + rest
}

// EntitiesGSI4Prefix is the GSI4SK prefix of every entity record.
const EntitiesGSI4Prefix = SKMeta + "|ENTITY#"

// SplitNamespace splits "{ns}/rest" on the first slash.
func SplitNamespace(pk string) (ns, rest string, ok bool) { return strings.Cut(pk, "/") }

// BucketID names one bucket shard.
type BucketID struct {
	Namespace string
	EntityID  string
	Resource  string
	Shard     int
}

// ParseBucketPK parses "{ns}/BUCKET#{entity}#{resource}#{shard}".
func ParseBucketPK(pk string) (BucketID, error) {
	ns, rest, ok := SplitNamespace(pk)
	if !ok {
		return BucketID{}, fmt.Errorf("bucket key %q: no namespace prefix", pk)
	}
	body, ok := strings.CutPrefix(rest, "BUCKET#")
	if !ok {
		return BucketID{}, fmt.Errorf("bucket key %q: not a bucket", pk)
	}
	entity, tail, ok := strings.Cut(body, "#")
	i := strings.LastIndex(tail, "#")
	if !ok || i < 0 {
		return BucketID{}, fmt.Errorf("bucket key %q: want entity#resource#shard", pk)
	}
	shard, err := strconv.Atoi(tail[i+1:])
	if err != nil || shard < 0 {
		return BucketID{}, fmt.Errorf("bucket key %q: bad shard", pk)
	}
	return BucketID{Namespace: ns, EntityID: entity, Resource: tail[:i], Shard: shard}, nil
}
