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
//     sslmode; DateStyle=ISO, TimeZone=UTC, IntervalStyle=postgres,
//     extra_float_digits=3, bytea_output=hex so values have one text form;
//     application_name [CaptureApplicationName]);
//  2. runs the checks (below) in `chronicler check`'s order and refuses
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
//     generated columns are not captured (pgoutput on 14-17 never sends
//     them; capture does not set 18's publish_generated_columns): they are
//     left out of Table.Columns and the snapshot, and a warning names them;
//  3. creates the publication FOR TABLE the configured tables (when the
//     role may: CREATE on the database and owner of the tables), WITH
//     (publish_via_partition_root = true) when one is partitioned, so its
//     partitions' changes come under its own name; or checks an existing
//     one publishes exactly them and all four operations, and publishes a
//     partitioned table via its root (a partition of a configured
//     partitioned table is not an extra table; the fix for a publication
//     without the option is ALTER PUBLICATION ... SET
//     (publish_via_partition_root = true)). It adds missing configured
//     tables only with AddMissingTables, and never accepts extra tables or
//     FOR ALL TABLES;
//  4. checks the slot (pgoutput, this database, not wal_status=lost, not
//     active in another process: the error names the PID), then creates it
//     or snapshots as below. A missing slot that capture had streamed
//     through (this Source confirmed through it, the SnapshotState says
//     its snapshot completed, or Config.History says so) was
//     dropped by someone: the changes since are in no slot, so Run stops
//     with a *SlotMissingError, logged at ERROR, unless OnMissingSlot is
//     MissingSlotResnapshot (a new slot and snapshot, also logged at
//     ERROR);
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
// # Initial snapshot
//
// With SnapshotInitial or SnapshotInitialOnly and no slot, capture creates
// the slot with EXPORT_SNAPSHOT, saves progress {slot, consistent point},
// imports the snapshot into a REPEATABLE READ transaction (SET TRANSACTION
// SNAPSHOT, the replication connection staying idle meanwhile) and reads
// every table in primary-key order (ctid order for tables without one) in
// chunks of SnapshotChunkRows. Each chunk is one transaction for the sink:
// Tx{XID: 0, CommitLSN: the consistent point, zero CommitTime}, OpSnapshot
// changes with LSN 0 and ordinals numbering the rows of the whole snapshot
// (so (point, ordinal) is unique and deterministic). After each chunk's
// Commit capture waits for an Ack (at or above the point, made after that
// Commit) and saves progress (table, last key, rows). Streaming then starts
// at the consistent point, so no change is lost or doubled at the hand-off.
// SnapshotInitialOnly drops the slot afterwards and Run returns nil.
// Progress (rows done/estimated, rows/s, ETA) is logged every 5 s and
// exported as metrics.
//
// Crash during the snapshot: the exported snapshot died with its
// connection, so the remaining rows can only be read in a new snapshot. That
// is equivalent to reading them at the consistent point exactly when no
// change to a table not yet completed was committed since that point
// (completed tables are fine: their later changes stream from the point).
// Capture takes the new snapshot, then decodes (without consuming) what the
// slot holds since the point (pg_logical_slot_peek_binary_changes) and:
// resumes after the last acknowledged chunk if no unfinished table changed,
// or else drops the slot and restarts the snapshot. It logs which, and why.
// A slot that exists without snapshot state (state lost, or created by
// someone else) also restarts the snapshot: capture cannot know the earlier
// snapshot completed. Use SnapshotNever to stream an existing slot as is.
// [SnapshotState] persists progress; [MemorySnapshotState] survives
// reconnects only (the store will provide a durable one).
//
// # Types
//
// Values are decoded by capture/pgvalue from their text form by column type
// OID: built-ins from pgx's pgtype, enums, domains (as their base type),
// arrays of any of these, and composites/unknown types as contract.Unknown.
// Types are looked up in pg_type when a Relation message names them (the
// current catalog, cached; a Type message evicts the entry). Relation
// messages apply from their point of the stream on: ALTER TABLE mid-stream
// changes the columns of later changes only. A value that does not parse is
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
// _decode_fallbacks_total{type}, _reconnects_total, _heartbeats_total,
// _lag_bytes, _confirmed_lsn_bytes, _server_wal_end_bytes,
// _snapshot_rows_done, _snapshot_rows_estimated, _snapshot_rows_per_second,
// _snapshot_eta_seconds; registered on Config.Registerer when set.
//
// # Phases and drain
//
// [Source.Phase] says what the Source does (starting, snapshot, streaming,
// draining, stopped), for readiness probes. [Source.Drain] starts a
// graceful stop: at the next transaction boundary (checked between
// messages, so within a message or StatusInterval of an idle stream) the
// receive loop stops reading from the walsender and only confirms what the
// downstream acknowledges, sending a status update for every Ack and every
// StatusInterval, until Run's context ends; it then sends the last status
// and returns. [Source.Positions] returns the server's WAL end and the
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
// [Conn.ReadFailover] reads what [CheckFailover] needs, naming the server
// the connection reached (of a multi-host URL's hosts, the one that
// answered). On a primary, with FailoverSlot: the slot's failover flag
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
// [Conn.ReadServer] (settings, role attributes, walsenders),
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
// a password that replaces the URL's, the application_name, and TCP
// keepalives (the server ends the session of a silent client after about
// 2.5 Keepalive). A URL that does not parse is a *[ConfigError]; an
// unreachable server a *[ConnectError] naming host:port/database (every
// server of a multi-host URL) and user, never the password.
//
// # HA lock session
//
// [OpenLockSession] opens the session that holds the HA election's
// advisory lock: [LockSession.TryLock], [LockSession.Unlock],
// [LockSession.Ping], [LockSession.Close], and
// [LockSession.TerminateSlotHolder], which terminates the walsender holding
// the slot only if it is a capture session ([CaptureApplicationName]). The
// election itself lives in cmd/chronicler/internal/ha.
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
//   - Two-phase commit decoding, partitioned-table roots
//     (publish_via_partition_root), generated columns: not handled.
//   - JSON null inside json/jsonb decodes to nil, like SQL NULL, at the
//     top level.
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
