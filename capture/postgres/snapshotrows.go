package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// One chunk read's transaction: its MVCC snapshot, the rows, and the check
// that the table still has the columns the snapshot described it with.

// snapshotQuery reads the MVCC snapshot of the read's transaction and the
// transactions in progress for it whose commit status is already committed.
const snapshotQuery = `SELECT pg_current_snapshot()::text,
	ARRAY(SELECT x::text FROM pg_snapshot_xip(pg_current_snapshot()) AS x WHERE pg_xact_status(x) = 'committed')`

// readRows reads one chunk in a REPEATABLE READ, READ ONLY transaction: the
// rows with key in (lo, hi] (hi nil: the first limit rows after lo) that
// hold for where, in key order, as text, and the transaction's MVCC
// snapshot. The transaction lasts two round trips (the MVCC snapshot;
// the chunk and the table's columns, checked against t: tableChangedError).
func (s *Source) readRows(ctx context.Context, conn *pgx.Conn, t *snapTable, where string, lo, hi []string, limit int) ([][][]byte, *visibility, error) {
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, nil, fmt.Errorf("starting a snapshot read of %s: %w", t.name, err)
	}
	defer tx.Rollback(context.Background())
	var text string
	var committed []string
	if err := tx.QueryRow(ctx, snapshotQuery).Scan(&text, &committed); err != nil {
		return nil, nil, fmt.Errorf("reading the MVCC snapshot of a read of %s: %w", t.name, err)
	}
	vis, err := parseVisibility(text, committed)
	if err != nil {
		return nil, nil, &ProtocolError{Err: err}
	}
	// The chunk and, in the same round trip, the table's columns as the
	// chunk's read saw them: the read holds the table's lock until the
	// transaction ends, so no DDL commits between the two.
	q, args := t.chunkQuery(where, lo, hi, limit)
	var b pgconn.Batch
	b.ExecParams(q, args, nil, nil, []int16{pgx.TextFormatCode})
	b.ExecParams(columnsQuery, [][]byte{[]byte(strconv.FormatUint(uint64(t.oid), 10))}, nil, nil, nil)
	res, err := tx.Conn().PgConn().ExecBatch(ctx, &b).ReadAll()
	if err != nil {
		if where != "" {
			err = fmt.Errorf("reading a snapshot chunk of %s where %s: %w", t.name, where, err)
		} else {
			err = fmt.Errorf("reading a snapshot chunk of %s: %w", t.name, err)
		}
		if pe := (*pgconn.PgError)(nil); errors.As(err, &pe) && pe.Code == "42703" { // undefined_column: renamed or dropped
			err = &tableChangedError{err: err}
		}
		return nil, nil, err
	}
	if len(res) != 2 {
		return nil, nil, &ProtocolError{Err: fmt.Errorf("a snapshot chunk read of %s returned %d results, want 2", t.name, len(res))}
	}
	if err := t.sameColumns(res[1].Rows); err != nil {
		return nil, nil, err
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, nil, fmt.Errorf("ending a snapshot read of %s: %w", t.name, err)
	}
	return res[0].Rows, vis, nil
}

// columnsQuery lists a table's columns as readTable does: name and type,
// in attnum order (generated ones too: sameColumns skips them).
const columnsQuery = `SELECT attname, atttypid, attgenerated <> '' FROM pg_attribute
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
		if string(r[2]) != "t" {
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
