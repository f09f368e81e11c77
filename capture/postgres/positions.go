package postgres

import "github.com/chronicler-dev/chronicler/mapping/contract"

// positions decides what capture may confirm to Postgres. It is owned by the
// stream goroutine.
//
// Every transaction the stream sees is appended at its Commit with its
// commit LSN (start of the commit record, the Tx.CommitLSN the downstream
// acks) and its end LSN (end of the commit record). Transactions with
// nothing delivered (heartbeats, empty ones) need no ack. confirmed moves
// to the end LSN of the longest acked prefix: confirming the end LSN makes
// the walsender skip that transaction after a restart (it skips commits whose
// record starts before the confirmed position), while every transaction after
// it is decoded again.
type positions struct {
	confirmed contract.LSN
	pending   []pendingTx
	// idleEnd is a server WAL end reported by a keepalive while no
	// transaction was open, so every transaction committed before it had
	// already been received (and is in pending); once pending drains it is
	// safe to confirm.
	idleEnd contract.LSN
}

type pendingTx struct {
	commit, end contract.LSN
	acked       bool
}

// committed records a transaction's Commit.
func (p *positions) committed(commit, end contract.LSN, needsAck bool) {
	p.pending = append(p.pending, pendingTx{commit: commit, end: end, acked: !needsAck})
}

// ack marks delivered transactions with commit LSN <= upTo as durable.
func (p *positions) ack(upTo contract.LSN) {
	for i := range p.pending {
		if p.pending[i].commit > upTo {
			break
		}
		p.pending[i].acked = true
	}
}

// walEnd records a keepalive's WAL end seen outside a transaction.
func (p *positions) walEnd(end contract.LSN) { p.idleEnd = max(p.idleEnd, end) }

// advance moves confirmed over the acked prefix and returns it.
func (p *positions) advance() contract.LSN {
	n := 0
	for n < len(p.pending) && p.pending[n].acked {
		p.confirmed = max(p.confirmed, p.pending[n].end)
		n++
	}
	if n > 0 {
		p.pending = append(p.pending[:0], p.pending[n:]...)
	}
	if len(p.pending) == 0 {
		p.confirmed = max(p.confirmed, p.idleEnd)
	}
	return p.confirmed
}
