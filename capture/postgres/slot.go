package postgres

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/chronicler-dev/chronicler/capture/retry"
	"github.com/chronicler-dev/chronicler/mapping/contract"
)

// SlotInfo is a replication slot as the server reports it, with the
// server's WAL position and slot count read in the same query.
type SlotInfo struct {
	Name string
	// Current is the server's WAL position at the read: pg_current_wal_lsn(),
	// or on a standby pg_last_wal_replay_lsn().
	Current contract.LSN
	// ServerSlots counts every slot on the server (this one included).
	ServerSlots int

	// The slot's row of pg_replication_slots (zero when it does not exist).
	Plugin    string // "" for a physical slot
	Database  string // "" for a physical slot
	Temporary bool
	Active    bool
	ActivePID *int32 // the process streaming from it, nil when none
	WALStatus string // "" when unknown
	// SafeWALSize is pg_replication_slots.safe_wal_size: the bytes of WAL
	// that can still be written before the slot is in danger of losing
	// what it needs; nil when unlimited (max_slot_wal_keep_size -1).
	SafeWALSize *int64
	// Confirmed (confirmed_flush_lsn) and Restart (restart_lsn) are 0 when
	// the server reports none (NULL).
	Confirmed, Restart contract.LSN
	// Xmin and CatalogXmin are the slot's xmin and catalog_xmin ("" when
	// NULL). A physical slot streamed by a standby with
	// hot_standby_feedback = on reports them.
	Xmin, CatalogXmin string
	// Failover and Synced are the slot's failover and synced columns
	// (Postgres 17+); nil when the server has none or the slot does not
	// exist.
	Failover, Synced *bool

	// The active process, from pg_stat_activity and pg_stat_replication:
	// "" and nil when inactive or not visible to the role.
	ApplicationName string
	ClientAddr      string
	FlushLag        *time.Duration // the walsender's flush_lag
}

// Lag is Current minus Confirmed: WAL written and not yet confirmed by the
// slot's consumer; ok is false when the slot reports no confirmed position.
func (si SlotInfo) Lag() (bytes int64, ok bool) {
	if si.Confirmed == 0 {
		return 0, false
	}
	return int64(si.Current) - int64(si.Confirmed), true
}

// Retained is Current minus Restart: the WAL the server keeps for the
// slot; ok is false when the slot reports no restart position.
func (si SlotInfo) Retained() (bytes int64, ok bool) {
	if si.Restart == 0 {
		return 0, false
	}
	return int64(si.Current) - int64(si.Restart), true
}

// readSlot is the one query of pg_replication_slots. exists is false when
// there is no slot of that name; Name, Current and ServerSlots are filled
// either way.
func readSlot(ctx context.Context, q querier, name string) (SlotInfo, bool, error) {
	si := SlotInfo{Name: name}
	var (
		exists                              bool
		current, plugin, db, walStatus      *string
		confirmed, restart, appName, client *string
		xmin, catalogXmin                   *string
		flushLag                            *float64
	)
	var safe *int64
	err := q.QueryRow(ctx, `
WITH slots AS (SELECT * FROM pg_replication_slots)
SELECT (CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END)::text,
       (SELECT count(*) FROM slots)::int, s.slot_name IS NOT NULL,
       s.plugin, s.database, coalesce(s.temporary, false), coalesce(s.active, false), s.active_pid, s.wal_status,
       s.confirmed_flush_lsn::text, s.restart_lsn::text,
       a.application_name, a.client_addr::text, extract(epoch FROM r.flush_lag)::float8, s.safe_wal_size,
       s.xmin::text, s.catalog_xmin::text,
       (to_jsonb(s) ->> 'failover')::bool, (to_jsonb(s) ->> 'synced')::bool -- columns of Postgres 17+
FROM (SELECT 1) one
LEFT JOIN slots s ON s.slot_name = $1
LEFT JOIN pg_stat_activity a ON a.pid = s.active_pid
LEFT JOIN pg_stat_replication r ON r.pid = s.active_pid`, name).Scan(
		&current, &si.ServerSlots, &exists, &plugin, &db, &si.Temporary, &si.Active, &si.ActivePID, &walStatus,
		&confirmed, &restart, &appName, &client, &flushLag, &safe, &xmin, &catalogXmin, &si.Failover, &si.Synced)
	if err != nil {
		return si, false, fmt.Errorf("reading replication slot %q (pg_replication_slots): %w", name, err)
	}
	for _, p := range []struct {
		dst *contract.LSN
		src *string
	}{{&si.Current, current}, {&si.Confirmed, confirmed}, {&si.Restart, restart}} {
		if p.src != nil {
			if *p.dst, err = contract.ParseLSN(*p.src); err != nil {
				return si, false, fmt.Errorf("reading replication slot %q: %w", name, err)
			}
		}
	}
	str := func(p *string) string {
		if p == nil {
			return ""
		}
		return *p
	}
	si.Plugin, si.Database, si.WALStatus, si.SafeWALSize = str(plugin), str(db), str(walStatus), safe
	si.ApplicationName, si.ClientAddr = str(appName), str(client)
	si.Xmin, si.CatalogXmin = str(xmin), str(catalogXmin)
	if flushLag != nil {
		d := time.Duration(*flushLag * float64(time.Second))
		si.FlushLag = &d
	}
	return si, exists, nil
}

// CheckSlot applies capture's acceptance rules to the slot as read
// (exists: [Conn.ReadSlot]'s result) in database: absent (capture creates
// it), logical with pgoutput, of this database, not lost, not streamed by
// another process (a Warn that stops this start), and warns when WAL it
// needs is close to removal. With lagWarnBytes > 0 it adds a lag finding
// for a usable slot, a Warn above lagWarnBytes.
func CheckSlot(si SlotInfo, exists bool, database string, lagWarnBytes int64) []Finding {
	f := Finding{Check: "slot " + si.Name}
	drop := fmt.Sprintf("SELECT pg_drop_replication_slot('%s'); (its position is lost: chronicler run creates it again and takes a new snapshot)", si.Name)
	switch {
	case !exists:
		f.Found = "absent: chronicler run creates it (and takes the initial snapshot per snapshot.mode)"
		return []Finding{f}
	case si.Plugin != "pgoutput":
		f.Found = fmt.Sprintf("exists, but is a physical slot or uses plugin %q, not pgoutput", si.Plugin)
		f.Verdict, f.Fix = Fail, "set postgres.slot to another name, or "+drop
		f.Err = &SlotMismatchError{Slot: si.Name, Reason: fmt.Sprintf("it is a physical slot or uses plugin %q, not pgoutput", si.Plugin)}
		return []Finding{f}
	case si.Database != database:
		f.Found = fmt.Sprintf("exists, but belongs to database %q, not %q", si.Database, database)
		f.Verdict, f.Fix = Fail, "set postgres.slot to another name, or "+drop
		f.Err = &SlotMismatchError{Slot: si.Name, Reason: fmt.Sprintf("it belongs to database %q, not %q", si.Database, database)}
		return []Finding{f}
	case si.WALStatus == "lost":
		f.Found = "wal_status lost: Postgres removed WAL the slot still needed; changes were lost"
		f.Verdict, f.Err = Fail, &SlotLostError{Slot: si.Name}
		f.Fix = drop + " Then raise max_slot_wal_keep_size so a stopped chronicler does not lose its slot again"
		return []Finding{f}
	case si.ActivePID != nil:
		who := fmt.Sprintf("pid %d", *si.ActivePID)
		if si.ApplicationName != "" {
			who += ", application_name " + si.ApplicationName
		}
		if si.ClientAddr != "" {
			who += ", from " + si.ClientAddr
		}
		f.Found = fmt.Sprintf("pgoutput, active: held by %s (another chronicler instance, or the active HA peer)", who)
		f.Fix = fmt.Sprintf("nothing if it is the active HA peer (this instance would wait as standby); else stop the other instance, or SELECT pg_terminate_backend(%d);", *si.ActivePID)
		f.Verdict, f.Err = Warn, &SlotInUseError{Slot: si.Name, PID: int(*si.ActivePID)}
	default:
		f.Found = "pgoutput, inactive, confirmed_flush_lsn " + si.Confirmed.String()
		if si.WALStatus != "" && si.WALStatus != "reserved" {
			f.Found += ", wal_status " + si.WALStatus + ": WAL it needs is close to being removed"
			f.Verdict, f.Fix = Warn, "start chronicler run soon, or raise max_slot_wal_keep_size"
		}
	}
	out := []Finding{f}
	if lag, ok := si.Lag(); ok && lagWarnBytes > 0 {
		l := Finding{Check: "slot " + si.Name + " lag", Found: fmt.Sprintf("%d bytes of WAL not yet confirmed (pg_current_wal_lsn - confirmed_flush_lsn)", lag)}
		if lag > lagWarnBytes {
			l.Found += fmt.Sprintf(", above %d", lagWarnBytes)
			l.Verdict = Warn
			l.Fix = "run chronicler to consume it; if the slot is abandoned, " + drop + ": Postgres keeps this WAL on disk until then"
		}
		out = append(out, l)
	}
	return out
}

// CheckRetainedWAL reports the WAL the server keeps for an existing slot,
// and how much more may be written before the slot is in danger of losing
// it (a Warn when it is already losing it).
func CheckRetainedWAL(si SlotInfo) Finding {
	f := Finding{Check: "slot " + si.Name + " retained WAL"}
	ret, ok := si.Retained()
	if !ok {
		f.Found = "unknown: the slot reports no restart_lsn"
		return f
	}
	f.Found = fmt.Sprintf("%d bytes kept for the slot (pg_current_wal_lsn - restart_lsn), wal_status %s", ret, si.WALStatus)
	switch {
	case si.SafeWALSize == nil:
		f.Found += "; no bound (max_slot_wal_keep_size -1)"
	case *si.SafeWALSize <= 0:
		f.Found += fmt.Sprintf("; safe_wal_size %d: the slot is losing WAL it needs", *si.SafeWALSize)
		f.Verdict, f.Fix = Warn, "run chronicler to consume it now, or raise max_slot_wal_keep_size"
	default:
		f.Found += fmt.Sprintf("; %d more bytes before the slot is in danger (safe_wal_size)", *si.SafeWALSize)
	}
	return f
}

// WaitSlotFree waits (up to limit) until no process holds the Source's
// slot. After a crash or SIGKILL of the previous instance, Postgres keeps
// the slot active until its walsender notices the closed connection: at
// once when the connection was reset, up to wal_sender_timeout when the
// host vanished. [Source.Run] treats a busy slot at start-up as fatal, so a
// restart waits here first. A slot that does not exist yet is free. When
// the limit passes, it returns nil and lets Run report the busy slot (with
// the holder's PID); so it does when ctx ends.
func (s *Source) WaitSlotFree(ctx context.Context, limit time.Duration) error {
	conn, err := s.connect(ctx)
	if err != nil {
		return fmt.Errorf("checking slot %s: %w", s.cfg.Slot, err)
	}
	defer conn.Close(context.Background())
	deadline := time.Now().Add(limit)
	logged := false
	for {
		si, exists, err := readSlot(ctx, conn, s.cfg.Slot)
		switch {
		case err != nil:
			return err
		case !exists || si.ActivePID == nil:
			if logged {
				s.log.Info("replication slot released", "slot", s.cfg.Slot)
			}
			return nil
		case time.Now().After(deadline):
			return nil
		case !logged:
			s.log.Info("replication slot is held by another process; waiting for it to be released (a previous instance's walsender?)",
				"slot", s.cfg.Slot, "pid", *si.ActivePID, "application_name", si.ApplicationName, "limit", limit)
			logged = true
		}
		if !retry.Sleep(ctx, 100*time.Millisecond) { // poll interval
			return nil
		}
	}
}

// CheckSlotGap is the finding on a slot that does not exist although
// capture streamed through it (evidence says how that is known: a
// completed snapshot, progress in the store, this process's
// confirmations): the changes committed since it was dropped are in no
// slot. ok is false without evidence (a slot never used: capture creates
// it). Under MissingSlotRefuse it is a Fail with a *SlotMissingError, under
// MissingSlotResnapshot a Warn: capture creates the slot again and takes a
// new snapshot.
func CheckSlotGap(slot string, evidence []string, policy MissingSlotPolicy) (Finding, bool) {
	if len(evidence) == 0 {
		return Finding{}, false
	}
	f := Finding{Check: "slot " + slot + " history"}
	if policy == MissingSlotResnapshot {
		f.Verdict = Warn
		f.Found = "absent, but capture streamed through it (" + strings.Join(evidence, "; ") + "): chronicler run creates it again and takes a new snapshot " +
			"(postgres.on_missing_slot: resnapshot); the changes committed while it was missing are not captured as changes"
		f.Fix = "remove postgres.on_missing_slot: resnapshot once the new slot exists, so a later drop stops capture again"
		return f, true
	}
	err := &SlotMissingError{Slot: slot, Evidence: evidence}
	f.Verdict, f.Err = Fail, err
	f.Found = "absent, but capture streamed through it (" + strings.Join(evidence, "; ") + "): it was dropped, and the changes committed since are in no slot; chronicler run refuses to start"
	f.Fix = "accept the gap and take a new snapshot: set postgres.on_missing_slot: resnapshot for one start"
	return f, true
}
