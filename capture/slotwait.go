package capture

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/chronicler-dev/chronicler/capture/retry"
)

// waitSlotFree waits (up to limit) until no process holds the replication
// slot. After a crash or SIGKILL of the previous instance, Postgres keeps
// the slot active until its walsender notices the closed connection: at
// once when the connection was reset, up to wal_sender_timeout when the
// host vanished. capture/postgres treats a busy slot at start-up as fatal, so
// the restart waits here instead. A slot that does not exist yet is free.
// When the limit passes, it returns nil and lets the source report the busy
// slot (with the holder's PID).
func waitSlotFree(ctx context.Context, url, slot string, limit time.Duration, log *slog.Logger) error {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return fmt.Errorf("connecting to the captured database to check slot %s: %w", slot, err)
	}
	defer conn.Close(context.Background())
	deadline := time.Now().Add(limit)
	logged := false
	for {
		var pid *int32
		err := conn.QueryRow(ctx, "SELECT active_pid FROM pg_replication_slots WHERE slot_name = $1", slot).Scan(&pid)
		if errors.Is(err, pgx.ErrNoRows) || (err == nil && pid == nil) {
			if logged {
				log.Info("replication slot released", "slot", slot)
			}
			return nil
		}
		if err != nil {
			return fmt.Errorf("checking replication slot %s: %w", slot, err)
		}
		if time.Now().After(deadline) {
			return nil
		}
		if !logged {
			log.Info("replication slot is held by another process; waiting for it to be released (a previous instance's walsender?)", "slot", slot, "pid", *pid, "limit", limit)
			logged = true
		}
		if !retry.Sleep(ctx, 100*time.Millisecond) {
			return nil
		}
	}
}
