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
var ownKeys = []string{MetaCausation, MetaCorrelation, MetaCommitLSN, MetaCommitTime, MetaDatabase,
	MetaIndex, MetaLSN, MetaOp, MetaOrdinal, MetaRule, MetaSchema, MetaSlot, MetaSnapshot, MetaSnapshotKey, MetaTable, MetaXID}

// snapshotOnly says whether k is written only on snapshot rows' events.
func snapshotOnly(k string) bool { return k == MetaSnapshot || k == MetaSnapshotKey }

func isOwnKey(k string) bool {
	_, found := slices.BinarySearch(ownKeys, k)
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
		dst = append(dst, '"')
		dst = s.CommitTime.UTC().AppendFormat(dst, time.RFC3339Nano)
		return append(dst, '"')
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

// MetadataMap is the metadata as a reader decodes it (mapping.DecodeJSON's
// value domain): what promotion rules see as event.metadata, and what
// `chronicler rules test` hands them.
func MetadataMap(src *Source, extra map[string]any) map[string]any {
	m := make(map[string]any, len(extra)+len(ownKeys))
	for k, v := range extra {
		m[k] = v
	}
	commit := src.Pos.CommitLSN.String()
	m[MetaSlot] = src.Slot
	m[MetaDatabase] = src.Database
	m[MetaSchema] = src.Schema
	m[MetaTable] = src.Table
	m[MetaOp] = src.Op.String()
	m[MetaLSN] = src.LSN.String()
	m[MetaCommitLSN] = commit
	m[MetaCorrelation] = commit
	m[MetaCausation] = ChangeID(src.Slot, src.Pos.CommitLSN, src.Pos.Ordinal).String()
	m[MetaXID] = int64(src.XID)
	m[MetaCommitTime] = src.CommitTime.UTC()
	m[MetaOrdinal] = int64(src.Pos.Ordinal)
	m[MetaRule] = src.Rule
	m[MetaIndex] = int64(src.Pos.Index)
	if src.Snapshot != "" {
		m[MetaSnapshot] = src.Snapshot
		m[MetaSnapshotKey] = src.SnapshotKey
	} else {
		delete(m, MetaSnapshot) // a rule's own metadata never sets them
		delete(m, MetaSnapshotKey)
	}
	return m
}

// ParseSource reads the source back from an event's metadata (JSON). ok is
// false for an event that is not Chronicler's (see SourceFromMap).
func ParseSource(meta []byte) (s Source, ok bool) {
	m, err := DecodeJSON(meta)
	if err != nil {
		return Source{}, false
	}
	obj, _ := m.(map[string]any)
	return SourceFromMap(obj)
}

// SourceFromMap reads the source from metadata decoded by DecodeJSON. ok is
// false for an event that is not Chronicler's: no slot, ordinal, index or
// commit LSN. Other fields are zero when absent or malformed.
func SourceFromMap(m map[string]any) (s Source, ok bool) {
	str := func(k string) string { v, _ := m[k].(string); return v }
	num := func(k string) (uint64, bool) {
		v, ok := m[k].(int64)
		return uint64(v), ok && v >= 0
	}
	s.Slot = str(MetaSlot)
	ord, okOrd := num(MetaOrdinal)
	idx, okIdx := num(MetaIndex)
	commit, err := ParseLSN(str(MetaCommitLSN))
	if s.Slot == "" || !okOrd || !okIdx || idx > 1<<32-1 || err != nil {
		return Source{}, false
	}
	s.Pos = Pos{CommitLSN: commit, Ordinal: ord, Index: uint32(idx)}
	s.Database, s.Schema, s.Table, s.Rule = str(MetaDatabase), str(MetaSchema), str(MetaTable), str(MetaRule)
	s.Snapshot, s.SnapshotKey = str(MetaSnapshot), str(MetaSnapshotKey)
	s.Op, _ = ParseOp(str(MetaOp))
	s.LSN, _ = ParseLSN(str(MetaLSN))
	if x, ok := num(MetaXID); ok && x <= 1<<32-1 {
		s.XID = uint32(x)
	}
	if t, err := time.Parse(time.RFC3339Nano, str(MetaCommitTime)); err == nil {
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
