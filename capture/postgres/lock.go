package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// LockSession is an ordinary connection that holds session-level advisory
// locks: the HA election's (cmd/chronicler/internal/ha). The lock lives as
// long as the session, so set ConnSettings.Keepalive for the server to end
// the session (and free the lock) of a vanished host. Not safe for
// concurrent use.
type LockSession struct {
	conn *pgx.Conn
}

// OpenLockSession opens a LockSession; errors as [Connect]'s.
func OpenLockSession(ctx context.Context, cs ConnSettings) (*LockSession, error) {
	conn, _, err := dial(ctx, cs)
	if err != nil {
		return nil, err
	}
	return &LockSession{conn: conn}, nil
}

// TryLock takes the advisory lock id if it is free (pg_try_advisory_lock)
// and reports whether this session holds it.
func (l *LockSession) TryLock(ctx context.Context, id int64) (bool, error) {
	var got bool
	err := l.conn.QueryRow(ctx, "SELECT pg_try_advisory_lock($1)", id).Scan(&got)
	return got, err
}

// Unlock releases the advisory lock id.
func (l *LockSession) Unlock(ctx context.Context, id int64) error {
	_, err := l.conn.Exec(ctx, "SELECT pg_advisory_unlock($1)", id)
	return err
}

// Ping checks that the session still works.
func (l *LockSession) Ping(ctx context.Context) error { return l.conn.Ping(ctx) }

// Close ends the session, and with it every lock it holds.
func (l *LockSession) Close(ctx context.Context) error { return l.conn.Close(ctx) }

// TerminateSlotHolder terminates the process streaming from slot if it is
// a capture session ([CaptureApplicationName]): a previous instance's
// leftover walsender. Any other holder is left alone. It returns the PID
// found (0: the slot is free, absent, or held by someone else) and whether
// pg_terminate_backend succeeded.
func (l *LockSession) TerminateSlotHolder(ctx context.Context, slot string) (pid int32, terminated bool, err error) {
	si, exists, err := readSlot(ctx, l.conn, slot)
	if err != nil || !exists || si.ActivePID == nil || si.ApplicationName != CaptureApplicationName {
		return 0, false, err
	}
	// The application name is checked again with the termination: the
	// walsender may have ended, and its PID been reused, since the read.
	err = l.conn.QueryRow(ctx, `SELECT coalesce(bool_or(pg_terminate_backend(pid)), false)
FROM pg_stat_activity WHERE pid = $1 AND application_name = $2`, *si.ActivePID, CaptureApplicationName).Scan(&terminated)
	if err != nil {
		return *si.ActivePID, false, fmt.Errorf("terminating process %d holding slot %s: %w", *si.ActivePID, slot, err)
	}
	return *si.ActivePID, terminated, nil
}

// TerminateSlotHolderAgain signals process pid again if it still holds
// slot as a capture session, and reports whether it still held it. A
// terminated walsender takes a moment to exit; one blocked writing to a
// client that does not read (a frozen process) may need the signal again.
// Only pid is signalled: once the slot is free, or held by another process
// (this instance's own walsender), nothing is.
func (l *LockSession) TerminateSlotHolderAgain(ctx context.Context, slot string, pid int32) (held bool, err error) {
	var n int
	err = l.conn.QueryRow(ctx, `SELECT count(pg_terminate_backend(s.active_pid))::int
FROM pg_replication_slots s JOIN pg_stat_activity a ON a.pid = s.active_pid
WHERE s.slot_name = $1 AND s.active_pid = $2 AND a.application_name = $3`, slot, pid, CaptureApplicationName).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("terminating process %d holding slot %s: %w", pid, slot, err)
	}
	return n > 0, nil
}

// LockHolder is the session holding an advisory lock, and how long ago it
// last ran a statement (its pg_stat_activity.state_change).
type LockHolder struct {
	PID             int32
	ApplicationName string
	Idle            time.Duration
}

// LockHolder returns the session holding advisory lock id; ok is false when
// no session holds it.
func (l *LockSession) LockHolder(ctx context.Context, id int64) (h LockHolder, ok bool, err error) {
	var idle float64
	err = l.conn.QueryRow(ctx, `SELECT a.pid, coalesce(a.application_name, ''), extract(epoch FROM now() - a.state_change)::float8
FROM pg_locks k JOIN pg_stat_activity a ON a.pid = k.pid
WHERE k.locktype = 'advisory' AND k.granted AND k.objsubid = 1 AND ((k.classid::bigint << 32) | k.objid::bigint) = $1`, id).Scan(&h.PID, &h.ApplicationName, &idle)
	if errors.Is(err, pgx.ErrNoRows) {
		return LockHolder{}, false, nil
	}
	if err != nil {
		return LockHolder{}, false, fmt.Errorf("reading the holder of advisory lock %d: %w", id, err)
	}
	h.Idle = time.Duration(idle * float64(time.Second))
	return h, true, nil
}

// TerminateLockHolder ends session pid if it still holds advisory lock id
// and runs as applicationName: the lock is free once it is gone. It reports
// whether pg_terminate_backend succeeded.
func (l *LockSession) TerminateLockHolder(ctx context.Context, id int64, pid int32, applicationName string) (bool, error) {
	var done bool
	err := l.conn.QueryRow(ctx, `SELECT coalesce(bool_or(pg_terminate_backend(a.pid)), false)
FROM pg_locks k JOIN pg_stat_activity a ON a.pid = k.pid
WHERE a.pid = $1 AND a.application_name = $2 AND k.locktype = 'advisory' AND k.granted AND k.objsubid = 1
  AND ((k.classid::bigint << 32) | k.objid::bigint) = $3`, pid, applicationName, id).Scan(&done)
	if err != nil {
		return false, fmt.Errorf("terminating the lock holder %d: %w", pid, err)
	}
	return done, nil
}
