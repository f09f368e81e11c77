package postgres

import (
	"context"
	"fmt"
	"net/url"
	"regexp"
	"strings"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// FailoverMinVersion is the first Postgres major with failover slots: a
// logical slot created with FAILOVER is synchronized to the standbys that
// set sync_replication_slots, so it is there after a promotion.
const FailoverMinVersion = 17

// failoverSettings are the settings the failover checks read: the
// primary's synchronized_standby_slots and a standby's side of slot
// synchronization.
var failoverSettings = []string{"synchronized_standby_slots", "sync_replication_slots", "hot_standby_feedback", "primary_slot_name", "primary_conninfo"}

// Failover is what the failover checks read of a server. VersionNum,
// InRecovery and WALLevel are the [Server]'s, as [Conn.ReadServer] read
// them (not read again).
type Failover struct {
	Target     string // host:port/database, for messages
	VersionNum int    // server_version_num
	InRecovery bool   // pg_is_in_recovery(): a standby
	WALLevel   string
	// Settings holds failoverSettings as pg_settings shows them to the
	// role: a name is missing when the server has no such setting (before
	// 17) or hides it from the role (primary_conninfo needs
	// pg_read_all_settings). primary_conninfo itself is never kept (it may
	// hold a password): ConninfoDBName says whether it names a database.
	Settings       map[string]string
	ConninfoDBName bool
	// StandbySlots are the slots synchronized_standby_slots names, each as
	// the slot reader found it (Exists false: no such slot).
	StandbySlots []StandbySlot
}

// StandbySlot is a slot named by synchronized_standby_slots.
type StandbySlot struct {
	Slot   SlotInfo
	Exists bool
}

// readFailover reads the failover settings and the slots
// synchronized_standby_slots names; the version, recovery state and
// wal_level come from srv, already read.
func readFailover(ctx context.Context, q querier, srv Server, target string) (Failover, error) {
	fo := Failover{Target: target, VersionNum: srv.VersionNum, InRecovery: srv.InRecovery, WALLevel: srv.WALLevel, Settings: map[string]string{}}
	wrap := func(err error) error { return fmt.Errorf("reading the failover settings of %s: %w", target, err) }
	rows, err := q.Query(ctx, "SELECT name, coalesce(setting, '') FROM pg_settings WHERE name = ANY($1)", failoverSettings)
	if err != nil {
		return fo, wrap(err)
	}
	for rows.Next() {
		var name, value string
		if err := rows.Scan(&name, &value); err != nil {
			rows.Close()
			return fo, wrap(err)
		}
		if name == "primary_conninfo" {
			fo.ConninfoDBName, value = conninfoNamesDB(value), "(not shown)"
		}
		fo.Settings[name] = value
	}
	if err := rows.Err(); err != nil {
		return fo, wrap(err)
	}
	for _, name := range splitSlotList(fo.Settings["synchronized_standby_slots"]) {
		si, exists, err := readSlot(ctx, q, name)
		if err != nil {
			return fo, wrap(err)
		}
		fo.StandbySlots = append(fo.StandbySlots, StandbySlot{Slot: si, Exists: exists})
	}
	return fo, nil
}

// splitSlotList splits a comma-separated list of slot names.
func splitSlotList(s string) []string {
	var out []string
	for _, n := range strings.Split(s, ",") {
		if n = strings.Trim(strings.TrimSpace(n), `"`); n != "" {
			out = append(out, n)
		}
	}
	return out
}

var dbnameKV = regexp.MustCompile(`(?:^|\s)dbname\s*=\s*('(?:[^'\\]|\\.)+'|[^\s']+)`)

// conninfoNamesDB reports whether a libpq connection string (key=value or
// URI) names a database: slot synchronization connects to one.
func conninfoNamesDB(ci string) bool {
	if strings.HasPrefix(ci, "postgres://") || strings.HasPrefix(ci, "postgresql://") {
		u, err := url.Parse(ci)
		return err == nil && (strings.Trim(u.Path, "/") != "" || u.Query().Get("dbname") != "")
	}
	return dbnameKV.MatchString(ci)
}

// CheckFailover checks what failover needs, as read by [Conn.ReadFailover]
// (fo) and the slot reader (si, exists); want is postgres.failover_slot.
//
// On a standby (in recovery) it returns a Warn that stops this start
// ([StandbyError]: capture reads from the primary, and Run waits until the
// server is promoted) and, with want, the standby's side of slot
// synchronization: sync_replication_slots, hot_standby_feedback,
// primary_slot_name, a dbname in primary_conninfo, wal_level, and the
// slot as synchronized here (synced, and sync-ready: not temporary).
//
// On a primary, with want: the major (a Fail before [FailoverMinVersion]),
// the slot's failover flag, synchronized_standby_slots and each slot it
// names (a Fail for one that does not exist, is logical or is invalidated:
// the failover slot's changes would wait for it forever; a Warn for one no
// standby streams from, or whose standby reports no hot_standby_feedback).
// A standby's slot synchronization itself cannot be seen from the primary:
// the last finding says so.
func CheckFailover(fo Failover, si SlotInfo, exists, want bool) []Finding {
	var out []Finding
	if fo.InRecovery {
		out = append(out, Finding{Check: "server role", Verdict: Warn, Err: &StandbyError{Target: fo.Target},
			Found: "a standby (in recovery): capture reads from the primary",
			Fix:   "point postgres.url at the primary; a multi-host URL with target_session_attrs=read-write (postgres://user@primary,standby/db?target_session_attrs=read-write) follows a promotion; chronicler run waits on a standby until it is promoted"})
	}
	if !want {
		return out
	}
	if major := fo.VersionNum / 10000; major < FailoverMinVersion {
		return append(out, Finding{Check: "failover slot", Verdict: Fail, Err: &FailoverUnsupportedError{Version: major},
			Found: fmt.Sprintf("postgres.failover_slot is set, but Postgres %d has no failover slots (%d or later)", major, FailoverMinVersion),
			Fix:   "set postgres.failover_slot: false, or upgrade the server to Postgres 17"})
	}
	if fo.InRecovery {
		return append(out, checkStandbySide(fo, si, exists)...)
	}
	f := Finding{Check: "slot " + si.Name + " failover"}
	switch {
	case !exists:
		f.Found = "absent: chronicler run creates it with FAILOVER true"
	case si.Failover != nil && *si.Failover:
		f.Found = "on: Postgres synchronizes the slot to the standbys that set sync_replication_slots = on"
	default:
		f.Verdict, f.Found = Warn, "off: after a failover the promoted standby has no copy of the slot"
		f.Fix = fmt.Sprintf("chronicler run turns it on at its next start; or on a replication connection (psql \"dbname=%s replication=database\"): ALTER_REPLICATION_SLOT %s (FAILOVER true)",
			si.Database, pgx.Identifier{si.Name}.Sanitize())
	}
	out = append(out, f)
	out = append(out, checkStandbySlots(fo)...)
	// The primary keeps no trace of a standby's slot synchronization: its
	// worker connects as an ordinary session under the walreceiver's
	// application_name. Say so rather than guess.
	return append(out, Finding{Check: "slot synchronization",
		Found: "not visible from the primary (sync_replication_slots, primary_slot_name and primary_conninfo's dbname are the standby's settings): run chronicler check with postgres.url pointing at the standby"})
}

// checkStandbySlots checks synchronized_standby_slots on a primary.
func checkStandbySlots(fo Failover) []Finding {
	f := Finding{Check: "synchronized_standby_slots"}
	v, ok := fo.Settings["synchronized_standby_slots"]
	if !ok || len(fo.StandbySlots) == 0 {
		f.Verdict, f.Found = Warn, fmt.Sprintf("%q: chronicler may receive changes before any standby has them; promoted, such a standby would lack changes the store holds", v)
		f.Fix = "ALTER SYSTEM SET synchronized_standby_slots = '<the standby's physical slot>'; SELECT pg_reload_conf();"
		return []Finding{f}
	}
	f.Found = v + ": Postgres sends chronicler a change only once these standbys have it"
	out := []Finding{f}
	for _, ss := range fo.StandbySlots {
		si := ss.Slot
		f := Finding{Check: "standby slot " + si.Name}
		reason := ""
		switch {
		case !ss.Exists:
			reason = "does not exist"
		case si.Plugin != "":
			reason = "is a logical slot, not a standby's physical slot"
		case si.WALStatus == "lost":
			reason = "is invalidated (wal_status lost)"
		}
		switch {
		case reason != "":
			f.Verdict, f.Err, f.Found = Fail, &StandbySlotError{Slot: si.Name, Reason: reason}, reason+": capture's changes would wait for it forever"
			f.Fix = fmt.Sprintf("create the standby's physical slot (SELECT pg_create_physical_replication_slot('%s');) and set the standby's primary_slot_name to it, or remove it from synchronized_standby_slots", si.Name)
		case si.ActivePID == nil:
			f.Verdict, f.Found = Warn, "physical, but no standby streams from it now: capture's changes wait until one does"
			f.Fix = fmt.Sprintf("start the standby (primary_slot_name = '%s'), or remove the slot from synchronized_standby_slots while it is down", si.Name)
		case si.Xmin == "" && si.CatalogXmin == "":
			f.Verdict, f.Found = Warn, "streamed, but the standby has reported no xmin: hot_standby_feedback is off there (slot synchronization needs it), or its first report is not due yet (wal_receiver_status_interval, 10s by default)"
			f.Fix = "on the standby: ALTER SYSTEM SET hot_standby_feedback = on; SELECT pg_reload_conf();"
		default:
			f.Found = fmt.Sprintf("physical, streamed by %q from %s, hot_standby_feedback on (xmin %s, catalog_xmin %s)",
				si.ApplicationName, orUnknown(si.ClientAddr), orUnknown(si.Xmin), orUnknown(si.CatalogXmin))
		}
		out = append(out, f)
	}
	return out
}

// checkStandbySide checks a standby's side of slot synchronization.
func checkStandbySide(fo Failover, si SlotInfo, exists bool) []Finding {
	var out []Finding
	setting := func(name, want, fix string) {
		f := Finding{Check: "standby " + name}
		v, ok := fo.Settings[name]
		switch {
		case !ok:
			f.Found = "unknown: not visible to this role (grant it pg_read_all_settings)"
		case (want != "" && v != want) || (want == "" && v == ""):
			f.Found, f.Verdict, f.Fix = fmt.Sprintf("%q", v), Warn, fix
		default:
			f.Found = v
		}
		out = append(out, f)
	}
	reload := "; SELECT pg_reload_conf(); on the standby"
	setting("sync_replication_slots", "on", "ALTER SYSTEM SET sync_replication_slots = on"+reload)
	setting("hot_standby_feedback", "on", "ALTER SYSTEM SET hot_standby_feedback = on"+reload)
	setting("primary_slot_name", "", "ALTER SYSTEM SET primary_slot_name = '<its physical slot on the primary>'"+reload+"; and name that slot in the primary's synchronized_standby_slots")
	f := Finding{Check: "standby primary_conninfo"}
	switch _, ok := fo.Settings["primary_conninfo"]; {
	case !ok:
		f.Found = "unknown: not visible to this role (grant it pg_read_all_settings)"
	case !fo.ConninfoDBName:
		f.Verdict, f.Found = Warn, "names no dbname: slot synchronization connects to a database of the primary"
		f.Fix = "add dbname=postgres (any database) to primary_conninfo" + reload
	default:
		f.Found = "names a dbname"
	}
	out = append(out, f)
	f = Finding{Check: "standby wal_level", Found: fo.WALLevel}
	if fo.WALLevel != "logical" {
		f.Verdict, f.Fix = Warn, "ALTER SYSTEM SET wal_level = logical; then restart the standby (slot synchronization needs it)"
	}
	out = append(out, f)
	f = Finding{Check: "slot " + si.Name + " on the standby"}
	switch {
	case !exists:
		f.Verdict, f.Found = Warn, "absent: not synchronized here (the primary's slot has failover off, or no synchronization has run yet)"
		f.Fix = "check the primary with chronicler check; the slot sync worker copies the slot within seconds once it has failover on"
	case si.Synced == nil || !*si.Synced:
		f.Verdict, f.Found = Warn, "exists, but was not synchronized from the primary (synced false)"
		f.Fix = "drop it on the standby if it is not in use, so the primary's slot can be synchronized"
	case si.Temporary:
		f.Verdict, f.Found = Warn, "synchronized, but not sync-ready yet (temporary): it would be dropped at a promotion"
		f.Fix = "let chronicler run confirm changes on the primary: the copy becomes sync-ready once the primary's slot moves past what the standby reserved"
	default:
		f.Found = "synchronized from the primary, sync-ready, confirmed_flush_lsn " + si.Confirmed.String() + ": capture resumes from here after a promotion"
	}
	return append(out, f)
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// ReadFailover reads what [CheckFailover] needs of the server, on top of
// srv (as [Conn.ReadServer] read it).
func (c *Conn) ReadFailover(ctx context.Context, srv Server) (Failover, error) {
	return readFailover(ctx, c.pg, srv, connectedTo(c.pg))
}

// connectedTo names the server conn is connected to (of a multi-host URL's
// hosts, the one that answered) and its database: address/database.
func connectedTo(conn *pgx.Conn) string {
	addr := "unknown"
	if nc := conn.PgConn().Conn(); nc != nil && nc.RemoteAddr() != nil {
		addr = nc.RemoteAddr().String()
	}
	return addr + "/" + conn.Config().Database
}

// checkFailover applies CheckFailover at a session's start: it refuses
// postgres.failover_slot on a server without failover slots and a
// synchronized_standby_slots capture would wait on forever, and waits on a
// standby (a transient *StandbyError).
func (s *Source) checkFailover(ctx context.Context, conn *pgx.Conn, srv Server, si SlotInfo, exists bool) error {
	fo, err := readFailover(ctx, conn, srv, connectedTo(conn))
	if err != nil {
		return err
	}
	return s.refuse(CheckFailover(fo, si, exists, s.cfg.FailoverSlot))
}

// slotOptions are the CREATE_REPLICATION_SLOT options: the snapshot
// exported or not, and FAILOVER with postgres.failover_slot. FAILOVER exists
// only in the parenthesized option syntax (Postgres 15+; FAILOVER 17+),
// which pglogrepl writes where the snapshot action goes.
func (s *Source) slotOptions(export bool) pglogrepl.CreateReplicationSlotOptions {
	o := pglogrepl.CreateReplicationSlotOptions{Mode: pglogrepl.LogicalReplication, SnapshotAction: "NOEXPORT_SNAPSHOT"}
	if export {
		o.SnapshotAction = "EXPORT_SNAPSHOT"
	}
	if s.cfg.FailoverSlot {
		snap := "nothing"
		if export {
			snap = "export"
		}
		o.SnapshotAction = fmt.Sprintf("(SNAPSHOT '%s', FAILOVER true)", snap)
	}
	return o
}

// needsFailover reports whether the existing slot must be switched to
// failover (postgres.failover_slot set, the slot's flag off).
func (s *Source) needsFailover(si SlotInfo, exists bool) bool {
	return s.cfg.FailoverSlot && exists && si.Failover != nil && !*si.Failover
}

// failoverStatement turns failover on for the existing slot.
func (s *Source) failoverStatement() string {
	return "ALTER_REPLICATION_SLOT " + pgx.Identifier{s.cfg.Slot}.Sanitize() + " (FAILOVER true)"
}

// enableFailover runs failoverStatement on the replication connection when
// needsFailover (the slot is not in use: the checks refused a held one).
func (s *Source) enableFailover(ctx context.Context, repl *pgconn.PgConn, si SlotInfo, exists bool) error {
	if !s.needsFailover(si, exists) {
		return nil
	}
	s.ddl(s.failoverStatement())
	if _, err := repl.Exec(ctx, s.failoverStatement()).ReadAll(); err != nil {
		return fmt.Errorf("turning failover on for replication slot %q: %w", s.cfg.Slot, err)
	}
	return nil
}
