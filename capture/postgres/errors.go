package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"

	"github.com/jackc/pgx/v5"
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
	// ViaRoot is the publication's publish_via_partition_root (as read;
	// not a mismatch by itself).
	ViaRoot bool
	// LeafNames are configured partitioned tables whose changes it
	// publishes (or, once added, would publish) under their partitions'
	// names: it lacks publish_via_partition_root.
	LeafNames []string
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
	if len(e.LeafNames) > 0 {
		parts = append(parts, fmt.Sprintf("it does not publish partitioned %s via the partition root, so their changes come under their partitions' names and rules on them never fire (ALTER PUBLICATION %s SET (publish_via_partition_root = true))",
			strings.Join(e.LeafNames, ", "), e.Publication))
	}
	if e.Operations != "" {
		parts = append(parts, fmt.Sprintf("it publishes only %s (ALTER PUBLICATION %s SET (publish = 'insert, update, delete, truncate'))", e.Operations, e.Publication))
	}
	return fmt.Sprintf("publication %q does not match the configured tables: %s", e.Publication, strings.Join(parts, "; "))
}

// ReplicaIdentityError: a captured table has no replica identity, so once
// published Postgres would refuse the application's UPDATEs and DELETEs on
// it. Capture refuses to publish it.
type ReplicaIdentityError struct {
	Table    string
	Identity string // "nothing", or "default" without a primary key
	// Partitions, for a partitioned Table, are its partitions without a
	// usable replica identity.
	Partitions []string
}

func (e *ReplicaIdentityError) Error() string {
	if len(e.Partitions) > 0 {
		return fmt.Sprintf("partitions %s of table %s have no replica identity (no primary key, REPLICA IDENTITY DEFAULT or NOTHING): published, Postgres would refuse their UPDATEs and DELETEs; ALTER TABLE ... REPLICA IDENTITY FULL on each (or add primary keys)",
			strings.Join(e.Partitions, ", "), e.Table)
	}
	return fmt.Sprintf("table %s has REPLICA IDENTITY %s and no primary key to fall back on: published, Postgres would refuse its UPDATEs and DELETEs; ALTER TABLE %s REPLICA IDENTITY FULL (or add a primary key)",
		e.Table, strings.ToUpper(e.Identity), e.Table)
}

// PublicationCreateError: the publication does not exist and the role may
// not create it.
type PublicationCreateError struct {
	Publication, Role, Database string
	NoCreate                    bool     // no CREATE privilege on the database
	NotOwned                    []string // tables the role does not own
}

func (e *PublicationCreateError) Error() string {
	why := fmt.Sprintf("role %q does not own %s (needed to publish them)", e.Role, strings.Join(e.NotOwned, ", "))
	if e.NoCreate {
		why = fmt.Sprintf("role %q has no CREATE privilege on database %q", e.Role, e.Database)
	}
	return fmt.Sprintf("publication %q does not exist and capture cannot create it: %s; create it as the tables' owner", e.Publication, why)
}

// NoRoomError: the server has no room for capture's slot or replication
// connection. It is transient: Run retries (another consumer may leave).
type NoRoomError struct {
	Setting    string // "max_replication_slots" or "max_wal_senders"
	InUse, Max int
}

func (e *NoRoomError) Error() string {
	return fmt.Sprintf("%d of %s = %d are in use, none is left for capture: raise %s (it needs a server restart) or free one", e.InUse, e.Setting, e.Max, e.Setting)
}

// ConnectError: the captured database could not be reached.
type ConnectError struct {
	Target string // host:port/database
	User   string
	Err    error // pgconn's error: it names host, user and database, never the password
}

func (e *ConnectError) Error() string {
	return fmt.Sprintf("connecting to %s as %s: %v", e.Target, e.User, e.Err)
}

// Unwrap returns the driver's error.
func (e *ConnectError) Unwrap() error { return e.Err }

// TLSError: TLS with the captured database failed in a way a retry does
// not mend: the server offers no TLS while the sslmode asks for it (the
// default, DefaultSSLMode, does), or its certificate does not verify
// (unknown CA, wrong host name, expired). Run stops on it.
type TLSError struct {
	Target  string // host:port/database
	SSLMode string
	Refused bool  // the server offers no TLS
	Err     error // the driver's error
}

func (e *TLSError) Error() string {
	if e.Refused {
		return fmt.Sprintf("%s does not offer TLS, and sslmode %s requires it (chronicler's default is %s): turn ssl on on the server, or set sslmode=disable in postgres.url to connect without TLS",
			e.Target, e.SSLMode, DefaultSSLMode)
	}
	return fmt.Sprintf("TLS with %s (sslmode %s): the server's certificate does not verify: %v (name the CA that signed it as sslrootcert in postgres.url, and connect by a host name the certificate lists; sslmode=verify-ca checks the chain only)",
		e.Target, e.SSLMode, e.Err)
}

// Unwrap returns the driver's error.
func (e *TLSError) Unwrap() error { return e.Err }

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
// walsender termination, server shutdown or start-up, a slot still held
// by our own previous (terminating) walsender, no room for a slot or a
// walsender yet, and a standby that may be promoted.
func transient(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		return false
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		// Joined failed checks: worth a reconnect only if each one is.
		for _, e := range j.Unwrap() {
			if !transient(e) {
				return false
			}
		}
		return len(j.Unwrap()) > 0
	}
	var se *SinkError
	var ge *GuardError
	var te *TLSError
	if errors.As(err, &se) || errors.As(err, &ge) || errors.As(err, &te) {
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
	var noRoom *NoRoomError
	var standby *StandbyError
	if errors.As(err, &inUse) || errors.As(err, &noRoom) || errors.As(err, &standby) {
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

// GuardError: Config.Guard refused an action (the HA lease is lost or in
// doubt); the Source stopped without doing it.
type GuardError struct {
	Action string // "connect" or "confirm <LSN>"
	Err    error
}

func (e *GuardError) Error() string {
	return fmt.Sprintf("capture stopped before it would %s: %v", e.Action, e.Err)
}
func (e *GuardError) Unwrap() error { return e.Err }

// SnapshotError: the initial snapshot cannot be read (a table it names is
// gone or no longer readable, a read fails for good); capture stops with it.
type SnapshotError struct {
	ID  string
	Err error
}

func (e *SnapshotError) Error() string {
	return fmt.Sprintf("snapshot %s cannot be read: %v", e.ID, e.Err)
}
func (e *SnapshotError) Unwrap() error { return e.Err }

// SnapshotTableError: a table a snapshot names cannot be read as one.
type SnapshotTableError struct {
	Table  string
	Reason string
}

func (e *SnapshotTableError) Error() string {
	return fmt.Sprintf("snapshot of %s: the table %s; add it to postgres.tables or request a snapshot without it", e.Table, e.Reason)
}

// FailoverUnsupportedError: postgres.failover_slot is set and the server's
// major has no failover slots (they came with Postgres 17).
type FailoverUnsupportedError struct{ Version int }

func (e *FailoverUnsupportedError) Error() string {
	return fmt.Sprintf("postgres.failover_slot is set, but Postgres %d has no failover slots (they need %d or later): set postgres.failover_slot: false, or upgrade the server",
		e.Version, FailoverMinVersion)
}

// StandbyError: the server is a standby (in recovery); capture reads from
// the primary. It is transient: Run retries until the server is promoted.
type StandbyError struct{ Target string }

func (e *StandbyError) Error() string {
	return fmt.Sprintf("%s is a standby (in recovery): capture needs the primary; point postgres.url at it (a multi-host URL with target_session_attrs=read-write follows a promotion)", e.Target)
}

// StandbySlotError: synchronized_standby_slots names a slot no standby can
// confirm through (absent, logical, invalidated): Postgres would hold back
// the failover slot's changes for it forever.
type StandbySlotError struct{ Slot, Reason string }

func (e *StandbySlotError) Error() string {
	return fmt.Sprintf("synchronized_standby_slots names slot %q, which %s: Postgres holds back a failover slot's changes until every slot it names has confirmed them, so capture would wait forever; fix the slot or remove it from synchronized_standby_slots",
		e.Slot, e.Reason)
}

// SlotMissingError: the replication slot does not exist although capture
// streamed through it before (Evidence says how capture knows). Changes
// committed after it was dropped and before a new one would be created are
// in no slot: creating one silently would leave a gap in history.
type SlotMissingError struct {
	Slot     string
	Evidence []string // what says capture had the slot
}

func (e *SlotMissingError) Error() string {
	return fmt.Sprintf("replication slot %q no longer exists, but capture streamed through it (%s): it was dropped, and the changes committed since then are in no slot, a gap in history that a new slot would leave silently. "+
		"To take a new initial snapshot (the rows as they are now; the changes in the gap are not recovered) and stream on from a new slot, set postgres.on_missing_slot: resnapshot for one start",
		e.Slot, strings.Join(e.Evidence, "; "))
}

// TablesRemovedError: a reload's postgres.tables no longer lists tables
// capture captures. A running capture only adds tables.
type TablesRemovedError struct {
	Tables      []string
	Publication string
}

func (e *TablesRemovedError) Error() string {
	return fmt.Sprintf("postgres.tables no longer lists %s: a reload only adds tables, so capture goes on capturing it; restart to stop capturing a table "+
		"(the slot and publication %q stay as they are: ALTER PUBLICATION %s DROP TABLE %s; stops publishing it)",
		strings.Join(e.Tables, ", "), e.Publication, pgx.Identifier{e.Publication}.Sanitize(), QuoteTables(e.Tables))
}

// TableAddError: a table a reload adds to postgres.tables cannot be
// captured as it is (Found), and what to do (Fix). Err is the finding's
// typed error, when it has one.
type TableAddError struct {
	Table      string
	Found, Fix string
	Err        error
}

func (e *TableAddError) Error() string {
	return fmt.Sprintf("adding %s to the captured tables: %s (fix: %s)", e.Table, e.Found, e.Fix)
}

func (e *TableAddError) Unwrap() error { return e.Err }
