package store

import (
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/google/uuid"

	"github.com/chronicler-dev/chronicler/capture/change"
)

// Pos is an event's source position: its transaction's commit LSN, the
// change's ordinal in the transaction, and the index of the producing rule.
type Pos struct {
	CommitLSN change.LSN
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

// idSpace is the UUID namespace of Chronicler event ids.
var idSpace = uuid.MustParse("6f1c1d52-8a4e-4c1e-9a52-6368726f6e69")

// EventID is the deterministic id of the event at p from slot.
func EventID(slot string, p Pos) uuid.UUID {
	// slot/<commit LSN>/<ordinal>/<index>, as slot+"/"+p.String(), without fmt.
	var buf [96]byte
	b := appendChangeName(buf[:0], slot, p.CommitLSN, p.Ordinal)
	b = append(b, '/')
	b = strconv.AppendUint(b, uint64(p.Index), 10)
	return uuid.NewSHA1(idSpace, b)
}

// ChangeID is the deterministic id of the source change at (commit LSN,
// ordinal), the $causationId of the events derived from it.
func ChangeID(slot string, commit change.LSN, ordinal uint64) uuid.UUID {
	var buf [96]byte
	return uuid.NewSHA1(idSpace, appendChangeName(buf[:0], slot, commit, ordinal))
}

// appendChangeName appends "<slot>/<commit LSN>/<ordinal>", the name both
// ids are derived from (the ids are stored: the bytes must never change).
func appendChangeName(dst []byte, slot string, commit change.LSN, ordinal uint64) []byte {
	dst = append(dst, slot...)
	dst = append(dst, '/')
	dst = commit.Append(dst)
	dst = append(dst, '/')
	return strconv.AppendUint(dst, ordinal, 10)
}

// Metadata keys the appender writes (beside the mapping's source metadata).
const (
	MetaSlot      = "slot"
	MetaCommitLSN = "commitLsn"
	MetaOrdinal   = "ordinal"
	MetaIndex     = "index"
	MetaCausation = "$causationId"
)

// tailPos reads the position and slot back from a stored event's metadata.
// ok is false for an event that is not Chronicler's.
func tailPos(meta []byte) (slot string, p Pos, ok bool) {
	var m struct {
		Slot      string  `json:"slot"`
		CommitLSN string  `json:"commitLsn"`
		Ordinal   *uint64 `json:"ordinal"`
		Index     *uint32 `json:"index"`
	}
	if json.Unmarshal(meta, &m) != nil || m.Slot == "" || m.Ordinal == nil || m.Index == nil {
		return "", Pos{}, false
	}
	lsn, err := change.ParseLSN(m.CommitLSN)
	if err != nil {
		return "", Pos{}, false
	}
	return m.Slot, Pos{CommitLSN: lsn, Ordinal: *m.Ordinal, Index: *m.Index}, true
}
