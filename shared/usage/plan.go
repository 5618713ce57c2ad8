package usage

import (
	"sort"
	"time"

	"github.com/zeroae/zae-limiter-go/shared/dynamo"
	"github.com/zeroae/zae-limiter-go/shared/schema"
)

// Write is one snapshot update: the changes of a batch that fall in one
// snapshot, grouped by the source (bucket shard and stream) they come from.
type Write struct {
	Snapshot SnapshotID
	// Sources are sorted by Attr, each with its changes in position order.
	Sources []Source
}

// Source is the changes of one bucket shard, read from one stream, that a
// write folds into a snapshot.
type Source struct {
	// Attr is the snapshot attribute holding the source's position.
	Attr    string
	Changes []Change
}

// maxSourcesPerWrite bounds the sources of one write, so its expressions
// stay within DynamoDB's 4 KB (32 limits and 24 sources take about 2.5 KB).
const maxSourcesPerWrite = 24

// Plan groups changes into snapshot writes: for every window, one write per
// snapshot (bucket and window start) the changes fall in, holding every
// source that contributes to it (more than maxSourcesPerWrite sources are
// spread over several writes of the same snapshot). Changes of one source
// keep their position order; a change seen twice (same position) counts
// once. The result is sorted by snapshot key.
func Plan(changes []Change, windows []Window) []Write {
	type key struct {
		snap schema.Key
		attr string
	}
	ids := map[schema.Key]SnapshotID{}
	bySource := map[key][]Change{}
	for _, c := range changes {
		for _, w := range windows {
			id := SnapshotID{Namespace: c.Shard.Namespace, EntityID: c.Shard.Entity, Resource: c.Shard.Resource,
				Window: w, Start: w.Start(c.Time)}
			k := key{id.Key(), PositionAttr(c.Shard.Shard, c.Stream)}
			ids[k.snap] = id
			bySource[k] = append(bySource[k], c)
		}
	}
	sources := map[schema.Key][]Source{}
	for k, cs := range bySource {
		sort.SliceStable(cs, func(i, j int) bool { return cs[i].Position < cs[j].Position })
		uniq := cs[:0:0]
		for i, c := range cs {
			if i == 0 || c.Position != cs[i-1].Position {
				uniq = append(uniq, c)
			}
		}
		sources[k.snap] = append(sources[k.snap], Source{Attr: k.attr, Changes: uniq})
	}
	keys := make([]schema.Key, 0, len(sources))
	for k := range sources {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].PK+"\x00"+keys[i].SK < keys[j].PK+"\x00"+keys[j].SK })
	var out []Write
	for _, k := range keys {
		srcs := sources[k]
		sort.Slice(srcs, func(i, j int) bool { return srcs[i].Attr < srcs[j].Attr })
		for len(srcs) > 0 {
			n := min(len(srcs), maxSourcesPerWrite)
			out = append(out, Write{Snapshot: ids[k], Sources: srcs[:n:n]})
			srcs = srcs[n:]
		}
	}
	return out
}

// Changes is the number of changes the write folds in.
func (w Write) Changes() int {
	n := 0
	for _, s := range w.Sources {
		n += len(s.Changes)
	}
	return n
}

// Seqs are the sequence numbers of the records the write folds in.
func (w Write) Seqs() []string {
	var out []string
	for _, s := range w.Sources {
		for _, c := range s.Changes {
			out = append(out, c.Seq)
		}
	}
	return out
}

// Pending is the write narrowed to what a snapshot holding item (as
// stored; nil when missing) has not folded in yet: per source, the changes
// past the position it stores. Sources with nothing left are dropped.
func (w Write) Pending(item dynamo.Item) Write {
	out := Write{Snapshot: w.Snapshot}
	for _, s := range w.Sources {
		at := dynamo.GetS(item, s.Attr)
		i := sort.Search(len(s.Changes), func(i int) bool { return s.Changes[i].Position > at })
		if i < len(s.Changes) {
			out.Sources = append(out.Sources, Source{Attr: s.Attr, Changes: s.Changes[i:]})
		}
	}
	return out
}

// Update is the write's UpdateItem: ADD every limit's tokens and the
// number of changes, SET each source's position to its last change's,
// and SET the snapshot's identity, index keys and expiry (the window's end
// plus retention; none when retention is 0). It is conditioned, per
// source, on the stored position being absent or below the source's first
// change: a write either folds in changes none of which the snapshot holds,
// or changes nothing.
func (w Write) Update(retention time.Duration) *dynamo.Update {
	id := w.Snapshot
	k := id.Key()
	u := &dynamo.Update{}
	u.Set(schema.AttrEntityID, id.EntityID)
	u.Set(schema.AttrResource, id.Resource)
	u.Set(AttrWindow, string(id.Window))
	u.Set(AttrWindowStart, formatStart(id.Start))
	u.Set(schema.GSI2PK, schema.ResourceGSI2PK(id.Namespace, id.Resource))
	u.Set(schema.GSI2SK, schema.UsageGSI2SK(string(id.Window), formatStart(id.Start), id.EntityID))
	u.Set(schema.GSI4PK, schema.NamespaceGSI4PK(id.Namespace))
	u.Set(schema.GSI4SK, schema.GSI4SKFor(k))
	if retention > 0 {
		u.Set(schema.TTL, id.End().Add(retention).Unix())
	}
	tokens := map[string]int64{}
	events := int64(0)
	for _, s := range w.Sources {
		first, last := s.Changes[0], s.Changes[len(s.Changes)-1]
		u.If("attribute_not_exists($) OR $ < ?", s.Attr, s.Attr, first.Position)
		u.Set(s.Attr, last.Position)
		for _, c := range s.Changes {
			events++
			for name, n := range c.Tokens {
				tokens[name] += n
			}
		}
	}
	names := make([]string, 0, len(tokens))
	for n, v := range tokens {
		if v != 0 {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	for _, n := range names {
		u.Add(CounterAttr(n), tokens[n])
	}
	u.Add(AttrEvents, events)
	return u
}
