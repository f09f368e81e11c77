package postgres

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/chronicler-dev/chronicler/capture/pgvalue"
	"github.com/chronicler-dev/chronicler/mapping/contract"
)

// freshSnapshot creates the slot with an exported snapshot, reads every
// table in it and returns the slot's consistent point. The replication
// connection stays idle (so the exported snapshot stays valid) until the
// reading transaction has imported it.
func (s *Source) freshSnapshot(ctx context.Context, conn *pgx.Conn, repl *pgconn.PgConn, sink Sink) (contract.LSN, error) {
	s.phase.Store(int32(PhaseSnapshot))
	s.ddl(s.slotStatement())
	res, err := pglogrepl.CreateReplicationSlot(ctx, repl, s.cfg.Slot, "pgoutput", s.slotOptions(true))
	if err != nil {
		return 0, fmt.Errorf("creating replication slot %q: %w", s.cfg.Slot, err)
	}
	point, err := contract.ParseLSN(res.ConsistentPoint)
	if err != nil {
		return 0, &ProtocolError{Err: err}
	}
	prog := SnapshotProgress{Slot: s.cfg.Slot, Point: point, Tables: s.cfg.Tables}
	if err := s.cfg.SnapshotState.Save(ctx, prog); err != nil {
		return 0, fmt.Errorf("saving the snapshot state of slot %q: %w", s.cfg.Slot, err)
	}
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return 0, fmt.Errorf("starting the snapshot transaction: %w", err)
	}
	defer tx.Rollback(context.Background())
	if _, err := tx.Exec(ctx, "SET TRANSACTION SNAPSHOT '"+res.SnapshotName+"'"); err != nil {
		return 0, fmt.Errorf("importing the slot's exported snapshot %s: %w", res.SnapshotName, err)
	}
	s.log.Info("capture: initial snapshot started", "slot", s.cfg.Slot, "snapshot_point", point.String(), "tables", len(prog.Tables))
	return s.finishSnapshot(ctx, tx, repl, sink, prog)
}

// resumeSnapshot continues a snapshot that a crash interrupted. The exported
// snapshot died with its connection, so the remaining rows can only be read
// in a new snapshot; that equals reading them at the slot's consistent point
// exactly when no change to an unfinished table was committed since that
// point (completed tables are safe: their later changes stream from the
// point). The check runs after the new snapshot is taken, so anything the
// new snapshot sees is already in the WAL the check decodes.
func (s *Source) resumeSnapshot(ctx context.Context, conn *pgx.Conn, repl *pgconn.PgConn, sink Sink, prog SnapshotProgress) (point contract.LSN, resumed bool, reason string, err error) {
	s.phase.Store(int32(PhaseSnapshot))
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead})
	if err != nil {
		return 0, false, "", fmt.Errorf("starting the snapshot transaction: %w", err)
	}
	defer tx.Rollback(context.Background())
	if _, err := tx.Exec(ctx, "SELECT 1"); err != nil { // takes the transaction's snapshot
		return 0, false, "", fmt.Errorf("starting the snapshot transaction: %w", err)
	}
	ok, reason, err := s.canResume(ctx, tx, prog)
	if err != nil || !ok {
		return 0, false, reason, err
	}
	s.log.Info("capture: resuming the initial snapshot from the last completed chunk",
		"slot", s.cfg.Slot, "table", prog.Tables[min(prog.Table, len(prog.Tables)-1)], "rows_done", prog.Rows, "why_consistent", reason)
	point, err = s.finishSnapshot(ctx, tx, repl, sink, prog)
	return point, err == nil, reason, err
}

// canResume decodes (without consuming) what the slot holds since its
// consistent point and reports whether an unfinished table changed.
func (s *Source) canResume(ctx context.Context, tx pgx.Tx, prog SnapshotProgress) (bool, string, error) {
	if strings.Join(prog.Tables, ",") != strings.Join(s.cfg.Tables, ",") {
		return false, "the configured tables changed since the snapshot started", nil
	}
	unfinished := map[string]bool{}
	for _, t := range prog.Tables[prog.Table:] {
		unfinished[t] = true
	}
	rows, err := tx.Query(ctx, `SELECT data FROM pg_logical_slot_peek_binary_changes($1, NULL, NULL,
		'proto_version', '1', 'publication_names', $2)`, s.cfg.Slot, s.cfg.Publication)
	if err != nil {
		return false, "", fmt.Errorf("reading slot %q's pending changes to check the snapshot can resume: %w", s.cfg.Slot, err)
	}
	defer rows.Close()
	rels := map[uint32]string{}
	changed := ""
	for rows.Next() && changed == "" {
		var data []byte
		if err := rows.Scan(&data); err != nil {
			return false, "", err
		}
		msg, err := pglogrepl.Parse(data)
		if err != nil {
			return false, "", &ProtocolError{Err: err}
		}
		var ids []uint32
		switch m := msg.(type) {
		case *pglogrepl.RelationMessage:
			rels[m.RelationID] = m.Namespace + "." + m.RelationName
		case *pglogrepl.InsertMessage:
			ids = []uint32{m.RelationID}
		case *pglogrepl.UpdateMessage:
			ids = []uint32{m.RelationID}
		case *pglogrepl.DeleteMessage:
			ids = []uint32{m.RelationID}
		case *pglogrepl.TruncateMessage:
			ids = m.RelationIDs
		}
		for _, id := range ids {
			if unfinished[rels[id]] {
				changed = rels[id]
			}
		}
	}
	if err := rows.Err(); err != nil {
		return false, "", fmt.Errorf("reading slot %q's pending changes: %w", s.cfg.Slot, err)
	}
	if changed != "" {
		return false, fmt.Sprintf("%s changed after the snapshot point %s", changed, prog.Point), nil
	}
	return true, fmt.Sprintf("no unfinished table changed after the snapshot point %s", prog.Point), nil
}

// snapshotTx is the Tx every snapshot chunk carries: the slot's consistent
// point as commit LSN, no xid, zero commit time. Ordinals number the rows
// of the whole snapshot, so (point, ordinal) is unique and deterministic.
func snapshotTx(point contract.LSN) contract.Tx { return contract.Tx{CommitLSN: point} }

// finishSnapshot reads the tables from prog onwards in tx, delivering each
// chunk as one transaction and saving progress after the downstream
// acknowledged it; then marks the snapshot done.
func (s *Source) finishSnapshot(ctx context.Context, tx pgx.Tx, repl *pgconn.PgConn, sink Sink, prog SnapshotProgress) (contract.LSN, error) {
	total, err := s.estimateRows(ctx, tx, prog.Tables)
	if err != nil {
		return 0, err
	}
	s.m.snapshotRowsAll.Set(float64(total))
	pr := progress{start: time.Now(), startRows: prog.Rows, total: total}
	for prog.Table < len(prog.Tables) {
		if err := s.snapshotTable(ctx, tx, sink, &prog, &pr); err != nil {
			return 0, err
		}
		prog.Table++
		prog.LastKey = nil
		if err := s.cfg.SnapshotState.Save(ctx, prog); err != nil {
			return 0, fmt.Errorf("saving the snapshot state of slot %q: %w", s.cfg.Slot, err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, fmt.Errorf("ending the snapshot transaction: %w", err)
	}
	prog.Done = true
	if err := s.cfg.SnapshotState.Save(ctx, prog); err != nil {
		return 0, fmt.Errorf("saving the snapshot state of slot %q: %w", s.cfg.Slot, err)
	}
	pr.report(s, prog.Rows, true)
	s.confirmed = max(s.confirmed, prog.Point)
	if s.cfg.SnapshotMode == SnapshotInitialOnly {
		if err := pglogrepl.DropReplicationSlot(ctx, repl, s.cfg.Slot, pglogrepl.DropReplicationSlotOptions{}); err != nil {
			return 0, fmt.Errorf("dropping replication slot %q after the initial_only snapshot: %w", s.cfg.Slot, err)
		}
		return 0, errSnapshotOnlyDone
	}
	return prog.Point, nil
}

func (s *Source) estimateRows(ctx context.Context, tx pgx.Tx, tables []string) (uint64, error) {
	var total uint64
	for _, t := range tables {
		schema, name := SplitTable(t)
		ident := pgx.Identifier{schema, name}.Sanitize()
		var est float64
		if err := tx.QueryRow(ctx, `SELECT reltuples FROM pg_class WHERE oid = to_regclass($1)`, ident).Scan(&est); err != nil {
			return 0, fmt.Errorf("estimating the rows of %s: %w", t, err)
		}
		if est < 0 { // never vacuumed or analyzed: count
			var n int64
			if err := tx.QueryRow(ctx, "SELECT count(*) FROM "+ident).Scan(&n); err != nil {
				return 0, fmt.Errorf("counting the rows of %s: %w", t, err)
			}
			est = float64(n)
		}
		total += uint64(est)
	}
	return total, nil
}

// snapshotTable reads one table in key order, chunk by chunk, from
// prog.LastKey. Tables without a primary key are read in ctid order (stable
// while the table is not rewritten).
func (s *Source) snapshotTable(ctx context.Context, tx pgx.Tx, sink Sink, prog *SnapshotProgress, pr *progress) error {
	table := prog.Tables[prog.Table]
	schema, name := SplitTable(table)
	t, err := readTable(ctx, tx, table)
	if err != nil {
		return err
	}
	if !t.Exists {
		return &TableNotFoundError{Table: table}
	}
	cols := t.Columns
	types := make([]*pgvalue.Type, len(cols))
	var keyNames, keyExprs, selects []string
	for i, c := range cols {
		if types[i], err = s.types.resolve(ctx, tx.Conn(), c.TypeOID); err != nil {
			return err
		}
		q := pgx.Identifier{c.Name}.Sanitize()
		selects = append(selects, q)
		if c.Key {
			keyNames = append(keyNames, c.Name)
			keyExprs = append(keyExprs, q)
		}
	}
	keyIdx := make([]int, 0, len(keyExprs))
	for i, c := range cols {
		if c.Key {
			keyIdx = append(keyIdx, i)
		}
	}
	if len(keyExprs) == 0 {
		keyExprs = []string{"ctid"}
		selects = append(selects, "ctid")
		keyIdx = []int{len(cols)}
	}
	from := pgx.Identifier{schema, name}.Sanitize()
	for {
		var b strings.Builder
		fmt.Fprintf(&b, "SELECT %s FROM %s", strings.Join(selects, ", "), from)
		var args [][]byte
		if prog.LastKey != nil {
			ph := make([]string, len(prog.LastKey))
			for i, k := range prog.LastKey {
				ph[i] = fmt.Sprintf("$%d", i+1)
				if keyExprs[0] == "ctid" {
					ph[i] += "::tid"
				}
				args = append(args, []byte(k))
			}
			fmt.Fprintf(&b, " WHERE (%s) > (%s)", strings.Join(keyExprs, ", "), strings.Join(ph, ", "))
		}
		fmt.Fprintf(&b, " ORDER BY %s LIMIT %d", strings.Join(keyExprs, ", "), s.cfg.SnapshotChunkRows)
		res := tx.Conn().PgConn().ExecParams(ctx, b.String(), args, nil, nil, []int16{pgx.TextFormatCode}).Read()
		if res.Err != nil {
			return fmt.Errorf("reading a snapshot chunk of %s: %w", table, res.Err)
		}
		if len(res.Rows) == 0 {
			return nil
		}
		if err := s.deliverChunk(ctx, sink, prog, table, cols, types, keyNames, res.Rows); err != nil {
			return err
		}
		last := res.Rows[len(res.Rows)-1]
		prog.LastKey = make([]string, len(keyIdx))
		for i, k := range keyIdx {
			prog.LastKey[i] = string(last[k])
		}
		prog.Rows += uint64(len(res.Rows))
		if err := s.cfg.SnapshotState.Save(ctx, *prog); err != nil {
			return fmt.Errorf("saving the snapshot state of slot %q: %w", s.cfg.Slot, err)
		}
		pr.report(s, prog.Rows, false)
		if len(res.Rows) < s.cfg.SnapshotChunkRows {
			return nil
		}
	}
}

// deliverChunk hands one chunk to the sink as a transaction and waits until
// the downstream acknowledged it.
func (s *Source) deliverChunk(ctx context.Context, sink Sink, prog *SnapshotProgress, table string, cols []Column, types []*pgvalue.Type, key []string, rows [][][]byte) error {
	schema, name := SplitTable(table)
	tx := snapshotTx(prog.Point)
	if err := sink.Begin(ctx, tx); err != nil {
		return &SinkError{Op: "begin", Err: err}
	}
	for i, row := range rows {
		vals := make(map[string]any, len(cols))
		for j, c := range cols {
			if row[j] == nil {
				vals[c.Name] = nil
				continue
			}
			vals[c.Name] = s.decodeValue(types[j], row[j])
		}
		c := &contract.Change{
			Op: contract.OpSnapshot, Database: s.database, Schema: schema, Table: name,
			Key: key, New: vals, Tx: tx, Ordinal: prog.Rows + uint64(i),
		}
		if err := sink.Change(ctx, c); err != nil {
			return &SinkError{Op: "change", Err: err}
		}
	}
	if ctx.Err() != nil {
		if err := sink.Abort(context.WithoutCancel(ctx), tx); err != nil {
			return &SinkError{Op: "abort", Err: err}
		}
		return ctx.Err()
	}
	s.m.changes.WithLabelValues(contract.OpSnapshot.String()).Add(float64(len(rows)))
	seq := s.ackSeq.Load()
	if err := sink.Commit(ctx, tx); err != nil {
		return &SinkError{Op: "commit", Err: err}
	}
	s.m.transactions.Inc()
	for s.ackSeq.Load() <= seq || contract.LSN(s.acked.Load()) < prog.Point {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-s.ackCh:
		}
	}
	return nil
}

// progress reports snapshot progress in logs (at most every 5 s) and metrics.
type progress struct {
	start     time.Time
	startRows uint64
	total     uint64
	lastLog   time.Time
}

func (p *progress) report(s *Source, done uint64, final bool) {
	elapsed := time.Since(p.start).Seconds()
	rate := 0.0
	if elapsed > 0 {
		rate = float64(done-p.startRows) / elapsed
	}
	eta := 0.0
	if rate > 0 && p.total > done {
		eta = float64(p.total-done) / rate
	}
	s.m.snapshotRowsDone.Set(float64(done))
	s.m.snapshotRate.Set(rate)
	s.m.snapshotETA.Set(eta)
	if final {
		s.log.Info("capture: initial snapshot complete", "slot", s.cfg.Slot, "rows", done, "rows_per_second", int64(rate))
		return
	}
	if time.Since(p.lastLog) >= 5*time.Second {
		p.lastLog = time.Now()
		s.log.Info("capture: initial snapshot progress", "slot", s.cfg.Slot, "rows_done", done, "rows_total_estimate", p.total,
			"rows_per_second", int64(rate), "eta", time.Duration(eta*float64(time.Second)).Round(time.Second))
	}
}
