package postgres

import (
	"context"

	"github.com/chronicler-dev/chronicler/mapping/contract"
)

// Sink receives decoded transactions. Capture calls it from one goroutine,
// in commit order: Begin, then every Change of the transaction in ordinal
// order, then Commit. A call may block; that is the backpressure path (but a
// call blocking longer than the server's wal_sender_timeout makes the server
// drop the connection; capture then reconnects and re-delivers).
//
// A Sink must not keep the *contract.Change after Change returns unless it
// copies it; capture does not reuse them today, but may.
//
// When a session ends inside a transaction (connection lost after Begin,
// before Commit), capture calls Abort for it before reconnecting: the sink
// must discard what it holds of that transaction, which will be delivered
// again in full. Abort is also called when Run is cancelled mid-transaction.
//
// Capture never calls Begin for a transaction with nothing to deliver
// (heartbeats, transactions that touched no captured table).
//
// After a reconnect capture re-delivers every transaction after the last
// position it confirmed to Postgres, so a Sink sees some transactions again
// (with identical Tx, ordinals and values): it must de-duplicate them, for
// example by skipping transactions whose CommitLSN is not above the highest
// it has durably stored.
//
// When everything up to a transaction is durable, the downstream calls
// [Source.Ack] with that transaction's Tx.CommitLSN (from any goroutine, at
// any time after Commit returned).
type Sink interface {
	Begin(ctx context.Context, tx contract.Tx) error
	Change(ctx context.Context, c *contract.Change) error
	Commit(ctx context.Context, tx contract.Tx) error
	Abort(ctx context.Context, tx contract.Tx) error
}
