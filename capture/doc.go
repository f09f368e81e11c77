// Package capture reads a Postgres database's logical replication stream
// (pgoutput), maps each change with the capture rules, and appends the
// resulting low-level events to KurrentDB, exactly once per stream, in
// commit order; only then is the position confirmed to Postgres.
//
//   - mapping/contract: the contract between the stages (the change, its
//     positions and ids, the stored events' metadata, progress markers, dead
//     letters); capture writes it, publish reads it.
//   - capture/postgres (with capture/pgvalue, the decoding of Postgres text
//     values into the contract's value domain): the owner of every call to
//     Postgres; its Source (setup checks, publication, slot, initial
//     snapshot, streaming, acknowledged confirmation, heartbeat, reconnects)
//     hands changes to a Sink.
//   - capture/store: the owner of every call to KurrentDB; its Appender
//     stores events exactly once per stream and reports the durable LSN.
//   - capture/retry: the one retry policy (backoff with jitter).
//   - this package: the stage: the [Pipeline] joining them, a durable
//     [StoreSnapshotState], and [Capture] ([New], [Capture.Run]), which
//     wires everything from Options.
//
// # The pipeline
//
// [Pipeline] is the [postgres.Sink]. Begin, Commit and Abort are forwarded to
// the appender. For each change it calls mapping's RuleSet.Capture and hands
// every output to the appender as a store.Event with its contract.Source
// (contract.SourceOf: slot, the change's source position, the rule, and the
// position (Tx.CommitLSN, Change.Ordinal, the rule's index among the rules
// the change matched)) and the rule's own metadata; the appender writes them
// with contract.AppendMetadata. Events of a change no rule matched: none;
// the change is counted as unmatched.
//
// Schema changes: at start capture loads the rules with mapping's
// Options.Drift, so a rule reading a column its table no longer has loads
// instead of failing the whole pipeline (a reload, [Capture.LoadRules],
// reads the tables' columns again and refuses such a rule: the fixed rule
// loads, a typo does not). Per table, the pipeline
// keeps the columns its last row showed (a new row carries every column of
// the Relation message in force; a delete uses the last known, else the
// catalogue the rules were loaded against) and, when they change or the
// rules are swapped, asks RuleSet.Gaps which rules read a missing column
// (schema.go). Those rules are not evaluated (RuleSet.CaptureExcept): each
// of their changes is dead-lettered with mapping.ErrSchemaGap naming the
// rule, the column and where it is read, logged at ERROR once per gap. A
// rule that no longer compiles against the column types (a type changed
// while capture was stopped) loads at start under Drift too, and Gaps
// reports it with its type problem (mapping.Gap.Retyped); a type change
// while running is not a gap (the change carries values, not types): the
// rule meets the new values as they come.
//
// # Dead letters
//
// When a rule fails on a change (a *mapping.EvalError), or one of its events
// is over the append limit (*store.TooLargeError), the pipeline appends a
// [DeadLetter] event (type ChroniclerDeadLetter) to the dead-letter stream
// (default "chronicler-deadletter-<slot>") through the same appender, in the
// same source transaction, with position (commit LSN, ordinal,
// contract.DeadLetterIndex+k) for the k-th dead letter of the change. So a dead
// letter is stored once across crashes and re-deliveries, like any event,
// and the transaction is only confirmed once its dead letters are stored.
// Its data holds the slot, reason ("rule" or "too_large"), rule, field, the
// error text and the raw change as JSON (NULL as null, an unchanged TOAST
// value as {"$unchanged":true}); when the dead letter itself would be over
// the limit, the row values but the key columns' are dropped (new and old
// keep the key, so the row can be found; only when the key alone is over
// the limit is it dropped too) and "truncated" is set. The other
// rules' events of the change are stored as usual and the pipeline goes on.
// With OnError [OnErrorStop] the first failure is returned as a *StopError
// instead: capture stops, the transaction is not committed nor confirmed.
//
// An event the store itself refuses as too large after the appender took it
// (its maximum append size or its per-event limit, unknown until it refuses;
// see capture/store) is dead-lettered too, reason too_large: the appender
// asks the pipeline for the dead letter (NewPipeline registers it with
// SetDeadLetter) and queues it in the event's place, in its transaction. The
// change is gone by then, so this dead letter carries the change's position,
// table, operation, rule and commit time from the event's metadata and no
// row (truncated), at position (commit LSN, ordinal, 2^31+2^30+the rule's
// index). Later events over that limit are refused by Add and dead-lettered
// as above. Under OnErrorStop a refusal stops capture instead.
//
// # Confirmation and progress markers
//
// The appender's OnDurable must call [Pipeline.Durable], which wakes the
// progress writer ([Pipeline.Run]). The writer appends to the progress
// stream (default "chronicler-progress-<slot>") an event of type
// ChroniclerProgress with data
//
//	{"slot":"<slot>","durableLsn":"X/Y"}
//
// meaning: every event of every source transaction with commit LSN <= X/Y is
// in the store. The publisher uses it as its safe horizon. Only once the
// marker is stored does the writer confirm X/Y to the source (Source.Ack).
// That order keeps the last marker at or past the confirmed position: after
// a crash, whatever the marker does not cover is re-delivered, becomes
// durable again and moves the marker; a marker lost in a crash is never
// left behind with nothing to move it. Markers are coalesced: at most one
// append in flight, rounds at least 10 ms apart (markerGap, so at most 100
// markers a second; a confirmation and a transaction rule's outputs wait up
// to that much longer), always the latest durable LSN. They are written
// only when the LSN grew, retried with backoff when the store fails (confirmation waits
// meanwhile), never ahead of the store. At start the writer reads the last
// marker and writes none below it, so markers never go backwards, although
// a restart re-delivers (and confirms again) the transactions below it.
// Each marker's append expects the revision of the last marker the writer
// read or wrote, so this holds with two writers too: an instance that lost
// the HA lock may write a marker after its successor read the stream; the
// successor's next append is then a wrong-expected-version, it reads the
// last marker again and writes only above it (its durable LSNs below it are
// confirmed without a marker: the other's covers them).
// Marker event ids are random: with ids derived from the LSN, the server
// would drop a re-run's marker as a retry of the one a killed run wrote. The
// stream's $maxCount is set to 1000 at start
// (Config.ProgressMaxCount). Nothing is confirmed unless Run runs.
//
// # Snapshot state
//
// [StoreSnapshotState] keeps the slot's snapshots (the initial one and
// those requested with `chronicler snapshot`, each with its progress) in
// the stream "chronicler-snapshot-<slot>" (one ChroniclerSnapshotProgress
// event per save, $maxCount 1000; Load and [ReadSnapshots], for status, read
// the last), so a snapshot resumes at its chunk after a crash, a restart or
// an HA takeover as capture/postgres's doc (Snapshots) describes. Saves are
// retried until the store answers (the snapshot waits). Deleting the stream
// forgets every snapshot (the initial one is then read again). A snapshot
// row's events carry its Change.Snapshot's Recheck to the store
// (store.Event.Recheck): the first chunk after a restart is looked for in
// its streams before it is appended.
//
// A missing slot with a completed snapshot in that stream, or with
// progress markers (Run gives the Source postgres.Config.PriorProgress,
// which reads the last marker), was dropped under capture: the Source
// stops with a *postgres.SlotMissingError unless
// postgres.Config.OnMissingSlot allows a new snapshot.
//
// # Run
//
// [New] checks the options (rule paths, the store URL: esdb:// or
// esdb+discover://, TLS and credentials as its parameters say);
// [Capture.Run] creates the store client (store.Connect: discovery is
// retried for as long as the store is away), creates the
// Source, reads the catalog and loads the rules against it (a rule with
// another problem fails here; one reading a column the table does not have
// loads, and its changes are dead-lettered: see schema changes above),
// creates the appender and the
// pipeline, waits (up to a minute, postgres.Source.WaitSlotFree) for
// Postgres to release the slot if a previous instance's walsender still
// holds it (after a crash or SIGKILL;
// capture/postgres treats a busy slot at start-up as fatal, so Run also
// starts a new Source when the first session finds the slot busy, within the
// same minute), and runs
// appender, progress writer and source until ctx is
// cancelled (nil) or one fails (that error; the others are stopped and
// waited for). A foreign write to a Chronicler stream under
// store.on_conflict stop ends Run with an error wrapping a
// *store.ConflictError that names the stream.
//
// # Graceful stop
//
// With Options.Grace > 0, the end of Run's context while the source streams
// starts a drain instead of an immediate stop: the source stops taking new
// transactions at the next boundary (postgres.Source.Drain; the one being
// received is finished), the appends under way complete, the progress
// writer stores the marker and confirms it, and once everything delivered
// is confirmed the source is stopped, sending its last status update. Then
// the appender and the progress writer stop and Run returns nil. If the
// grace passes first, everything is stopped and Run returns a *GraceError
// (what was not confirmed is delivered again on the next start). A drain
// needs the store: during an outage the official client holds appends in
// its discovery loop whatever their context says, so Run itself may not
// return until the store answers; `chronicler run` therefore exits on its
// own a few seconds after the grace. The initial snapshot is read while
// streaming, so a stop during it drains too (the snapshot resumes at its
// chunk). During start-up, and with Grace 0, the stop is immediate.
//
// # Rule swaps and status
//
// [Capture] (New, Run) exposes its running parts: Status (the source's
// phase: starting, snapshot, streaming, draining, stopped; the lag in
// seconds and bytes) for readiness, LoadRules (mapping.Load against the
// captured tables' catalogue, and every table a capture rule names must be
// captured, as at start) and SwapRules, which hands a checked set to the
// pipeline: [Pipeline.SwapRules] takes effect at the next Begin, so a
// transaction is always mapped by one rule set, and transactions after the
// swap by the new one.
//
// Tables added by a reload ([Capture.LoadRulesWith], addtables.go): given
// postgres.tables and postgres.add_missing_tables as the configuration
// file says now ([Tables]), LoadRulesWith has the source check the new
// tables and describe them (postgres.Source.PrepareTables) and loads the
// rules against the captured tables and them; SwapRules of that set hands
// it to the pipeline first, then has the source add the tables to the
// publication and its captured set and request a snapshot of those the set
// has snapshot rules for (postgres.Source.AddTables; the order and its
// guarantees are in capture/postgres's doc, "Tables added while running").
// A failure there is SwapRules' error, with the new rules in force.
//
// Lag ([Pipeline.LagSeconds]): now minus the commit time of the oldest
// transaction received and not yet confirmed to the source (snapshot rows
// are part of their chunk's high watermark transaction); 0 when everything received is confirmed. In
// bytes: the server's WAL end minus the confirmed position
// (postgres.Source.Positions, chronicler_capture_lag_bytes).
//
// # Metrics
//
// chronicler_pipeline_changes_total{result=mapped|unmatched|deadlettered},
// _events_captured_total, _rule_events_total{rule}, _events_stored_total
// (the appender's acknowledged new events),
// _deadletters_total{reason=rule|too_large}, _durable_lsn_bytes,
// _progress_lsn_bytes, _progress_errors_total, _lag_seconds, and the
// histograms _transaction_events (events per source transaction),
// _confirm_seconds (receipt to confirmation) and _progress_write_seconds;
// the appender's chronicler_store_appends_total,
// _events_deduplicated_total, _tail_reads_total, _retries_total and
// _conflicts_total; and capture/postgres's chronicler_capture_* metrics. They count
// deliveries: a transaction re-delivered after a restart is counted again.
//
// # Concurrency
//
// The Sink methods are called from the source's one goroutine; Durable from
// the appender's goroutines; Run owns the progress writer. Stats,
// SwapRules, LagSeconds, Committed, Acked and Capture's Status, LoadRules,
// SwapRules and Counts may be called from anywhere; LoadRulesWith and the
// SwapRules that follows it from one goroutine at a time (the reloader's).
//
// # Not done yet
//
//   - Replica identity is not passed to the mapping's catalogue, although
//     Source.Catalog reports it (see [Catalogue]): a rule reading old.x of a
//     non-key column on update of a table without REPLICA IDENTITY FULL is
//     warned about by `chronicler check` (and by capture for
//     need_old_values), not refused at load.
//   - While the store is unreachable, the official client blocks calls in
//     discovery without honouring their context, so Run may not return
//     after a *GraceError until the store answers (the command exits
//     anyway; see Graceful stop).
//   - A reload cannot stop capturing a table: removing one from
//     postgres.tables is refused until a restart.
//   - Publishing (Kafka) is wired by the composition root
//     (cmd/chronicler/app), not by this package.
//
// # Example
//
//	err := capture.Run(ctx, capture.Options{
//		Postgres:  postgres.Config{URL: pgURL, Slot: "chronicler", Publication: "chronicler", Tables: tables},
//		StoreURL:  "esdb://kurrentdb:2113?tls=false",
//		RulePaths: []string{"rules/"},
//	})
package capture
