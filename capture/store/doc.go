// Package store appends low-level events to KurrentDB, one stream per entity,
// exactly once per stream across crashes, in source commit order, and tells
// the caller which source position is durable so capture can confirm it to
// Postgres (guarantees 1, 2, 3 of the product brief).
//
// # Positions and ids
//
// Every event carries its source position [Pos] = (commit LSN, ordinal of the
// change in its transaction, index of the rule among the rules the change
// matched). Positions are totally ordered and each names one event across
// re-deliveries of the same transaction. The event id is a name-based UUID
// (SHA-1) of (slot, position), and the position is written into the event's
// custom metadata (commitLsn, ordinal, index, slot), so it can be read back.
// The metadata (the caller's map plus those keys and $causationId) is
// encoded without reflection, to exactly the bytes encoding/json gives the
// merged map: keys sorted, the same escaping (metadata.go; a table test and a
// fuzz target hold it to encoding/json's output).
//
// # Exactly once per stream
//
// The appender keeps one invariant: events are appended to a stream in
// position order, and never with a guessed expected revision. Then the
// stream's last event tells exactly which of a re-delivered transaction's
// events are already stored: those at or before its position.
//
// A stream is warm when the appender knows its revision (it appended to it
// or read its tail since it started; a bounded LRU). Warm streams are
// appended with that exact revision and no read. A cold stream (never seen
// since the start, or evicted) is appended with expected revision NoStream:
//
//   - the stream does not exist: the append succeeds, no read was needed;
//   - it exists: the server answers wrong-expected-version; the appender reads
//     the stream's last event, drops the batch's events at or before its
//     position (they are stored: the replay window after a crash), and
//     appends the rest with the tail's exact revision.
//
// So no duplicate can reach a stream whatever the replay window is, and the
// window needs no bound: every stream touched after a restart is either new
// or compared with its tail once. This does not rely on the server's
// idempotency cache. A retry after an unknown outcome (timeout, Unavailable
// after the write) re-sends the same events with the same expected revision,
// which the server answers idempotently (same ids at those revisions).
//
// # Snapshot rows
//
// A snapshot row's events (capture/postgres: Snapshots) are named by
// [contract.SnapshotEventID] (slot, snapshot id, table, key, rule index)
// instead of their position: a row read again after a crash lands at a new,
// higher position, which the tail comparison above would take for a new
// event. Such events carry [Event.Recheck], the snapshot's saved floor (the
// commit LSN of its last completed chunk): before the first append of a
// batch holding one, and again after a wrong-expected-version, the appender
// reads the stream backwards from its end through the events of its slot
// positioned after that floor, and drops every rechecked event whose id is
// already there (or earlier in the batch). That read starts at the
// stream's last event, so it is also the tail read: after a
// wrong-expected-version it is the only read, and it settles a cold
// stream that exists against its tail before the first append, as a
// wrong-expected-version would (one read per stream, no refused append).
// The copy stored by the run that crashed stays where it was, in order
// with the changes around it. Only the first chunk a snapshot reads in a
// capture session carries Recheck, and a read-back covers only the events
// a stream received since the floor.
//
// # Foreign writers
//
// Chronicler is the only writer of its streams. A wrong-expected-version on a
// warm stream, or a tail event that is not Chronicler's (no position in its
// metadata, or another slot's), is a *ConflictError naming the stream.
// [ConflictStop] (default) makes it fatal; [ConflictReread] logs it, counts it,
// takes the tail's revision and goes on appending after it.
//
// # Durability and the confirmed LSN
//
// Transactions are registered in commit order (Begin, Add..., Commit). A
// transaction is durable when it is committed and every event of it has been
// acknowledged by the store. The durable LSN reported to OnDurable is the
// commit LSN of the longest durable prefix of transactions: an LSN is
// reported only when every event of every transaction up to it is stored,
// never past a gap, and reports never go backwards. A report is made each
// time more transactions became durable, so transactions that share a commit
// LSN (the snapshot's chunks) are each acknowledged.
//
// # The append call: BatchAppend or AppendToStream
//
// An append is one atomic write to one stream with an expected revision;
// the rules above do not depend on how it travels. The official Go client's
// AppendToStream opens a gRPC stream per append (options, events, close),
// which was a third of the appender's CPU in test/bench, and as much again
// in the server. KurrentDB (21.10 and later) also serves BatchAppend: one
// long-lived bidirectional call on which each append is a request with a
// correlation id, answered on its own, with the same per-stream semantics
// (the .NET client appends this way). With Config.BatchAppend set (capture.Run
// sets it from the connection string unless store.batch_append is false), the
// appender opens a gRPC connection of its own, asks ServerFeatures once
// whether BatchAppend is listed, and if so sends every append on one call
// (batch.go); else it uses AppendToStream. On a cluster (gossip seeds, or
// esdb+discover://) that connection goes to the leader, found by gossip as
// the official client finds a node, its calls say requires-leader, and a
// NotLeader answer (a leader change) or a failed call (a dead node) moves
// it to the new leader (leader.go). On that call an append is queued for
// one sending goroutine, which writes the queued requests back to back
// (each event's bytes encoded once, when it is queued, and handed to gRPC
// as they are), and its answer is handled by the goroutine that receives
// the answers: no goroutine waits for an append. Reads of a stream's tail
// go through the official client; the $all subscription (Client.Subscribe,
// the publisher's) of a single-node store goes over a gRPC connection of
// Chronicler's own, its answers decoded by hand (subscribe_direct.go), and
// through the official client for a cluster.
//
// Failures keep the rules above: an answer's error status is mapped as the
// client's errors are (WrongExpectedVersion → tail read, StreamDeleted →
// fatal, MaximumAppendSizeExceeded / MaximumAppendEventSizeExceeded → too
// large, below; AccessDenied / BadRequest → fatal with what to do, the rest
// transient); a broken call fails every append waiting
// on it as transient, they are sent again with their ids and expected
// revisions on a new call, and the server answers the ones that landed
// idempotently. test/bench: 30% more changes/s for pgbench and 55% more for
// the bulk load, for 27-40% less CPU per change.
//
// # Events the store refuses as too large
//
// Add refuses an event over MaxBatchBytes with *TooLargeError. The store has
// limits of its own, counted as data + metadata + 2 x type length: its
// maximum append size and (KurrentDB 24.10.4+) a per-event maximum the
// operator may set, which Chronicler cannot know beforehand. An append the
// store refuses as too large, on either path (the BatchAppend detail, or
// the status text AppendToStream gives), is never retried as it was: the
// appender learns the limit (Add then refuses events over it with a
// *TooLargeError naming the store's limit), sends the events of a refused
// append of several one by one, and replaces a refused single event by its
// dead letter from the builder given to SetDeadLetter (capture's), in the
// same transaction, so the LSN is confirmed only once it is stored. To keep
// dead letters in position order although a refusal arrives late, the
// dead-letter stream's next event is appended only when no event of a
// transaction at or before its commit LSN still waits for the store.
// Without a builder a refusal stops the appender. See refused.go.
//
// # Security
//
// TLS is the official client's, from the connection string: on by default
// and verified (tls=true, tlsVerifyCert=true, tlsCAFile naming the CA,
// else the system roots); [Client.TransportIssue] names tls=false and
// tlsVerifyCert=false for `check`. The official client retries a server
// whose certificate does not verify as if it were away (its calls never
// answer), so [Connect] makes a handshake of its own ([Client.CheckTLS]) and
// returns a *[TLSError] naming the server.
// Credentials (store.username, store.password) are the connection's, read
// at Connect: a rotated password needs a restart (the client also takes
// per-call credentials, which this package does not use). Permissions are
// probed without writing: [Client.ProbeWrite] and
// [Client.ProbeMetadataWrite] append expecting a revision no stream
// reaches, which the store refuses after checking access (Access Denied:
// no permission; wrong expected version: allowed).
//
// # Concurrency and backpressure
//
// Appends to different streams run concurrently, at most MaxInFlight at a
// time; one stream has at most one append in flight, which keeps its order
// (dispatch.go; one batch's append loop is stream.go).
// Consecutive queued events of one stream, from one or several
// transactions, go in one append (up to MaxBatchEvents and MaxBatchBytes).
// Add blocks while the bytes of queued and in-flight events exceed
// MaxPendingBytes: that is the backpressure that reaches the replication
// reader when the store is slow, so memory stays bounded.
//
// Begin, Add and Commit are called from one goroutine (the capture loop);
// Run owns the append goroutines and must be running for anything to be
// appended.
package store
