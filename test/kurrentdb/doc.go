// Package kurrentdb is a KurrentDB-compatible server for tests and local
// development: the official Go client (EventStore-Client-Go/v4 v4.2.0)
// cannot tell it from a single-node, insecure KurrentDB 24.10 for everything
// Chronicler uses. It is built on the client module's own generated gRPC
// server interfaces (Streams, ServerFeatures) and follows
// shared/kurrentdb-protocol.md; the conformance suite in ./conformance runs
// unchanged against it and against a real server.
//
//	srv, err := kurrentdb.Start(kurrentdb.Options{})         // in memory, 127.0.0.1:<free port>
//	if err != nil { ... }
//	defer srv.Close()
//	cfg, _ := esdb.ParseConnectionString(srv.URL())        // "esdb://127.0.0.1:PORT?tls=false"
//	db, _ := esdb.NewClient(cfg)
//
// Tests use kurrentdbtest.Start(t, opts) and kurrentdbtest.Client(t, url);
// processes use cmd/kurrentdb-server, which prints one line
// "listening esdb://127.0.0.1:PORT?tls=false" once it accepts connections.
//
// # What it implements
//
//   - Streams.Append: expected revisions any / no_stream / stream_exists /
//     exact, in the reference's order of checks; idempotent re-append (exact
//     revision: compared with the stored events; any/stream_exists: an
//     in-memory id cache, not rebuilt on restart, like the real server's);
//     wrong expected version in the response body with both field sets;
//     1 MiB maximum append size (data bytes only, cumulative) with the
//     real trailers; missing type/content-type rejected.
//   - Streams.Read: streams and $all, both directions, from start / end /
//     revision / position, counts; $tb, $maxCount, $maxAge; $$X reads as
//     $maxCount 1; missing or soft-deleted stream -> stream_not_found;
//     tombstoned -> stream-deleted; link events ("$>", "N@stream") resolved
//     on request; string or structured ids.
//   - Subscriptions (Read with subscription): streams and $all, exclusive
//     start positions, confirmation first, catch-up, caught_up, live; $all
//     filters by stream name or event type, prefix or regex, with checkpoints.
//   - Delete (soft, writes {"$tb": MaxInt64} to $$X) and undelete by append
//     or by setting metadata (rewrites $tb to last+1); Tombstone
//     ($streamDeleted at revision MaxInt64, then stream-deleted everywhere,
//     $$X included).
//   - ServerFeatures: version "24.10.0", the Streams methods implemented.
//   - Durability (Options.DataDir): an append-only log, one length+CRC32C
//     frame per append batch, fsynced before the append is acknowledged,
//     replayed at Start. A torn or corrupt tail is cut at the last whole
//     frame and logged, never served; an append in flight at a crash is
//     there whole or not at all. Positions are byte offsets in that file
//     (commit == prepare, > 0, strictly increasing, also across restarts);
//     the in-memory mode computes the same offsets.
//   - Fault and cost injection (Options.Faults, SetFaults, DropSubscriptions):
//     append latency (fixed + random jitter), Unavailable / Aborted at a
//     rate (before the write, or after it with FailAfterCommit), not-leader
//     answers naming a leader, dropping every open subscription.
//
// # Concurrency
//
// All Server methods are safe for concurrent use. One mutex guards the
// in-memory log and indexes; it is held only to check and reserve an append
// (assign revisions and positions), never across a write or an fsync. In
// durable mode one writer goroutine takes every frame queued so far, writes
// them with one write and one fsync (group commit), then makes them visible;
// appends wait for that. Readers and subscriptions only see synced records.
// Subscriptions read the log from their own cursor and wait on a change
// channel taken in the same locked read, so there is no catch-up/live switch
// to race (see rpc_subscribe.go for the walk-through). Close stops serving,
// flushes reserved frames and closes the log; it is idempotent.
//
// # Decisions where the reference is inferred or silent
//
//   - Checkpoints of filtered $all subscriptions: one every multiplier x
//     window considered events (matching or not), in catch-up and live alike,
//     at the position of the last considered event; at the end of catch-up one
//     more at the last considered position if any event was considered since
//     the previous checkpoint. The reference infers (2^64-1, 2^64-1) when
//     nothing matched; this server never sends a checkpoint beyond the log,
//     so resuming from any checkpoint loses nothing (the conformance suite
//     checks that property, not exact checkpoint positions).
//   - A slow subscriber never falls behind a live buffer (there is none), so
//     caught_up is sent once and fell_behind never.
//   - DropSubscriptions and Close end subscriptions with gRPC Unavailable.
//   - Soft undelete by append writes the events first and the rewritten
//     metadata after them, in the same frame.
//   - Regex filters use Go's RE2 syntax (the real server: .NET regexes).
//   - A position that is not an event's position is accepted: forwards
//     reads start at the next event, backwards at the previous one. Only
//     prepare > commit is rejected (InvalidArgument).
//   - The idempotency cache has no size limit (the real one: 8 MiB).
//
// # Not implemented
//
// BatchAppend (the v4.2.0 client never calls it and the server does not
// advertise it), persistent subscriptions, projections, gossip, users,
// ACLs and authentication ($acl is stored, not enforced), TLS, $maxAge and
// $maxCount scavenging (data is only hidden from reads, never removed),
// explicit transactions, the $by_category / $by_correlation_id system
// projections, and the 8 MiB bound of the idempotency cache.
package kurrentdb
