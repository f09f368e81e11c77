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
	// URL is the captured database, where the lock lives. Required.
	URL string
	// Password, when set, replaces the URL's password. Default: the URL's.
	Password string
	// Key names the lock (hashed by LockID). Required.
	Key string
	// Slot, when set, is the replication slot whose leftover Chronicler
	// walsender is terminated when the lock is acquired.
	Slot string
	// Keepalive is K of the package doc. Default 5s.
	Keepalive time.Duration
	// Poll is how often a standby tries the lock. Default 1s.
	Poll time.Duration
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
	if cfg.URL == "" {
		errs = append(errs, &ConfigError{Field: "postgres.url", Reason: "required for the HA lock (or set ha.enabled: false)"})
	} else if err := (postgres.ConnSettings{URL: cfg.URL}).Validate(); err != nil {
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
	sess, err := postgres.OpenLockSession(cctx, postgres.ConnSettings{URL: e.cfg.URL, Password: e.cfg.Password,
		ApplicationName: ApplicationName, Keepalive: e.cfg.Keepalive})
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
		if !retry.Sleep(ctx, e.cfg.Poll) {
			return nil, ctx.Err()
		}
	}
}

// takeOverSlot terminates the walsender of a previous Chronicler instance
// still holding the slot.
func (e *Elector) takeOverSlot(ctx context.Context, sess *postgres.LockSession) error {
	if e.cfg.Slot == "" {
		return nil
	}
	pid, ok, err := sess.TerminateSlotHolder(ctx, e.cfg.Slot)
	if pid != 0 {
		e.cfg.Logger.Info("ha: terminated the previous instance's walsender holding the slot", "slot", e.cfg.Slot, "pid", pid, "terminated", ok)
	}
	return err
}

// Lease is the held lock.
type Lease struct {
	e        *Elector
	conn     *postgres.LockSession
	lost     chan struct{}
	stop     chan struct{}
	done     chan struct{}
	lostOnce sync.Once
	err      atomic.Pointer[error]
}

func newLease(e *Elector, conn *postgres.LockSession) *Lease {
	l := &Lease{e: e, conn: conn, lost: make(chan struct{}), stop: make(chan struct{}), done: make(chan struct{})}
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
		ctx, cancel := context.WithTimeout(context.Background(), k/2)
		err := l.conn.Ping(ctx)
		cancel()
		if err != nil {
			err = fmt.Errorf("%w: %v", ErrLost, err)
			l.err.Store(&err)
			l.e.setErr(err)
			l.e.active.Store(false)
			l.lostOnce.Do(func() { close(l.lost) })
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
	_ = l.conn.Unlock(ctx, l.e.id)
	_ = l.conn.Close(ctx)
	l.e.active.Store(false)
}
