package postgres

import (
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/chronicler-dev/chronicler/test/stack"
)

// TestEstimateRowsCountsOnlySmallTables: a snapshot's estimate counts a
// table never analyzed only while it is small (countBytesMax, a partitioned
// table's partitions summed); a larger one gets the planner's estimate,
// never a scan of the whole table in one statement (its MVCC snapshot would
// hold back vacuum for as long): pg_stat_user_tables shows no sequential
// scan of it.
func TestEstimateRowsCountsOnlySmallTables(t *testing.T) {
	t.Parallel()
	pg := stack.StartPostgres(t)
	pg.Exec(t, "postgres", `CREATE TABLE small (id bigint, v text) WITH (autovacuum_enabled = false);
CREATE TABLE big (id bigint, v text) WITH (autovacuum_enabled = false);
CREATE TABLE parted (id bigint, v text) PARTITION BY RANGE (id);
CREATE TABLE parted1 PARTITION OF parted FOR VALUES FROM (1) TO (1000000) WITH (autovacuum_enabled = false);
INSERT INTO small SELECT g, 'v0' FROM generate_series(1, 1234) g;
INSERT INTO big SELECT g, 'v0' FROM generate_series(1, 300000) g;
INSERT INTO parted SELECT g, 'v0' FROM generate_series(1, 300000) g;`)
	admin := pg.Connect(t, "postgres")
	var size int64
	if err := admin.QueryRow(t.Context(), "SELECT least(pg_relation_size('big'), pg_relation_size('parted1'))").Scan(&size); err != nil || size <= countBytesMax {
		t.Fatalf("big and parted1 are at least %d bytes (%v); the test needs more than %d", size, err, countBytesMax)
	}
	src, err := New(baseConfig(pg, "postgres", "small", "big", "parted"), testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(t.Context(), pg.DatabaseURL("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	if n, err := src.estimateRows(t.Context(), conn, []string{"public.small"}, ""); err != nil || n != 1234 {
		t.Errorf("estimate of small, never analyzed: %d (%v); want its count, 1234", n, err)
	}
	for _, table := range []string{"public.big", "public.parted"} {
		if n, err := src.estimateRows(t.Context(), conn, []string{table}, ""); err != nil || n < 100_000 || n > 900_000 {
			t.Errorf("estimate of %s, never analyzed: %d (%v); want the planner's, about 300000", table, n, err)
		}
	}
	conn.Close(t.Context())
	// The backend's statistics are flushed when it exits: small's count
	// shows then, and a scan of the others would.
	scans := func(table string) int64 {
		var n int64
		if err := admin.QueryRow(t.Context(), "SELECT seq_scan FROM pg_stat_user_tables WHERE relname = $1", table).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	waitFor(t, 10*time.Second, "small's count in pg_stat_user_tables", func() bool { return scans("small") > 0 })
	for _, table := range []string{"big", "parted1"} {
		if n := scans(table); n != 0 {
			t.Errorf("%s was scanned %d times to estimate it; want 0", table, n)
		}
	}
}
