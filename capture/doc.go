// Package capture reads a Postgres database's logical replication stream
// (pgoutput) and turns it into decoded [change.Change] values in commit order.
//
// Status: the parts exist, the join does not yet.
//
//   - capture/change: the change contract between capture and mapping.
//   - capture/pgvalue: decoding of Postgres text values into that contract's
//     value domain.
//   - capture/postgres: the Source (setup checks, publication, slot, initial
//     snapshot, streaming, acknowledged confirmation, heartbeat, reconnects)
//     that hands changes to a Sink.
//
// This root package will join capture/postgres to the mapping rules and the
// store (a Sink that appends low-level events and calls Source.Ack); that is
// not written yet.
package capture
