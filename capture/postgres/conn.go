package postgres

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// CaptureApplicationName is the application_name of capture's sessions
// (normal and replication). The HA takeover terminates only a walsender
// holding the slot under this name ([LockSession.TerminateSlotHolder]).
const CaptureApplicationName = "chronicler-capture"

// ConnSettings say how to reach the captured database. Every connection
// Chronicler opens to it (capture's, the checks', status's, the slot wait's,
// the HA lock's) is built from them by one function, connConfig.
type ConnSettings struct {
	// URL is the connection string (URL or key=value form; TLS per its
	// sslmode, DefaultSSLMode when it names none). Required.
	URL string
	// Password, when set, replaces the URL's password (so it can come from
	// a secret file). Default: the URL's.
	Password string
	// PasswordFile, when set, is read at every new connection (a trailing
	// newline dropped) and replaces Password and the URL's: a rotated
	// secret is used from the next connection on, without a restart.
	PasswordFile string
	// ApplicationName, when set, replaces the URL's application_name.
	ApplicationName string
	// Keepalive, when positive, makes the server drop the session about
	// 2.5 Keepalive after the client went silent: tcp_keepalives_idle K,
	// tcp_keepalives_interval K/2 (at least 1s), tcp_keepalives_count 3,
	// tcp_user_timeout 3K. Default 0: the server's settings.
	Keepalive time.Duration
}

// Validate reports whether the URL parses, as a *ConfigError for field
// "url" (pgconn redacts the password in its message).
func (cs ConnSettings) Validate() error {
	_, err := connConfig(cs, nil)
	return err
}

// URLPassword is the password a connection string gives a connection: its
// own (in the user info, a password parameter or key=value), else
// PGPASSWORD or the passfile's, as libpq's rules say; "" when there is none
// or the string does not parse. For scrubbing printed text.
func URLPassword(url string) string {
	pc, err := pgconn.ParseConfig(url)
	if err != nil {
		return ""
	}
	return pc.Password
}

// connConfig builds the pgx configuration of cs, with params (runtime
// parameters) on top. It is the one place a connection's settings are made:
// TLS verified by default (DefaultSSLMode), the password file read anew.
func connConfig(cs ConnSettings, params map[string]string) (*pgx.ConnConfig, error) {
	cfg, _, err := connConfigMode(cs, params)
	return cfg, err
}

// connConfigMode is connConfig, with the sslmode in force.
func connConfigMode(cs ConnSettings, params map[string]string) (*pgx.ConnConfig, string, error) {
	if cs.URL == "" {
		return nil, "", &ConfigError{Field: "url", Reason: "required: the connection string of the captured database"}
	}
	mode, connStr := sslModeOf(cs.URL)
	cfg, err := pgx.ParseConfig(connStr)
	if err != nil {
		return nil, "", &ConfigError{Field: "url", Reason: "not a valid connection string: " + err.Error()}
	}
	switch {
	case cs.PasswordFile != "":
		b, err := os.ReadFile(cs.PasswordFile)
		if err != nil {
			// The error names the file, never its content.
			return nil, "", &ConfigError{Field: "password_file", Reason: fmt.Sprintf("%s: %v (mount the secret there)", cs.PasswordFile, errors.Unwrap(err))}
		}
		if pw := strings.TrimRight(string(b), "\r\n"); pw != "" {
			cfg.Password = pw
		}
	case cs.Password != "":
		cfg.Password = cs.Password
	}
	if cs.ApplicationName != "" {
		cfg.RuntimeParams["application_name"] = cs.ApplicationName
	}
	if k := cs.Keepalive; k > 0 {
		secs := func(d time.Duration) string { return strconv.Itoa(max(1, int(d.Round(time.Second)/time.Second))) }
		cfg.RuntimeParams["tcp_keepalives_idle"] = secs(k)
		cfg.RuntimeParams["tcp_keepalives_interval"] = secs(k / 2)
		cfg.RuntimeParams["tcp_keepalives_count"] = "3"
		cfg.RuntimeParams["tcp_user_timeout"] = strconv.Itoa(int(3 * k / time.Millisecond))
	}
	for k, v := range params {
		cfg.RuntimeParams[k] = v
	}
	for k, v := range Timeouts {
		if _, set := cfg.RuntimeParams[k]; !set {
			cfg.RuntimeParams[k] = v
		}
	}
	return cfg, mode, nil
}

// Timeouts bound what a Chronicler session can do to the legacy database:
// DDL that waits for a table lock (creating or altering the publication)
// gives up after lock_timeout instead of queueing the application's
// statements behind it; no statement runs longer than statement_timeout; no
// transaction stays open and idle longer than
// idle_in_transaction_session_timeout (it would hold back vacuum). A
// connection string that sets one of them (e.g. ?lock_timeout=2s) wins.
// Replication connections do without them: creating a slot waits for the
// transactions running at that moment, however long they take.
var Timeouts = map[string]string{
	"lock_timeout":                        "5s",
	"statement_timeout":                   "5min",
	"idle_in_transaction_session_timeout": "10min",
}

// targetOf names a server and database without credentials:
// host:port/database; a multi-host URL's servers are all named, in order
// (host:port,host2:port2/database).
func targetOf(pc *pgconn.Config) string { return serversOf(pc) + "/" + pc.Database }

// serversOf names pc's servers, in order: host:port[,host2:port2...].
func serversOf(pc *pgconn.Config) string {
	hosts := []string{fmt.Sprintf("%s:%d", pc.Host, pc.Port)}
	for _, fb := range pc.Fallbacks {
		// pgx adds a fallback per TLS attempt (sslmode=prefer): name each server once.
		if h := fmt.Sprintf("%s:%d", fb.Host, fb.Port); !slices.Contains(hosts, h) {
			hosts = append(hosts, h)
		}
	}
	return strings.Join(hosts, ",")
}

// connectErr is the driver's connection error (pgconn's messages name host,
// user and database, never the password) without the layers around it.
func connectErr(err error) error {
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) {
		return ce
	}
	return err
}

// Conn is an ordinary connection to the captured database, for
// `chronicler check` and `status`: it reads the server, the slot, the
// tables and the publication. It is not safe for concurrent use.
type Conn struct {
	pg      *pgx.Conn
	target  string
	sslMode string
}

// Connect opens a Conn. A URL that does not parse (or a password file that
// cannot be read) is a *ConfigError; a server that offers no TLS when the
// sslmode asks for it, or whose certificate does not verify, a *TLSError;
// a server that cannot be reached otherwise a *ConnectError naming
// host:port/database and user.
func Connect(ctx context.Context, cs ConnSettings) (*Conn, error) {
	pg, mode, err := dial(ctx, cs)
	if err != nil {
		return nil, err
	}
	return &Conn{pg: pg, target: targetOf(&pg.Config().Config), sslMode: mode}, nil
}

// dial opens an ordinary connection with cs; errors as Connect's. It
// returns the sslmode in force.
func dial(ctx context.Context, cs ConnSettings) (*pgx.Conn, string, error) {
	return dialParams(ctx, cs, nil)
}

// dialParams is dial with params (runtime parameters) on top of cs's.
func dialParams(ctx context.Context, cs ConnSettings, params map[string]string) (*pgx.Conn, string, error) {
	cfg, mode, err := connConfigMode(cs, params)
	if err != nil {
		return nil, "", err
	}
	pg, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, "", connectFailure(cfg, mode, err)
	}
	return pg, mode, nil
}

// connectFailure is a failed connection's error: a *TLSError when TLS
// failed, else a *ConnectError naming the servers, database and user.
func connectFailure(cfg *pgx.ConnConfig, mode string, err error) error {
	if te := tlsFailure(targetOf(&cfg.Config), mode, err); te != nil {
		return te
	}
	return &ConnectError{Target: targetOf(&cfg.Config), User: cfg.User, Err: connectErr(err)}
}

// Target names the server and database: host:port/database (every server
// of a multi-host URL: host:port,host2:port2/database).
func (c *Conn) Target() string { return c.target }

// Close closes the connection.
func (c *Conn) Close(ctx context.Context) error { return c.pg.Close(ctx) }

// ReadServer reads the server's settings and the role's attributes.
func (c *Conn) ReadServer(ctx context.Context) (Server, error) { return readServer(ctx, c.pg) }

// ReadSlot reads replication slot name; see [SlotInfo].
func (c *Conn) ReadSlot(ctx context.Context, name string) (SlotInfo, bool, error) {
	return readSlot(ctx, c.pg, name)
}

// ReadTable reads what the checks and the catalogue need of table
// ("schema.table"); a table that does not exist is Table.Exists false.
// genStored says whether the publication sends STORED generated columns
// ([Conn.PublishesGenerated]): they are Columns then, else Generated.
func (c *Conn) ReadTable(ctx context.Context, table string, genStored bool) (Table, error) {
	return readTable(ctx, c.pg, table, genStored)
}

// PublishesGenerated reports whether publication pub sends STORED
// generated columns: on Postgres 18 when it has publish_generated_columns
// = stored, or when it does not exist yet (capture creates it so).
func (c *Conn) PublishesGenerated(ctx context.Context, pub string) (bool, error) {
	return publishesGenerated(ctx, c.pg, pub)
}

// ComparePublication reads publication pub and compares it with tables;
// see [ComparePublication].
func (c *Conn) ComparePublication(ctx context.Context, pub string, tables []string) (*PublicationMismatchError, error) {
	return comparePublication(ctx, c.pg, pub, tables)
}

// sessionParams fix the text forms of values so that the stream (the
// walsender formats values with its session's settings) and the snapshot
// queries produce the same text, which pgvalue expects.
var sessionParams = map[string]string{
	"DateStyle":          "ISO, MDY",
	"IntervalStyle":      "postgres",
	"TimeZone":           "UTC",
	"extra_float_digits": "3",
	"bytea_output":       "hex",
}

// settings are the Source's connection settings.
func (s *Source) settings() ConnSettings {
	return ConnSettings{URL: s.cfg.URL, Password: s.cfg.Password, PasswordFile: s.cfg.PasswordFile, ApplicationName: CaptureApplicationName}
}

// connect opens a normal connection to the captured database; errors as
// Connect's. Safe for concurrent use (a reload's PrepareTables, AddTables
// and Catalog call it beside Run).
func (s *Source) connect(ctx context.Context) (*pgx.Conn, error) {
	conn, _, err := dialParams(ctx, s.settings(), sessionParams)
	return conn, err
}

// connectReplication opens a logical replication connection
// (replication=database) to the captured database.
func (s *Source) connectReplication(ctx context.Context) (*pgconn.PgConn, error) {
	cfg, mode, err := connConfigMode(s.settings(), sessionParams)
	if err != nil {
		return nil, err
	}
	cfg.RuntimeParams["replication"] = "database"
	for k := range Timeouts {
		delete(cfg.RuntimeParams, k)
	}
	conn, err := pgconn.ConnectConfig(ctx, &cfg.Config)
	if err != nil {
		return nil, fmt.Errorf("opening a replication connection: %w", connectFailure(cfg, mode, err))
	}
	return conn, nil
}

// target names the database without credentials, for messages.
func (s *Source) target() string {
	return fmt.Sprintf("database %q on %s", s.database, s.servers)
}
