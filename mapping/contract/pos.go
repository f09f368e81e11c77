package contract

import (
	"crypto/sha1"
	"fmt"
	"strconv"

	"github.com/google/uuid"
)

// Pos is a low-level event's source position: its transaction's commit LSN,
// the change's ordinal in the transaction, and the index of the producing
// rule among the rules the change matched (dead letters: DeadLetterIndex+k).
// Within a stream, events are in Pos order.
type Pos struct {
	CommitLSN LSN
	Ordinal   uint64
	Index     uint32
}

// Less orders positions.
func (p Pos) Less(q Pos) bool {
	if p.CommitLSN != q.CommitLSN {
		return p.CommitLSN < q.CommitLSN
	}
	if p.Ordinal != q.Ordinal {
		return p.Ordinal < q.Ordinal
	}
	return p.Index < q.Index
}

func (p Pos) String() string { return fmt.Sprintf("%s/%d/%d", p.CommitLSN, p.Ordinal, p.Index) }

// DeadLetterIndex is the first Pos.Index of a change's dead letters: the
// k-th dead letter of a change is at DeadLetterIndex+k, above every rule's
// index, so its id never collides with an event's.
const DeadLetterIndex = 1 << 31

// idSpace is the UUID namespace of Chronicler event ids.
var idSpace = uuid.MustParse("6f1c1d52-8a4e-4c1e-9a52-6368726f6e69")

// EventID is the deterministic id of the event at p from slot.
func EventID(slot string, p Pos) uuid.UUID {
	// slot/<commit LSN>/<ordinal>/<index>, as slot+"/"+p.String(), without fmt.
	var buf [128]byte
	b := appendChangeName(append(buf[:0], idSpace[:]...), slot, p.CommitLSN, p.Ordinal)
	b = append(b, '/')
	b = strconv.AppendUint(b, uint64(p.Index), 10)
	return nameID(b)
}

// SnapshotEventID is the deterministic id of the event the rule at index
// made of a snapshot row (SnapshotRow): it depends on the snapshot's id, the
// table ("schema.table") and the row's key, not on the position the row
// was emitted at, so the same row read again (after a crash, at a new
// position) has the same id, and a new snapshot of it a new one.
func SnapshotEventID(slot, snapshot, table, key string, index uint32) uuid.UUID {
	var buf [256]byte // most names: no allocation
	b := append(append(append(buf[:0], idSpace[:]...), slot...), "/snapshot/"...)
	b = strconv.AppendQuote(b, snapshot)
	b = append(b, '/')
	b = strconv.AppendQuote(b, table)
	b = append(b, '/')
	b = strconv.AppendQuote(b, key)
	b = append(b, '/')
	b = strconv.AppendUint(b, uint64(index), 10)
	return nameID(b)
}

// ChangeID is the deterministic id of the source change at (commit LSN,
// ordinal), the $causationId of the events derived from it.
func ChangeID(slot string, commit LSN, ordinal uint64) uuid.UUID {
	var buf [128]byte
	return nameID(appendChangeName(append(buf[:0], idSpace[:]...), slot, commit, ordinal))
}

// nameID is uuid.NewSHA1(idSpace, name) for b = idSpace's bytes followed by
// name, computed on the caller's buffer: uuid.NewSHA1 allocates a hash and
// its sum, twice per event (EventID and the $causationId), and once more per
// snapshot row's event (SnapshotEventID). The bytes are the same
// (TestIDsAreTheFormerFmtDerivedOnes, FuzzIDs, TestSnapshotEventIDs).
func nameID(b []byte) uuid.UUID {
	sum := sha1.Sum(b)
	var id uuid.UUID
	copy(id[:], sum[:])
	id[6] = (id[6] & 0x0f) | 0x50 // version 5 (name-based, SHA-1)
	id[8] = (id[8] & 0x3f) | 0x80 // RFC 4122 variant
	return id
}

// appendChangeName appends "<slot>/<commit LSN>/<ordinal>", the name both
// ids are derived from (the ids are stored: the bytes must never change).
func appendChangeName(dst []byte, slot string, commit LSN, ordinal uint64) []byte {
	dst = append(dst, slot...)
	dst = append(dst, '/')
	dst = commit.Append(dst)
	dst = append(dst, '/')
	return strconv.AppendUint(dst, ordinal, 10)
}

// StorePos is a position in the store's $all stream (commit and prepare
// positions, as KurrentDB reports them).
type StorePos struct {
	Commit  uint64 `json:"commit"`
	Prepare uint64 `json:"prepare"`
}

// Less orders store positions.
func (p StorePos) Less(q StorePos) bool {
	return p.Commit < q.Commit || (p.Commit == q.Commit && p.Prepare < q.Prepare)
}

func (p StorePos) String() string { return fmt.Sprintf("C:%d/P:%d", p.Commit, p.Prepare) }

// StoreFrom is where a read of $all starts: after the event at StorePos, or
// at the start of $all when Start is set. Its JSON form is the checkpoint's
// resume position: {"start":…,"commit":…,"prepare":…}.
type StoreFrom struct {
	Start bool `json:"start,omitempty"`
	StorePos
}

// After is the read position after the event at p.
func After(p StorePos) StoreFrom { return StoreFrom{StorePos: p} }

func (f StoreFrom) String() string {
	if f.Start {
		return "start"
	}
	return "after " + f.StorePos.String()
}
