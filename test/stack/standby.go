package stack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// StandbyConfig configures a physical streaming standby of a cluster.
type StandbyConfig struct {
	// Slot is the physical replication slot the standby streams from
	// (primary_slot_name), created on the primary. Default "standby1".
	Slot string
	// Settings are extra postgresql.conf settings of the standby; they
	// override the defaults (the primary's, plus hot_standby_feedback = on,
	// sync_replication_slots = on from Postgres 17, primary_conninfo,
	// primary_slot_name).
	Settings map[string]string
}

// StartStandby makes a physical streaming standby of p (same major and
// binaries), starts it and waits until it streams from p; t.Cleanup removes
// it. See [Postgres.NewStandby].
func (p *Postgres) StartStandby(t testing.TB, cfg StandbyConfig) *Postgres {
	t.Helper()
	s, err := p.NewStandby(cfg)
	if err != nil {
		t.Fatalf("stack: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// NewStandby makes a physical streaming standby of p and starts it:
//
//  1. a physical slot cfg.Slot on p, reserving WAL at once;
//  2. a base backup with the low-level API (pg_backup_start, a copy of the
//     data directory without what pg_basebackup leaves out, pg_backup_stop
//     and its backup_label). pg_basebackup is not used: the embedded builds
//     ship only the server, and Debian's refuses a newer server major;
//  3. what pg_basebackup -R writes: standby.signal, and primary_conninfo
//     (with dbname=postgres, which slot synchronization needs) and
//     primary_slot_name, with hot_standby_feedback = on and, from Postgres
//     17, sync_replication_slots = on;
//  4. start, then wait until p's walsender for the slot is streaming.
//
// Settings written with ALTER SYSTEM on p are not carried over: the
// standby's postgresql.auto.conf is written anew.
func (p *Postgres) NewStandby(cfg StandbyConfig) (*Postgres, error) {
	if cfg.Slot == "" {
		cfg.Slot = "standby1"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	conn, err := pgconn.Connect(ctx, p.DatabaseURL("postgres"))
	if err != nil {
		return nil, fmt.Errorf("standby: connecting to the primary: %w", err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "SELECT pg_create_physical_replication_slot("+quoteLiteral(cfg.Slot)+", true)").ReadAll(); err != nil {
		return nil, fmt.Errorf("standby: creating the physical slot %s on the primary: %w", cfg.Slot, err)
	}
	root, err := mkdirFor(p.who, "chronicler-pg-standby-")
	if err != nil {
		return nil, fmt.Errorf("standby: creating the cluster directory: %w", err)
	}
	s := &Postgres{Version: p.Version, BinDir: p.BinDir, root: root, who: p.who, logPath: filepath.Join(root, "postgres.log")}
	if err := p.baseBackup(ctx, conn, s.dataDir()); err != nil {
		s.Close()
		return nil, err
	}
	settings := map[string]string{
		"primary_conninfo":     quoteLiteral(fmt.Sprintf("host=127.0.0.1 port=%d user=postgres dbname=postgres application_name=%s", p.Port, cfg.Slot)),
		"primary_slot_name":    quoteLiteral(cfg.Slot),
		"hot_standby":          "on",
		"hot_standby_feedback": "on",
	}
	if p.Version >= 17 {
		settings["sync_replication_slots"] = "on"
	}
	for k, v := range cfg.Settings {
		settings[k] = v
	}
	if err := s.writeFile("standby.signal", ""); err != nil {
		s.Close()
		return nil, err
	}
	for attempt := 0; ; attempt++ {
		if s.Port, err = freePort(); err != nil {
			break
		}
		if err = s.writeConf(settings); err != nil {
			break
		}
		if err = s.Start(); err == nil || attempt == 2 || !strings.Contains(tail(s.logPath, 20), "could not bind") {
			break
		}
	}
	if err == nil {
		err = p.waitStreaming(ctx, conn, cfg.Slot)
	}
	if err != nil {
		err = fmt.Errorf("standby: %w; standby log tail:\n%s", err, tail(s.logPath, 30))
		s.Close()
		return nil, err
	}
	return s, nil
}

// baseBackup copies p's data directory into dest between pg_backup_start
// and pg_backup_stop on conn (one session, as the non-exclusive low-level
// API requires) and writes the backup_label it returns. Files that change
// during the copy are made consistent by replaying WAL from the backup's
// start, which the standby streams from its slot.
func (p *Postgres) baseBackup(ctx context.Context, conn *pgconn.PgConn, dest string) error {
	start, stop := "SELECT pg_backup_start('chronicler standby', true)", "SELECT labelfile, spcmapfile FROM pg_backup_stop(false)"
	if p.Version < 15 {
		start, stop = "SELECT pg_start_backup('chronicler standby', true, false)", "SELECT labelfile, spcmapfile FROM pg_stop_backup(false, false)"
	}
	if _, err := conn.Exec(ctx, start).ReadAll(); err != nil {
		return fmt.Errorf("standby: starting the base backup: %w", err)
	}
	if err := copyDataDir(p.dataDir(), dest, p.who); err != nil {
		return fmt.Errorf("standby: copying the data directory: %w", err)
	}
	res, err := conn.Exec(ctx, stop).ReadAll()
	if err != nil {
		return fmt.Errorf("standby: stopping the base backup: %w", err)
	}
	if len(res) != 1 || len(res[0].Rows) != 1 {
		return errors.New("standby: pg_backup_stop returned no row")
	}
	row := res[0].Rows[0]
	files := map[string][]byte{"backup_label": row[0], "tablespace_map": row[1]}
	for name, b := range files {
		if len(b) == 0 {
			continue
		}
		path := filepath.Join(dest, name)
		if err := os.WriteFile(path, b, 0o600); err != nil {
			return err
		}
		if p.who != nil {
			if err := os.Chown(path, int(p.who.uid), int(p.who.gid)); err != nil {
				return err
			}
		}
	}
	return nil
}

// skippedContents are the directories whose contents a base backup leaves
// out (as pg_basebackup does): WAL comes from streaming, the rest is
// runtime state.
var skippedContents = map[string]bool{
	"pg_wal": true, "pg_replslot": true, "pg_stat_tmp": true, "pg_dynshmem": true,
	"pg_notify": true, "pg_serial": true, "pg_snapshots": true, "pg_subtrans": true,
}

// skippedFiles are files a base backup leaves out.
var skippedFiles = map[string]bool{
	"postmaster.pid": true, "postmaster.opts": true, "backup_label": true, "tablespace_map": true,
	"postgresql.auto.conf.tmp": true, "current_logfiles": true,
}

// copyDataDir copies a live data directory, owned by who in the copy.
// Files that vanish during the copy (a server removes temporary files) are
// skipped.
func copyDataDir(src, dest string, who *runAs) error {
	chown := func(path string) error {
		if who == nil {
			return nil
		}
		return os.Lchown(path, int(who.uid), int(who.gid))
	}
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		target := filepath.Join(dest, rel)
		if d.IsDir() {
			if err := os.MkdirAll(target, 0o700); err != nil {
				return err
			}
			if err := chown(target); err != nil {
				return err
			}
			if rel == "pg_wal" {
				// The directory stays, with its archive_status; segments come from streaming.
				if err := os.MkdirAll(filepath.Join(target, "archive_status"), 0o700); err != nil {
					return err
				}
				if err := chown(filepath.Join(target, "archive_status")); err != nil {
					return err
				}
			}
			if skippedContents[rel] {
				return filepath.SkipDir
			}
			return nil
		}
		if skippedFiles[rel] || strings.HasSuffix(d.Name(), "pg_internal.init") || !d.Type().IsRegular() {
			return nil
		}
		if err := copyFile(path, target); errors.Is(err, fs.ErrNotExist) {
			return nil
		} else if err != nil {
			return err
		}
		return chown(target)
	})
}

func copyFile(src, dest string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dest, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// writeFile writes a file into the data directory, owned by the server's
// account.
func (p *Postgres) writeFile(name, content string) error {
	path := filepath.Join(p.dataDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		return err
	}
	if p.who != nil {
		return os.Chown(path, int(p.who.uid), int(p.who.gid))
	}
	return nil
}

// waitStreaming waits until the walsender of physical slot streams.
func (p *Postgres) waitStreaming(ctx context.Context, conn *pgconn.PgConn, slot string) error {
	q := "SELECT count(*) FROM pg_stat_replication r JOIN pg_replication_slots s ON s.active_pid = r.pid WHERE s.slot_name = " +
		quoteLiteral(slot) + " AND r.state = 'streaming'"
	for {
		res, err := conn.Exec(ctx, q).ReadAll()
		if err != nil {
			return fmt.Errorf("waiting for the standby to stream: %w", err)
		}
		if len(res) == 1 && len(res[0].Rows) == 1 && string(res[0].Rows[0][0]) != "0" {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the standby did not stream from slot %s: %w", slot, ctx.Err())
		case <-time.After(50 * time.Millisecond): // poll interval, bounded by ctx
		}
	}
}

// Promote promotes a standby (pg_promote, waiting up to 60s) and returns
// once it accepts writes.
func (p *Postgres) Promote() error {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, p.DatabaseURL("postgres"))
	if err != nil {
		return fmt.Errorf("promoting: %w", err)
	}
	defer conn.Close(context.Background())
	var ok bool
	if err := conn.QueryRow(ctx, "SELECT pg_promote(true, 60)").Scan(&ok); err != nil {
		return fmt.Errorf("promoting: %w", err)
	}
	if !ok {
		return fmt.Errorf("pg_promote did not finish within 60s; log tail:\n%s", tail(p.logPath, 30))
	}
	for {
		var rec bool
		if err := conn.QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&rec); err != nil {
			return fmt.Errorf("promoting: %w", err)
		}
		if !rec {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("still in recovery after pg_promote: %w", ctx.Err())
		case <-time.After(20 * time.Millisecond): // poll interval, bounded by ctx
		}
	}
}

// MultiHostURL is a connection URL for db naming every cluster given, in
// order, with target_session_attrs=read-write: a client connects to the
// first that accepts writes, so it follows a promotion.
func MultiHostURL(db string, clusters ...*Postgres) string {
	hosts := make([]string, len(clusters))
	for i, c := range clusters {
		hosts[i] = "127.0.0.1:" + strconv.Itoa(c.Port)
	}
	return fmt.Sprintf("postgres://postgres@%s/%s?sslmode=disable&target_session_attrs=read-write&connect_timeout=5", strings.Join(hosts, ","), db)
}

func quoteLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
