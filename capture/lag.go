package capture

import (
	"sync"
	"time"

	"github.com/chronicler-dev/chronicler/mapping/contract"
)

// lagQueue holds the transactions received (Commit returned) and not yet
// confirmed to the source, oldest first, for the lag figure and the
// confirmation-latency histogram.
type lagQueue struct {
	mu sync.Mutex
	q  []txTiming
}

type txTiming struct {
	commit   contract.LSN
	since    time.Time // commit time, or receipt when the transaction has none
	received time.Time
}

func (l *lagQueue) push(tx contract.Tx, now time.Time) {
	since := tx.CommitTime
	if since.IsZero() || since.After(now) {
		since = now
	}
	l.mu.Lock()
	l.q = append(l.q, txTiming{commit: tx.CommitLSN, since: since, received: now})
	l.mu.Unlock()
}

// confirm drops the transactions with commit LSN <= lsn and calls observe
// with each one's time from receipt to now.
func (l *lagQueue) confirm(lsn contract.LSN, now time.Time, observe func(time.Duration)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for n < len(l.q) && l.q[n].commit <= lsn {
		observe(now.Sub(l.q[n].received))
		n++
	}
	if n > 0 {
		l.q = append(l.q[:0], l.q[n:]...)
	}
}

// age is now minus the oldest pending transaction's commit time, 0 when
// none is pending.
func (l *lagQueue) age(now time.Time) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.q) == 0 {
		return 0
	}
	return max(0, now.Sub(l.q[0].since))
}

// confirmed records that lsn was confirmed to the source.
func (p *Pipeline) confirmed(lsn contract.LSN) {
	raise(&p.acked, lsn)
	p.lag.confirm(lsn, time.Now(), func(d time.Duration) { p.m.confirmLatency.Observe(d.Seconds()) })
}
