package contract

import (
	"slices"
	"strconv"
	"time"

	"github.com/google/uuid"
)

// Metadata keys of a low-level event's custom metadata (JSON). Capture
// writes all of them on every event; the rule's own metadata keys are added
// beside them and never replace them.
const (
	MetaSlot        = "slot"           // the replication slot
	MetaDatabase    = "database"       // source database
	MetaSchema      = "schema"         // source schema ("" for messages)
	MetaTable       = "table"          // source table ("" for messages)
	MetaOp          = "op"             // insert, update, delete, truncate, snapshot, message
	MetaLSN         = "lsn"            // the change's WAL position ("0/0" for snapshot rows)
	MetaCommitLSN   = "commitLsn"      // the transaction's commit LSN
	MetaXID         = "xid"            // the transaction id
	MetaCommitTime  = "commitTime"     // commit time, RFC 3339 UTC
	MetaOrdinal     = "ordinal"        // the change's position in its transaction
	MetaRule        = "rule"           // the capture rule
	MetaIndex       = "index"          // the rule's index among those the change matched
	MetaCorrelation = "$correlationId" // the source transaction: its commit LSN
	MetaCausation   = "$causationId"   // the source change: ChangeID(slot, commitLsn, ordinal)
	MetaReason      = "reason"         // dead letters only: rule or too_large
	// MetaSnapshot and MetaSnapshotKey are written on the events of
	// snapshot rows only (Source.Snapshot set): the snapshot's id (a
	// deliberate re-snapshot has a new one) and the row's key (see
	// SnapshotRow). A rule's own metadata cannot set them.
	MetaSnapshot    = "snapshot"
	MetaSnapshotKey = "snapshotKey"
)

// ownKeys are the keys Source writes, sorted as encoding/json sorts them.
var ownKeys = [...]string{MetaCausation, MetaCorrelation, MetaCommitLSN, MetaCommitTime, MetaDatabase,
	MetaIndex, MetaLSN, MetaOp, MetaOrdinal, MetaRule, MetaSchema, MetaSlot, MetaSnapshot, MetaSnapshotKey, MetaTable, MetaXID}

// snapshotOnly says whether k is written only on snapshot rows' events.
func snapshotOnly(k string) bool { return k == MetaSnapshot || k == MetaSnapshotKey }

func isOwnKey(k string) bool {
	_, found := slices.BinarySearch(ownKeys[:], k)
	return found
}

// Source is the typed form of a low-level event's metadata: where it came
// from. Capture fills it (SourceOf), [AppendMetadata] writes it, and
// [ParseSource] reads it back.
type Source struct {
	Slot       string
	Database   string
	Schema     string
	Table      string
	Op         Op
	LSN        LSN
	XID        uint32
	CommitTime time.Time
	Rule       string
	Pos        Pos // commitLsn, ordinal, index
	// Snapshot and SnapshotKey are the SnapshotRow's ID and Key of a
	// snapshot row's event, "" for every other event.
	Snapshot, SnapshotKey string
}

// SourceOf is the source of the event that the index-th rule (named rule)
// made of ch, captured through slot.
func SourceOf(slot string, ch *Change, rule string, index uint32) Source {
	s := Source{Slot: slot, Database: ch.Database, Schema: ch.Schema, Table: ch.Table, Op: ch.Op, LSN: ch.LSN,
		XID: ch.Tx.XID, CommitTime: ch.Tx.CommitTime, Rule: rule,
		Pos: Pos{CommitLSN: ch.Tx.CommitLSN, Ordinal: ch.Ordinal, Index: index}}
	if ch.Snapshot != nil {
		s.Snapshot, s.SnapshotKey = ch.Snapshot.ID, ch.Snapshot.Key
	}
	return s
}

// EventID is the event's id: [SnapshotEventID] for a snapshot row's event,
// else [EventID] of its position.
func (s *Source) EventID() uuid.UUID {
	if s.Snapshot != "" {
		return SnapshotEventID(s.Slot, s.Snapshot, s.Schema+"."+s.Table, s.SnapshotKey, s.Pos.Index)
	}
	return EventID(s.Slot, s.Pos)
}

// AppendMetadata appends the event's metadata as one JSON object to dst:
// src's keys and extra's (a rule's own metadata; src's keys win), sorted,
// every value written by [AppendJSON]. It is the only encoder of event
// metadata.
func AppendMetadata(dst []byte, src *Source, extra map[string]any) ([]byte, error) {
	var keyBuf [8]string
	others := keyBuf[:0]
	for k := range extra {
		if !isOwnKey(k) {
			others = append(others, k)
		}
	}
	slices.Sort(others)
	dst = append(dst, '{')
	i, j, n := 0, 0, 0
	for i < len(ownKeys) || j < len(others) {
		if i < len(ownKeys) && src.Snapshot == "" && snapshotOnly(ownKeys[i]) {
			i++
			continue
		}
		if n > 0 {
			dst = append(dst, ',')
		}
		n++
		if j == len(others) || (i < len(ownKeys) && ownKeys[i] < others[j]) {
			dst = appendOwn(append(AppendString(dst, ownKeys[i]), ':'), src, ownKeys[i])
			i++
			continue
		}
		k := others[j]
		j++
		var err error
		if dst, err = AppendJSON(append(AppendString(dst, k), ':'), extra[k], UnchangedMarker); err != nil {
			return nil, &MetadataError{Key: k, Err: err}
		}
	}
	return append(dst, '}'), nil
}

func appendOwn(dst []byte, s *Source, k string) []byte {
	switch k {
	case MetaCausation:
		dst = append(dst, '"')
		dst = appendUUID(dst, ChangeID(s.Slot, s.Pos.CommitLSN, s.Pos.Ordinal))
		return append(dst, '"')
	case MetaCorrelation, MetaCommitLSN:
		return append(s.Pos.CommitLSN.Append(append(dst, '"')), '"')
	case MetaCommitTime:
		return appendTime(dst, s.CommitTime)
	case MetaDatabase:
		return AppendString(dst, s.Database)
	case MetaIndex:
		return strconv.AppendUint(dst, uint64(s.Pos.Index), 10)
	case MetaLSN:
		return append(s.LSN.Append(append(dst, '"')), '"')
	case MetaOp:
		return AppendString(dst, s.Op.String())
	case MetaOrdinal:
		return strconv.AppendUint(dst, s.Pos.Ordinal, 10)
	case MetaRule:
		return AppendString(dst, s.Rule)
	case MetaSchema:
		return AppendString(dst, s.Schema)
	case MetaSlot:
		return AppendString(dst, s.Slot)
	case MetaSnapshot:
		return AppendString(dst, s.Snapshot)
	case MetaSnapshotKey:
		return AppendString(dst, s.SnapshotKey)
	case MetaTable:
		return AppendString(dst, s.Table)
	case MetaXID:
		return strconv.AppendUint(dst, uint64(s.XID), 10)
	}
	panic("contract: not an own metadata key: " + k)
}

// appendUUID appends id in its canonical text form (uuid.UUID.String).
func appendUUID(dst []byte, id [16]byte) []byte {
	const hex = "0123456789abcdef"
	for i, b := range id {
		switch i {
		case 4, 6, 8, 10:
			dst = append(dst, '-')
		}
		dst = append(dst, hex[b>>4], hex[b&0x0F])
	}
	return dst
}

// ParseSource reads the source back from an event's metadata (JSON). ok is
// false for an event that is not Chronicler's (see SourceFromMap).
func ParseSource(meta []byte) (s Source, ok bool) {
	s, ok, _ = DecodeSource(meta)
	return s, ok
}

// DecodeSource reads the source from an event's metadata as
// SourceFromMap(DecodeJSON(meta)) does, with DecodeJSON's error for
// malformed JSON, without building the map: a reader that does not hand
// the metadata to rules (the publisher, when no promotion rule reads
// event.metadata) needs only the source, and the map was most of the cost
// of decoding an event. FuzzDecodeSource holds the two to the same results.
func DecodeSource(meta []byte) (s Source, ok bool, err error) {
	d := jsonDecoder{b: meta, s: string(meta)}
	var f typedFields
	d.space()
	if d.i < len(d.b) && d.b[d.i] == '{' && d.sourceObject(&f) {
		if d.space(); d.i == len(d.b) {
			s, ok = sourceFrom(&f)
			return s, ok, nil
		}
	}
	// Not an object, or not valid JSON: as the map reader does.
	v, err := DecodeJSON(meta)
	if err != nil {
		return Source{}, false, err
	}
	obj, _ := v.(map[string]any)
	s, ok = SourceFromMap(obj)
	return s, ok, nil
}

// sourceFields is how sourceFrom reads the metadata's keys: as a string
// (else ""), as an int64 (else false).
type sourceFields interface {
	str(k string) string
	int(k string) (int64, bool)
}

// mapFields reads them from DecodeJSON's map.
type mapFields map[string]any

func (m mapFields) str(k string) string { v, _ := m[k].(string); return v }
func (m mapFields) int(k string) (int64, bool) {
	v, ok := m[k].(int64)
	return v, ok
}

// typedFields holds the source's keys as sourceObject read them, by index
// in ownKeys: what DecodeJSON would have made of each value (a string, an
// int64, or something else), without boxing it.
type typedFields struct {
	strs  [len(ownKeys)]string
	ints  [len(ownKeys)]int64
	kinds [len(ownKeys)]uint8
}

const (
	kindAbsent uint8 = iota
	kindString
	kindInt
	kindOther
)

func (f *typedFields) str(k string) string {
	if i, found := slices.BinarySearch(ownKeys[:], k); found && f.kinds[i] == kindString {
		return f.strs[i]
	}
	return ""
}

func (f *typedFields) int(k string) (int64, bool) {
	if i, found := slices.BinarySearch(ownKeys[:], k); found && f.kinds[i] == kindInt {
		return f.ints[i], true
	}
	return 0, false
}

// sourceObject scans an object (the decoder at its '{'), keeping the
// values of the source's keys in f (a repeated key's last value, as a map
// keeps it); false if it is not valid JSON.
func (d *jsonDecoder) sourceObject(f *typedFields) bool {
	d.i++ // {
	d.space()
	if d.i < len(d.b) && d.b[d.i] == '}' {
		d.i++
		return true
	}
	for {
		k, ok := d.key()
		if !ok {
			return false
		}
		d.space()
		i, own := slices.BinarySearch(ownKeys[:], k)
		switch {
		case !own:
			_, ok = d.value(jsonNumber) // skipped: its number forms do not matter
		case d.i < len(d.b) && d.b[d.i] == '"':
			f.strs[i], ok = d.str()
			f.kinds[i] = kindString
		case d.i < len(d.b) && (d.b[d.i] == '-' || d.b[d.i] >= '0' && d.b[d.i] <= '9'):
			var text string
			text, ok = d.numText()
			f.kinds[i] = kindOther
			if n, err := strconv.ParseInt(text, 10, 64); err == nil {
				f.ints[i], f.kinds[i] = n, kindInt
			}
		default:
			_, ok = d.value(jsonNumber) // skipped: its number forms do not matter
			f.kinds[i] = kindOther
		}
		if !ok {
			return false
		}
		if more, ok := d.after('}'); !ok || !more {
			return ok
		}
	}
}

// SourceFromMap reads the source from metadata decoded by DecodeJSON. ok is
// false for an event that is not Chronicler's: no slot, ordinal, index or
// commit LSN. Other fields are zero when absent or malformed.
func SourceFromMap(m map[string]any) (s Source, ok bool) {
	return sourceFrom(mapFields(m))
}

// sourceFrom is SourceFromMap over a reader of the metadata's keys.
func sourceFrom(f sourceFields) (s Source, ok bool) {
	num := func(k string) (uint64, bool) {
		v, ok := f.int(k)
		return uint64(v), ok && v >= 0
	}
	s.Slot = f.str(MetaSlot)
	ord, okOrd := num(MetaOrdinal)
	idx, okIdx := num(MetaIndex)
	commit, err := ParseLSN(f.str(MetaCommitLSN))
	if s.Slot == "" || !okOrd || !okIdx || idx > 1<<32-1 || err != nil {
		return Source{}, false
	}
	s.Pos = Pos{CommitLSN: commit, Ordinal: ord, Index: uint32(idx)}
	s.Database, s.Schema, s.Table, s.Rule = f.str(MetaDatabase), f.str(MetaSchema), f.str(MetaTable), f.str(MetaRule)
	s.Snapshot, s.SnapshotKey = f.str(MetaSnapshot), f.str(MetaSnapshotKey)
	s.Op, _ = ParseOp(f.str(MetaOp))
	s.LSN, _ = ParseLSN(f.str(MetaLSN))
	if x, ok := num(MetaXID); ok && x <= 1<<32-1 {
		s.XID = uint32(x)
	}
	if t, err := time.Parse(time.RFC3339Nano, f.str(MetaCommitTime)); err == nil {
		s.CommitTime = t
	}
	return s, true
}

// MetadataError: a rule's metadata value that cannot be written as JSON.
type MetadataError struct {
	Key string
	Err error
}

func (e *MetadataError) Error() string {
	return "metadata key " + strconv.Quote(e.Key) + ": " + e.Err.Error()
}
func (e *MetadataError) Unwrap() error { return e.Err }
