package ha

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/chronicler-dev/chronicler/capture/postgres"
	"github.com/chronicler-dev/chronicler/capture/retry"
)

// ApplicationName is the application_name of the lock session.
const ApplicationName = "chronicler-ha"

// Config configures an Elector.
type Config struct {
	// Conn reaches the captured database, where the lock lives; its URL is
	// required. The Elector sets its ApplicationName ([ApplicationName])
	// and Keepalive (below).
	Conn postgres.ConnSettings
	// Key names the lock (hashed by LockID). Required.
	Key string
	// Slot, when set, is the replication slot whose leftover Chronicler
	// walsender is terminated when the lock is acquired.
	Slot string
	// Keepalive is K of the package doc. Default 5s.
	Keepalive time.Duration
	// Poll is how often a standby tries the lock. Default 1s.
	Poll time.Duration
	// StaleAfter is how long the active instance's lock session may go
	// without a ping before a standby ends it (a frozen active instance).
	// Default 3 × Keepalive: the active pings every Keepalive.
	StaleAfter time.Duration
	// Logger. Default slog.Default().
	Logger *slog.Logger
}

// LockID is the advisory lock key of key: FNV-1a 64, as a signed int64.
func LockID(key string) int64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(key))
	return int64(h.Sum64())
}

// Elector acquires the lock; see the package doc.
type Elector struct {
	cfg     Config
	id      int64
	healthy atomic.Bool
	active  atomic.Bool
	lastErr atomic.Pointer[error]
}

// New validates cfg and returns an Elector. It does not connect.
func New(cfg Config) (*Elector, error) {
	var errs []error
	if cfg.Conn.URL == "" {
		errs = append(errs, &ConfigError{Field: "postgres.url", Reason: "required for the HA lock (or set ha.enabled: false)"})
	} else if err := (postgres.ConnSettings{URL: cfg.Conn.URL}).Validate(); err != nil {
		errs = append(errs, &ConfigError{Field: "postgres.url", Reason: "not a valid connection string"})
	}
	if cfg.Key == "" {
		errs = append(errs, &ConfigError{Field: "ha.lock_key", Reason: "required"})
	}
	if cfg.Keepalive < 0 || cfg.Poll < 0 {
		errs = append(errs, &ConfigError{Field: "ha.keepalive", Reason: "must be positive"})
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if cfg.Keepalive == 0 {
		cfg.Keepalive = 5 * time.Second
	}
	if cfg.Poll == 0 {
		cfg.Poll = time.Second
	}
	if cfg.StaleAfter <= 0 {
		cfg.StaleAfter = 3 * cfg.Keepalive
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Elector{cfg: cfg, id: LockID(cfg.Key)}, nil
}

// Healthy reports whether the lock connection works (a standby that could
// take over, or an active instance before its lease is lost).
func (e *Elector) Healthy() bool { return e.healthy.Load() }

// Active reports whether this instance holds the lock.
func (e *Elector) Active() bool { return e.active.Load() }

// LastError is the last failure of the lock connection, nil if none.
func (e *Elector) LastError() error {
	if p := e.lastErr.Load(); p != nil {
		return *p
	}
	return nil
}

func (e *Elector) setErr(err error) {
	e.lastErr.Store(&err)
	e.healthy.Store(err == nil)
}

// connect opens the lock session with the keepalive settings.
func (e *Elector) connect(ctx context.Context) (*postgres.LockSession, error) {
	cctx, cancel := context.WithTimeout(ctx, max(10*time.Second, 2*e.cfg.Keepalive))
	defer cancel()
	cs := e.cfg.Conn
	cs.ApplicationName, cs.Keepalive = ApplicationName, e.cfg.Keepalive
	sess, err := postgres.OpenLockSession(cctx, cs)
	if err != nil {
		return nil, fmt.Errorf("connecting for the HA lock: %w", err)
	}
	return sess, nil
}

// Acquire waits until this instance holds the lock and returns its Lease,
// or returns ctx's error. While waiting the instance is a standby.
func (e *Elector) Acquire(ctx context.Context) (*Lease, error) {
	var conn *postgres.LockSession
	defer func() {
		if conn != nil && !e.active.Load() {
			conn.Close(context.Background())
		}
	}()
	backoff := retry.Backoff{First: 200 * time.Millisecond}
	logged := false
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if conn == nil {
			c, err := e.connect(ctx)
			if err != nil {
				if ctx.Err() != nil {
					return nil, ctx.Err()
				}
				e.setErr(err)
				e.cfg.Logger.Warn("standby: cannot open the HA lock session; retrying", "err", err, "backoff", backoff.Next())
				if !backoff.Wait(ctx) {
					return nil, ctx.Err()
				}
				continue
			}
			conn = c
			backoff.Reset()
		}
		qctx, cancel := context.WithTimeout(ctx, max(5*time.Second, e.cfg.Keepalive))
		got, err := conn.TryLock(qctx, e.id)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			e.setErr(err)
			e.cfg.Logger.Warn("standby: the HA lock session failed; reconnecting", "err", err)
			conn.Close(context.Background())
			conn = nil
			continue
		}
		e.setErr(nil)
		if got {
			if err := e.takeOverSlot(ctx, conn); err != nil {
				e.cfg.Logger.Warn("active: could not terminate the previous instance's walsender; capture waits for the slot", "slot", e.cfg.Slot, "err", err)
			}
			e.active.Store(true)
			e.cfg.Logger.Info("ha: this instance is active (holds the lock)", "lock_key", e.cfg.Key, "lock_id", e.id)
			return newLease(e, conn), nil
		}
		if !logged {
			e.cfg.Logger.Info("ha: standby: another instance holds the lock; waiting", "lock_key", e.cfg.Key, "lock_id", e.id)
			logged = true
		}
		e.endFrozenHolder(ctx, conn)
		if !retry.Sleep(ctx, e.cfg.Poll) {
			return nil, ctx.Err()
		}
	}
}

// endFrozenHolder ends the lock session of an active instance that has not
// pinged for StaleAfter (a frozen process: SIGSTOP, a VM pause, a hung
// pinger); the lock is then free for the next poll. The frozen instance
// finds itself fenced when it resumes: its lease is in doubt at once (no
// ping for longer than the lease's validity), its next ping fails, and its
// walsender is ended by the new active instance.
func (e *Elector) endFrozenHolder(ctx context.Context, conn *postgres.LockSession) {
	qctx, cancel := context.WithTimeout(ctx, max(5*time.Second, e.cfg.Keepalive))
	defer cancel()
	h, ok, err := conn.LockHolder(qctx, e.id)
	if err != nil || !ok || h.ApplicationName != ApplicationName || h.Idle < e.cfg.StaleAfter {
		return
	}
	done, err := conn.TerminateLockHolder(qctx, e.id, h.PID, ApplicationName)
	e.cfg.Logger.Warn("ha: the active instance's lock session has not pinged for longer than ha.keepalive allows (a frozen process?); ending it so that this standby takes over",
		"holder_pid", h.PID, "idle", h.Idle.Round(time.Millisecond), "stale_after", e.cfg.StaleAfter, "terminated", done, "err", err)
}

// takeOverSlot terminates the walsender of a previous Chronicler instance
// still holding the slot.
func (e *Elector) takeOverSlot(ctx context.Context, sess *postgres.LockSession) error {
	if e.cfg.Slot == "" {
		return nil
	}
	pid, ok, err := sess.TerminateSlotHolder(ctx, e.cfg.Slot)
	if pid == 0 || err != nil {
		return err
	}
	e.cfg.Logger.Info("ha: terminated the previous instance's walsender holding the slot", "slot", e.cfg.Slot, "pid", pid, "terminated", ok)
	// Wait for it to go, signalling it again: a walsender blocked writing
	// to a frozen instance may not act on the first signal. Bounded: capture
	// waits for the slot on its own after this.
	began := time.Now()
	for time.Since(began) < slotReleaseWait {
		if !retry.Sleep(ctx, 250*time.Millisecond) { // poll interval, bounded above
			return ctx.Err()
		}
		held, err := sess.TerminateSlotHolderAgain(ctx, e.cfg.Slot, pid)
		if err != nil || !held {
			return err
		}
	}
	e.cfg.Logger.Warn("ha: the previous instance's walsender still holds the slot after being terminated; capture waits for it", "slot", e.cfg.Slot, "pid", pid, "waited", slotReleaseWait)
	return nil
}

// slotReleaseWait bounds how long takeOverSlot signals a terminated
// walsender that still holds the slot.
const slotReleaseWait = 10 * time.Second

// Lease is the held lock.
type Lease struct {
	e        *Elector
	mu       sync.Mutex // the lock session is used by the pinger and by Check
	conn     *postgres.LockSession
	lost     chan struct{}
	stop     chan struct{}
	done     chan struct{}
	lostOnce sync.Once
	err      atomic.Pointer[error]
	lastOK   atomic.Int64 // unix ns of the last successful ping (or the acquisition)
}

func newLease(e *Elector, conn *postgres.LockSession) *Lease {
	l := &Lease{e: e, conn: conn, lost: make(chan struct{}), stop: make(chan struct{}), done: make(chan struct{})}
	l.lastOK.Store(time.Now().UnixNano())
	go l.ping()
	return l
}

// Lost is closed when the lock session failed: stop all work at once.
func (l *Lease) Lost() <-chan struct{} { return l.lost }

// Err is why the lease was lost (wrapping ErrLost), nil while held.
func (l *Lease) Err() error {
	if p := l.err.Load(); p != nil {
		return *p
	}
	return nil
}

// validity is how long a successful ping vouches for the lease: the next
// ping is due within Keepalive and may take Keepalive/2.
func (l *Lease) validity() time.Duration { return l.e.cfg.Keepalive + l.e.cfg.Keepalive/2 }

// Valid reports whether the lease is known to be held: not lost, and the
// last successful ping within the validity window. A process that was
// frozen longer than that finds its lease in doubt the instant it resumes,
// before its pinger has run: its standby may have taken over meanwhile.
func (l *Lease) Valid() bool {
	select {
	case <-l.lost:
		return false
	default:
	}
	return time.Since(time.Unix(0, l.lastOK.Load())) < l.validity()
}

// Check pings the lock session now: nil when the lease is held (a standby
// can only take the lock after this session ended, so a session that
// answers proves it, also after a freeze). A failed ping loses the lease
// (Lost is closed). Capture calls it before every connection and every
// confirmation to Postgres, so nothing is confirmed after the lock session
// ended (but for one round trip).
func (l *Lease) Check(ctx context.Context) error {
	if err := l.Err(); err != nil {
		return err
	}
	return l.pingOnce(ctx)
}

// Doubt says why the lease is in doubt ("" when it is valid), for
// readiness.
func (l *Lease) Doubt() string {
	if err := l.Err(); err != nil {
		return err.Error()
	}
	if age := time.Since(time.Unix(0, l.lastOK.Load())); age >= l.validity() {
		return fmt.Sprintf("%v: no answer from the lock session for %s", ErrInDoubt, age.Round(time.Millisecond))
	}
	return ""
}

// pingOnce pings the lock session, recording success or losing the lease.
func (l *Lease) pingOnce(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, l.e.cfg.Keepalive/2)
	defer cancel()
	l.mu.Lock()
	if gap := time.Since(time.Unix(0, l.lastOK.Load())); gap > 2*l.e.cfg.Keepalive {
		l.e.cfg.Logger.Warn("ha: this process did not run for a while (frozen: SIGSTOP, a VM pause, starvation); its HA lease is in doubt until the lock session answers",
			"since_last_ping", gap.Round(time.Millisecond), "keepalive", l.e.cfg.Keepalive)
	}
	err := l.conn.Ping(ctx)
	l.mu.Unlock()
	if err != nil {
		err = fmt.Errorf("%w: %v", ErrLost, err)
		l.err.CompareAndSwap(nil, &err)
		l.e.setErr(err)
		l.e.active.Store(false)
		l.lostOnce.Do(func() { close(l.lost) })
		return l.Err()
	}
	l.lastOK.Store(time.Now().UnixNano())
	return nil
}

func (l *Lease) ping() {
	defer close(l.done)
	k := l.e.cfg.Keepalive
	t := time.NewTicker(k)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
		}
		if err := l.pingOnce(context.Background()); err != nil {
			return
		}
	}
}

// Release stops the pinger, unlocks and closes the session. Idempotent.
func (l *Lease) Release() {
	select {
	case <-l.stop:
		return
	default:
	}
	close(l.stop)
	<-l.done
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	l.mu.Lock()
	defer l.mu.Unlock()
	_ = l.conn.Unlock(ctx, l.e.id)
	_ = l.conn.Close(ctx)
	l.e.active.Store(false)
}
