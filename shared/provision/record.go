package provision

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/zeroae/zae-limiter-go/shared/dynamo"
	"github.com/zeroae/zae-limiter-go/shared/manifest"
	"github.com/zeroae/zae-limiter-go/shared/schema"
)

// DynamoDB lists exactly the calls this package makes itself (the
// #PROVISIONER record); the store's calls are store.ProvisionCalls. The IAM
// parity test maps each method to its dynamodb:<Method> action.
type DynamoDB interface {
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	BatchGetItem(ctx context.Context, in *dynamodb.BatchGetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error)
	PutItem(ctx context.Context, in *dynamodb.PutItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error)
	Query(ctx context.Context, in *dynamodb.QueryInput, optFns ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
}

// Record is the managed set of one namespace: every config item an apply
// wrote and still manages, with the hash of the content it wrote
// (manifest.Item.Hash). Items never in a manifest are never in it.
type Record struct {
	// Generation counts the record's writes (0: never written).
	Generation int64
	// Entries maps each managed target to its content hash.
	Entries map[manifest.Target]string
	// ManifestHash is the hash of the last manifest applied in full
	// (manifest.Hash); "" after a partial apply.
	ManifestHash string
	LastApplied  time.Time
	AppliedBy    string
}

// Record attributes (besides the keys and GSI4).
const (
	attrFormat      = "format"
	attrGeneration  = "generation"
	attrItems       = "items"
	attrState       = "state"        // the gzip'd entries, when they fit in the head item
	attrChunks      = "chunks"       // else the number of chunk items holding them
	attrStateSHA    = "state_sha256" // of the gzip'd entries, however stored
	attrPart        = "part"         // a chunk's bytes
	attrManifest    = "manifest_hash"
	attrLastApplied = "last_applied"
	attrAppliedBy   = "applied_by"
	attrLockID      = "lock_id"
	attrLockExpires = "lock_expires" // epoch seconds
)

const recordFormat = 1

// maxInline is the largest gzip'd state kept in the head item, and the size
// of each chunk item beyond it: well below DynamoDB's 400 KB item limit
// with the keys and the other attributes.
var maxInline = 350_000

func headKey(ns string) schema.Key { return schema.ProvisionerKey(ns) }

// chunkPrefix is the sort-key prefix of the record's chunk items.
const chunkPrefix = schema.SKProvisioner + "#"

func chunkKey(ns string, gen int64, i int) schema.Key {
	return schema.Key{PK: schema.SystemPK(ns), SK: fmt.Sprintf("%s%010d#%04d", chunkPrefix, gen, i)}
}

func keyItem(k schema.Key) dynamo.Item {
	return dynamo.Item{schema.PK: dynamo.S(k.PK), schema.SK: dynamo.S(k.SK)}
}

// indexed adds the namespace index (GSI4) so a namespace purge finds it.
func indexed(ns string, k schema.Key, it dynamo.Item) dynamo.Item {
	it[schema.GSI4PK] = dynamo.S(schema.NamespaceGSI4PK(ns))
	it[schema.GSI4SK] = dynamo.S(schema.GSI4SKFor(k))
	return it
}

// encodeEntries writes one line per entry in target order ("S hash",
// "R resource hash", "E entity resource hash", tab-separated: no id or name
// can hold a tab) and gzips them.
func encodeEntries(entries map[manifest.Target]string) []byte {
	targets := make([]manifest.Target, 0, len(entries))
	for t := range entries {
		targets = append(targets, t)
	}
	slices.SortFunc(targets, manifest.Target.Compare)
	var b bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&b, gzip.BestCompression)
	for _, t := range targets {
		switch t.Level {
		case manifest.LevelSystem:
			fmt.Fprintf(zw, "S\t%s\n", entries[t])
		case manifest.LevelResource:
			fmt.Fprintf(zw, "R\t%s\t%s\n", t.Resource, entries[t])
		default:
			fmt.Fprintf(zw, "E\t%s\t%s\t%s\n", t.Entity, t.Resource, entries[t])
		}
	}
	_ = zw.Close()
	return b.Bytes()
}

func decodeEntries(blob []byte) (map[manifest.Target]string, error) {
	out := map[manifest.Target]string{}
	if len(blob) == 0 {
		return out, nil
	}
	zr, err := gzip.NewReader(bytes.NewReader(blob))
	if err != nil {
		return nil, err
	}
	sc := bufio.NewScanner(zr)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		f := strings.Split(sc.Text(), "\t")
		switch {
		case len(f) == 2 && f[0] == "S":
			out[manifest.SystemTarget] = f[1]
		case len(f) == 3 && f[0] == "R":
			out[manifest.ResourceTarget(f[1])] = f[2]
		case len(f) == 4 && f[0] == "E":
			out[manifest.EntityTarget(f[1], f[2])] = f[3]
		default:
			return nil, fmt.Errorf("bad entry %q", sc.Text())
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	_, err = io.Copy(io.Discard, zr)
	return out, err
}

// lockState is the head item's lock, as read.
type lockState struct {
	id      string
	expires time.Time
}

// recordStore reads and writes one namespace's record.
type recordStore struct {
	db    DynamoDB
	table string
	ns    string // namespace id
	now   func() time.Time
	// hadChunks: the record read last was stored in chunks (the next write
	// deletes them).
	hadChunks bool
}

// read returns the record (empty when never written) and its lock.
func (r *recordStore) read(ctx context.Context) (Record, lockState, error) {
	out, err := r.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: aws.String(r.table), Key: keyItem(headKey(r.ns)), ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return Record{}, lockState{}, fmt.Errorf("read the #PROVISIONER record: %w", err)
	}
	return r.decode(ctx, out.Item)
}

func (r *recordStore) decode(ctx context.Context, head dynamo.Item) (Record, lockState, error) {
	rec := Record{Entries: map[manifest.Target]string{}}
	var lk lockState
	if len(head) == 0 {
		return rec, lk, nil
	}
	fail := func(err error) (Record, lockState, error) {
		return Record{}, lockState{}, fmt.Errorf("read the #PROVISIONER record: %w", err)
	}
	lk.id = dynamo.GetS(head, attrLockID)
	if exp, ok := dynamo.GetN(head, attrLockExpires); ok {
		lk.expires = time.Unix(exp, 0)
	}
	rec.Generation, _ = dynamo.GetN(head, attrGeneration)
	if rec.Generation == 0 {
		return rec, lk, nil // a lock taken before the first write
	}
	if f, _ := dynamo.GetN(head, attrFormat); f != recordFormat {
		return fail(fmt.Errorf("format %d is not understood by this version (want %d)", f, recordFormat))
	}
	rec.ManifestHash = dynamo.GetS(head, attrManifest)
	rec.AppliedBy = dynamo.GetS(head, attrAppliedBy)
	rec.LastApplied, _ = time.Parse(time.RFC3339, dynamo.GetS(head, attrLastApplied))
	blob := bytesAttr(head, attrState)
	if n, _ := dynamo.GetN(head, attrChunks); n > 0 {
		r.hadChunks = true
		var err error
		if blob, err = r.readChunks(ctx, rec.Generation, int(n)); err != nil {
			return fail(err)
		}
	}
	if sum := sha256.Sum256(blob); hex.EncodeToString(sum[:]) != dynamo.GetS(head, attrStateSHA) {
		return fail(errors.New("the stored state does not match its checksum"))
	}
	entries, err := decodeEntries(blob)
	if err != nil {
		return fail(err)
	}
	rec.Entries = entries
	return rec, lk, nil
}

func bytesAttr(it dynamo.Item, name string) []byte {
	if b, ok := it[name].(*types.AttributeValueMemberB); ok {
		return b.Value
	}
	return nil
}

// readChunks reads the n chunks of generation gen, in order.
func (r *recordStore) readChunks(ctx context.Context, gen int64, n int) ([]byte, error) {
	parts := make(map[string][]byte, n)
	for start := 0; start < n; start += 100 {
		ka := types.KeysAndAttributes{ConsistentRead: aws.Bool(true)}
		for i := start; i < min(start+100, n); i++ {
			ka.Keys = append(ka.Keys, keyItem(chunkKey(r.ns, gen, i)))
		}
		req := map[string]types.KeysAndAttributes{r.table: ka}
		for attempt := 0; len(req) > 0; attempt++ {
			if attempt == 10 {
				return nil, errors.New("chunks still unprocessed after 10 attempts")
			}
			out, err := r.db.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: req})
			if err != nil {
				return nil, err
			}
			for _, it := range out.Responses[r.table] {
				parts[dynamo.GetS(it, schema.SK)] = bytesAttr(it, attrPart)
			}
			req = out.UnprocessedKeys
		}
	}
	var blob []byte
	for i := range n {
		p, ok := parts[chunkKey(r.ns, gen, i).SK]
		if !ok {
			return nil, fmt.Errorf("chunk %d of %d of generation %d is missing", i+1, n, gen)
		}
		blob = append(blob, p...)
	}
	return blob, nil
}

// BusyError: another apply holds the namespace's record.
type BusyError struct {
	Namespace string
	Until     time.Time
}

func (e *BusyError) Error() string {
	return fmt.Sprintf("another apply to namespace %q is in progress (its lock expires at %s); try again later",
		e.Namespace, e.Until.UTC().Format(time.RFC3339))
}

// errStale: the record changed since it was read; plan again.
var errStale = errors.New("the #PROVISIONER record changed since it was read")

// lock takes the record for one apply until expires, provided it is still
// at generation gen. A lock whose time is up is taken over.
func (r *recordStore) lock(ctx context.Context, name string, gen int64, id string, expires time.Time) error {
	k := headKey(r.ns)
	var u dynamo.Update
	u.Set(attrLockID, id).Set(attrLockExpires, expires.Unix()).
		Set(schema.GSI4PK, schema.NamespaceGSI4PK(r.ns)).Set(schema.GSI4SK, schema.GSI4SKFor(k)).
		If("attribute_not_exists($) OR $ < ?", attrLockID, attrLockExpires, r.now().Unix())
	if gen == 0 {
		u.If("attribute_not_exists($)", attrGeneration)
	} else {
		u.If("$ = ?", attrGeneration, gen)
	}
	_, err := r.db.UpdateItem(ctx, u.Input(r.table, keyItem(k)))
	if old, failed := dynamo.CondFailedItem(err); failed {
		cur, _ := dynamo.GetN(old, attrGeneration)
		if exp, ok := dynamo.GetN(old, attrLockExpires); ok && dynamo.GetS(old, attrLockID) != "" && exp >= r.now().Unix() {
			return &BusyError{Namespace: name, Until: time.Unix(exp, 0)}
		}
		if cur != gen {
			return errStale
		}
		return fmt.Errorf("lock the #PROVISIONER record: %w", err)
	}
	if err != nil {
		return fmt.Errorf("lock the #PROVISIONER record: %w", err)
	}
	return nil
}

// unlock releases the lock without changing the record.
func (r *recordStore) unlock(ctx context.Context, id string) error {
	var u dynamo.Update
	u.Remove(attrLockID).Remove(attrLockExpires).If("$ = ?", attrLockID, id)
	_, err := r.db.UpdateItem(ctx, u.Input(r.table, keyItem(headKey(r.ns))))
	if err != nil && !dynamo.IsCondFailed(err) {
		return fmt.Errorf("unlock the #PROVISIONER record: %w", err)
	}
	return nil
}

// write stores rec as generation prev+1 and releases the lock id: chunks
// (when the state is too large for the head item) are written first, then
// the head switches to them in one conditional write, then the chunks of
// older generations are deleted. A crash in between leaves the previous
// generation whole; its orphan chunks go with the next chunked write.
func (r *recordStore) write(ctx context.Context, prev int64, rec Record, id string) error {
	fail := func(err error) error { return fmt.Errorf("write the #PROVISIONER record: %w", err) }
	gen := prev + 1
	blob := encodeEntries(rec.Entries)
	sum := sha256.Sum256(blob)
	k := headKey(r.ns)
	var u dynamo.Update
	u.Set(attrFormat, recordFormat).Set(attrGeneration, gen).Set(attrItems, len(rec.Entries)).
		Set(attrStateSHA, hex.EncodeToString(sum[:])).
		Set(attrLastApplied, rec.LastApplied.UTC().Format(time.RFC3339)).Set(attrAppliedBy, rec.AppliedBy).
		Set(schema.GSI4PK, schema.NamespaceGSI4PK(r.ns)).Set(schema.GSI4SK, schema.GSI4SKFor(k)).
		Remove(attrLockID).Remove(attrLockExpires).
		If("$ = ?", attrLockID, id)
	if rec.ManifestHash != "" {
		u.Set(attrManifest, rec.ManifestHash)
	} else {
		u.Remove(attrManifest)
	}
	chunked := len(blob) > maxInline
	if chunked {
		n := 0
		for start := 0; start < len(blob); start += maxInline {
			ck := chunkKey(r.ns, gen, n)
			it := indexed(r.ns, ck, keyItem(ck))
			it[attrPart] = &types.AttributeValueMemberB{Value: blob[start:min(start+maxInline, len(blob))]}
			if _, err := r.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(r.table), Item: it}); err != nil {
				return fail(err)
			}
			n++
		}
		u.Set(attrChunks, n).Remove(attrState)
	} else {
		u.Set(attrState, &types.AttributeValueMemberB{Value: blob}).Remove(attrChunks)
	}
	_, err := r.db.UpdateItem(ctx, u.Input(r.table, keyItem(k)))
	if dynamo.IsCondFailed(err) {
		return fail(errors.New("the apply's lock was lost (it expired and another apply took it)"))
	}
	if err != nil {
		return fail(err)
	}
	if chunked || r.hadChunks {
		return r.dropChunks(ctx, gen)
	}
	return nil
}

// dropChunks deletes every chunk item not of generation keep.
func (r *recordStore) dropChunks(ctx context.Context, keep int64) error {
	var e dynamo.Expr
	in := &dynamodb.QueryInput{
		TableName: aws.String(r.table),
		KeyConditionExpression: aws.String(e.Name(schema.PK) + " = " + e.Value(dynamo.S(schema.SystemPK(r.ns))) +
			" AND begins_with(" + e.Name(schema.SK) + ", " + e.Value(dynamo.S(chunkPrefix)) + ")"),
		ProjectionExpression:      aws.String(e.Name(schema.PK) + ", " + e.Name(schema.SK)),
		ExpressionAttributeNames:  e.Names(),
		ExpressionAttributeValues: e.Values(),
	}
	keepPrefix := fmt.Sprintf("%s%010d#", chunkPrefix, keep)
	for {
		out, err := r.db.Query(ctx, in)
		if err != nil {
			return fmt.Errorf("list old #PROVISIONER chunks: %w", err)
		}
		for _, it := range out.Items {
			if strings.HasPrefix(dynamo.GetS(it, schema.SK), keepPrefix) {
				continue
			}
			if _, err := r.db.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String(r.table), Key: it}); err != nil {
				return fmt.Errorf("delete an old #PROVISIONER chunk: %w", err)
			}
		}
		if len(out.LastEvaluatedKey) == 0 {
			return nil
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
}
