package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/chronicler-dev/chronicler/capture/retry"
)

// Footprint is what Chronicler holds in a database for one slot: the
// replication slot (which keeps WAL until it is confirmed or dropped) and
// the publication.
type Footprint struct {
	Slot        string
	SlotExists  bool
	SlotActive  bool
	ActivePID   int32 // the walsender holding the slot, when active
	Publication string
	PubExists   bool
	// LockHolders are the backends holding one of the HA advisory locks
	// asked about (a running instance, active or standby-turned-active).
	LockHolders []int32
}

// Statements are the SQL that removes f's objects, in order: the
// publication first (nothing reads it once the slot is gone), then the
// slot.
func (f Footprint) Statements() []string {
	var s []string
	if f.PubExists {
		s = append(s, "DROP PUBLICATION "+pgx.Identifier{f.Publication}.Sanitize())
	}
	if f.SlotExists {
		s = append(s, "SELECT pg_drop_replication_slot("+quoteLiteral(f.Slot)+")")
	}
	return s
}

// Inspect connects to url and reads slot, publication pub and who holds the
// advisory locks lockIDs (the HA locks of the instances of this slot).
func Inspect(ctx context.Context, url, slot, pub string, lockIDs []int64) (Footprint, error) {
	conn, _, err := dial(ctx, ConnSettings{URL: url})
	if err != nil {
		return Footprint{Slot: slot, Publication: pub}, err
	}
	defer conn.Close(context.Background())
	f, err := readFootprint(ctx, conn, slot, pub)
	if err != nil {
		return f, err
	}
	for _, id := range lockIDs {
		rows, err := conn.Query(ctx, `SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 1
			AND ((classid::bigint << 32) | objid::bigint) = $1`, id)
		if err != nil {
			return f, fmt.Errorf("reading pg_locks: %w", err)
		}
		pids, err := pgx.CollectRows(rows, pgx.RowTo[int32])
		if err != nil {
			return f, fmt.Errorf("reading pg_locks: %w", err)
		}
		f.LockHolders = append(f.LockHolders, pids...)
	}
	return f, nil
}

// readFootprint reads slot (with the one slot reader) and publication pub
// from the database conn is connected to.
func readFootprint(ctx context.Context, conn *pgx.Conn, slot, pub string) (Footprint, error) {
	f := Footprint{Slot: slot, Publication: pub}
	si, exists, err := readSlot(ctx, conn, slot)
	if err != nil {
		return f, err
	}
	f.SlotExists, f.SlotActive = exists, si.Active
	if si.ActivePID != nil {
		f.ActivePID = *si.ActivePID
	}
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_publication WHERE pubname = $1)", pub).Scan(&f.PubExists); err != nil {
		return f, fmt.Errorf("reading publication %s: %w", pub, err)
	}
	return f, nil
}

// ErrSlotActive: the slot is held by a walsender (a running instance).
var ErrSlotActive = errors.New("the replication slot is active (a running instance holds it)")

// Teardown connects to url and drops f's publication and slot
// (Statements), logging each statement. It waits up to wait for the slot to
// be released by a walsender that is still exiting (a stopped instance's),
// and refuses an active slot after that with ErrSlotActive. It returns the
// statements run.
func Teardown(ctx context.Context, url string, f Footprint, wait time.Duration, log *slog.Logger) ([]string, error) {
	conn, _, err := dial(ctx, ConnSettings{URL: url})
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.Background())
	return teardown(ctx, conn, f, wait, log)
}

func teardown(ctx context.Context, conn *pgx.Conn, f Footprint, wait time.Duration, log *slog.Logger) ([]string, error) {
	if f.SlotExists {
		var err error
		if f, err = waitInactive(ctx, conn, f, wait); err != nil {
			return nil, err
		}
	}
	var done []string
	for _, stmt := range f.Statements() {
		log.Info("teardown: running", "sql", stmt)
		if _, err := conn.Exec(ctx, stmt); err != nil {
			return done, fmt.Errorf("%s: %w", stmt, err)
		}
		done = append(done, stmt)
	}
	return done, nil
}

func waitInactive(ctx context.Context, conn *pgx.Conn, f Footprint, wait time.Duration) (Footprint, error) {
	deadline := time.Now().Add(wait)
	for f.SlotActive {
		if time.Now().After(deadline) {
			return f, fmt.Errorf("slot %s (walsender pid %d): %w; stop the instance first", f.Slot, f.ActivePID, ErrSlotActive)
		}
		if !retry.Sleep(ctx, 50*time.Millisecond) {
			return f, ctx.Err()
		}
		var err error
		if f, err = readFootprint(ctx, conn, f.Slot, f.Publication); err != nil {
			return f, err
		}
	}
	return f, nil
}

// quoteLiteral quotes s as an SQL string literal.
func quoteLiteral(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}
