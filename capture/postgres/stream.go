package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/chronicler-dev/chronicler/mapping/contract"
)

// HeartbeatPrefix is the logical message prefix of capture's heartbeats.
// Messages with it are never handed to the sink.
const HeartbeatPrefix = "chronicler.heartbeat"

// streamState is the per-session state of the receive loop.
type streamState struct {
	conn      *pgx.Conn
	repl      *pgconn.PgConn
	sink      Sink
	pos       positions
	relations map[uint32]*relation

	inTx     bool
	tx       contract.Tx
	begun    bool // sink.Begin was called for tx
	ordinal  uint64
	lastData time.Time // last time the stream carried a transaction
	hbOff    bool
	slotRead time.Time // last read of the slot's retained WAL

	// Snapshots (snapshotloop.go): the last transactions, and the chunk
	// attempts between their watermarks.
	ring    txRing
	windows []*window
}

// stream starts replication at start and runs the receive loop until ctx
// ends or the connection fails.
func (s *Source) stream(ctx context.Context, conn *pgx.Conn, repl *pgconn.PgConn, sink Sink, start contract.LSN) (bool, error) {
	err := pglogrepl.StartReplication(ctx, repl, s.cfg.Slot, pglogrepl.LSN(start), pglogrepl.StartReplicationOptions{
		Mode: pglogrepl.LogicalReplication,
		PluginArgs: []string{
			"proto_version '1'",
			fmt.Sprintf("publication_names '%s'", s.cfg.Publication),
			"messages 'true'",
		},
	})
	if err != nil {
		return false, fmt.Errorf("starting replication from slot %q at %s: %w", s.cfg.Slot, start, err)
	}
	s.streamed = true
	s.confirmed = max(s.confirmed, start)
	if !s.draining.Load() {
		s.phase.Store(int32(PhaseStreaming))
	}
	s.log.Info("capture: streaming", "slot", s.cfg.Slot, "publication", s.cfg.Publication, "from_lsn", start.String())
	st := &streamState{conn: conn, repl: repl, sink: sink, relations: map[uint32]*relation{},
		pos: positions{confirmed: s.confirmed}, lastData: time.Now(), hbOff: s.cfg.HeartbeatInterval < 0}
	err = s.receive(ctx, st)
	if st.inTx && st.begun {
		// Cut off mid-transaction: the sink discards it; the next session
		// re-delivers it from its Begin.
		if aerr := sink.Abort(context.WithoutCancel(ctx), st.tx); aerr != nil {
			return true, &SinkError{Op: "abort", Err: aerr}
		}
	}
	return true, err
}

// minStatusGap is the least time between two status updates sent because
// the confirmed position moved. Without it a busy stream whose downstream
// acknowledges every transaction sends one update (a write syscall) per
// transaction: 15% of capture's CPU in the benchmark's profile. Keepalives
// that ask for a reply, and the StatusInterval, are not delayed by it.
const minStatusGap = 100 * time.Millisecond

func (s *Source) receive(ctx context.Context, st *streamState) error {
	nextStatus := time.Now()
	var lastStatus time.Time
	replyNow := false
	var recvCtx deadlineCtx
	defer recvCtx.release()
	for {
		if ctx.Err() != nil {
			// Best effort: tell the server what is confirmed before leaving.
			st.pos.ack(contract.LSN(s.acked.Load()))
			s.sendStatus(st, st.pos.advance())
			return ctx.Err()
		}
		if !st.inTx && s.draining.Load() {
			return s.drainLoop(ctx, st)
		}
		if err := s.snap.ended(); err != nil && !st.inTx {
			st.pos.ack(contract.LSN(s.acked.Load()))
			_ = s.sendStatus(st, st.pos.advance())
			return err
		}
		st.pos.ack(contract.LSN(s.acked.Load()))
		confirmed := st.pos.advance()
		now := time.Now()
		if replyNow || !now.Before(nextStatus) || (confirmed > s.confirmed && now.Sub(lastStatus) >= minStatusGap) {
			if err := s.sendStatus(st, confirmed); err != nil {
				return err
			}
			lastStatus = now
			nextStatus = now.Add(s.cfg.StatusInterval)
			replyNow = false
		}
		if confirmed > s.confirmed {
			// Moved, but an update went out less than minStatusGap ago:
			// wake up when the gap has passed to send it.
			if at := lastStatus.Add(minStatusGap); at.Before(nextStatus) {
				nextStatus = at
			}
		}
		s.readRetained(ctx, st, now)
		deadline := nextStatus
		if !st.hbOff && !st.inTx {
			due := st.lastData.Add(s.cfg.HeartbeatInterval)
			if !now.Before(due) {
				if err := s.heartbeat(ctx, st); err != nil {
					return err
				}
				st.lastData = now
				due = now.Add(s.cfg.HeartbeatInterval)
			}
			if due.Before(deadline) {
				deadline = due
			}
		}
		msg, err := st.repl.ReceiveMessage(recvCtx.at(ctx, deadline))
		if err != nil {
			if pgconn.Timeout(err) && ctx.Err() == nil && !st.repl.IsClosed() {
				continue
			}
			return fmt.Errorf("receiving from slot %q: %w", s.cfg.Slot, err)
		}
		reply, err := s.dispatch(ctx, st, msg)
		if err != nil {
			return err
		}
		replyNow = replyNow || reply
	}
}

// retainedEvery is how often the stream reads the slot's retained WAL for
// chronicler_capture_slot_retained_wal_bytes.
const retainedEvery = 15 * time.Second

// readRetained reads the slot's retained WAL (between transactions, at
// most every retainedEvery) into its gauges; a failed read is logged, not
// fatal: the stream's own connection failing ends the session anyway.
func (s *Source) readRetained(ctx context.Context, st *streamState, now time.Time) {
	if st.inTx || now.Sub(st.slotRead) < retainedEvery {
		return
	}
	st.slotRead = now
	si, exists, err := readSlot(ctx, st.conn, s.cfg.Slot)
	if err != nil || !exists {
		s.log.Warn("capture: reading the slot's retained WAL failed", "slot", s.cfg.Slot, "err", err)
		return
	}
	if ret, ok := si.Retained(); ok {
		s.m.retainedWAL.Set(float64(ret))
	}
	safe := -1.0
	if si.SafeWALSize != nil {
		safe = float64(*si.SafeWALSize)
	}
	s.m.safeWALSize.Set(safe)
}

// dispatch handles one message of the replication stream; reply says the
// server asked for a status update.
func (s *Source) dispatch(ctx context.Context, st *streamState, msg pgproto3.BackendMessage) (reply bool, err error) {
	switch msg := msg.(type) {
	case *pgproto3.CopyData:
		if len(msg.Data) == 0 {
			return false, &ProtocolError{Err: errors.New("empty CopyData")}
		}
		switch msg.Data[0] {
		case pglogrepl.PrimaryKeepaliveMessageByteID:
			ka, err := pglogrepl.ParsePrimaryKeepaliveMessage(msg.Data[1:])
			if err != nil {
				return false, &ProtocolError{Err: err}
			}
			s.sawWALEnd(st, contract.LSN(ka.ServerWALEnd))
			if !st.inTx {
				st.pos.walEnd(contract.LSN(ka.ServerWALEnd))
			}
			return ka.ReplyRequested, nil
		case pglogrepl.XLogDataByteID:
			xld, err := pglogrepl.ParseXLogData(msg.Data[1:])
			if err != nil {
				return false, &ProtocolError{Err: err}
			}
			s.sawWALEnd(st, contract.LSN(xld.ServerWALEnd))
			return false, s.handle(ctx, st, xld)
		}
	case *pgproto3.ErrorResponse:
		return false, pgconn.ErrorResponseToPgError(msg)
	case *pgproto3.CopyDone:
		return false, fmt.Errorf("the server ended the replication stream of slot %q: %w", s.cfg.Slot, ErrStreamEnded)
	}
	return false, nil
}

// deadlineCtx is the receive loop's deadline context, reused while the
// deadline stays the same (it moves only when a status goes out or a
// heartbeat falls due) rather than built for every message.
type deadlineCtx struct {
	ctx    context.Context
	cancel context.CancelFunc
	when   time.Time
}

func (d *deadlineCtx) at(parent context.Context, when time.Time) context.Context {
	if d.ctx == nil || !when.Equal(d.when) || d.ctx.Err() != nil {
		d.release()
		d.ctx, d.cancel = context.WithDeadline(parent, when)
		d.when = when
	}
	return d.ctx
}

func (d *deadlineCtx) release() {
	if d.cancel != nil {
		d.cancel()
	}
}

func (s *Source) sawWALEnd(st *streamState, end contract.LSN) {
	if end == 0 {
		return
	}
	s.m.serverWALEnd.Set(float64(end))
	s.walEnd.Store(uint64(end))
	if end > s.confirmed {
		s.m.lagBytes.Set(float64(end - s.confirmed))
	} else {
		s.m.lagBytes.Set(0)
	}
}

// sendStatus reports confirmed as write, flush and apply position, all set
// explicitly.
func (s *Source) sendStatus(st *streamState, confirmed contract.LSN) error {
	if g := s.cfg.Guard; g != nil && confirmed > s.confirmed {
		if err := g(context.Background()); err != nil {
			return &GuardError{Action: "confirm " + confirmed.String(), Err: err}
		}
	}
	err := pglogrepl.SendStandbyStatusUpdate(context.Background(), st.repl, pglogrepl.StandbyStatusUpdate{
		WALWritePosition: pglogrepl.LSN(confirmed),
		WALFlushPosition: pglogrepl.LSN(confirmed),
		WALApplyPosition: pglogrepl.LSN(confirmed),
		ClientTime:       time.Now(),
	})
	if err != nil {
		return fmt.Errorf("sending standby status for slot %q: %w", s.cfg.Slot, err)
	}
	if confirmed > s.confirmed {
		s.confirmed = confirmed
	}
	s.m.confirmedLSN.Set(float64(s.confirmed))
	s.confirmedA.Store(uint64(s.confirmed))
	return nil
}

// heartbeat emits a transactional logical message in the captured database,
// so the slot has something of its own to confirm when the captured tables
// are idle while other databases write WAL.
func (s *Source) heartbeat(ctx context.Context, st *streamState) error {
	_, err := st.conn.Exec(ctx, "SELECT pg_logical_emit_message(true, $1, $2)", HeartbeatPrefix, s.cfg.Slot)
	if err != nil {
		var pe *pgconn.PgError
		if errors.As(err, &pe) && !transient(err) {
			s.log.Warn("capture: heartbeats disabled: emitting a logical message failed", "error", err)
			st.hbOff = true
			return nil
		}
		return fmt.Errorf("emitting a heartbeat: %w", err)
	}
	s.m.heartbeats.Inc()
	return nil
}
