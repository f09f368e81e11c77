// Package kafka writes integration events to Kafka for the publisher, with the
// publisher's checkpoint (the store position it has published up to) in the
// same Kafka transaction, so a read_committed consumer sees every event exactly
// once across crashes (guarantee 4 of the product brief).
//
// # Exactly once
//
// A [Writer] in [ExactlyOnce] mode is a transactional producer with a stable
// transactional.id derived from the publisher's identity. [Writer.Commit]
// writes a batch of records and one checkpoint record (key = the publisher
// id, value = the store position of the last event in the batch) to the
// checkpoint topic, in one transaction. Either both are visible to
// read_committed readers or neither is. The checkpoint may also carry a
// Resume position (where to re-read from to rebuild open source
// transactions; see package publish).
//
// Start-up, step by step, and why it is safe:
//
//  1. [New] creates the client and loads the producer id eagerly
//     (InitProducerId). The transaction coordinator bumps the epoch for the
//     transactional.id: any older instance with the same identity (a zombie:
//     paused, partitioned, or about to resume after a GC pause) is fenced,
//     and a transaction it left open is aborted by the coordinator.
//  2. Only then is the checkpoint read back ([Writer.Checkpoint]), with
//     read_committed, up to the last stable offset. Because step 1 resolved
//     every earlier transaction, the checkpoint read is final: no commit of
//     an older instance can land after it.
//  3. The publisher resumes the store subscription after that position. A
//     batch whose transaction was aborted (or never committed) is re-derived
//     from the store and written again; its earlier copy is invisible to
//     read_committed consumers.
//
// A fenced writer's Commit returns an error matching [ErrFenced]; the
// publisher must stop (another instance owns the identity now).
//
// # Latency of a commit
//
// A batch is whole when Commit is called, so its records are flushed at
// once rather than after the producer's linger (franz-go's default 10 ms,
// which every commit used to wait out). A Kafka broker (before
// transactions v2) finishes a commit after answering EndTxn, by writing
// the markers; a transaction begun before that is refused with
// CONCURRENT_TRANSACTIONS and retried after a backoff. So a transaction
// begins 3 ms after the previous one ended at the earliest (the broker of
// the test stack needed under 1 ms when idle), and a refusal is retried
// after 5 ms, not franz-go's 20. writer.go has the measurements.
//
// # At least once
//
// For clusters without transactions, [AtLeastOnce] mode uses the idempotent
// producer: Commit produces the batch, waits until every record is
// acknowledged, then produces the checkpoint record and waits for it. A crash
// between the two re-publishes the batch on restart: duplicates are possible
// only for events after the last acknowledged checkpoint (at most one batch,
// plus what was in flight), and each such record carries the same ce_id, so
// consumers can de-duplicate.
//
// # Security
//
// [ClusterConfig] builds every client's connection: TLS when TLS.Enabled,
// the brokers' certificates verified against CAFile (else the system
// roots) unless InsecureSkipVerify; SASL with the password or token, or
// the file holding it, which franz-go's mechanism reads at every new broker
// connection (a rotated secret needs no restart).
// [ClusterConfig.TransportIssues] names a plaintext or unverified
// connection per broker for `check`. [RequiredACLs] lists the ACLs the
// publisher needs (WRITE per topic, READ and WRITE on the checkpoint topic,
// prefixed WRITE on the transactional id, CREATE on the cluster only with
// CreateTopics); without CREATE the publisher accepts an existing
// checkpoint topic. [ProbeACLs] reads which of the topic ACLs the
// principal holds (Metadata's authorized operations, KIP-430), for
// `check`. `check` probes transactions under
// [ProbeTransactionalID], inside the prefix and never the publisher's id.
//
// # Schema registry
//
// The promotion rules' schemas are registered, and their values framed with
// the schema id, through the subpackage registry: the client of a
// Confluent-compatible schema registry, part of this owner.
//
// # Concurrency
//
// A Writer is used by one goroutine at a time (the publisher's loop); Commit
// calls must not overlap.
package kafka
