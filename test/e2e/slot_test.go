package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgconn"
)

// TestStartWaitsForABusySlot: another process holds the slot when
// chronicler starts (as a killed instance's walsender can); chronicler
// waits instead of failing, captures once the slot is free, and the store
// matches the database.
func TestStartWaitsForABusySlot(t *testing.T) {
	e := newEnv(t)
	e.startChronicler()
	e.waitLog("capture: streaming")
	e.stopChronicler()

	ctx := context.Background()
	conn, err := pgconn.Connect(ctx, e.pg.ReplicationURL("app"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if err := pglogrepl.StartReplication(ctx, conn, slot, 0, pglogrepl.StartReplicationOptions{
		PluginArgs: []string{"proto_version '1'", "publication_names 'chaos'"},
	}); err != nil {
		t.Fatalf("holding the slot: %v", err)
	}
	e.startChronicler()
	e.waitLog("replication slot is held by another process")
	if err := e.workload(ctx, 500, 2); err != nil {
		t.Fatal(err)
	}
	e.checkRunning()
	conn.Close(ctx) // release the slot
	e.waitLog("capture: streaming")
	e.waitCaughtUp(60 * time.Second)
	e.stopChronicler()
	e.verify(e.store.client(t))
}
