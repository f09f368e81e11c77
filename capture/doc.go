// Package capture reads a Postgres database's logical replication stream
// (pgoutput), turns it into decoded [change.Change] values in commit order,
// and appends the low-level events the rules map them to into KurrentDB.
//
// Status: the parts exist; the join does not yet.
//
//   - capture/change: the change contract between capture and mapping.
//   - capture/pgvalue: decoding of Postgres text values into that contract's
//     value domain.
//   - capture/postgres: the Source (setup checks, publication, slot, initial
//     snapshot, streaming, acknowledged confirmation, heartbeat, reconnects)
//     that hands changes to a Sink.
//   - capture/store: the Appender that stores events exactly once per stream
//     and reports the durable LSN.
//
// This root package will join them: a Sink that maps each change with the
// mapping rules, dead-letters what a rule cannot map, feeds the Appender,
// and passes its durable LSN to Source.Ack. That is not written yet.
package capture
