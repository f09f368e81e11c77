package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// One chunk read's transaction: its MVCC snapshot, the rows, and the check
// that the table still has the columns the snapshot described it with.

// snapshotQuery reads the MVCC snapshot of the read's transaction and the
// transactions in progress for it whose commit status is already committed
// (comma-separated).
const snapshotQuery = `SELECT pg_current_snapshot()::text,
	array_to_string(ARRAY(SELECT x FROM pg_snapshot_xip(pg_current_snapshot()) AS x WHERE pg_xact_status(x) = 'committed'), ',')`

// readRows reads one chunk in a REPEATABLE READ, READ ONLY transaction: the
// rows with key in (lo, hi] (hi nil: the first limit rows after lo) that
// hold for where, in key order, as text, and the transaction's MVCC
// snapshot. After BEGIN, one round trip sends LOCK TABLE ONLY ... IN ACCESS
// SHARE MODE (the root's lock, privileges checked on it alone, as for a
// SELECT; column DDL on a partitioned table locks its root; no snapshot yet:
// so the transaction's snapshot is taken after every DDL on the table that
// committed before the lock, and none commits until the transaction ends),
// the MVCC snapshot, the chunk and the table's columns from pg_attribute,
// which the snapshot then shows as the chunk's read saw them: other columns
// than t's are a tableChangedError.
func (s *Source) readRows(ctx context.Context, conn *pgx.Conn, t *snapTable, where string, lo, hi []string, limit int) ([][][]byte, *visibility, error) {
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, nil, fmt.Errorf("starting a snapshot read of %s: %w", t.name, err)
	}
	defer tx.Rollback(context.Background())
	schema, name := SplitTable(t.name)
	q, args := t.chunkQuery(where, lo, hi, limit)
	var b pgconn.Batch
	b.ExecParams("LOCK TABLE ONLY "+pgx.Identifier{schema, name}.Sanitize()+" IN ACCESS SHARE MODE", nil, nil, nil, nil)
	b.ExecParams(snapshotQuery, nil, nil, nil, nil)
	b.ExecParams(q, args, nil, nil, []int16{pgx.TextFormatCode})
	b.ExecParams(columnsQuery, [][]byte{[]byte(strconv.FormatUint(uint64(t.oid), 10))}, nil, nil, nil)
	res, err := tx.Conn().PgConn().ExecBatch(ctx, &b).ReadAll()
	if err != nil {
		return nil, nil, readError(t, where, res, err)
	}
	if len(res) != 4 || len(res[1].Rows) != 1 {
		return nil, nil, &ProtocolError{Err: fmt.Errorf("a snapshot chunk read of %s returned %d results, want 4 (and one MVCC snapshot)", t.name, len(res))}
	}
	var committed []string
	if c := string(res[1].Rows[0][1]); c != "" {
		committed = strings.Split(c, ",")
	}
	vis, err := parseVisibility(string(res[1].Rows[0][0]), committed)
	if err != nil {
		return nil, nil, &ProtocolError{Err: err}
	}
	if err := t.sameColumns(res[3].Rows); err != nil {
		return nil, nil, err
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, nil, fmt.Errorf("ending a snapshot read of %s: %w", t.name, err)
	}
	return res[2].Rows, vis, nil
}

// readError names the statement of readRows' batch that failed: the
// results before it came back whole, its own may have begun.
func readError(t *snapTable, where string, res []*pgconn.Result, err error) error {
	failed := len(res)
	if failed > 0 && res[failed-1].Err != nil {
		failed--
	}
	switch {
	case failed == 0:
		return fmt.Errorf("locking %s for a snapshot read (ACCESS SHARE, as a SELECT does): %w", t.name, err)
	case failed == 1:
		return fmt.Errorf("reading the MVCC snapshot of a read of %s: %w", t.name, err)
	case failed >= 3:
		return fmt.Errorf("reading the columns of %s (pg_attribute): %w", t.name, err)
	case where != "":
		err = fmt.Errorf("reading a snapshot chunk of %s where %s: %w", t.name, where, err)
	default:
		err = fmt.Errorf("reading a snapshot chunk of %s: %w", t.name, err)
	}
	if pe := (*pgconn.PgError)(nil); errors.As(err, &pe) && pe.Code == "42703" { // undefined_column: renamed or dropped
		return &tableChangedError{err: err}
	}
	return err
}

// columnsQuery lists a table's columns as readTable does: name, type and
// attgenerated, in attnum order (generated ones too: sameColumns skips the
// ones pgoutput does not send). Read in the chunk's transaction, after its
// lock, it shows the columns the chunk has.
const columnsQuery = `SELECT attname, atttypid, attgenerated::text FROM pg_attribute
	WHERE attrelid = $1::oid AND attnum > 0 AND NOT attisdropped ORDER BY attnum`

// tableChangedError: a chunk read found the table's columns other than
// when the snapshot described it (a column renamed, dropped, added or
// changed type by DDL meanwhile). The reader describes the table again and
// reads the chunk again; the chunk's rows were not emitted.
type tableChangedError struct{ err error }

func (e *tableChangedError) Error() string { return e.err.Error() }
func (e *tableChangedError) Unwrap() error { return e.err }

// sameColumns is nil when rows (columnsQuery's, as text) are t's columns.
func (t *snapTable) sameColumns(rows [][][]byte) error {
	var now []string
	for _, r := range rows {
		if !leftOut(string(r[2]), t.genStored) {
			now = append(now, string(r[0])+" "+string(r[1]))
		}
	}
	was := make([]string, len(t.cols))
	for i, c := range t.cols {
		was[i] = c.Name + " " + strconv.FormatUint(uint64(c.TypeOID), 10)
	}
	if !slices.Equal(now, was) {
		return &tableChangedError{err: fmt.Errorf("the columns of %s changed while a snapshot read it: (name, type oid) %v, then %v", t.name, was, now)}
	}
	return nil
}
