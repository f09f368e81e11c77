package main

import (
	"context"
	"fmt"
	"log/slog"
	"os/exec"
	"regexp"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/chronicler-dev/chronicler/capture/change"
	"github.com/chronicler-dev/chronicler/test/stack"
)

const (
	publication  = "bench"
	baselineSlot = "bench_baseline"
	afterSlot    = "bench_baseline_after"
	store0Slot   = "bench_store_0ms"
	store2Slot   = "bench_store_2ms"
	captureSlot  = "bench_capture"
	endPrefix    = "chronicler-bench-end"
)

var benchTables = []string{"public.pgbench_accounts", "public.pgbench_tellers", "public.pgbench_branches", "public.pgbench_history"}

// env is a Postgres with the workload's WAL waiting in two slots.
type env struct {
	pg       *stack.Postgres
	url      string
	start    change.LSN // before the workload
	end      change.LSN // after the end marker's commit
	marker   change.LSN // the end marker's own LSN (its transaction commits after it)
	txs      int64      // pgbench transactions
	workload string
}

func (e *env) close() { e.pg.Close() }

// prepare starts Postgres, initialises pgbench, creates the publication and
// both slots, runs the workload and writes the end marker.
func prepare(ctx context.Context, o options, log *slog.Logger) (*env, error) {
	pg, err := stack.NewPostgres(stack.PostgresConfig{
		Settings: map[string]string{"max_wal_size": "'8GB'", "checkpoint_timeout": "'30min'"},
		Logf:     func(f string, a ...any) { log.Info(fmt.Sprintf(f, a...)) },
	})
	if err != nil {
		return nil, err
	}
	e := &env{pg: pg, url: pg.URL()}
	ok := false
	defer func() {
		if !ok {
			pg.Close()
		}
	}()
	pgbench, err := pg.ClientBin("pgbench")
	if err != nil {
		return nil, err
	}
	log.Info("initialising pgbench", "scale", o.scale)
	// d: drop, t: tables, G: server-side data generation, v: vacuum, p: primary keys.
	if out, err := exec.CommandContext(ctx, pgbench, "-i", "-I", "dtGvp", "-q", "-s", strconv.Itoa(o.scale), e.url).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("pgbench -i: %w\n%s", err, out)
	}
	conn, err := pgx.Connect(ctx, e.url)
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.Background())
	for _, sql := range []string{
		"CREATE PUBLICATION " + publication + " FOR TABLE pgbench_accounts, pgbench_tellers, pgbench_branches, pgbench_history",
		"SELECT pg_create_logical_replication_slot('" + baselineSlot + "', 'pgoutput')",
		"SELECT pg_create_logical_replication_slot('" + captureSlot + "', 'pgoutput')",
		"SELECT pg_create_logical_replication_slot('" + afterSlot + "', 'pgoutput')",
		"SELECT pg_create_logical_replication_slot('" + store0Slot + "', 'pgoutput')",
		"SELECT pg_create_logical_replication_slot('" + store2Slot + "', 'pgoutput')",
	} {
		if _, err := conn.Exec(ctx, sql); err != nil {
			return nil, fmt.Errorf("%s: %w", sql, err)
		}
	}
	if e.start, err = currentLSN(ctx, conn); err != nil {
		return nil, err
	}
	log.Info("running pgbench", "duration", o.duration, "clients", o.clients)
	out, err := exec.CommandContext(ctx, pgbench, "-n", "-T", strconv.Itoa(int(o.duration/time.Second)),
		"-c", strconv.Itoa(o.clients), "-j", strconv.Itoa(o.clients), e.url).CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("pgbench: %w\n%s", err, out)
	}
	m := regexp.MustCompile(`number of transactions actually processed: (\d+)`).FindSubmatch(out)
	if m == nil {
		return nil, fmt.Errorf("pgbench printed no transaction count:\n%s", out)
	}
	e.txs, _ = strconv.ParseInt(string(m[1]), 10, 64)
	e.workload = fmt.Sprintf("pgbench tpcb-like, scale %d, %d clients, %s: %d transactions", o.scale, o.clients, o.duration, e.txs)
	var marker string
	if err := conn.QueryRow(ctx, "SELECT pg_logical_emit_message(true, '"+endPrefix+"', 'end')::text").Scan(&marker); err != nil {
		return nil, err
	}
	if e.marker, err = change.ParseLSN(marker); err != nil {
		return nil, err
	}
	if e.end, err = currentLSN(ctx, conn); err != nil {
		return nil, err
	}
	ok = true
	return e, nil
}

func currentLSN(ctx context.Context, conn *pgx.Conn) (change.LSN, error) {
	var s string
	if err := conn.QueryRow(ctx, "SELECT pg_current_wal_lsn()::text").Scan(&s); err != nil {
		return 0, err
	}
	return change.ParseLSN(s)
}

// baseline drains the baseline slot with pg_recvlogical (pgoutput, the same
// options capture uses) into /dev/null up to the end LSN, and returns the
// wall time it took.
func baseline(ctx context.Context, e *env, slot string) (time.Duration, error) {
	bin, err := e.pg.ClientBin("pg_recvlogical")
	if err != nil {
		return 0, err
	}
	start := time.Now()
	out, err := exec.CommandContext(ctx, bin, "-d", e.url, "--slot", slot, "--start", "--no-loop",
		"--endpos", e.end.String(), "-o", "proto_version=1", "-o", "publication_names="+publication, "-o", "messages=true",
		"-f", "/dev/null").CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("pg_recvlogical: %w\n%s", err, out)
	}
	return time.Since(start), nil
}
