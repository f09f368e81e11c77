// Package publish subscribes to the store ($all), promotes stored low-level
// events into integration events with the mapping rules, and produces them
// to Kafka so that a read_committed consumer sees each one exactly once, in
// store order per key, across crashes (guarantee 4). [Replay] re-derives
// one promotion rule's output from stored history into a topic.
//
// # Pieces
//
// The store is read only through capture/store (its owner) and Kafka is
// written only through publish/kafka (its owner); this package is the stage
// between them.
//
//   - filter.go: the $all subscription's server-side filter (store.Filter)
//     for the rules' interest: by event type when only per-event rules name
//     types, by stream prefix "<category>-" when they name only categories,
//     else only system events are excluded (transaction rules need every
//     event of a transaction, and a server filter matches names or types,
//     not both). The subscription itself (store.Client.Subscribe) is
//     catch-up then live; a dropped one is resumed after the last event
//     delivered, so there is no gap and no repeat.
//   - engine.go: the promotion state machine, a deterministic function of
//     the events it is given (no clock). Per-event rules ([mapping.RuleSet.Promote])
//     run as events arrive. When some rule has scope: transaction, every
//     event whose metadata is capture's (contract.SourceFromMap: slot and
//     commit LSN) is buffered per (slot, commit LSN); a progress marker
//     (contract.IsProgressMarker, contract.DecodeProgress) with durableLsn
//     >= a buffered transaction's commit LSN completes it and PromoteTx runs
//     once over its events in the source transaction's order: sorted by
//     contract.Pos (commit LSN, then the change's ordinal in the
//     transaction, then the capture rule's index), not in $all order, in
//     which capture's concurrent appends to different streams may land
//     differently (and other transactions interleave).
//   - Records: publish/kafka's IntegrationRecord writes the CloudEvents 1.0
//     Kafka binding, binary mode: ce_specversion=1.0; ce_id = "<stored event
//     id>/<rule>" or "tx/<slot>/<commit LSN>/<rule>" for transaction rules
//     (deterministic, so replays and at-least-once duplicates carry equal
//     ids); ce_source = "chronicler/<slot>/<rule>" ("chronicler/<rule>"
//     without a slot); ce_type = the rule's type; ce_time = the source commit
//     time from the metadata (else the stored time; never the wall clock);
//     ce_subject = the rule's subject (default the stream); content-type:
//     application/json; then the rule's headers. Key: the rule's key
//     (default the entity id). Value: the rule's value as JSON; a stored
//     number passed through keeps every digit (contract.DecodeJSON keeps
//     decimals as their text; see mapping's README, Numbers).
//   - schemas.go: the promotion rules' schemas (mapping.Schema) and the
//     schema registry (Config.Registry, publish/kafka/registry). Every value
//     a rule with a schema produces is validated by the rule set itself; a
//     violation is a promotion failure (dead-lettered, below). With a
//     registry, Run resolves the schemas before anything else (before the
//     writer fences an older instance, so a rule set the registry refuses
//     does not stop a publisher that still runs): each is looked up, or
//     registered when the registry finds it compatible with its subject's
//     latest version; an incompatible one fails Run with a
//     *registry.IncompatibleError naming the rules, the subject and the
//     fields. Those rules' values are then written in the Confluent wire
//     format (registry.AppendFrame: byte 0, the schema id as 4 bytes
//     big-endian, then the JSON; the headers are unchanged, content-type
//     application/json describing the JSON after the five bytes), so
//     Confluent's JSON Schema deserializers and franz-go's sr.Serde decode
//     them by the id they carry. A reload is checked with
//     [Publisher.CheckSchemas] before SwapRules (the swap then finds the
//     ids cached). Without a registry values are plain JSON.
//   - deadletter.go: a promotion EvalError (a value violating its rule's
//     schema is one: mapping.SchemaError, the violations by JSON pointer in
//     the error), undecodable stored data, or a
//     record over kafka.ClusterConfig.MaxRecordBytes (checked before
//     producing: one oversized record would fail the whole transaction)
//     becomes a record on the dead-letter topic (default
//     chronicler.deadletter; kafka.DeadLetterRecord), key = stream, headers
//     chronicler_error/_rule/_stream/_event_id, value = JSON {rule, error,
//     events: [{id, stream, revision, position, type, data, metadata}]}
//     (data left out and "truncated" set if the originals would make it too
//     large). It is committed in the same transaction as the batch, counted
//     (Stats, chronicler_publish_dead_letters_total), and the line goes on;
//     with Config.StopOnDeadLetter Run returns a *DeadLetterError instead.
//   - publisher.go: Publisher (New, Run, Stats, Phase, SwapRules): Run
//     fences and reads the checkpoint (kafka.Writer), checks it against the
//     publisher's record in the store (published.go, see A lost
//     checkpoint), checks the topics
//     (or creates them, with kafka.ClusterConfig.CreateTopics, with its
//     partitions and replication factor: the dead-letter topic and every
//     rule's topic, every problem reported, each a *kafka.TopicError naming
//     its topic), then runs the loop.
//   - loop.go and batch.go: the loop handles events into the open batch
//     and commits it with its checkpoint through a sink (the Kafka writer;
//     a fake in the unit tests, so the loop is tested without Kafka) when
//     it holds BatchRecords outputs, when BatchInterval passes, or (with
//     FlushWhenIdle, as `chronicler run` sets it) as soon as no further
//     event is queued: a group commit, whose batches grow with the load. A
//     topic seen in a batch and not checked yet (not expected) is checked
//     before that batch.

// # The checkpoint: two positions
//
// Per-event outputs are produced in $all order, but a buffered transaction
// may have begun before them. One "last position" cannot say both "these
// per-event outputs are done" and "this open transaction's events must be
// read again". So the checkpoint ([kafka.Checkpoint]) carries:
//
//   - through (Commit/Prepare): the last $all event handled; every output of
//     every event at or before it, and of every transaction completed by a
//     marker at or before it, is in this or an earlier transaction.
//   - resume (Resume, nil when no transaction is open): the position just
//     before the first event of the oldest open transaction (or the start of
//     $all).
//
// On start the publisher subscribes after resume (else after through),
// rebuilds the open transactions, and for events at or before through
// suppresses per-event outputs and transaction outputs (a marker at or
// before through completed a transaction that was already published).
//
// # A lost checkpoint
//
// The checkpoint lives in a Kafka topic, which an operator can delete. The
// writer re-creates a missing checkpoint topic at start, and a publisher
// that finds no checkpoint starts from the beginning of $all: right for a
// new publisher, a silent republication of the whole history for one whose
// checkpoint was lost. To tell the two apart, published.go keeps a record
// in the store (contract.Published, in stream chronicler-publisher-<id>):
// written once, after the publisher's first committed checkpoint (or at a
// start that finds a checkpoint and no record, or a record naming another
// checkpoint topic). The record is an event of $all like any other: the
// publisher reads it (when its filter lets it through), never promotes it,
// and commits past it. At start, no checkpoint and a record means the
// checkpoint was lost: with OnMissingCheckpoint refuse (the default) Run
// returns a *MissingCheckpointError naming the topic, the stream and the
// ways forward (restore the checkpoint record, or start once with
// restart to publish the whole history again, every record with its
// original ce_id); with restart it logs a warning and starts over.
//
// Why a record and a refusal, not a copy of the checkpoint in the store
// written with every commit: the copy would be written after the Kafka
// transaction (the store and Kafka do not commit together), so it can be
// behind the real checkpoint and resuming from it would publish again
// what was committed after it, silently breaking exactly-once; and it
// would cost a store write per batch. The record costs one write per
// publisher, and the decision to publish again stays the operator's.
// A checkpoint topic deleted while the publisher runs is re-created by the
// running publisher (see 8 below), which knows where it is.
//
// # Crash walk-through (exactly-once mode)
//
//  1. Crash before a batch's transaction commits (killed while producing, or
//     between produce and EndTransaction): the records are in the log inside
//     an open transaction. The next instance's InitProducerId (same
//     transactional.id) fences the old one and aborts that transaction;
//     read_committed consumers never see it. The checkpoint read back is the
//     previous one, so the batch is re-derived from the store and committed
//     again: once.
//  2. Crash after the commit: the checkpoint in that transaction is read
//     back; nothing of the batch is re-published (events at or before
//     through are suppressed).
//  3. Crash with transaction T open (order committed at LSN L, 2 of its 4
//     events seen) and per-event events after T's first event already
//     committed: the checkpoint has through = the last event handled and
//     resume = before T's first event. The restart re-reads from resume:
//     T's events rebuild its buffer, per-event events up to through are
//     suppressed, later ones are published. T's remaining events and its
//     marker come after through: T is promoted once.
//  4. Crash after T's marker was committed but while an older transaction
//     U is still open: resume is before U, so T's events are read again and
//     T is rebuilt, but its marker is at or before through: T is not
//     published again; U is, when its marker comes.
//  5. Commit fails with an unknown outcome (a broker restart during
//     EndTransaction): the writer aborts; the publisher reads the
//     checkpoint back (read_committed, after the abort settled it) and, if
//     it is this batch's, counts the batch as committed, else retries it.
//  6. A zombie (an older instance still running) is fenced on its next
//     commit: Run returns an error matching kafka.ErrFenced and must not be
//     restarted under the same identity while the new one runs.
//  7. Broker down: Commit blocks and retries with backoff; the subscription
//     channel (1024 events) fills and the subscription stops reading:
//     backpressure, nothing dropped, nothing acknowledged anywhere. The lag
//     gauge keeps growing meanwhile (it is set by a goroutine of its own).
//  8. A topic deleted under a running publisher: every commit of a batch
//     holding a record for it fails (UNKNOWN_TOPIC_OR_PARTITION). After a
//     failed commit the batch's topics are checked again: a missing one is
//     re-created with kafka.ClusterConfig.CreateTopics, else Run returns its
//     *kafka.TopicError (the process fails: /healthz, exit 1), never a
//     retry forever. A deleted checkpoint topic is re-created (as at start)
//     and the next commit writes the checkpoint into it.
//
// At-least-once mode ([kafka.AtLeastOnce]): records are produced by the
// idempotent producer and acknowledged before the checkpoint record is
// written. A crash between the two re-publishes the events after the last
// acknowledged checkpoint: at most one batch plus the previous batch's
// unacknowledged checkpoint, all with their original ce_id (consumers
// de-duplicate on it).
//
// # Replay
//
// [Replay] reads $all from the start up to the last event stored when it
// began (so transactions begun before the range are complete), keeps only
// one rule's outputs whose event (or completing marker) is in the range
// (after a commit position, or stored at or after a time), and produces them
// with its own idempotent producer (at least once) to the rule's topic or
// another one. It never reads or writes a publisher's checkpoint. Its
// records equal the live publisher's (key, value, headers; the partition
// too when the topics have the same partition count; with
// ReplayConfig.Registry the values are framed with the same schema ids).
// `chronicler replay` is the command.
//
// # Rule swaps, graceful stop, status
//
// [Publisher.SwapRules] hands a new rule set to a running publisher; it
// takes effect between batches (after a commit, or on an idle tick), so a
// batch is promoted by one set and events read after the swap by the new
// one. When the new set needs another server filter, the subscription is
// restarted after the last event handled (nothing skipped or repeated).
// Transactions buffered at the swap are promoted by the new set's
// transaction rules when their marker comes (dropped if it has none).
//
// With Config.Grace > 0, the end of Run's context commits the open batch
// (the events handled so far) within Grace before Run returns nil; a commit
// under way when the context ends goes on within Grace too (no new event is
// handled). A batch not committed in time is left for the next run and Run
// returns a *GraceError, so a stop that abandoned a batch is never reported
// as clean. With Grace 0 the open batch is left at once (it is re-derived
// by the next run) and Run returns nil.
//
// [Publisher.Phase] (stopped, starting, running) and [Publisher.LagSeconds]
// (now minus the store time of the oldest event read and not yet
// committed; 0 when all is committed) serve readiness probes.
//
// # Metrics
//
// [NewMetrics]: chronicler_publish_events_total, _records_total,
// _rule_records_total{rule}, _dead_letters_total, _commits_total,
// _commit_errors_total, _rules_swaps_total, the gauge _lag_seconds (set
// every BatchInterval by a goroutine of its own, so also while a commit is
// stuck) and the histograms _batch_records and _commit_seconds.
//
// # Concurrency
//
// A Publisher's Run owns three goroutines (the subscription, the batching
// loop, and with Metrics the lag gauge's ticker) and waits for them before
// returning; one Run at a time. Stats,
// Phase, LagSeconds and SwapRules may be called from any goroutine. Replay
// is a blocking call.
//
// # Example
//
//	p, err := publish.New(publish.Config{
//		Store: db, Rules: rules, PublisherID: "orders-publisher",
//		Kafka: kafka.ClusterConfig{Brokers: []string{"kafka:9092"}, CreateTopics: true, Partitions: 6, ReplicationFactor: 3},
//	})
//	if err != nil {
//		return err // every configuration problem, joined
//	}
//	return p.Run(ctx) // nil after ctx ends; kafka.ErrFenced, *TopicError, ... otherwise
//
// # Not done yet
//
//   - Only oversized records are caught before producing; any other record
//     the broker rejects fails the batch, which is retried (and logged)
//     until it succeeds: it is not dead-lettered.
//   - Replay does not write dead letters (it counts and logs them) and
//     always reads $all from the start, so its cost is the whole history.
//   - Open transactions whose progress marker never comes keep the resume
//     position back (a restart re-reads from there) and are bounded by
//     MaxOpenTransactions; there is no timeout that dead-letters them.
//   - Adding the first transaction-scoped rule by SwapRules (or by a
//     restart) does not re-read transactions begun before: a transaction
//     whose events straddle the swap is promoted from the events read
//     after it. Replay re-derives such a rule's output from history.
package publish
