// Package postgres captures a Postgres database's changes through logical
// replication (pgoutput) and hands them, decoded, to a [Sink] in commit
// order. It owns the publication, the slot, the initial snapshot, the
// stream, position confirmation and reconnects.
//
// It is also the one owner of every call to Postgres in the product
// (outside test/ and the dev command's schema loader): the checks that
// `chronicler check` prints and capture applies at start, the slot reader
// of `chronicler status`, the slot wait after a crash, the HA lock
// session, and `chronicler teardown`'s footprint. Other packages call the API below and never talk to Postgres
// themselves.
//
// # Lifecycle
//
// [New] validates a [Config] (every problem reported, joined, each naming
// its field) without connecting. [Source.Run] then loops over sessions; each
// session:
//
//  1. opens a normal and a replication connection (TLS per the URL's
//     sslmode, [DefaultSSLMode] verify-full when it names none; the
//     connection's security is a finding, [CheckTransport]: a warning for
//     plaintext or an unverified certificate; DateStyle=ISO, TimeZone=UTC, IntervalStyle=postgres,
//     extra_float_digits=3, bytea_output=hex so values have one text form;
//     application_name [CaptureApplicationName]);
//  2. runs the checks (below) in `chronicler check`'s order, except that
//     the failover checks come right after the server's (a standby is
//     recognised before anything is created), and refuses
//     to start on a failed one: the server (version >= [MinServerVersion],
//     wal_level=logical, room for the slot and a walsender, REPLICATION or
//     superuser); every table (exists, SELECT granted, a replica identity
//     that lets Postgres publish its updates and deletes: a table with
//     REPLICA IDENTITY NOTHING, or DEFAULT without a primary key, is
//     refused, since publishing it would make the application's UPDATEs
//     and DELETEs fail); it warns per table listed in NeedOldValues whose
//     REPLICA IDENTITY is not FULL. A partitioned table's rows live in its
//     leaf partitions, so their replica identities are the ones checked
//     (the partitioned table's own does not reach them). A table's
//     generated columns that pgoutput does not send are not captured: on
//     14-17 none is sent; on 18 the STORED ones are when the publication
//     has publish_generated_columns = stored (capture creates it so; an
//     existing one is read from pg_publication.pubgencols), the VIRTUAL
//     ones never. Those not sent are left out of Table.Columns and the
//     snapshot, and a warning names them (with the ALTER PUBLICATION that
//     sends the STORED ones); the ones sent are ordinary columns, in the
//     snapshot too;
//  3. creates the publication FOR TABLE the configured tables (when the
//     role may: CREATE on the database and owner of the tables), WITH
//     (publish_via_partition_root = true) when one is partitioned, so its
//     partitions' changes come under its own name, and on 18 with
//     publish_generated_columns = stored; or checks an existing
//     one publishes exactly them and all four operations, and publishes a
//     partitioned table via its root (a partition of a configured
//     partitioned table is not an extra table; the fix for a publication
//     without the option is ALTER PUBLICATION ... SET
//     (publish_via_partition_root = true)). It adds missing configured
//     tables only with AddMissingTables, and never accepts extra tables or
//     FOR ALL TABLES;
//  4. checks the slot (pgoutput, this database, not wal_status=lost, not
//     active in another process: the error names the PID), then creates it
//     (queueing the initial snapshot, below) or resumes from it. A missing
//     slot that capture had streamed through (this Source confirmed
//     through it, the saved snapshots say its initial snapshot completed,
//     or Config.History says so) was dropped by someone: the changes since
//     are in no slot, so Run stops with a *SlotMissingError, logged at
//     ERROR, unless OnMissingSlot is MissingSlotResnapshot (a new slot and
//     snapshot, also logged at ERROR);
//  5. streams with pgoutput protocol 1, messages on, text values.
//
// Setup failures are typed errors (errors.go) and fatal on the first
// session, except no room for the slot or a walsender ([NoRoomError]),
// which Run retries like a lost connection. Connection loss, walsender
// termination (57P01), server shutdown/start-up (57P03) and the like end
// the session; Run reconnects with capture/retry's backoff (ReconnectMin
// doubling to ReconnectMax, each wait drawn from [d/2, d]), and resumes
// from the confirmed position. A slot still held by our own previous
// walsender is retried up to 10 times after a session has streamed. Run
// returns nil when ctx is cancelled.
//
// # Sink contract
//
// The Sink (sink.go) is called from the Run goroutine only, in commit
// order: Begin, Change..., Commit; Abort when a session ends between Begin
// and Commit (the transaction will be re-delivered in full). Calls may
// block (backpressure). When the downstream has made everything up to a
// transaction durable it calls [Source.Ack] with that Tx.CommitLSN, from any
// goroutine.
//
// # Positions, step by step
//
// Each Change carries Tx (xid, commit LSN = pgoutput Begin's final LSN, the
// start of the commit record; commit time; origin), its own LSN (the WAL
// record of the change, XLogData's WALStart) and its ordinal in the
// transaction (0-based, counting every change delivered to the sink;
// heartbeats are not delivered and not counted). Re-decoding the same WAL
// yields the same values, so a re-delivered transaction is identical.
//
// What capture confirms (standby status, write = flush = apply, always set
// explicitly) is decided by positions.go:
//
//  1. At Commit, the transaction is appended to a pending list with its
//     commit LSN and end LSN (the end of the commit record, pgoutput's
//     Commit.TransactionEndLSN). Transactions with nothing for the sink
//     (heartbeats, empty) are appended already acknowledged.
//  2. Ack(L) marks pending transactions with commit LSN <= L acknowledged.
//  3. The confirmed position moves to the end LSN of the longest
//     acknowledged prefix. An un-acked transaction holds back every later
//     one, so a crash at any instant loses nothing: after a restart the
//     walsender (which skips only commits whose record starts before the
//     confirmed position) re-decodes every transaction not yet confirmed.
//     Confirming the end LSN, not the commit LSN, is what makes the last
//     confirmed transaction not come back.
//  4. Keepalives carry the walsender's sent position (sentPtr: WAL it has
//     read and decoded, whether or not it produced output). A keepalive
//     received outside a transaction means every transaction committed
//     before that position has already been received (the stream is in
//     order, and in protocol 1 a transaction is sent only after its commit
//     was decoded). So when nothing is pending, capture confirms it. This is
//     what keeps an idle slot moving: empty transactions, other databases'
//     WAL and skipped records all lie behind it. A transaction in progress
//     that commits later is not lost by this: its commit record lies after
//     the confirmed position, and the server keeps restart_lsn early enough
//     to decode it (restart_lsn is derived from running transactions, not
//     from the confirmed position).
//  5. Keepalives that request a reply get one immediately; otherwise status
//     goes out every StatusInterval and whenever the confirmed position moved.
//  6. After a reconnect the stream restarts at the confirmed position; the
//     window between the last Ack and the crash is re-delivered, and the
//     downstream de-duplicates it (by commit LSN, or by deterministic ids
//     from commit LSN + ordinal).
//
// A non-transactional logical message is delivered as a transaction of its
// own: Tx{XID: 0, CommitLSN: the message's LSN - 1, zero CommitTime},
// ordinal 0; its end position is the LSN. pgoutput's LSN of a message is
// the end of its WAL record, where a commit record may start (a message
// emitted just before its transaction commits): LSN - 1 keeps the two
// positions distinct and in WAL order.
//
// # Heartbeat
//
// When no transaction was received for HeartbeatInterval, capture runs
// pg_logical_emit_message(true, [HeartbeatPrefix], slot) on its normal
// connection. The message's transaction comes back through the stream, is
// not handed to the sink, and gives the slot a position of its own to
// confirm even when the walsender sends no keepalive. If emitting fails
// with a non-transient error (for example a read-only role) heartbeats are
// disabled for the session with a warning.
//
// # Snapshots
//
// A snapshot reads a table's existing rows into the stream as OpSnapshot
// changes. The initial snapshot (SnapshotInitial, SnapshotInitialOnly: the
// configured tables, when the slot is created) and the snapshots requested
// with [RequestSnapshot] (`chronicler snapshot`) are read the same way:
// while streaming goes on, in chunks by primary key (the replica identity
// index, else ctid), each chunk in a REPEATABLE READ, READ ONLY transaction
// of three round trips. No transaction stays open longer than one chunk's
// read, so vacuum is never held back for a whole table. This is the
// watermark method of Netflix's DBLog (Debezium's incremental snapshots),
// with the read's MVCC snapshot deciding which rows to drop.
//
// The slot is created with NOEXPORT_SNAPSHOT and streaming starts at once
// from its consistent point; the initial snapshot is queued in the
// snapshot state at that point (id "initial-<consistent point>"). A
// reader goroutine (runSnapshots, one connection of its own with
// synchronous_commit local) takes the snapshots one at a time in request
// order. One attempt at a chunk:
//
//  1. low watermark: pg_logical_emit_message(true, [SnapshotPrefix],
//     {kind: low, attempt: nonce}) in a transaction of its own;
//  2. the read: BEGIN REPEATABLE READ, READ ONLY; then in one round trip
//     LOCK TABLE ... IN ACCESS SHARE MODE (the lock a SELECT takes, taken
//     before the transaction's snapshot), pg_current_snapshot() (xmin,
//     xmax, the transactions in progress, and which of these
//     pg_xact_status already calls committed), SELECT the next
//     SnapshotChunkRows rows after the last completed key (a re-read: the
//     chunk's key range) and the table's columns from pg_attribute; COMMIT;
//  3. high watermark: the same message with kind high.
//
// The watermarks come back through the slot in WAL order with the
// changes. The receive loop opens a window at the low one and notes the
// keys that each streamed transaction changes in the chunk's table; at the
// high one it decides, with the read's MVCC snapshot, and emits the chunk's
// remaining rows as OpSnapshot changes of the high watermark's
// transaction, so they take its place in every stream (window.decide):
//
//   - a transaction between the watermarks that the read saw is in the
//     rows as read; its changes were streamed before the high watermark, so
//     the snapshot row comes after them and shows them;
//   - a transaction between the watermarks that the read did not see
//     changed its rows after the state read: those rows are dropped from
//     the chunk (the stream carries the newer state) and read again in a
//     new attempt, until they are emitted or, after 8 re-reads, left to the
//     stream (counted in _snapshot_rows_reread_total, logged);
//   - a transaction streamed before the low watermark that the read did
//     not see (it wrote its commit record but had not ended when the read
//     began, as while it waits for a synchronous standby) makes the
//     attempt void: it is read again once that transaction is visible
//     (_snapshot_visibility_waits_total; a warning every 5 s of waiting);
//   - a transaction after the high watermark cannot be visible to the
//     read (it committed after the read's transaction ended), and comes
//     after the snapshot row in its stream.
//
// So in every entity stream a snapshot row shows exactly the changes
// before it: never older than a change before it, never including a change
// after it. A row inserted while a snapshot runs, before its chunk is
// read, has its insert in the stream and then a snapshot row showing it (as
// in DBLog and Debezium's incremental snapshots: rules on [insert,
// snapshot] see it twice); a row deleted before its chunk is read has no
// snapshot row. After the high watermark the reader waits until the
// downstream acknowledged the high watermark's transaction, then saves
// the snapshot's progress (table, last key, rows, floor: that commit LSN)
// and reads the next chunk. Requested snapshots read with --where read the
// rows the condition holds for, chunk by chunk as above. SnapshotMaxRowsPerSecond
// spaces the chunks (and makes none larger than a second's worth).
//
// Ids. A snapshot row's events have ids from (slot, snapshot id, table,
// key, rule index) ([contract.SnapshotEventID]), not from their position,
// and metadata keys "snapshot" and "snapshotKey" (contract.MetaSnapshot). A
// deliberate re-snapshot has a new snapshot id, so its events are new; the
// same row read again by the same snapshot has the same ids.
//
// Crash walk-through (a crash, SIGKILL, a lost connection, an HA
// takeover: the next session or process loads the saved snapshots from
// [SnapshotState]; the store's is durable):
//
//   - before a chunk's rows were stored: its progress was not saved, so the
//     chunk is read again in a new attempt with new watermarks. Streaming
//     resumes at the slot's confirmed position (never past what the
//     downstream acknowledged); the old attempt's watermarks come through
//     again and are ignored (their nonce is not registered). The new read
//     is placed by its own watermarks, as above.
//   - after some or all of a chunk's events were stored but before its
//     progress was saved: the chunk is read again, and the rows of the first
//     chunk a session emits carry Recheck = the saved floor (the last
//     completed chunk's high watermark). Before appending them, the store's
//     appender reads each of their streams back to that floor and drops every
//     event whose id is already there (capture/store: Snapshot rows). The copy
//     already stored stays where its first high watermark placed it, before the
//     changes stored after it; those changes are re-delivered and de-duplicated
//     by position as usual. So no stream gets a second copy and no change is lost.
//     A chunk whose reader lost its connection within a session is read
//     again the same way (its high watermark may have committed and its
//     rows been emitted although the reader saw an error).
//   - after a chunk's progress was saved: the next chunk starts; nothing
//     of the saved chunk is read again.
//   - a request or a cancellation is saved before the receive loop goes
//     past its message, so before its position can be confirmed; delivered
//     again after a restart, it changes nothing (same id).
//
// A snapshot is therefore resumed at the chunk where it stopped, whatever
// happened to the table since. A slot that no longer exists re-creates the
// slot and queues a new initial snapshot (a new id); a slot without a saved
// initial snapshot is streamed from where it is and its tables read as a new
// initial snapshot (rows may then be stored under two snapshot ids). With
// SnapshotInitialOnly capture drops the slot once the initial snapshot is
// done and Run returns nil; the changes streamed meanwhile are delivered
// too (a row changed during its chunk's read is carried by them). While the initial snapshot runs, Phase is
// PhaseSnapshot. [CancelSnapshot] stops a snapshot after the chunk in
// progress. A table that no longer exists or is no longer captured fails
// its snapshot (the initial one: Run returns a [SnapshotError]).
//
// DDL while a table is read: a chunk read that names a column the table no
// longer has (renamed, dropped: SQLSTATE 42703), or whose pg_attribute
// read shows other columns or types than the table was described with (one
// added, a type changed), emits nothing. The lock comes before the
// transaction's snapshot, so that snapshot shows every DDL the chunk's
// SELECT sees and no DDL commits until the read ends: the check is exact.
// Then the table is described again and the chunk read again, logged at
// INFO. So each row's snapshot event has the columns its table had when
// its chunk was read, as the changes streamed around it do. Three such
// changes in a row for one chunk fail the snapshot (a --where naming a
// column the table no longer has fails this way). A change of which
// columns form the key while the table is read is not handled: request a
// new snapshot of the table after one.
//
// A table without a primary key or replica identity index (REPLICA IDENTITY
// FULL) is read in ctid order and its rows are named by ctid (a
// partitioned table's by tableoid and ctid: each partition numbers its
// ctids from the start), which an update changes: a row that an update moves across the read position
// during the snapshot, or that is updated between a crash and its chunk's
// re-read, can have a second snapshot event or none; each comes after the
// update, which carries the whole row (nothing is lost or out of order).
//
// Footprint: the watermarks and requests are logical messages, a few
// hundred bytes of WAL per chunk; no table, function or other object is
// created in the database. [MemorySnapshotState] survives reconnects only;
// capture.StoreSnapshotState keeps the state in the store.
//
// # Tables added while running
//
// The captured set ([Source.Tables], an immutable list behind an atomic
// pointer) is Config.Tables at New; a reload of postgres.tables grows it:
//
//  1. [Source.PrepareTables] checks the new list, changing nothing: a table
//     dropped from it is a *[TablesRemovedError] (restart to stop capturing
//     one; slot and publication stay); each new one gets [CheckTable] and
//     [CheckReplicaIdentity] as at a session start (so one whose UPDATEs
//     would fail is never published) and is described; the publication
//     must have it, or add_missing_tables (as the file says now) must let
//     capture add it (the role owns it). A refusal is a *[TableAddError]
//     with the fix (the ALTER TABLE, or the ALTER PUBLICATION for the owner
//     "(or set postgres.add_missing_tables: true)").
//  2. capture loads the rules against both and swaps them in.
//  3. [Source.AddTables] runs ALTER PUBLICATION ... ADD TABLE for what the
//     publication lacks (logged), then grows the set, both under the mutex
//     setup holds while it compares the publication with the set. pgoutput
//     decodes each change with the catalogue as of its place in the WAL:
//     the table's changes are published from the ALTER's commit on, in
//     transactions whose Begin reaches the pipeline after the swap.
//  4. For new tables with snapshot rules, AddTables waits (up to 30 s, then
//     warns) until the transactions open at the ALTER's commit ended, then
//     requests their snapshot as [RequestSnapshot] does (after the ALTER in
//     WAL), read as any requested snapshot (above).
//
// A failure after step 2 leaves the rules in force (matching nothing of a
// table not streamed), set and publication as the step left them; the next
// reload starts at step 1. After a restart or HA takeover the file lists
// the table and a requested snapshot resumes at its chunk.
//
// Caveat, a transaction that began before the ALTER and commits after it:
// its writes to the table before the ALTER's commit are published by no
// version; its writes after it only by servers with Postgres' fix "Fix
// data loss in logical replication" (commit 4909b38af0, 2025: catalogue
// invalidations distributed to the concurrent transactions being decoded;
// patches for 13 to 17 on pgsql-hackers, a follow-up of 2025-06-16 bounds
// its memory; its first minor releases are not recorded here): without it
// they may be dropped. With snapshot rules, step 4's wait makes the
// snapshot read those rows after such transactions; else they are lost.
//
// # Types
//
// Values are decoded by capture/pgvalue from their text form by column type
// OID: built-ins from pgx's pgtype, enums, domains (as their base type),
// arrays of any of these, and composites/unknown types as contract.Unknown.
// Types are looked up in pg_type when a Relation message names them (the
// current catalog, cached; a Type message evicts the entry). Relation
// messages apply from their point of the stream on: ALTER TABLE mid-stream
// changes the columns of later changes only. One that changes a table's
// columns within a session (added, dropped, renamed, another type) is
// logged at WARN naming each and counted
// (chronicler_capture_schema_changes_total{table}), since a rule reading a
// retyped column meets values of the new type from that change on. A value that does not parse is
// delivered as contract.Unknown and counted (chronicler_capture_decode_fallbacks_total).
// NULL is nil; an unchanged TOASTed value (pgoutput 'u') is contract.Unchanged.
// Old values: a full old tuple (REPLICA IDENTITY FULL) gives every column;
// a key-only old tuple (DEFAULT with a changed key, deletes) gives only the
// identity columns (the others are unknown, not NULL, so they are left out).
// Change.Key is the primary key (else the replica identity columns).
//
// # Metrics
//
// chronicler_capture_changes_total{op}, _transactions_total,
// _decode_fallbacks_total{type}, _schema_changes_total{table},
// _reconnects_total, _heartbeats_total,
// _lag_bytes, _confirmed_lsn_bytes, _server_wal_end_bytes,
// _snapshot_rows_done, _snapshot_rows_estimated, _snapshot_rows_per_second,
// _snapshot_eta_seconds (the snapshot being read), _snapshots_pending,
// _snapshot_chunks_total, _snapshot_rows_reread_total,
// _snapshot_visibility_waits_total, _slot_retained_wal_bytes and
// _slot_safe_wal_size_bytes (read every 15 s while streaming); registered
// on Config.Registerer when set.
//
// # Phases and drain
//
// [Source.Phase] says what the Source does (starting, snapshot, streaming,
// draining, stopped), for readiness probes. [Source.Drain] starts a
// graceful stop: at the next transaction boundary (checked between
// messages, so within a message or StatusInterval of an idle stream) the
// receive loop stops reading from the walsender and only confirms what the
// downstream acknowledges, sending a status update for every Ack and every
// StatusInterval, until Run's context ends; it then sends the last status,
// ends the stream with CopyDone and reads the server's answers (so the
// walsender has processed that status before the connection closes), and
// returns. [Source.Positions] returns the server's WAL end and the
// confirmed position (their difference is the lag in bytes). All three are
// safe for concurrent use.
//
// # Checks shared with chronicler check
//
// Each check is a pure function from what was read to a [Finding]: what
// was checked, what was found, a [Verdict] (Pass, Warn, Fail), the fix (the
// SQL or the setting, naming settings by their keys in chronicler's
// configuration file) and, when capture cannot start, the typed error Run
// returns. [CheckServer], [CheckTable], [CheckReplicaIdentity],
// [CheckPublication] and [CheckSlot] are applied by the Source at every
// session start and printed by `chronicler check`; one set of rules, so
// what check passes, run accepts. A slot streamed by another process is a
// Warn for check (an HA standby waits for it) and a refusal for this start.
// [CheckFailover] (below) is applied and printed the same way.
//
// # Failover
//
// A logical slot lives on one server. With Config.FailoverSlot (Postgres
// 17+, [FailoverMinVersion]; an older server is refused with
// *[FailoverUnsupportedError]) capture creates the slot with FAILOVER true
// (slotOptions, the one place that builds CREATE_REPLICATION_SLOT's
// options) or turns it on for an existing slot (ALTER_REPLICATION_SLOT ...
// (FAILOVER true), logged like the other DDL and printed by dry runs).
// Postgres then copies the slot to every standby with
// sync_replication_slots = on; after a promotion capture resumes from that
// copy like from any existing slot: no new slot, no new snapshot, and what
// the copy re-delivers (its confirmed position can trail the primary's) is
// de-duplicated downstream like any re-delivery.
//
// [Conn.ReadFailover] reads what [CheckFailover] needs on top of what
// [Conn.ReadServer] read (the version, recovery state and wal_level are
// not read twice), naming the server the connection reached (of a
// multi-host URL's hosts, the one that answered). On a primary, with FailoverSlot: the slot's failover flag
// (off: a Warn with the fix; run turns it on), synchronized_standby_slots
// (empty: a Warn, since the store could then hold changes a promoted
// standby never received) and each slot it names (missing, logical or
// invalidated: a Fail with *[StandbySlotError], as Postgres would hold the
// failover slot's changes back for it forever; not streamed, or streamed
// without hot_standby_feedback: a Warn). The standby's own synchronization
// settings are not visible from the primary, and the finding says so. On a
// standby (in recovery), whatever FailoverSlot: a Warn with *[StandbyError],
// which Run treats as transient, so capture pointed at a standby waits
// until it is promoted; with FailoverSlot also the standby's
// sync_replication_slots, hot_standby_feedback, primary_slot_name, a dbname
// in primary_conninfo (the value itself is never kept: it may hold a
// password), wal_level, and the slot's copy there (synced, and sync-ready:
// a temporary copy is dropped at promotion).
//
// A multi-host URL with target_session_attrs=read-write
// (postgres://u@primary,standby/app?target_session_attrs=read-write) makes
// every connection go to the server that accepts writes, so a session
// started after the promotion finds the new primary.
//
// # Reading Postgres
//
// [Connect] opens a [Conn] (ordinary connection) for the checks and status:
// [Conn.ReadServer] (settings, role attributes, walsenders, recovery),
// [Conn.ReadSlot] (the one query of pg_replication_slots: the slot's row
// with plugin, database, temporary, active pid, wal_status,
// confirmed_flush_lsn, restart_lsn, the active process's application_name,
// client address and flush lag, the server's WAL position and slot count;
// [SlotInfo.Lag], [SlotInfo.Retained]), [Conn.ReadTable] (existence,
// privileges, ownership, replica identity, columns) and
// [Conn.ComparePublication]. The Source reads through the same functions.
// [Source.Catalog] reports every captured table with its columns: name,
// type name from pg_type (typname: "int4", "varchar", "_int4"), type OID,
// array element OID, key, NOT NULL; and the table's replica identity.
// [Source.WaitSlotFree] waits for a slot still held by a previous
// instance's walsender.
//
// # Connections
//
// Every connection is built by one function from [ConnSettings]: the URL,
// a password that replaces the URL's (or a password file, read again at
// every connection, so a rotated password needs no restart), the
// application_name, and TCP keepalives (the server ends the session of a
// silent client after about 2.5 Keepalive). A connection string without
// sslmode (and no PGSSLMODE) gets [DefaultSSLMode], verify-full: TLS with
// no plaintext fallback, the certificate verified against sslrootcert (else
// the system roots) for the host named; sslmode=disable is the explicit way
// to connect without TLS. A URL that does not parse is a *[ConfigError]; a
// server without TLS when the sslmode requires it, or a certificate that
// does not verify, a *[TLSError] (not retried: Run stops on it); an
// unreachable server a *[ConnectError] naming host:port/database (every
// server of a multi-host URL) and user, never the password.
// [Conn.Transport] reads how a connection is secured.
//
// # HA lock session
//
// [OpenLockSession] opens the session that holds the HA election's
// advisory lock: [LockSession.TryLock], [LockSession.Unlock],
// [LockSession.Ping], [LockSession.Close];
// [LockSession.TerminateSlotHolder] (and [LockSession.TerminateSlotHolderAgain]),
// which terminates the walsender holding the slot only if it is a capture
// session ([CaptureApplicationName]); [LockSession.LockHolder] and
// [LockSession.TerminateLockHolder], which end a frozen holder's session.
// The election itself lives in cmd/chronicler/internal/ha.
//
// # Footprint and teardown
//
// [Inspect] reads what Chronicler holds in the database for a slot (the
// slot, through the same slot reader; the publication; who holds the HA
// locks) as a [Footprint]; [Teardown] drops the publication, then the slot
// once its walsender is gone (`chronicler teardown`, and dev on exit).
//
// Table names: [QualifyTable] ("t" is "public.t"), [SplitTable],
// [QuoteTables].
//
// # Not done yet
//
//   - pgoutput protocol 2 streaming of in-progress transactions: protocol
//     1 is used, so the server spills big transactions to disk and sends
//     them at commit (capture's memory stays flat either way).
//   - Binary value transfer: text is used (one decoder for stream and
//     snapshot); not measured against binary.
//   - Two-phase commit decoding: not handled. Generated columns are not
//     captured before Postgres 18, nor VIRTUAL ones on 18 (step 2 above).
//   - JSON null inside jsonb decodes to nil, like SQL NULL, at the top
//     level (a json column is its text, so its null is "null").
//
// # Example
//
//	src, err := postgres.New(postgres.Config{
//		URL:         "postgres://capture@db/app?sslmode=verify-full",
//		Slot:        "chronicler",
//		Publication: "chronicler",
//		Tables:      []string{"public.customers", "public.orders"},
//	}, slog.Default())
//	if err != nil {
//		return err
//	}
//	return src.Run(ctx, sink) // sink calls src.Ack(tx.CommitLSN) once durable
package postgres
