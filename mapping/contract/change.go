package contract

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Op is the kind of a change.
type Op uint8

// The operations a change can carry. The zero value is invalid.
const (
	OpInsert Op = iota + 1
	OpUpdate
	OpDelete
	OpTruncate
	OpSnapshot // a row read by the initial snapshot
	OpMessage  // a logical decoding message (pg_logical_emit_message)
)

var opNames = [...]string{
	OpInsert:   "insert",
	OpUpdate:   "update",
	OpDelete:   "delete",
	OpTruncate: "truncate",
	OpSnapshot: "snapshot",
	OpMessage:  "message",
}

// String returns the lower-case name used in rule files ("insert", ...).
func (o Op) String() string {
	if int(o) < len(opNames) && opNames[o] != "" {
		return opNames[o]
	}
	return fmt.Sprintf("op(%d)", uint8(o))
}

// ParseOp is the inverse of [Op.String].
func ParseOp(s string) (Op, bool) {
	for i, n := range opNames {
		if n != "" && n == s {
			return Op(i), true
		}
	}
	return 0, false
}

// LSN is a Postgres write-ahead log position.
type LSN uint64

// String formats the LSN the way Postgres does ("16/B374D848").
// It is formatted without fmt: capture formats two per event.
func (l LSN) String() string {
	var b [17]byte
	return string(l.Append(b[:0]))
}

// Append appends l's text form (as String) to dst.
func (l LSN) Append(dst []byte) []byte {
	return appendHex(append(appendHex(dst, uint32(l>>32)), '/'), uint32(l))
}

// appendHex appends v in upper-case hex without leading zeros (as %X).
func appendHex(b []byte, v uint32) []byte {
	const digits = "0123456789ABCDEF"
	var tmp [8]byte
	i := len(tmp)
	for {
		i--
		tmp[i] = digits[v&0xF]
		v >>= 4
		if v == 0 {
			break
		}
	}
	return append(b, tmp[i:]...)
}

// ParseLSN parses the Postgres text form of an LSN ("16/B374D848": two hex
// numbers of at most 32 bits). Anything else, trailing text included, is an
// error.
func ParseLSN(s string) (LSN, error) {
	hi, lo, ok := strings.Cut(s, "/")
	if !ok {
		return 0, fmt.Errorf("parsing LSN %q: want X/Y in hex", s)
	}
	h, err := strconv.ParseUint(hi, 16, 32)
	if err != nil {
		return 0, fmt.Errorf("parsing LSN %q: %w", s, err)
	}
	l, err := strconv.ParseUint(lo, 16, 32)
	if err != nil {
		return 0, fmt.Errorf("parsing LSN %q: %w", s, err)
	}
	return LSN(h<<32 | l), nil
}

// Tx identifies the source transaction of a change.
type Tx struct {
	XID        uint32
	CommitLSN  LSN       // LSN of the commit record (pgoutput Begin's final LSN)
	CommitTime time.Time // commit timestamp, UTC
	Origin     string    // replication origin name, "" if none
}

// Message is the payload of an OpMessage change.
type Message struct {
	Prefix        string
	Content       []byte
	Transactional bool
}

// Change is one decoded row change (or message) in a source transaction.
type Change struct {
	Op       Op
	Database string
	Schema   string // "" for messages
	Table    string // "" for messages
	// Key lists the replica identity / primary key columns, in table order.
	Key []string
	// New holds the row after the change (insert, update, snapshot); nil otherwise.
	New map[string]any
	// Old holds the row before the change when the server sent it (update with
	// REPLICA IDENTITY FULL or a changed key, delete); nil when absent.
	Old     map[string]any
	Message *Message // OpMessage only
	Tx      Tx
	LSN     LSN    // LSN of this change's WAL record (0 for snapshot rows)
	Ordinal uint64 // 0-based position of the change in its transaction
	// Snapshot identifies the row of an OpSnapshot change; nil otherwise.
	Snapshot *SnapshotRow
}

// SnapshotRow identifies a row that a snapshot read. Its events' ids are
// derived from it ([SnapshotEventID]) instead of from their position, so a
// row read again after a crash, which lands at a new position, is
// recognised as already stored.
type SnapshotRow struct {
	// ID is the snapshot's id: "initial-<consistent point>" for the initial
	// snapshot, the id `chronicler snapshot` gave a requested one. A
	// deliberate re-snapshot has a new id.
	ID string
	// Key is the row's key as read: the text forms of its key columns (the
	// primary key, else the replica identity index, else the ctid) as a
	// JSON array of values decoded from them.
	Key string
	// Recheck, when not zero, says that a run which stopped before it saved
	// the progress of this row's chunk may have stored the row's events
	// already, after this commit LSN: the store looks for their ids in the
	// stream back to it before appending (capture/store).
	Recheck LSN
}

// QualifiedTable returns "schema.table".
func (c *Change) QualifiedTable() string { return c.Schema + "." + c.Table }

// unchanged is the type of [Unchanged].
type unchanged struct{}

func (unchanged) String() string { return "<unchanged-toast>" }

// MarshalJSON makes an unchanged TOAST value visible, never silently null.
func (unchanged) MarshalJSON() ([]byte, error) { return []byte(`{"$unchanged":true}`), nil }

// Unchanged marks a TOASTed column whose value the server did not send because
// it did not change. It is distinct from NULL (nil) and from "".
var Unchanged any = unchanged{}

// IsUnchanged reports whether v is the [Unchanged] marker.
func IsUnchanged(v any) bool { _, ok := v.(unchanged); return ok }

// Unknown is the text form of a value of a type capture does not decode
// (composite types, extension types), flagged so rules can tell.
type Unknown struct {
	TypeOID  uint32
	TypeName string
	Text     string
}
