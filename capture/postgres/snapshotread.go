package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/chronicler-dev/chronicler/capture/retry"
	"github.com/chronicler-dev/chronicler/mapping/contract"
)

// maxRereads bounds how often the rows of one chunk that a concurrent
// change dropped are read again; rows still dropped after that are left to
// the stream, whose change carries them (counted, logged).
const maxRereads = 8

// runSnapshots is a session's snapshot reader: it reads the active
// snapshots one at a time, in request order, chunk by chunk, on a
// connection of its own, until ctx ends (the session's end). A snapshot it
// cannot read (a table gone, a condition that fails) is marked failed; a
// failed initial snapshot ends the session with its error.
func (s *Source) runSnapshots(ctx context.Context) {
	sn := s.snap
	var conn *pgx.Conn
	defer func() {
		if conn != nil {
			conn.Close(context.Background())
		}
	}()
	backoff := retry.Backoff{First: s.cfg.ReconnectMin, Max: s.cfg.ReconnectMax}
	// rechecked: snapshots whose first chunk this session completed. The
	// first chunk of each is looked for in the store (a run before this
	// session may have stored it without saving its progress).
	rechecked := map[string]bool{}
	for ctx.Err() == nil {
		id, ok := sn.next()
		if !ok {
			select {
			case <-ctx.Done():
				return
			case <-sn.wake:
			}
			continue
		}
		if conn == nil {
			c, err := s.connectSnapshot(ctx)
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				s.log.Warn("capture: snapshot reader cannot connect; retrying", "error", err, "backoff", backoff.Next())
				backoff.Wait(ctx)
				continue
			}
			conn = c
		}
		err := s.readSnapshot(ctx, conn, id, rechecked)
		switch {
		case err == nil || errors.Is(err, errSnapshotCancelled):
			backoff.Reset()
		case ctx.Err() != nil:
			return
		case transientRead(err):
			// The failed chunk's rows may have been emitted all the same
			// (its high watermark committed, the answer lost): the retry
			// looks for them in the store like the first chunk of a session.
			delete(rechecked, id)
			s.log.Warn("capture: snapshot read failed; retrying from its last completed chunk", "snapshot", id, "error", err, "backoff", backoff.Next())
			conn.Close(context.Background())
			conn = nil
			backoff.Wait(ctx)
		default:
			s.failSnapshot(ctx, id, err)
		}
	}
}

// transientRead: a read worth retrying. A statement cancelled by
// statement_timeout is not (the same chunk would time out again).
func transientRead(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "57014" {
		return false
	}
	return transient(err)
}

// failSnapshot records that snapshot id cannot be read. For the initial
// snapshot that ends capture (Run returns the error); a requested one is
// marked failed and the next one starts.
func (s *Source) failSnapshot(ctx context.Context, id string, err error) {
	e, _ := s.snap.get(id)
	if e.Initial {
		s.log.Error("capture: the initial snapshot cannot be read", "snapshot", id, "error", err)
		s.snap.finish(&SnapshotError{ID: id, Err: err})
		<-ctx.Done()
		return
	}
	s.log.Error("capture: snapshot failed", "snapshot", id, "error", err)
	if serr := s.snap.update(ctx, id, func(e *Snapshot) {
		e.Status, e.Error, e.UpdatedAt = SnapshotFailed, err.Error(), time.Now()
	}); serr != nil && ctx.Err() == nil {
		s.log.Error("capture: saving the failed snapshot's state failed", "snapshot", id, "error", serr)
	}
}

// connectSnapshot opens the reader's connection: the capture session's
// settings, and synchronous_commit local, so that the watermarks never wait
// for a synchronous standby (transactions that do are handled by the
// watermark rule: see window.decide).
func (s *Source) connectSnapshot(ctx context.Context) (*pgx.Conn, error) {
	conn, err := s.connect(ctx)
	if err != nil {
		return nil, fmt.Errorf("snapshot reader: %w", err)
	}
	if _, err := conn.Exec(ctx, "SET synchronous_commit = local"); err != nil {
		conn.Close(context.Background())
		return nil, fmt.Errorf("snapshot reader: setting synchronous_commit on %s: %w", s.target(), err)
	}
	return conn, nil
}

// readSnapshot reads snapshot id from where it stopped to its end (or its
// cancellation), saving its progress after every chunk the downstream
// acknowledged. A table's end is saved with its last chunk (or with the
// next save, when its last read returned no row), its last one with the
// snapshot's end.
func (s *Source) readSnapshot(ctx context.Context, conn *pgx.Conn, id string, rechecked map[string]bool) error {
	sn := s.snap
	e, ok := sn.get(id)
	if !ok || !e.Active() {
		return nil
	}
	pr, err := s.startSnapshot(ctx, conn, &e)
	if err != nil {
		return err
	}
	pace := pacer{rate: s.cfg.SnapshotMaxRowsPerSecond}
	for e.Table < len(e.Tables) {
		table := e.Tables[e.Table]
		if !slices.Contains(s.captured().tables, table) {
			return &SnapshotTableError{Table: table, Reason: "is no longer captured (postgres.tables)"}
		}
		tbl, err := s.snapTable(ctx, conn, table)
		if err != nil {
			return err
		}
		if err := s.readSnapshotTable(ctx, conn, &e, tbl, &pr, &pace, rechecked); err != nil {
			return err
		}
	}
	if err := sn.update(ctx, id, func(b *Snapshot) {
		b.Table, b.LastKey = e.Table, nil
		b.Status, b.UpdatedAt, b.RowsPerSecond = SnapshotDone, time.Now(), pr.rate(e.Rows, time.Now())
	}); err != nil {
		return err
	}
	pr.report(s, e.Rows, true)
	if e.Initial && s.cfg.SnapshotMode == SnapshotInitialOnly {
		sn.finish(errSnapshotOnlyDone)
	}
	return nil
}

// startSnapshot marks snapshot e running (estimating its rows the first
// time), logs its start or resume, and returns its progress reporter; a
// snapshot cancelled meanwhile stays cancelled (errSnapshotCancelled).
func (s *Source) startSnapshot(ctx context.Context, conn *pgx.Conn, e *Snapshot) (progress, error) {
	now := time.Now()
	if e.Estimated == 0 {
		est, err := s.estimateRows(ctx, conn, e.Tables[e.Table:], e.Where)
		if err != nil {
			return progress{}, err
		}
		e.Estimated = e.Rows + est
	}
	resumed := e.Status == SnapshotRunning
	if err := s.snap.start(ctx, e.ID, func(b *Snapshot) {
		b.Status, b.Estimated, b.UpdatedAt = SnapshotRunning, e.Estimated, now
		if b.StartedAt.IsZero() {
			b.StartedAt = now
		}
	}); err != nil {
		return progress{}, err
	}
	if resumed {
		s.log.Info("capture: snapshot resumed at its last completed chunk", "snapshot", e.ID, "initial", e.Initial,
			"table", e.Tables[min(e.Table, len(e.Tables)-1)], "rows_done", e.Rows, "floor", e.Floor.String())
	} else {
		s.log.Info("capture: snapshot started", "snapshot", e.ID, "initial", e.Initial, "tables", e.Tables, "where", e.Where, "rows_estimated", e.Estimated)
	}
	return progress{start: now, startRows: e.Rows, total: e.Estimated, id: e.ID}, nil
}

// readSnapshotTable reads the chunks of e's current table tbl, from e.LastKey
// to its end, saving e's progress after each, and moves e to the next table
// (the last chunk's save records it).
func (s *Source) readSnapshotTable(ctx context.Context, conn *pgx.Conn, e *Snapshot, tbl *snapTable, pr *progress, pace *pacer, rechecked map[string]bool) error {
	sn, id := s.snap, e.ID
	for {
		if cur, _ := sn.get(id); cur.Status == SnapshotCancelled {
			return errSnapshotCancelled
		}
		if !retry.Sleep(ctx, pace.delay(time.Now())) {
			return ctx.Err()
		}
		started := time.Now()
		recheck := contract.LSN(0)
		if !rechecked[id] {
			recheck = e.Floor
		}
		out, err := s.readChunk(ctx, conn, e, tbl, recheck)
		if err != nil {
			return err
		}
		tbl = out.tbl
		rechecked[id] = true
		pace.add(out.read, started)
		if out.read == 0 {
			// The table ended with the chunk before: the next table's
			// first save (or the snapshot's end) records it.
			e.Table, e.LastKey = e.Table+1, nil
			return nil
		}
		e.LastKey, e.Rows, e.Floor, e.UpdatedAt = out.hi, e.Rows+uint64(out.emitted), max(e.Floor, out.hw), time.Now()
		if !out.full {
			e.Table, e.LastKey = e.Table+1, nil
		}
		e.RowsPerSecond = pr.rate(e.Rows, e.UpdatedAt)
		if err := sn.update(ctx, id, func(b *Snapshot) {
			b.Table, b.LastKey, b.Rows, b.Floor, b.UpdatedAt, b.RowsPerSecond = e.Table, e.LastKey, e.Rows, e.Floor, e.UpdatedAt, e.RowsPerSecond
		}); err != nil {
			return err
		}
		s.m.snapshotChunks.Inc()
		pr.report(s, e.Rows, false)
		if !out.full {
			return nil
		}
	}
}

// chunkOutcome is one completed chunk.
type chunkOutcome struct {
	tbl     *snapTable   // the table as last described (again after DDL)
	read    int          // rows the first read returned
	full    bool         // it returned a whole chunk: the table may go on
	hi      []string     // the key (text forms) of its last row
	emitted int          // rows emitted, re-reads included
	hw      contract.LSN // the commit LSN of its last high watermark
}

// readChunk reads the chunk after e.LastKey of tbl: a first attempt of up
// to SnapshotChunkRows rows (fewer with a rate limit), then, while a
// concurrent change dropped rows of it, attempts that read the chunk's key
// range again and emit only those rows. It waits until the downstream
// acknowledged every attempt that emitted rows.
func (s *Source) readChunk(ctx context.Context, conn *pgx.Conn, e *Snapshot, tbl *snapTable, recheck contract.LSN) (chunkOutcome, error) {
	out := chunkOutcome{tbl: tbl}
	limit := s.cfg.SnapshotChunkRows
	if r := s.cfg.SnapshotMaxRowsPerSecond; r > 0 && float64(limit) > r {
		limit = max(1, int(r))
	}
	var only map[string]bool
	var hi []string
	rereads, redescribed, waited := 0, 0, time.Duration(0)
	wait := retry.Backoff{First: 20 * time.Millisecond, Max: time.Second}
	for {
		a := &attempt{nonce: newNonce(), snap: e.ID, tbl: tbl, only: only, recheck: recheck, result: make(chan attemptResult, 1)}
		rows, r, err := s.attemptChunk(ctx, conn, a, e.Where, e.LastKey, hi, limit)
		if err != nil {
			if tbl, err = s.redescribe(ctx, conn, e.ID, tbl, err, &redescribed); err != nil {
				return out, err
			}
			out.tbl = tbl
			continue
		}
		if len(r.waitFor) > 0 {
			// The read may have missed a change the stream delivered
			// before the low watermark: read again once it is visible.
			s.m.snapshotWaits.Inc()
			d := wait.Next()
			if waited += d; waited >= 5*time.Second {
				s.log.Warn("capture: snapshot chunk waits for transactions that committed but are not visible yet (a synchronous standby?)",
					"snapshot", e.ID, "table", tbl.name, "xids", r.waitFor, "waited", waited.Round(time.Second))
				waited = 0
			}
			if !retry.Sleep(ctx, d) {
				return out, ctx.Err()
			}
			continue
		}
		if hi == nil {
			out.read, out.full = len(rows), len(rows) == limit
			if len(rows) == 0 {
				return out, nil
			}
			last := rows[len(rows)-1]
			hi = make([]string, len(tbl.keyIdx))
			for i, k := range tbl.keyIdx {
				hi[i] = string(last[k])
			}
			out.hi = hi
		}
		out.emitted += r.emitted
		out.hw = max(out.hw, r.hw)
		if r.emitted > 0 {
			if err := s.waitAcked(ctx, r.hw); err != nil {
				return out, err
			}
		}
		if len(r.pending) == 0 {
			return out, nil
		}
		s.m.snapshotRequeued.Add(float64(len(r.pending)))
		if rereads++; rereads > maxRereads {
			s.log.Warn("capture: rows changed while their chunk was read, again and again; their changes in the stream carry them",
				"snapshot", e.ID, "table", tbl.name, "rows", len(r.pending), "rereads", maxRereads)
			return out, nil
		}
		only = r.pending
	}
}

// maxRedescribes bounds how often in a row one chunk's table is described
// again because its columns changed (tableChangedError): a condition
// (--where) naming a column the table no longer has fails every time.
const maxRedescribes = 3

// redescribe answers a chunk attempt's error: a tableChangedError, within
// maxRedescribes in a row (*n counts them), gives tbl as the catalog
// describes it now, to read the chunk again with; any other error is
// returned.
func (s *Source) redescribe(ctx context.Context, conn *pgx.Conn, snap string, tbl *snapTable, err error, n *int) (*snapTable, error) {
	var tc *tableChangedError
	if !errors.As(err, &tc) {
		return nil, err
	}
	if *n++; *n > maxRedescribes {
		return nil, err
	}
	s.log.Info("capture: a table's columns changed while a snapshot read it; the chunk is read again with its columns now",
		"snapshot", snap, "table", tbl.name, "reason", err)
	return s.snapTable(ctx, conn, tbl.name)
}

// attemptChunk is one attempt: low watermark, the read in a short
// REPEATABLE READ transaction with its MVCC snapshot, high watermark, then
// the receive loop's decision at the high watermark.
func (s *Source) attemptChunk(ctx context.Context, conn *pgx.Conn, a *attempt, where string, lo, hi []string, limit int) ([][][]byte, attemptResult, error) {
	s.snap.register(a)
	defer s.snap.unregister(a)
	if _, err := emitMessage(ctx, conn, snapshotMessage{Kind: msgLow, Slot: s.cfg.Slot, Attempt: a.nonce}); err != nil {
		return nil, attemptResult{}, err
	}
	rows, vis, err := s.readRows(ctx, conn, a.tbl, where, lo, hi, limit)
	if err != nil {
		return nil, attemptResult{}, err
	}
	s.snap.setRead(a, rows, vis)
	if _, err := emitMessage(ctx, conn, snapshotMessage{Kind: msgHigh, Slot: s.cfg.Slot, Attempt: a.nonce}); err != nil {
		return nil, attemptResult{}, err
	}
	select {
	case r := <-a.result:
		return rows, r, r.err
	case <-ctx.Done():
		return nil, attemptResult{}, ctx.Err()
	}
}

// waitAcked waits until the downstream acknowledged every transaction up to
// lsn (Source.Ack).
func (s *Source) waitAcked(ctx context.Context, lsn contract.LSN) error {
	for {
		ch := s.ackWaiter()
		if contract.LSN(s.acked.Load()) >= lsn {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ch:
		}
	}
}

// pacer spaces chunks so that the rows read per second stay at or below
// rate (no limit when rate <= 0): a chunk of n rows that started at t lets
// the next one start at t + n/rate, not before.
type pacer struct {
	rate float64
	due  time.Time
}

// delay is how long to wait at now before the next chunk.
func (p *pacer) delay(now time.Time) time.Duration {
	if p.rate <= 0 || !now.Before(p.due) {
		return 0
	}
	return p.due.Sub(now)
}

// add accounts for a chunk of n rows that started at started.
func (p *pacer) add(n int, started time.Time) {
	if p.rate <= 0 {
		return
	}
	p.due = started.Add(time.Duration(float64(n) / p.rate * float64(time.Second)))
}

// progress reports a snapshot's progress in logs (at most every 5 s) and
// metrics.
type progress struct {
	id        string
	start     time.Time
	startRows uint64
	total     uint64
	lastLog   time.Time
}

func (p *progress) rate(done uint64, now time.Time) float64 {
	if el := now.Sub(p.start).Seconds(); el > 0 && done >= p.startRows {
		return float64(done-p.startRows) / el
	}
	return 0
}

func (p *progress) report(s *Source, done uint64, final bool) {
	rate := p.rate(done, time.Now())
	eta := 0.0
	if rate > 0 && p.total > done {
		eta = float64(p.total-done) / rate
	}
	s.m.snapshotRowsDone.Set(float64(done))
	s.m.snapshotRowsAll.Set(float64(p.total))
	s.m.snapshotRate.Set(rate)
	s.m.snapshotETA.Set(eta)
	if final {
		s.m.snapshotRate.Set(0)
		s.m.snapshotETA.Set(0)
		s.log.Info("capture: snapshot complete", "snapshot", p.id, "rows", done, "rows_per_second", int64(rate))
		return
	}
	if time.Since(p.lastLog) >= 5*time.Second {
		p.lastLog = time.Now()
		s.log.Info("capture: snapshot progress", "snapshot", p.id, "rows_done", done, "rows_total_estimate", p.total,
			"rows_per_second", int64(rate), "eta", time.Duration(eta*float64(time.Second)).Round(time.Second))
	}
}
