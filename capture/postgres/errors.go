package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
)

// MinServerVersion is the oldest Postgres major capture supports: pgoutput's
// "messages" option (logical decoding messages) needs 14.
const MinServerVersion = 14

// ErrAlreadyRunning is returned by a second concurrent or repeated Run.
var ErrAlreadyRunning = errors.New("capture: Run was already called on this Source")

// ErrStreamEnded is wrapped when the server ends the replication stream
// (CopyDone, as in a shutdown); it is transient.
var ErrStreamEnded = errors.New("replication stream ended by the server")

// ServerTooOldError: the server's major version is below [MinServerVersion].
type ServerTooOldError struct{ Version, Min int }

func (e *ServerTooOldError) Error() string {
	return fmt.Sprintf("Postgres server version %d is too old: capture needs %d or newer (pgoutput messages); upgrade the server", e.Version, e.Min)
}

// WALLevelError: wal_level is not logical.
type WALLevelError struct{ Got string }

func (e *WALLevelError) Error() string {
	return fmt.Sprintf("wal_level is %q, capture needs \"logical\": set wal_level = logical in postgresql.conf (or ALTER SYSTEM SET wal_level = logical) and restart Postgres", e.Got)
}

// PrivilegeError: the connecting role lacks a privilege capture needs.
type PrivilegeError struct {
	Role      string
	Privilege string // "REPLICATION" or "SELECT"
	Table     string // for SELECT
}

func (e *PrivilegeError) Error() string {
	if e.Table != "" {
		return fmt.Sprintf("role %q has no %s privilege on %s: GRANT %s ON %s TO %s", e.Role, e.Privilege, e.Table, e.Privilege, e.Table, e.Role)
	}
	return fmt.Sprintf("role %q has no %s attribute: ALTER ROLE %s WITH %s", e.Role, e.Privilege, e.Role, e.Privilege)
}

// TableNotFoundError: a configured table does not exist.
type TableNotFoundError struct{ Table string }

func (e *TableNotFoundError) Error() string {
	return fmt.Sprintf("captured table %s does not exist in the database: create it or remove it from the capture tables", e.Table)
}

// SlotInUseError: another process streams from the slot.
type SlotInUseError struct {
	Slot string
	PID  int
}

func (e *SlotInUseError) Error() string {
	return fmt.Sprintf("replication slot %q is active in process %d: stop that consumer (or SELECT pg_terminate_backend(%d)) before starting capture", e.Slot, e.PID, e.PID)
}

// SlotLostError: the server removed WAL the slot needed (wal_status = lost).
type SlotLostError struct{ Slot string }

func (e *SlotLostError) Error() string {
	return fmt.Sprintf("replication slot %q is invalidated (wal_status = lost; WAL it needed was removed, see max_slot_wal_keep_size): changes were lost; drop the slot (SELECT pg_drop_replication_slot('%s')) and clear the snapshot state to re-snapshot", e.Slot, e.Slot)
}

// SlotMismatchError: a slot of that name exists but cannot be used.
type SlotMismatchError struct {
	Slot   string
	Reason string
}

func (e *SlotMismatchError) Error() string {
	return fmt.Sprintf("replication slot %q cannot be used: %s; choose another slot name or drop it", e.Slot, e.Reason)
}

// PublicationMismatchError: an existing publication does not publish
// exactly the configured tables and operations.
type PublicationMismatchError struct {
	Publication string
	Missing     []string // configured, not published
	Extra       []string // published, not configured
	AllTables   bool     // FOR ALL TABLES
	Operations  string   // non-empty when not all of insert, update, delete, truncate are published
}

func (e *PublicationMismatchError) Error() string {
	var parts []string
	if e.AllTables {
		parts = append(parts, "it is FOR ALL TABLES")
	}
	if len(e.Missing) > 0 {
		parts = append(parts, fmt.Sprintf("it lacks %s (ALTER PUBLICATION %s ADD TABLE %s, or set AddMissingTables)",
			strings.Join(e.Missing, ", "), e.Publication, strings.Join(e.Missing, ", ")))
	}
	if len(e.Extra) > 0 {
		parts = append(parts, fmt.Sprintf("it also publishes %s, which capture is not configured for (add them to the tables or ALTER PUBLICATION %s DROP TABLE %s)",
			strings.Join(e.Extra, ", "), e.Publication, strings.Join(e.Extra, ", ")))
	}
	if e.Operations != "" {
		parts = append(parts, fmt.Sprintf("it publishes only %s (ALTER PUBLICATION %s SET (publish = 'insert, update, delete, truncate'))", e.Operations, e.Publication))
	}
	return fmt.Sprintf("publication %q does not match the configured tables: %s", e.Publication, strings.Join(parts, "; "))
}

// SinkError wraps an error returned by the [Sink]; it stops Run.
type SinkError struct {
	Op  string // "begin", "change", "commit"
	Err error
}

func (e *SinkError) Error() string { return fmt.Sprintf("capture sink %s: %v", e.Op, e.Err) }
func (e *SinkError) Unwrap() error { return e.Err }

// ProtocolError: the server sent something capture cannot interpret.
type ProtocolError struct{ Err error }

func (e *ProtocolError) Error() string { return "capture: replication protocol: " + e.Err.Error() }
func (e *ProtocolError) Unwrap() error { return e.Err }

// transient reports whether err is worth a reconnect: connection loss,
// walsender termination, server shutdown or start-up, and a slot still held
// by our own previous (terminating) walsender.
func transient(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		return false
	}
	var se *SinkError
	if errors.As(err, &se) {
		return false
	}
	if errors.Is(err, ErrStreamEnded) {
		return true
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case strings.HasPrefix(pe.Code, "08"), // connection exception
			strings.HasPrefix(pe.Code, "57"), // operator intervention: admin shutdown, terminated, cannot connect now
			strings.HasPrefix(pe.Code, "53"), // insufficient resources (too many connections)
			pe.Code == "55006":               // object in use: our old walsender still holds the slot
			return true
		}
		return false
	}
	var inUse *SlotInUseError
	if errors.As(err, &inUse) {
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) {
		return true
	}
	if pgconn.SafeToRetry(err) || pgconn.Timeout(err) {
		return true
	}
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) {
		return true
	}
	// pgconn reports a connection closed under it as a plain error text.
	s := err.Error()
	return strings.Contains(s, "conn closed") || strings.Contains(s, "unexpected EOF") || strings.Contains(s, "connection reset")
}
