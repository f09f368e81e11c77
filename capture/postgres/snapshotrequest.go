package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"regexp"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/chronicler-dev/chronicler/mapping/contract"
)

// SnapshotPrefix is the logical message prefix of capture's snapshot
// messages: the watermarks around each chunk read and the requests of
// `chronicler snapshot`. They travel in the slot's stream like any
// transaction, so their place among the changes is known, and need no
// table in the captured database. Capture never hands them to the sink.
const SnapshotPrefix = "chronicler.snapshot"

// snapshotMessage is the content of a message with SnapshotPrefix (JSON).
type snapshotMessage struct {
	Kind    string   `json:"kind"` // low, high, request, cancel
	Slot    string   `json:"slot"`
	Attempt string   `json:"attempt,omitempty"` // low, high: the chunk attempt
	ID      string   `json:"id,omitempty"`      // request, cancel: the snapshot
	Tables  []string `json:"tables,omitempty"`  // request
	Where   string   `json:"where,omitempty"`   // request
}

// The kinds of snapshot message.
const (
	msgLow     = "low"
	msgHigh    = "high"
	msgRequest = "request"
	msgCancel  = "cancel"
)

// emitMessage emits m as a transactional logical message on conn and
// returns its LSN.
func emitMessage(ctx context.Context, conn *pgx.Conn, m snapshotMessage) (contract.LSN, error) {
	b, err := json.Marshal(m)
	if err != nil {
		return 0, err
	}
	var lsn string
	if err := conn.QueryRow(ctx, "SELECT pg_logical_emit_message(true, $1, $2)::text", SnapshotPrefix, string(b)).Scan(&lsn); err != nil {
		return 0, fmt.Errorf("emitting a snapshot %s message (pg_logical_emit_message): %w", m.Kind, err)
	}
	return contract.ParseLSN(lsn)
}

// SnapshotRequest asks the capture of a slot to read tables again while it
// streams.
type SnapshotRequest struct {
	Slot string
	// Tables are "schema.table" (a bare name is "public."); each must exist
	// and be readable, and the capture must capture it.
	Tables []string
	// Where, when set, is an SQL condition: only the rows it holds for are
	// read (it must be valid for every table).
	Where string
	// ID names the snapshot; default a new one ("snap-<UTC time>-<random>").
	ID string
}

var snapshotIDRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]{0,99}$`)

// NewSnapshotID is a new snapshot id: "snap-<UTC time>-<random>".
func NewSnapshotID(now time.Time) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return "snap-" + now.UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b[:])
}

// RequestSnapshot checks req against the database (every table exists and
// is readable; Where is a valid condition on each: EXPLAIN, in a read-only
// transaction) and emits it as a logical message ([SnapshotPrefix]). The
// capture of the slot reads it at that position of its stream (a running
// one at once, else the next to start), saves it with its snapshots and
// reads the tables in chunks while streaming goes on. It returns the
// snapshot's id and the message's LSN. Problems the requester can fix are
// a *SnapshotRequestError.
func RequestSnapshot(ctx context.Context, cs ConnSettings, req SnapshotRequest) (string, contract.LSN, error) {
	if req.ID == "" {
		req.ID = NewSnapshotID(time.Now())
	}
	if !snapshotIDRE.MatchString(req.ID) {
		return "", 0, &SnapshotRequestError{Reason: fmt.Sprintf("snapshot id %q: use 1-100 letters, digits, '.', '_', ':' or '-'", req.ID)}
	}
	if len(req.Tables) == 0 {
		return "", 0, &SnapshotRequestError{Reason: "name at least one table (schema.table)"}
	}
	for i, t := range req.Tables {
		q, err := QualifyTable(t)
		if err != nil {
			return "", 0, &SnapshotRequestError{Table: t, Reason: err.Error()}
		}
		req.Tables[i] = q
	}
	conn, _, err := dial(ctx, cs)
	if err != nil {
		return "", 0, err
	}
	defer conn.Close(context.Background())
	for _, name := range req.Tables {
		t, err := readTable(ctx, conn, name, false) // existence and privilege only
		if err != nil {
			return "", 0, err
		}
		switch {
		case !t.Exists:
			return "", 0, &SnapshotRequestError{Table: name, Reason: "does not exist (names are schema.table, case-sensitive)"}
		case !t.CanSelect:
			return "", 0, &SnapshotRequestError{Table: name, Reason: "the role may not SELECT it: GRANT SELECT ON " + t.quoted() + " TO the capture role"}
		}
		if req.Where != "" {
			if err := checkWhere(ctx, conn, t, req.Where); err != nil {
				return "", 0, &SnapshotRequestError{Table: name, Where: req.Where, Reason: "the condition does not apply to it: " + err.Error()}
			}
		}
	}
	lsn, err := emitMessage(ctx, conn, snapshotMessage{Kind: msgRequest, Slot: req.Slot, ID: req.ID, Tables: req.Tables, Where: req.Where})
	if err != nil {
		return "", 0, err
	}
	return req.ID, lsn, nil
}

// CancelSnapshot emits the cancellation of snapshot id of slot: the capture
// stops reading it after the chunk in progress. It returns the message's LSN.
func CancelSnapshot(ctx context.Context, cs ConnSettings, slot, id string) (contract.LSN, error) {
	conn, _, err := dial(ctx, cs)
	if err != nil {
		return 0, err
	}
	defer conn.Close(context.Background())
	return emitMessage(ctx, conn, snapshotMessage{Kind: msgCancel, Slot: slot, ID: id})
}

// checkWhere plans the condition on t in a read-only transaction.
func checkWhere(ctx context.Context, conn *pgx.Conn, t Table, where string) error {
	return pgx.BeginTxFunc(ctx, conn, pgx.TxOptions{AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, "EXPLAIN SELECT 1 FROM "+t.quoted()+" WHERE ("+where+")")
		return err
	})
}

// SnapshotRequestError: a snapshot request that cannot be carried out as
// given.
type SnapshotRequestError struct {
	Table  string // the table at fault, if one is
	Where  string
	Reason string
}

func (e *SnapshotRequestError) Error() string {
	switch {
	case e.Where != "":
		return fmt.Sprintf("snapshot of %s with --where %q: %s", e.Table, e.Where, e.Reason)
	case e.Table != "":
		return fmt.Sprintf("snapshot of %s: %s", e.Table, e.Reason)
	}
	return "snapshot request: " + e.Reason
}
