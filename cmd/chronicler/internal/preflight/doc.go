// Package preflight holds what `chronicler check` and `chronicler status`
// do, testable without the CLI: [Run] checks every prerequisite a
// configuration names, [ReadStatus] reads the pipeline's positions.
//
// # Check
//
// [Run] connects to Postgres (with --only publish: not), the store, and
// Kafka (with --only capture: not) and returns a [Report]: one [Check] per
// prerequisite, each ok, warn or FAIL, naming what it checked (table,
// slot, publication, topic, broker), what it found, and for warn and FAIL
// the fix (the SQL or the setting). Postgres: reachable, version,
// wal_level, room for a slot and a walsender, REPLICATION, each table
// (exists, SELECT), its replica identity (updates and deletes publishable;
// the old values that postgres.need_old_values or the rules read, found by
// loading the rules once more per table with its identity made known; a
// partitioned table's partitions), its generated columns (not captured),
// the publication (partitioned tables via their root) and the slot, the
// slot's lag, and what a failover needs (a standby given as postgres.url;
// with postgres.failover_slot, on a primary the slot's failover flag,
// synchronized_standby_slots and the slots it names, on a standby its side
// of slot synchronization). The Postgres checks are capture/postgres's own
// (postgres.CheckServer, CheckTable, CheckReplicaIdentity, CheckGenerated,
// CheckPublication, CheckSlot, CheckSlotGap, CheckFailover), the ones
// capture applies at start; this package reads through postgres.Conn and
// only prints their findings. Rules: loaded against the tables' columns.
// Store: a read of $all, the server version (ServerFeatures), for a slot
// Postgres does not have, whether the store shows capture streamed through
// it (capture.SlotHistory: a gap in history, CheckSlotGap), and with
// capture the appends (and $maxCount) capture makes to its own streams,
// probed without writing (store.Client.ProbeWrite). Kafka:
// metadata, broker versions (ApiVersions), the rules' topics, the dead-
// letter and checkpoint topics (a creation is validated, never done), and
// the principal's ACLs on those topics (kafka.ProbeACLs: Metadata's
// authorized operations),
// with exactly_once a transaction begun and aborted under the throwaway id
// chronicler-<publisher_id>.check-<pid> (kafka.ProbeTransactionalID: under
// the publisher's prefixed ACL, never its id). Schema registry
// (kafka.schema_registry.url set): reachable, its subjects and global
// compatibility level, and per subject of the rules' schemas what it holds
// and the subject's level: registered (version, id), new, compatible with
// the latest version (a start registers the next), or incompatible (Fail,
// with the fields that differ); nothing is registered. Unreachable systems
// are Fail checks; a system that does not answer within Options.Timeout is
// one too.
//
// Each connection's security is a check of its own, a warning when it is
// plaintext or does not verify the server's certificate, naming the
// connection and the setting that fixes it: "postgres tls" (as read from
// the open connection: postgres.CheckTransport), "store tls <host:port>"
// (the store URL's tls and tlsVerifyCert: store.Client.TransportIssue),
// "kafka tls <broker>" per seed broker (kafka.tls: ClusterConfig.
// TransportIssues). A server certificate that does not verify is a Fail:
// Postgres's TLSError at connect; the store's TLSError from store.Connect
// (a handshake of its own: the official client only retries such a
// server); Kafka's dial error on the brokers check.
//
// # Status
//
// [ReadStatus] reads, and never writes: the slot (postgres.Conn.ReadSlot:
// its pg_replication_slots row with the walsender's flush lag), the last
// progress marker and the end of $all, the capture dead-letter stream's last revision, and from
// Kafka the publisher's checkpoint (partition 0 of the checkpoint topic,
// key = publisher id) and the dead-letter topic's committed records, both
// with a plain read_committed consumer: no group, no transactional id, so
// the running publisher is not fenced (publish/kafka.New would fence it).
// The publisher's lag is counted by reading $all after the checkpoint with
// the publisher's subscription filter (mapping.Interest), up to
// StatusOptions.MaxLagEvents events.
//
// # Connections
//
// Postgres is reached through capture/postgres (postgres.Connect, with
// postgres.url and postgres.password; application_name chronicler-check
// or chronicler-status). Kafka is reached with the publisher's own TLS and
// SASL options (kafka.ClusterConfig.ClientOpts) and its read_committed
// reader (kafka.ReadCheckpoint, kafka.ReadCommitted), the store with run's
// client (store.Connect with config.StoreClient), every call bounded by
// StatusOptions.Timeout (store.Bounded).
//
// # Secrets
//
// Messages name hosts, ports, databases, users, streams and topics, never
// passwords. As a second line, every text a Check or a status error holds
// passes through a scrubber that replaces the configuration's secrets (and
// whole connection strings by their redacted form).
//
// # Not done
//
//   - Whether the Kafka principal may write the topics is not probed
//     by producing: Metadata's authorized operations are read instead.
//   - The store's write permission is probed on capture's own streams
//     (progress, dead letters, snapshot), not on the rules' event streams
//     (their categories are not listed by the rule set): a stream whose
//     own metadata denies the user is found by run, not check.
//   - The HA lock (ha.enabled) is not checked or reported.
//   - lag_seconds from the progress marker's age over-states the lag when
//     the database was idle before the pending changes.
//
// # Concurrency
//
// Run and ReadStatus are blocking calls; each owns the clients it opens and
// closes them before returning, except a store client stuck in discovery
// (the official client does not honour contexts there), which is closed
// in the background.
//
// # Example
//
//	rep := preflight.Run(ctx, cfg, preflight.Options{Capture: true, Publish: true})
//	for _, c := range rep.Checks {
//		fmt.Println(c.Status, c.Name, c.Found, c.Fix)
//	}
//	if !rep.OK {
//		os.Exit(1)
//	}
package preflight
