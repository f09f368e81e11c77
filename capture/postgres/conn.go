package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// sessionParams fix the text forms of values so that the stream (the
// walsender formats values with its session's settings) and the snapshot
// queries produce the same text, which pgvalue expects.
var sessionParams = map[string]string{
	"DateStyle":          "ISO, MDY",
	"IntervalStyle":      "postgres",
	"TimeZone":           "UTC",
	"extra_float_digits": "3",
	"bytea_output":       "hex",
	"application_name":   "chronicler-capture",
}

// connect opens a normal connection to the captured database.
func (s *Source) connect(ctx context.Context) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(s.cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("parsing the capture url: %w", err)
	}
	for k, v := range sessionParams {
		cfg.RuntimeParams[k] = v
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connecting to %s: %w", s.target(), err)
	}
	return conn, nil
}

// connectReplication opens a logical replication connection
// (replication=database) to the captured database.
func (s *Source) connectReplication(ctx context.Context) (*pgconn.PgConn, error) {
	cfg, err := pgconn.ParseConfig(s.cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("parsing the capture url: %w", err)
	}
	for k, v := range sessionParams {
		cfg.RuntimeParams[k] = v
	}
	cfg.RuntimeParams["replication"] = "database"
	conn, err := pgconn.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("opening a replication connection to %s: %w", s.target(), err)
	}
	return conn, nil
}

// target names the database without credentials, for messages.
func (s *Source) target() string {
	return fmt.Sprintf("database %q on %s:%d", s.database, s.host, s.port)
}
