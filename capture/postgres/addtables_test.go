package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/chronicler-dev/chronicler/mapping/contract"
	"github.com/chronicler-dev/chronicler/test/stack"
)

// publishedTables reads pg_publication_tables of pub, sorted.
func publishedTables(t *testing.T, conn *pgx.Conn, pub string) []string {
	t.Helper()
	rows, err := conn.Query(context.Background(), "SELECT schemaname || '.' || tablename FROM pg_publication_tables WHERE pubname = $1 ORDER BY 1", pub)
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// streamingA starts Postgres with tables a and b (and more SQL), runs a
// Source capturing a (no snapshot, chunks of 20 rows) until it streams, and
// returns it with a connection.
func streamingA(t *testing.T, more string, sink *memSink) (*stack.Postgres, *running, *pgx.Conn) {
	t.Helper()
	pg := stack.StartPostgres(t)
	pg.Exec(t, "postgres", "CREATE TABLE a (id int PRIMARY KEY, v text); CREATE TABLE b (id int PRIMARY KEY, v text); "+more)
	cfg := baseConfig(pg, "postgres", "a")
	cfg.SnapshotMode, cfg.SnapshotChunkRows = SnapshotNever, 20
	r := startSource(t, cfg, sink)
	waitFor(t, 30*time.Second, "streaming", func() bool { return r.src.Phase() == PhaseStreaming })
	return pg, r, pg.Connect(t, "postgres")
}

// TestAddTablesRefused: a running Source refuses to add a table without a
// usable replica identity (naming it and the fix; the publication stays
// as it was and the application's UPDATE on the table still works), a new
// table the publication lacks while add_missing_tables is off (with the
// ALTER PUBLICATION statement), a repeated table, and a table removed
// from the list.
func TestAddTablesRefused(t *testing.T) {
	t.Parallel()
	_, r, conn := streamingA(t, `CREATE TABLE nokey (id int, v text); INSERT INTO nokey VALUES (1, 'x');`, newMemSink())
	ctx := t.Context()
	unchanged := func(t *testing.T) {
		t.Helper()
		if got := publishedTables(t, conn, "chron_pub"); !slices.Equal(got, []string{"public.a"}) {
			t.Errorf("publication tables %v; want [public.a] (unchanged)", got)
		}
		if got := r.src.Tables(); !slices.Equal(got, []string{"public.a"}) {
			t.Errorf("captured %v; want [public.a]", got)
		}
	}

	t.Run("no replica identity", func(t *testing.T) {
		_, err := r.src.PrepareTables(ctx, []string{"a", "nokey"}, true)
		var ae *TableAddError
		var ri *ReplicaIdentityError
		if !errors.As(err, &ae) || ae.Table != "public.nokey" || !errors.As(err, &ri) || !strings.Contains(ae.Fix, `ALTER TABLE "public"."nokey" REPLICA IDENTITY FULL`) {
			t.Fatalf("PrepareTables = %v; want a TableAddError for public.nokey with a ReplicaIdentityError and the REPLICA IDENTITY FULL fix", err)
		}
		unchanged(t)
		if tag, err := conn.Exec(ctx, "UPDATE nokey SET v = 'y' WHERE id = 1"); err != nil || tag.RowsAffected() != 1 {
			t.Fatalf("the application's UPDATE on nokey after the refusal: %v, %v", tag, err)
		}
	})
	t.Run("publication lacks it, add_missing_tables off", func(t *testing.T) {
		_, err := r.src.PrepareTables(ctx, []string{"a", "b"}, false)
		var ae *TableAddError
		var me *PublicationMismatchError
		if !errors.As(err, &ae) || !errors.As(err, &me) || !slices.Equal(me.Missing, []string{"public.b"}) ||
			!strings.Contains(ae.Fix, `ALTER PUBLICATION "chron_pub" ADD TABLE "public"."b";`) || !strings.Contains(ae.Fix, "postgres.add_missing_tables: true") {
			t.Fatalf("PrepareTables = %v; want a TableAddError with the ALTER PUBLICATION statement and add_missing_tables", err)
		}
		unchanged(t)
	})
	t.Run("repeated", func(t *testing.T) {
		_, err := r.src.PrepareTables(ctx, []string{"a", "b", "public.b"}, true)
		var ce *ConfigError
		if !errors.As(err, &ce) || ce.Field != "tables[2]" {
			t.Fatalf("PrepareTables = %v; want a ConfigError for tables[2]", err)
		}
		unchanged(t)
	})
	t.Run("removed", func(t *testing.T) {
		_, err := r.src.PrepareTables(ctx, []string{"b"}, true)
		var re *TablesRemovedError
		if !errors.As(err, &re) || !slices.Equal(re.Tables, []string{"public.a"}) || !strings.Contains(err.Error(), "restart") {
			t.Fatalf("PrepareTables = %v; want a TablesRemovedError for public.a that says to restart", err)
		}
		unchanged(t)
	})
}

// TestAddTablesStreamsAndSnapshots: a running Source adds a table with
// add_missing_tables: the publication gets it, the captured set and the
// catalogue grow, the table's existing rows arrive as snapshot rows of the
// requested snapshot, and its later changes are streamed.
func TestAddTablesStreamsAndSnapshots(t *testing.T) {
	t.Parallel()
	sink := newMemSink()
	pg, r, conn := streamingA(t, `INSERT INTO b SELECT g, 'old' FROM generate_series(1, 50) g;`, sink)
	ctx := t.Context()
	pg.Exec(t, "postgres", "UPDATE b SET v = 'before' WHERE id = 1") // not published yet

	add, err := r.src.PrepareTables(ctx, []string{"a", "b"}, true)
	if err != nil {
		t.Fatal(err)
	}
	if names := add.Names(); !slices.Equal(names, []string{"public.b"}) || !slices.Equal(add.Publish, []string{"public.b"}) || len(add.Tables[0].Columns) != 2 {
		t.Fatalf("addition %v (publish %v, columns %v); want public.b, described", names, add.Publish, add.Tables)
	}
	id, err := r.src.AddTables(ctx, add, []string{"public.b"})
	if err != nil || id == "" {
		t.Fatalf("AddTables = %q, %v", id, err)
	}
	if got := publishedTables(t, conn, "chron_pub"); !slices.Equal(got, []string{"public.a", "public.b"}) {
		t.Errorf("publication tables %v; want public.a, public.b", got)
	}
	if got := r.src.Tables(); !slices.Equal(got, []string{"public.a", "public.b"}) {
		t.Errorf("captured %v; want public.a, public.b", got)
	}
	cat, err := r.src.Catalog(ctx)
	if _, ok := cat["public.b"]; err != nil || !ok {
		t.Errorf("Catalog = %v, %v; want public.b in it", cat, err)
	}
	pg.Exec(t, "postgres", "UPDATE b SET v = 'after' WHERE id = 2")

	snapRows, updates := map[string]int{}, map[string]string{}
	waitFor(t, 30*time.Second, "the snapshot rows and the update of b", func() bool {
		snapRows, updates = map[string]int{}, map[string]string{}
		for _, c := range sink.changes() {
			if c.Table != "b" {
				continue
			}
			k := c.New["id"]
			switch c.Op {
			case contract.OpSnapshot:
				snapRows[str(k)]++
			case contract.OpUpdate:
				updates[str(k)] = str(c.New["v"])
			}
		}
		return len(snapRows) == 50 && len(updates) == 1
	})
	for k, n := range snapRows {
		if n != 1 {
			t.Errorf("row %s: %d snapshot rows; want 1", k, n)
		}
	}
	if updates["2"] != "after" || updates["1"] != "" {
		t.Errorf("streamed updates of b %v; want only id 2's (id 1's was committed before the ALTER)", updates)
	}
}

func str(v any) string {
	if v == nil {
		return ""
	}
	return fmt.Sprint(v)
}
