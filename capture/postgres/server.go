package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// Server is what the checks read of the server and the connected role.
type Server struct {
	Version       string // server_version, e.g. "15.8 (Debian 15.8-0+deb12u1)"
	VersionNum    int    // server_version_num, e.g. 150008
	WALLevel      string
	Database      string // current_database()
	Role          string // current_user
	Replication   bool   // the role has the REPLICATION attribute
	Superuser     bool
	CanCreate     bool // CREATE on the database (to create the publication)
	MaxSlots      int  // max_replication_slots
	MaxWALSenders int  // max_wal_senders
	WALSenders    int  // walsenders running now (pg_stat_activity)
	InRecovery    bool // pg_is_in_recovery(): a standby
	// MaxSlotWALKeepMB is max_slot_wal_keep_size in MB: -1 is unlimited (a
	// slot keeps WAL until the disk fills).
	MaxSlotWALKeepMB int64
}

func readServer(ctx context.Context, q querier) (Server, error) {
	var s Server
	err := q.QueryRow(ctx, `
SELECT current_setting('server_version'), current_setting('server_version_num')::int,
       current_setting('wal_level'), current_database(), current_user, r.rolreplication, r.rolsuper,
       has_database_privilege(current_database(), 'CREATE'),
       current_setting('max_replication_slots')::int, current_setting('max_wal_senders')::int,
       (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'walsender')::int,
       (SELECT setting::bigint FROM pg_settings WHERE name = 'max_slot_wal_keep_size'), pg_is_in_recovery()
FROM pg_roles r WHERE r.rolname = current_user`).Scan(&s.Version, &s.VersionNum, &s.WALLevel, &s.Database, &s.Role,
		&s.Replication, &s.Superuser, &s.CanCreate, &s.MaxSlots, &s.MaxWALSenders, &s.WALSenders, &s.MaxSlotWALKeepMB, &s.InRecovery)
	if err != nil {
		return s, fmt.Errorf("reading the server settings (pg_roles, pg_stat_activity): %w", err)
	}
	return s, nil
}

// CheckServer checks the server version (at least [MinServerVersion]),
// wal_level, room for the slot (unless slot, as read by [Conn.ReadSlot],
// exists) and for a walsender, and the role's REPLICATION attribute (or
// superuser), in that order.
func CheckServer(srv Server, slot SlotInfo, slotExists bool) []Finding {
	var out []Finding
	f := Finding{Check: "version", Found: srv.Version}
	if major := srv.VersionNum / 10000; major < MinServerVersion {
		f.Verdict, f.Err = Fail, &ServerTooOldError{Version: major, Min: MinServerVersion}
		f.Fix = fmt.Sprintf("upgrade Postgres to %d or later (pgoutput protocol version 2)", MinServerVersion)
	}
	out = append(out, f)

	f = Finding{Check: "wal_level", Found: srv.WALLevel}
	if srv.WALLevel != "logical" {
		f.Verdict, f.Err = Fail, &WALLevelError{Got: srv.WALLevel}
		f.Fix = "ALTER SYSTEM SET wal_level = logical; then restart Postgres"
	}
	out = append(out, f)

	f = Finding{Check: "max_replication_slots", Found: fmt.Sprintf("%d of %d in use", slot.ServerSlots, srv.MaxSlots)}
	switch {
	case slotExists:
		f.Found += fmt.Sprintf(" (slot %s among them)", slot.Name)
	case slot.ServerSlots >= srv.MaxSlots:
		f.Found += fmt.Sprintf("; no room for slot %s", slot.Name)
		f.Verdict, f.Err = Fail, &NoRoomError{Setting: "max_replication_slots", InUse: slot.ServerSlots, Max: srv.MaxSlots}
		f.Fix = fmt.Sprintf("ALTER SYSTEM SET max_replication_slots = %d; then restart Postgres (or drop an unused slot)", slot.ServerSlots+1)
	}
	out = append(out, f)

	f = Finding{Check: "max_wal_senders", Found: fmt.Sprintf("%d of %d in use", srv.WALSenders, srv.MaxWALSenders)}
	if srv.WALSenders >= srv.MaxWALSenders {
		f.Found += "; no room for chronicler's replication connection"
		f.Verdict, f.Err = Fail, &NoRoomError{Setting: "max_wal_senders", InUse: srv.WALSenders, Max: srv.MaxWALSenders}
		f.Fix = fmt.Sprintf("ALTER SYSTEM SET max_wal_senders = %d; then restart Postgres", srv.WALSenders+1)
	}
	out = append(out, f)

	out = append(out, checkWALKeep(srv))

	f = Finding{Check: "role " + srv.Role}
	switch {
	case srv.Superuser:
		f.Found = "superuser"
	case srv.Replication:
		f.Found = "REPLICATION"
	default:
		f.Found, f.Verdict = "neither REPLICATION nor superuser", Fail
		f.Fix = fmt.Sprintf("ALTER ROLE %s REPLICATION;", pgx.Identifier{srv.Role}.Sanitize())
		f.Err = &PrivilegeError{Role: srv.Role, Privilege: "REPLICATION"}
	}
	return append(out, f)
}

// checkWALKeep warns when a slot may keep WAL without bound: with
// max_slot_wal_keep_size unlimited, a stopped or stuck chronicler's slot
// keeps every WAL segment until the database's disk fills.
func checkWALKeep(srv Server) Finding {
	f := Finding{Check: "max_slot_wal_keep_size"}
	if srv.MaxSlotWALKeepMB >= 0 {
		f.Found = fmt.Sprintf("%d MB: a slot further behind loses its WAL (wal_status lost) instead of filling the disk", srv.MaxSlotWALKeepMB)
		return f
	}
	f.Found, f.Verdict = "-1 (unlimited): a stopped chronicler's slot keeps WAL until the disk fills", Warn
	f.Fix = "ALTER SYSTEM SET max_slot_wal_keep_size = '50GB'; SELECT pg_reload_conf(); (a size the disk can hold; watch chronicler_capture_slot_retained_wal_bytes)"
	return f
}
