package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/chronicler-dev/chronicler/mapping/contract"
	"github.com/chronicler-dev/chronicler/test/stack"
)

const endPrefix = "chronicler-bench-end"

// The pgbench workload's tables and the topic its rules promote to (also
// the latency run's).
var pgbenchTables = []string{"public.pgbench_accounts", "public.pgbench_tellers", "public.pgbench_branches", "public.pgbench_history"}

const pgbenchTopic = "bench.accounts.v1"

// workload is one workload's WAL, waiting in one slot per drain: the
// baseline before and after, and each scenario's own.
type workload struct {
	name        string
	desc        string
	tables      []string
	rules       string // rule directory
	topic       string // the integration events' topic
	publication string
	start, end  contract.LSN // before the workload; after the end marker's commit
	marker      contract.LSN // the end marker's own LSN (its transaction commits after it)
	txs         int64        // source transactions
	changes     int64        // row changes (the end marker excluded)
	events      int64        // low-level events the rules make of them
	records     int64        // integration events the promotion rules make of those
	unchanged   int64        // changes with an unchanged-toast column
	slots       []string
}

func (w *workload) slot(scenario string) string {
	return "bench_" + w.name + "_" + strings.ReplaceAll(scenario, "-", "_")
}

// prepareWorkload creates the workload's tables (pgbench -i for pgbench),
// its publication and a slot per drain, runs it and writes the end marker.
func prepareWorkload(ctx context.Context, pg *stack.Postgres, name string, o options, rulesRoot string, drains []string, log *slog.Logger) (*workload, error) {
	w := &workload{name: name, rules: filepath.Join(rulesRoot, name), publication: "bench_" + name}
	url := pg.URL()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.Background())
	exec1 := func(sqls ...string) error {
		for _, sql := range sqls {
			if _, err := conn.Exec(ctx, sql); err != nil {
				return fmt.Errorf("%s: %w", firstLine(sql), err)
			}
		}
		return nil
	}
	var run func() error
	switch name {
	case "pgbench":
		w.tables, w.topic = pgbenchTables, pgbenchTopic
		if err := pgbenchInit(ctx, pg, o.scale); err != nil {
			return nil, err
		}
		run = func() error {
			length := []string{"-T", strconv.Itoa(int(o.duration / time.Second))}
			if o.txPerClient > 0 {
				length = []string{"-t", strconv.Itoa(o.txPerClient)}
			}
			txs, err := runPgbench(ctx, pg, append(length, "-c", strconv.Itoa(o.clients), "-j", strconv.Itoa(o.clients))...)
			// 3 updates and 1 insert, each one event; one integration
			// event (the account's balance).
			w.txs, w.changes, w.events, w.records = txs, 4*txs, 4*txs, txs
			w.desc = fmt.Sprintf("pgbench TPC-B-like, scale %d, %d clients, %s: %d transactions", o.scale, o.clients, strings.Join(length, " "), txs)
			return err
		}
	case "bulk":
		w.tables = []string{"public.bench_bulk"}
		w.topic = "bench.bulk.v1"
		if err := exec1("DROP TABLE IF EXISTS bench_bulk",
			"CREATE TABLE bench_bulk (id bigint PRIMARY KEY, account int NOT NULL, amount numeric(12,2) NOT NULL, note text, created timestamptz NOT NULL)"); err != nil {
			return nil, err
		}
		run = func() error {
			n := int64(o.bulkRows)
			w.txs, w.changes, w.events, w.records = 1, n, n, n
			w.desc = fmt.Sprintf("bulk: one transaction inserting %d rows", n)
			return exec1(fmt.Sprintf("INSERT INTO bench_bulk SELECT g, g %% 1000, (g %% 100000) / 100.0, 'row ' || g, now() FROM generate_series(1, %d) g", n))
		}
	case "wide":
		w.tables = []string{"public.bench_wide"}
		w.topic = "bench.wide.v1"
		// body is EXTERNAL (out of line, uncompressed) once over ~2 KB: the
		// long bodies (every even id, 3,200 characters of random hex) are
		// TOASTed; the odd ids' 64-character bodies are inline.
		if err := exec1("DROP TABLE IF EXISTS bench_wide",
			"CREATE TABLE bench_wide (id bigint PRIMARY KEY, doc jsonb NOT NULL, body text NOT NULL, amount numeric(14,4) NOT NULL, note text)",
			"ALTER TABLE bench_wide ALTER COLUMN body SET STORAGE EXTERNAL"); err != nil {
			return nil, err
		}
		run = func() error {
			n, batch := int64(o.wideRows), int64(1000)
			var txs int64
			for lo := int64(1); lo <= n; lo += batch {
				hi := min(lo+batch-1, n)
				if err := exec1(fmt.Sprintf(`INSERT INTO bench_wide
SELECT g,
  jsonb_build_object('id', g, 'tags', jsonb_build_array('bench', 'wide', g %% 7), 'nested', jsonb_build_object('x', g * 1.5, 'ok', g %% 2 = 0)),
  CASE WHEN g %% 2 = 0 THEN (SELECT string_agg(md5(g::text || '/' || k::text || random()::text), '') FROM generate_series(1, 100) k)
       ELSE md5(g::text) || md5(g::text || 'x') END,
  g * 1.2345, 'inserted ' || g
FROM generate_series(%d, %d) g`, lo, hi)); err != nil {
					return err
				}
				txs++
			}
			for lo := int64(1); lo <= n; lo += batch {
				hi := min(lo+batch-1, n)
				if err := exec1(fmt.Sprintf("UPDATE bench_wide SET amount = amount + 1, note = 'updated ' || id, doc = doc || '{\"updated\": true}' WHERE id BETWEEN %d AND %d", lo, hi)); err != nil {
					return err
				}
				txs++
			}
			var toasted int64
			if err := conn.QueryRow(ctx, "SELECT count(*) FROM bench_wide WHERE octet_length(body) > 2000").Scan(&toasted); err != nil {
				return err
			}
			var outOfLine int64
			if err := conn.QueryRow(ctx, "SELECT pg_relation_size(reltoastrelid) FROM pg_class WHERE oid = 'bench_wide'::regclass").Scan(&outOfLine); err != nil {
				return err
			}
			if toasted != n/2 || outOfLine == 0 {
				return fmt.Errorf("wide workload: %d of %d rows have a long body and the TOAST table has %d bytes; want %d and > 0", toasted, n, outOfLine, n/2)
			}
			// Every row inserted and updated once; the even ids' updates
			// carry body as unchanged-toast.
			w.txs, w.changes, w.events, w.records, w.unchanged = txs, 2*n, 2*n, 2*n, n/2
			w.desc = fmt.Sprintf("wide rows: %d inserted (jsonb, numeric, text; %d with a 3.2 KB TOASTed body), then each updated without touching body; %d transactions", n, n/2, txs)
			return nil
		}
	default:
		return nil, fmt.Errorf("unknown workload %q (have: pgbench, bulk, wide, all)", name)
	}
	if err := w.createSlots(ctx, conn, drains); err != nil {
		return nil, err
	}
	if w.start, err = currentLSN(ctx, conn); err != nil {
		return nil, err
	}
	log.Info("running the workload", "workload", name)
	if err := run(); err != nil {
		return nil, err
	}
	var marker string
	if err := conn.QueryRow(ctx, "SELECT pg_logical_emit_message(true, '"+endPrefix+"', 'end')::text").Scan(&marker); err != nil {
		return nil, err
	}
	if w.marker, err = contract.ParseLSN(marker); err != nil {
		return nil, err
	}
	if w.end, err = currentLSN(ctx, conn); err != nil {
		return nil, err
	}
	return w, nil
}

// createSlots creates w's publication (replacing one an earlier run left)
// and a slot for each of readers (w.slot), all at the WAL's current end.
func (w *workload) createSlots(ctx context.Context, conn *pgx.Conn, readers []string) error {
	for _, sql := range []string{
		"DROP PUBLICATION IF EXISTS " + w.publication,
		"CREATE PUBLICATION " + w.publication + " FOR TABLE " + strings.Join(w.tables, ", "),
	} {
		if _, err := conn.Exec(ctx, sql); err != nil {
			return fmt.Errorf("%s: %w", sql, err)
		}
	}
	for _, r := range readers {
		s := w.slot(r)
		if _, err := conn.Exec(ctx, "SELECT pg_create_logical_replication_slot($1, 'pgoutput')", s); err != nil {
			return fmt.Errorf("creating slot %s: %w", s, err)
		}
		w.slots = append(w.slots, s)
	}
	return nil
}

// dropSlots drops the workload's slots, so Postgres can recycle its WAL.
func (w *workload) dropSlots(ctx context.Context, url string) error {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	for _, s := range w.slots {
		if _, err := conn.Exec(ctx, "SELECT pg_drop_replication_slot($1) FROM pg_replication_slots WHERE slot_name = $1", s); err != nil {
			return fmt.Errorf("dropping slot %s: %w", s, err)
		}
	}
	return nil
}

func pgbenchInit(ctx context.Context, pg *stack.Postgres, scale int) error {
	bin, err := pg.ClientBin("pgbench")
	if err != nil {
		return err
	}
	// d: drop, t: tables, G: server-side data generation, v: vacuum, p: primary keys.
	if out, err := exec.CommandContext(ctx, bin, "-i", "-I", "dtGvp", "-q", "-s", strconv.Itoa(scale), pg.URL()).CombinedOutput(); err != nil {
		return fmt.Errorf("pgbench -i: %w\n%s", err, out)
	}
	// pgbench_history has no primary key: published without a replica
	// identity its UPDATEs and DELETEs would fail, so capture refuses it;
	// REPLICA IDENTITY FULL is the fix a DBA would apply (pgbench only
	// inserts into it, so the cost is nil).
	conn, err := pgx.Connect(ctx, pg.URL())
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, "ALTER TABLE pgbench_history REPLICA IDENTITY FULL")
	return err
}

// runPgbench runs pgbench's TPC-B-like script with args and returns the
// number of transactions it made.
func runPgbench(ctx context.Context, pg *stack.Postgres, args ...string) (int64, error) {
	bin, err := pg.ClientBin("pgbench")
	if err != nil {
		return 0, err
	}
	out, err := exec.CommandContext(ctx, bin, append(append([]string{"-n"}, args...), pg.URL())...).CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("pgbench %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	m := regexp.MustCompile(`number of transactions actually processed: (\d+)`).FindSubmatch(out)
	if m == nil {
		return 0, fmt.Errorf("pgbench printed no transaction count:\n%s", out)
	}
	if f := regexp.MustCompile(`number of failed transactions: (\d+)`).FindSubmatch(out); f != nil && string(f[1]) != "0" {
		return 0, fmt.Errorf("pgbench: %s transactions failed:\n%s", f[1], out)
	}
	return strconv.ParseInt(string(m[1]), 10, 64)
}

func currentLSN(ctx context.Context, conn *pgx.Conn) (contract.LSN, error) {
	var s string
	if err := conn.QueryRow(ctx, "SELECT pg_current_wal_lsn()::text").Scan(&s); err != nil {
		return 0, err
	}
	return contract.ParseLSN(s)
}

// drain is one reference drain of a workload's WAL: its wall time and the
// CPU seconds of the processes doing it. For the limit (limitDrain), the
// backend running pg_logical_slot_get_binary_changes (client: none); for
// pg_recvlogical (recvlogicalDrain), pg_recvlogical itself (exact, from
// wait4) and the walsender serving it (sampled; wsErr says why it is
// unknown).
type drain struct {
	dur     time.Duration
	recvCPU float64 // pg_recvlogical (recvlogicalDrain)
	wsCPU   float64 // the walsender (recvlogicalDrain) or the decoding backend (limitDrain)
	wsErr   error
}

// log reports the drain's figures (with -v).
func (d drain) log(log *slog.Logger, w *workload, which string) {
	perM := func(sec float64) float64 { return sec / float64(w.changes) * 1e6 }
	log.Info("reference drain", "workload", w.name, "drain", which, "seconds", d.dur.Seconds(),
		"client_cpu_s_per_m", perM(d.recvCPU), "backend_cpu_s_per_m", perM(d.wsCPU), "backend_unknown", d.wsErr)
}

// limitQuery decodes a slot up to an LSN in the backend running it: the
// logical decoding and pgoutput encoding every consumer of the slot pays,
// with no transport at all. It counts pgoutput's messages and, of them,
// the row changes (Insert, Update, Delete: 'I', 'U', 'D'), so the drain
// can be held to the workload's count.
const limitQuery = `SELECT count(*), count(*) FILTER (WHERE get_byte(data, 0) IN (73, 85, 68))
FROM pg_logical_slot_get_binary_changes($1, $2::pg_lsn, NULL, 'proto_version', '1', 'publication_names', $3)`

// limitDrain drains the slot in a backend (limitQuery) up to the end LSN
// and returns the wall time it took and the backend's CPU seconds over the
// query (its /proc/<pid>/schedstat before and after, pg_backend_pid()). It
// fails unless the slot held exactly the workload's changes.
func limitDrain(ctx context.Context, pg *stack.Postgres, w *workload, slot string) (drain, error) {
	conn, err := pgx.Connect(ctx, pg.URL())
	if err != nil {
		return drain{}, err
	}
	defer conn.Close(context.Background())
	var pid int32
	if err := conn.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&pid); err != nil {
		return drain{}, err
	}
	cpu0, start0, err0 := backendCPU(int(pid))
	began := time.Now()
	var msgs, changes int64
	if err := conn.QueryRow(ctx, limitQuery, slot, w.end.String(), w.publication).Scan(&msgs, &changes); err != nil {
		return drain{}, fmt.Errorf("decoding slot %s in a backend: %w", slot, err)
	}
	d := drain{dur: time.Since(began)}
	cpu1, start1, err1 := backendCPU(int(pid))
	switch {
	case err0 != nil || err1 != nil:
		d.wsErr = fmt.Errorf("slot %s: reading backend pid %d: %w (the bench reads another user's /proc entries: run it as root or as the Postgres user)", slot, pid, errors.Join(err0, err1))
	case start0 != start1:
		d.wsErr = fmt.Errorf("slot %s: backend pid %d was replaced during the drain", slot, pid)
	default:
		d.wsCPU = cpu1 - cpu0
	}
	if changes != w.changes {
		return drain{}, fmt.Errorf("decoding slot %s in a backend: %d row changes in %d pgoutput messages; want exactly %d", slot, changes, msgs, w.changes)
	}
	return d, nil
}

// recvlogicalDrain drains the slot with pg_recvlogical (pgoutput, the same
// options capture uses) into /dev/null up to the end LSN, and returns the
// wall time it took and the CPU it and its walsender used. The walsender
// exits with pg_recvlogical, so its CPU is its last sample (every 5 ms)
// while it ran.
func recvlogicalDrain(ctx context.Context, pg *stack.Postgres, w *workload, slot string) (drain, error) {
	bin, err := pg.ClientBin("pg_recvlogical")
	if err != nil {
		return drain{}, err
	}
	ws := watchWalsender(ctx, pg.URL(), slot, 5*time.Millisecond)
	defer ws.stop()
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, "-d", pg.URL(), "--slot", slot, "--start", "--no-loop",
		"--endpos", w.end.String(), "-o", "proto_version=1", "-o", "publication_names="+w.publication, "-o", "messages=true",
		"-f", "/dev/null")
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err = cmd.Run()
	d := drain{dur: time.Since(start)}
	if err != nil {
		return drain{}, fmt.Errorf("pg_recvlogical on slot %s: %w\n%s", slot, err, out.Bytes())
	}
	d.recvCPU = (cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()).Seconds()
	ws.stop()
	d.wsCPU, d.wsErr = ws.lastSample()
	return d, nil
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}
