package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/chronicler-dev/chronicler/test/kurrentdb/kurrentdbtest"
	"github.com/chronicler-dev/chronicler/test/stack"
)

// bins holds the binaries built once by TestMain.
var bins struct {
	dir        string
	chronicler string
	kurrentdb  string
}

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "chronicler-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bins.dir = dir
	bins.chronicler = filepath.Join(dir, "chronicler")
	bins.kurrentdb = filepath.Join(dir, "kurrentdb-server")
	// Children are built without -race: they are what is being killed, and
	// the race detector would slow them several times over.
	// CHRONICLER_E2E_RACE=1 builds chronicler with -race, to look for races
	// in the running binary (grep its logs for "DATA RACE").
	for _, b := range []struct{ out, pkg string }{
		{bins.chronicler, "github.com/chronicler-dev/chronicler/cmd/chronicler"},
		{bins.kurrentdb, "github.com/chronicler-dev/chronicler/test/kurrentdb/cmd/kurrentdb-server"},
	} {
		args := []string{"build", "-o", b.out}
		if os.Getenv("CHRONICLER_E2E_RACE") == "1" && b.out == bins.chronicler {
			args = append(args, "-race")
		}
		cmd := exec.Command("go", append(args, b.pkg)...)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintf(os.Stderr, "building %s: %v\n", b.pkg, err)
			os.RemoveAll(dir)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

const (
	slot     = "chaos"
	accounts = 300
	badEvery = 97 // every 97th transfer is a deliberately bad row
)

const schema = `
CREATE TABLE accounts (id int PRIMARY KEY, version int NOT NULL, balance bigint NOT NULL);
CREATE TABLE history (hid bigserial PRIMARY KEY, aid int NOT NULL, version int NOT NULL, delta int NOT NULL, note text NOT NULL);
INSERT INTO accounts SELECT g, 0, 0 FROM generate_series(1, 300) g;
`

// rules map account updates and history inserts into acct-<id>; a history
// row with note 'bad' makes the stream id empty, a run-time rule failure.
const rules = `capture:
  - name: balance-changed
    table: public.accounts
    on: [update]
    stream: {category: acct, id: new.id}
    type: BalanceChanged
    data: {aid: new.id, version: new.version, balance: new.balance}
  - name: money-moved
    table: public.history
    on: [insert]
    stream: {category: acct, id: 'new.note == "bad" ? "" : string(new.aid)'}
    type: MoneyMoved
    data: {hid: new.hid, aid: new.aid, version: new.version, delta: new.delta}
`

// env is one test's servers and files.
type env struct {
	t      *testing.T
	pg     *stack.Postgres
	dbURL  string
	dir    string
	store  *storeProc
	cfg    string // chronicler config path
	logf   *os.File
	chron  *exec.Cmd
	exited chan error
	// startOff is where waitLog looks from: the log's size when chronicler
	// was last started.
	startOff int64
	// committed counts the transfers whose commit the workload saw succeed.
	committed atomic.Int64
}

// setup is what a test captures: schema, rules, tables and extra
// postgres settings of the chronicler config.
type setup struct {
	schema, rules string
	tables        string // YAML list
	pgExtra       string // more lines under postgres:, indented
	extra         string // more top-level sections of the config
	storeFlags    []string
	pgOpts        []stack.PostgresOption // more options of the cluster
}

// httpSection is extra, with the HTTP listener off unless extra has one.
func httpSection(extra string) string {
	if strings.Contains(extra, "http:") {
		return extra
	}
	return "http:\n  addr: \"\"\n" + extra
}

// transfers is the setup of the chaos tests (accounts and history).
func transfers(storeFlags ...string) setup {
	return setup{schema: schema, rules: rules, tables: "[public.accounts, public.history]", storeFlags: storeFlags}
}

func newEnv(t *testing.T, storeFlags ...string) *env { return newEnvWith(t, transfers(storeFlags...)) }

func newEnvWith(t *testing.T, su setup) *env {
	t.Helper()
	e := &env{t: t, dir: t.TempDir()}
	e.pg = stack.StartPostgres(t, append([]stack.PostgresOption{stack.WithPostgresSetting("synchronous_commit", "off")}, su.pgOpts...)...)
	e.dbURL = e.pg.CreateDatabase(t, "app")
	e.pg.Exec(t, "app", su.schema)
	e.store = startStore(t, filepath.Join(e.dir, "store-data"), su.storeFlags...)
	if err := os.WriteFile(filepath.Join(e.dir, "rules.yaml"), []byte(su.rules), 0o644); err != nil {
		t.Fatal(err)
	}
	e.cfg = filepath.Join(e.dir, "chronicler.yaml")
	cfg := fmt.Sprintf(`postgres:
  url: %s
  slot: %s
  publication: chaos
  tables: %s
  heartbeat_interval: 1s
  status_interval: 250ms
%sstore:
  url: %s
  on_conflict: stop
rules:
  paths: [rules.yaml]
log:
  level: info
%s`, e.dbURL, slot, su.tables, su.pgExtra, e.store.url, httpSection(su.extra))
	if err := os.WriteFile(e.cfg, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(filepath.Join(e.dir, "chronicler.log"))
	if err != nil {
		t.Fatal(err)
	}
	e.logf = f
	t.Cleanup(func() {
		e.killChronicler()
		f.Close()
		checkNoRace(t, f.Name())
		if t.Failed() {
			t.Logf("chronicler log tail:\n%s", tailFile(f.Name(), 60))
		}
	})
	return e
}

// startChronicler starts `chronicler run` at once, also right after a
// SIGKILL: the slot may still be held by the killed process's walsender,
// and chronicler must wait for it itself.
func (e *env) startChronicler() {
	e.t.Helper()
	if st, err := e.logf.Stat(); err == nil {
		e.startOff = st.Size()
	}
	fmt.Fprintf(e.logf, "=== start %s\n", time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(bins.chronicler, "run", "--config", e.cfg, "--only", "capture")
	cmd.Stdout, cmd.Stderr = e.logf, e.logf
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	e.chron = cmd
	e.exited = make(chan error, 1)
	go func(c *exec.Cmd, ch chan error) { ch <- c.Wait() }(cmd, e.exited)
}

// logSize is the chronicler log's size now.
func (e *env) logSize() int64 {
	e.t.Helper()
	st, err := e.logf.Stat()
	if err != nil {
		e.t.Fatal(err)
	}
	return st.Size()
}

// killChronicler SIGKILLs chronicler (if running) and waits for it.
func (e *env) killChronicler() {
	if e.chron == nil {
		return
	}
	_ = e.chron.Process.Signal(syscall.SIGKILL)
	<-e.exited
	e.chron = nil
}

// stopChronicler sends SIGTERM and expects a clean exit. It first waits
// for the process to report it runs (a signal before the handler is
// installed would kill it, which is not what is tested here).
func (e *env) stopChronicler() {
	e.t.Helper()
	e.waitLog("capture running")
	_ = e.chron.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-e.exited:
		e.chron = nil
		if err != nil {
			e.t.Fatalf("chronicler did not stop cleanly on SIGTERM: %v", err)
		}
	case <-time.After(60 * time.Second):
		e.t.Fatal("chronicler did not stop within 60s of SIGTERM")
	}
}

// waitLog waits until the current chronicler's log holds substr.
func (e *env) waitLog(substr string) {
	e.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		b, err := os.ReadFile(e.logf.Name())
		if err != nil {
			e.t.Fatal(err)
		}
		if strings.Contains(string(b[e.startOff:]), substr) {
			return
		}
		e.checkRunning()
		if time.Now().After(deadline) {
			e.t.Fatalf("chronicler did not log %q within 60s", substr)
		}
		time.Sleep(50 * time.Millisecond) // polling interval, with a deadline
	}
}

// requireLogged fails the test unless some chronicler run logged substr.
func (e *env) requireLogged(substr string) {
	e.t.Helper()
	b, err := os.ReadFile(e.logf.Name())
	if err != nil {
		e.t.Fatal(err)
	}
	if n := strings.Count(string(b), substr); n == 0 {
		e.t.Fatalf("chronicler never logged %q: the fault was not exercised", substr)
	} else {
		e.t.Logf("chronicler logged %q %d times", substr, n)
	}
}

// countLogged logs how often chronicler logged substr (information only).
func (e *env) countLogged(substr string) {
	b, _ := os.ReadFile(e.logf.Name())
	e.t.Logf("chronicler logged %q %d times", substr, strings.Count(string(b), substr))
}

// checkRunning fails the test if chronicler exited on its own.
func (e *env) checkRunning() {
	e.t.Helper()
	select {
	case err := <-e.exited:
		e.chron = nil
		e.t.Fatalf("chronicler exited on its own: %v", err)
	default:
	}
}

// waitUntil polls cond until it holds, failing after limit or when
// chronicler exits.
func waitUntil(t *testing.T, e *env, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		e.checkRunning()
		if time.Now().After(deadline) {
			t.Fatalf("no %s within %s", what, limit)
		}
		time.Sleep(50 * time.Millisecond) // polling interval, with a deadline
	}
}

func (e *env) conn() *pgx.Conn {
	e.t.Helper()
	conn, err := pgx.Connect(context.Background(), e.dbURL)
	if err != nil {
		e.t.Fatal(err)
	}
	return conn
}

// waitCaughtUp waits until the slot's confirmed position passes every
// transaction committed so far (call it after the workload's last commit).
//
// The target is the WAL insert position, not pg_current_wal_lsn(): these
// tests run Postgres with synchronous_commit off, so the last commit records
// can sit in the WAL buffers past the write position until the WAL writer
// flushes them, and the walsender decodes only flushed WAL. A slot past the
// write position could then still miss the last transactions (it did, in
// TestGracefulStopUnderLoad: 21 transfers behind, which verify reported as
// lost). One synchronously committed transaction flushes up to the target.
func (e *env) waitCaughtUp(limit time.Duration) {
	e.t.Helper()
	conn := e.conn()
	defer conn.Close(context.Background())
	var target string
	if err := conn.QueryRow(context.Background(), "SELECT pg_current_wal_insert_lsn()::text").Scan(&target); err != nil {
		e.t.Fatal(err)
	}
	if err := pgx.BeginFunc(context.Background(), conn, func(tx pgx.Tx) error {
		_, err := tx.Exec(context.Background(), "SET LOCAL synchronous_commit = on; SELECT pg_current_xact_id()")
		return err
	}); err != nil {
		e.t.Fatal(err)
	}
	deadline := time.Now().Add(limit)
	for {
		var passed *bool
		var confirmed *string
		err := conn.QueryRow(context.Background(),
			"SELECT confirmed_flush_lsn >= $2::pg_lsn, confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = $1", slot, target).Scan(&passed, &confirmed)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			e.t.Fatal(err)
		}
		if passed != nil && *passed {
			return
		}
		e.checkRunning()
		if time.Now().After(deadline) {
			c := "<none>"
			if confirmed != nil {
				c = *confirmed
			}
			e.t.Fatalf("slot confirmed %s, not past %s, after %s", c, target, limit)
		}
		time.Sleep(100 * time.Millisecond) // polling interval, with a deadline
	}
}

// workload runs n transfers on `workers` connections. Each transfer
// updates one account (version+1, balance+delta) and inserts its history
// row in the same transaction; every badEvery-th is a bad row.
func (e *env) workload(ctx context.Context, n, workers int) error {
	pool, err := pgxpool.New(ctx, e.dbURL)
	if err != nil {
		return err
	}
	defer pool.Close()
	var (
		mu   sync.Mutex
		next int
		wg   sync.WaitGroup
		errs = make(chan error, workers)
	)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(seed uint64) {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(seed, 42))
			for {
				mu.Lock()
				i := next
				next++
				mu.Unlock()
				if i >= n || ctx.Err() != nil {
					return
				}
				aid := 1 + rng.IntN(accounts)
				delta := rng.IntN(2001) - 1000
				note := "ok"
				if i%badEvery == badEvery-1 {
					note = "bad"
				}
				err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
					var v int
					if err := tx.QueryRow(ctx, "UPDATE accounts SET version = version + 1, balance = balance + $2 WHERE id = $1 RETURNING version", aid, delta).Scan(&v); err != nil {
						return err
					}
					_, err := tx.Exec(ctx, "INSERT INTO history (aid, version, delta, note) VALUES ($1, $2, $3, $4)", aid, v, delta, note)
					return err
				})
				if err != nil {
					errs <- fmt.Errorf("transfer %d: %w", i, err)
					return
				}
				e.committed.Add(1)
			}
		}(uint64(w))
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// storeProc is the KurrentDB-compatible server run as a process on a fixed
// address, so it can be killed and restarted on the same data directory.
type storeProc struct {
	t       *testing.T
	addr    string
	url     string
	dataDir string
	flags   []string
	cmd     *exec.Cmd
	exited  chan struct{}
	logPath string
}

func startStore(t *testing.T, dataDir string, flags ...string) *storeProc {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	s := &storeProc{t: t, addr: addr, dataDir: dataDir, flags: flags, logPath: dataDir + ".log"}
	s.start()
	t.Cleanup(func() {
		s.kill()
		if t.Failed() {
			t.Logf("store log tail:\n%s", tailFile(s.logPath, 20))
		}
	})
	return s
}

func (s *storeProc) start() {
	s.t.Helper()
	logf, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		s.t.Fatal(err)
	}
	defer logf.Close()
	args := append([]string{"-addr", s.addr, "-data-dir", s.dataDir}, s.flags...)
	cmd := exec.Command(bins.kurrentdb, args...)
	cmd.Stderr = logf
	out, err := cmd.StdoutPipe()
	if err != nil {
		s.t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	s.cmd, s.exited = cmd, make(chan struct{})
	line := make(chan string, 1)
	go func() {
		r := bufio.NewReader(out)
		l, _ := r.ReadString('\n')
		line <- l
		_, _ = io.Copy(io.Discard, r)
	}()
	go func() { _ = cmd.Wait(); close(s.exited) }()
	select {
	case l := <-line:
		u, ok := strings.CutPrefix(strings.TrimSpace(l), "listening ")
		if !ok {
			s.t.Fatalf("store printed %q, want \"listening esdb://...\"; log:\n%s", l, tailFile(s.logPath, 20))
		}
		s.url = u
	case <-time.After(30 * time.Second):
		s.t.Fatalf("store did not report listening within 30s; log:\n%s", tailFile(s.logPath, 20))
	}
}

func (s *storeProc) kill() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGKILL)
	<-s.exited
	s.cmd = nil
}

// client connects the official client to the store.
func (s *storeProc) client(t *testing.T) *esdb.Client {
	t.Helper()
	return kurrentdbtest.Client(t, s.url)
}

type storedEvent struct {
	Type string
	Data map[string]any
	Meta map[string]any
}

// readAll reads a whole stream; a stream that does not exist is empty.
func readAll(t *testing.T, db *esdb.Client, stream string) []storedEvent {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	rs, err := db.ReadStream(ctx, stream, esdb.ReadStreamOptions{From: esdb.Start{}}, 1<<30)
	if err != nil {
		var ee *esdb.Error
		if errors.As(err, &ee) && ee.Code() == esdb.ErrorCodeResourceNotFound {
			return nil
		}
		t.Fatalf("reading %s: %v", stream, err)
	}
	defer rs.Close()
	var out []storedEvent
	for {
		ev, err := rs.Recv()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			var ee *esdb.Error
			if errors.As(err, &ee) && ee.Code() == esdb.ErrorCodeResourceNotFound {
				return nil
			}
			t.Fatalf("reading %s: %v", stream, err)
		}
		se := storedEvent{Type: ev.Event.EventType}
		dec := json.NewDecoder(strings.NewReader(string(ev.Event.Data)))
		dec.UseNumber()
		if err := dec.Decode(&se.Data); err != nil {
			t.Fatalf("%s: event %d data: %v", stream, ev.Event.EventNumber, err)
		}
		if len(ev.Event.UserMetadata) > 0 {
			if err := json.Unmarshal(ev.Event.UserMetadata, &se.Meta); err != nil {
				t.Fatalf("%s: event %d metadata: %v", stream, ev.Event.EventNumber, err)
			}
		}
		out = append(out, se)
	}
}

// checkNoRace fails the test when a chronicler log holds a race report
// (children built with CHRONICLER_E2E_RACE=1).
func checkNoRace(t *testing.T, log string) {
	if b, err := os.ReadFile(log); err == nil && strings.Contains(string(b), "WARNING: DATA RACE") {
		i := strings.Index(string(b), "WARNING: DATA RACE")
		t.Errorf("chronicler reported a data race:\n%s", string(b[i:min(len(b), i+6000)]))
	}
}

func tailFile(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	var lines []string
	for _, l := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
		if !strings.Contains(l, "change dead-lettered") { // expected, and many
			lines = append(lines, l)
		}
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
