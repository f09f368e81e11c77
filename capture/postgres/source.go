package postgres

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/chronicler-dev/chronicler/capture/pgvalue"
	"github.com/chronicler-dev/chronicler/capture/retry"
	"github.com/chronicler-dev/chronicler/mapping/contract"
)

// Source captures one database's changes through one slot and publication.
// Create it with [New]; call [Source.Run] once.
type Source struct {
	cfg Config
	log *slog.Logger
	m   *metrics
	// servers names the URL's servers (host:port, comma-separated).
	servers string
	// database is the captured database's name, from the URL.
	database string

	running  atomic.Bool
	phase    atomic.Int32 // a Phase
	draining atomic.Bool
	drainCh  chan struct{} // wakes the receive loop for Drain; capacity 1
	// walEnd and confirmedA mirror the server's WAL end and s.confirmed for
	// readers on other goroutines (Positions).
	walEnd, confirmedA atomic.Uint64
	// acked is the highest commit LSN the downstream acknowledged.
	acked atomic.Uint64
	ackCh chan struct{} // a wake-up for the drain loop; capacity 1
	// ackBcast is closed (and replaced) at every Ack: the snapshot reader
	// waits on it (ackWaiter).
	ackMu    sync.Mutex
	ackBcast chan struct{}

	snap *snapshotter // snapshots: state, requests, the reader's attempts

	// set is the captured set in force (captured); tablesMu serialises its
	// growth (AddTables) with a session's publication check (setup).
	set      atomic.Pointer[capturedSet]
	tablesMu sync.Mutex
	// genStored: the publication sends STORED generated columns (Postgres
	// 18, publish_generated_columns = stored), as setup read it; the
	// snapshot and added tables describe columns by it.
	genStored atomic.Bool

	// Owned by the Run goroutine.
	types     *typeCache
	dec       *pgvalue.Decoder
	confirmed contract.LSN // last position sent to Postgres as write/flush/apply
	streamed  bool         // a session reached streaming at least once
	warnings  []string
	planned   []string // the DDL a DryRun would run
}

// New validates cfg (every problem is reported, joined) and returns a
// Source. It does not connect; [Source.Run] does. logger may be nil
// (slog.Default).
func New(cfg Config, logger *slog.Logger) (*Source, error) {
	cfg.Tables = append([]string(nil), cfg.Tables...)
	cfg.NeedOldValues = append([]string(nil), cfg.NeedOldValues...)
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.Default()
	}
	pc, _ := connConfig(ConnSettings{URL: cfg.URL}, nil) // validated above
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, &ConfigError{Field: "registerer", Reason: "registering capture metrics: " + err.Error()}
	}
	s := &Source{
		cfg: cfg, log: logger, m: m,
		servers: serversOf(&pc.Config), database: pc.Database,
		ackCh: make(chan struct{}, 1), drainCh: make(chan struct{}, 1), ackBcast: make(chan struct{}),
		types: newTypeCache(), dec: pgvalue.NewDecoder(),
	}
	s.set.Store(&capturedSet{tables: cfg.Tables, addMissing: cfg.AddMissingTables})
	s.snap = newSnapshotter(s)
	return s, nil
}

// Ack tells capture that every transaction with Tx.CommitLSN <= commitLSN
// whose Sink.Commit had returned when Ack is called is durable downstream.
// Capture then confirms those positions to Postgres at its next status
// update. Safe for concurrent use; acks may repeat and need not increase.
func (s *Source) Ack(commitLSN contract.LSN) {
	for {
		cur := s.acked.Load()
		if uint64(commitLSN) <= cur || s.acked.CompareAndSwap(cur, uint64(commitLSN)) {
			break
		}
	}
	select {
	case s.ackCh <- struct{}{}:
	default:
	}
	s.ackMu.Lock()
	close(s.ackBcast)
	s.ackBcast = make(chan struct{})
	s.ackMu.Unlock()
}

// ackWaiter returns a channel closed at the next Ack.
func (s *Source) ackWaiter() <-chan struct{} {
	s.ackMu.Lock()
	defer s.ackMu.Unlock()
	return s.ackBcast
}

// Planned returns the statements a DryRun would run, in order (empty:
// nothing to create). Call it after Run returned.
func (s *Source) Planned() []string { return append([]string(nil), s.planned...) }

// Warnings returns the warnings of the last setup's checks (also logged):
// a replica identity that does not send the old values NeedOldValues asks
// for, a slot whose WAL is close to removal. For a status endpoint or a test.
func (s *Source) Warnings() []string { return append([]string(nil), s.warnings...) }

// maxBusyRetries bounds how often a reconnect retries a slot still held by
// another process (normally our own previous walsender, exiting).
const maxBusyRetries = 10

// Run captures until ctx is cancelled (it then returns nil) or a fatal error
// occurs. Transient failures (connection loss, walsender terminated, server
// restart) end the session; Run reconnects with capture/retry's backoff
// (ReconnectMin doubling to ReconnectMax, jittered) and resumes from the last confirmed position. Setup errors on the
// first session are fatal and typed (see errors.go). In SnapshotInitialOnly
// mode Run returns nil when the snapshot is complete.
//
// Run may be called once per Source; it owns every goroutine it starts and
// waits for them before returning.
func (s *Source) Run(ctx context.Context, sink Sink) error {
	if !s.running.CompareAndSwap(false, true) {
		return ErrAlreadyRunning
	}
	defer s.phase.Store(int32(PhaseStopped))
	backoff := retry.Backoff{First: s.cfg.ReconnectMin, Max: s.cfg.ReconnectMax}
	busy := 0
	for {
		if !s.draining.Load() {
			s.phase.Store(int32(PhaseStarting))
		}
		reachedStream, err := s.session(ctx, sink)
		if ctx.Err() != nil {
			return nil
		}
		if err == nil || errors.Is(err, errSnapshotOnlyDone) || errors.Is(err, errDryRunDone) {
			return nil
		}
		var inUse *SlotInUseError
		if errors.As(err, &inUse) {
			busy++
			if !s.streamed || busy > maxBusyRetries {
				return err
			}
		} else {
			busy = 0
		}
		if !transient(err) {
			return err
		}
		if reachedStream {
			backoff.Reset()
		}
		s.m.reconnects.Inc()
		s.log.Warn("capture: session ended, reconnecting", "error", err, "backoff", backoff.Next(), "confirmed_lsn", s.confirmed.String())
		if !backoff.Wait(ctx) {
			return nil
		}
	}
}
