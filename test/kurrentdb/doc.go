// Package kurrentdb is a KurrentDB-compatible server for tests and local
// development. It models KurrentDB 24.10.14, the newest patch of the 24.10
// LTS line (tag v24.10.14 of kurrent-io/KurrentDB, 2026-05-15; no later
// 24.10 tag exists in the repository), insecure by default or with TLS,
// users and stream ACLs (see "Security"), for every official client, not
// only the Go one Chronicler uses: a single node, or an in-process cluster
// of nodes on one log (Cluster, below). It is built on the
// official Go client module's generated gRPC server interfaces (Streams,
// ServerFeatures; EventStore-Client-Go/v4 v4.2.0) and follows
// shared/kurrentdb-protocol.md where that page and the 24.10.14 source
// agree; the conformance suite in ./conformance runs unchanged against it
// and against a real server.
//
//	srv, err := kurrentdb.Start(kurrentdb.Options{})         // in memory, 127.0.0.1:<free port>
//	if err != nil { ... }
//	defer srv.Close()
//	cfg, _ := esdb.ParseConnectionString(srv.URL())        // "esdb://127.0.0.1:PORT?tls=false"
//	db, _ := esdb.NewClient(cfg)
//
// Tests use kurrentdbtest.Start(t, opts) and kurrentdbtest.Client(t, url)
// (kurrentdbtest.StartCluster for a cluster); processes use
// cmd/kurrentdb-server, which prints one line
// "listening esdb://127.0.0.1:PORT?tls=false" once it accepts connections.
//
// # Sources
//
// The answers below were read from the server's source at tag v24.10.14
// (paths under src/): EventStore.Core/Services/Transport/Grpc/
// Streams.Append.cs, Streams.BatchAppend.cs, Streams.Delete.cs,
// Streams.Read.cs (ResponseConverter), ServerFeatures.cs, RpcExceptions.cs,
// Status.cs, Constants.cs, AnyStreamRevision.cs;
// EventStore.Core/Services/Transport/Enumerators/
// Enumerator.StreamSubscription.cs, Enumerator.AllSubscription.cs,
// Enumerator.AllSubscriptionFiltered.cs, ReadResponse.cs;
// EventStore.Core/Services/Storage/ReaderIndex/EventFilter.cs;
// EventStore.Core/Data/Event.cs, ResolvedEvent.cs;
// EventStore.Core/ClusterVNodeStartup.cs,
// EventStore.Core/TransactionLog/Chunks/TFConsts.cs,
// EventStore.Core/Configuration/ClusterVNodeOptions.cs;
// EventStore.Core/Services/Transport/Grpc/Gossip.Read.cs, ServiceBase.cs
// (requires-leader), EventStore.Core/Services/VNode/ClusterVNodeController.cs
// (who serves, forwards or refuses what), EventStore.Core/Services/Gossip/
// GossipServiceBase.cs, EventStore.Core/Cluster/ClientClusterInfo.cs;
// EventStore.Core/Services/Storage/ReaderIndex/IndexWriter.cs and
// BoundedCache.cs (the idempotency cache); Protos/Grpc/streams.proto,
// shared.proto and gossip.proto. Read, not observed on a running server:
// no KurrentDB can run on the build machines.
//
// # What it implements
//
//   - Streams.Append: expected revisions any / no_stream / stream_exists /
//     exact, in the reference's order of checks; idempotent re-append (exact
//     revision: compared with the stored events; any/stream_exists: an
//     in-memory id cache, not rebuilt on restart, like the real server's);
//     wrong expected version in the response body with both field sets.
//     Each proposed event is checked as it arrives, in the real order:
//     "type" present, "content-type" present (InvalidArgument "Required
//     Metadata Property 'type' is missing", trailers
//     exception=missing-required-metadata-property,
//     required-metadata-properties=type,content-type), its size against
//     Options.MaxAppendEventSize (unlimited by default; InvalidArgument
//     "Event with Id: <id>, Size: <n>, exceeds Maximum Append Event Size of
//     <max>.", trailers exception=maximum-append-event-size-exceeded,
//     maximum-append-event-size, event-id, proposed-append-event-size; the
//     id is the proto UUID's C# ToString, i.e. its JSON, inferred), then the
//     running total against Options.MaxAppendSize (1 MiB; "Maximum Append
//     Size of <max> Exceeded.", exception=maximum-append-size-exceeded,
//     maximum-append-size). Sizes count data + custom metadata + 2 x the
//     type's length in UTF-16 code units (Event.SizeOnDisk, 24.10.4+).
//   - Content types: only "is JSON" is kept, as the real server keeps it
//     (IsJson = content type == "application/json", exactly): reads answer
//     application/json or application/octet-stream, whatever was written.
//   - Streams.Read: streams and $all, both directions, from start / end /
//     revision / position, counts; $tb, $maxCount, $maxAge; $$X reads as
//     $maxCount 1; missing or soft-deleted stream -> stream_not_found;
//     tombstoned -> stream-deleted; link events ("$>", "N@stream") resolved
//     on request; string or structured ids. Every event carries its commit
//     position, stream reads and subscriptions included (a resolved link:
//     the link's), as every 24.10 event commits itself.
//   - Subscriptions (Read with subscription): streams and $all, exclusive
//     start positions, confirmation first, catch-up, caught_up, live; $all
//     filters by stream name or event type, prefix or regex, with
//     checkpoints. caught_up carries the server's time and the
//     subscription's checkpoint (24.10.5+): a stream subscription's last
//     revision sent (or the one it started after; none before the first
//     event), a $all subscription's last position sent, event or checkpoint
//     (or the one it started after; none from Start before anything was
//     sent). Checkpoints carry the server's time. These fields are newer
//     than the Go client's protos: they go out as unknown fields of its
//     messages (newfields.go), which newer clients read and older ones skip.
//   - Filters: regexes are .NET regular expressions (EventFilter.cs: new
//     Regex(pattern), unanchored Match) through github.com/dlclark/regexp2,
//     a port of the .NET engine: lookaround and back-references work (the
//     Python client's default exclude filter is ^(?!(\$.+$|...)) ), \d and
//     \w are Unicode, RE2-only syntax such as (?P<n>...) is refused. A
//     pattern .NET cannot parse, or a subscription's checkpoint interval
//     multiplier of 0, throws in the real handler: Unknown "Exception was
//     thrown by handler.". A filter on $all first hides what unfiltered $all
//     hides ($epoch-information, persistent-subscription checkpoint and
//     parked streams of $all); prefixes are StartsWith, an empty list
//     matches nothing.
//   - Delete (soft, writes {"$tb": MaxInt64} to $$X) and undelete by append
//     or by setting metadata (rewrites $tb to last+1); Tombstone
//     ($streamDeleted at revision MaxInt64, then stream-deleted everywhere,
//     $$X included). A wrong expected version on either is
//     FailedPrecondition "Delete failed due to WrongExpectedVersion. Stream:
//     X, Expected version: E, Actual version: A" with trailers
//     exception=wrong-expected-version, stream-name, expected-version,
//     actual-version, versions in the server's int64 form (-1 no stream, -2
//     any, -4 stream exists).
//   - Streams.BatchAppend: many appends, to any streams, on one
//     bidirectional call, keyed by correlation id; see "BatchAppend" below.
//   - ServerFeatures: version "24.10.14" and, like ServerFeatures.cs, every
//     method of every registered client service, lowercase, with the real
//     feature flags (read: position, events; batchappend:
//     deadline_duration). The list is read from the registered services, so
//     it names exactly what this server serves (with NoBatchAppend,
//     batchappend is left out and answers Unimplemented).
//   - gRPC receive limit: 16 MiB - 10,000 bytes (MaxRecvMsgSize, the real
//     Streams service's TFConsts.EffectiveMaxLogRecordSize): a larger
//     message fails its call with ResourceExhausted, a whole BatchAppend
//     call included, as on the real server (the message text is grpc-go's).
//   - Durability (Options.DataDir): an append-only log, one length+CRC32C
//     frame per append batch, fsynced before the append is acknowledged,
//     replayed at Start. A torn or corrupt tail is cut at the last whole
//     frame and logged, never served; an append in flight at a crash is
//     there whole or not at all. Positions are byte offsets in that file
//     (commit == prepare, > 0, strictly increasing, also across restarts);
//     the in-memory mode keeps the same bytes in memory, at the same
//     offsets.
//   - Memory: events live in the log, not in the heap (see "Memory" below).
//   - Gossip.Read: the members of the cluster (a single node: itself, the
//     leader), and the requires-leader header, as a cluster serves them
//     (see "Cluster" below).
//   - Fault and cost injection (Options.Faults, SetFaults, DropSubscriptions):
//     append latency (fixed + random jitter), Unavailable / Aborted at a
//     rate (before the write, or after it with FailAfterCommit), not-leader
//     answers naming a leader, dropping every open subscription.
//
// # BatchAppend
//
// Read from KurrentDB v24.10.14's Streams.BatchAppend.cs, Status.cs and
// WrongExpectedVersion.cs. Everything here is inferred from that code, not
// observed on a running server: the conformance suite checks the answer
// shapes below against this server and is written to run unchanged against
// a real one, but has not been run against one yet.
//
//   - Requests are keyed by correlation_id. The first request of an id must
//     carry options (stream, expected position, deadline); requests with
//     is_final=false add proposed_messages; at is_final=true all of them
//     are written as one atomic append through the same store path as
//     Append (expected revision and idempotency are the same code; sizes are
//     counted the same way). Options on later requests of a
//     pending id are ignored, as the real server's AddOrUpdate keeps the
//     first; they are still checked (stream identifier, deadline), and a
//     failed check answers the id at once while the pending append stays,
//     as in the real server: the one case with two answers for an id.
//   - One answer per correlation id (but see above), echoing
//     correlation_id (as sent) and stream_identifier. The answer's expected_stream_position fields are
//     never set: the real server does not set them either. Success carries
//     current_revision (no_stream for an empty append to a new stream) and
//     position{commit, prepare} of the last event written (for an
//     idempotent retry: of the last event found).
//   - Errors are google.rpc.Status with the real server's code, message
//     and one Any detail: wrong expected version -> AlreadyExists
//     "WrongExpectedVersion" + WrongExpectedVersion (current_stream_revision
//     or current_no_stream; expected_stream_position / expected_any /
//     expected_no_stream / expected_stream_exists); tombstoned stream, or
//     stream_exists on a soft-deleted one -> NotFound "StreamDeleted" +
//     StreamDeleted{stream}; an event over Options.MaxAppendEventSize ->
//     InvalidArgument "MaximumAppendEventSizeExceeded" +
//     MaximumAppendEventSizeExceeded{eventId (the Guid's text),
//     proposedEventSize, maxAppendEventSize} (a shared.proto message newer
//     than the Go client's, sent as an Any with its type URL); over the
//     maximum append size -> InvalidArgument "MaximumAppendSizeExceeded" +
//     MaximumAppendSizeExceeded{max};
//     deadline passed -> DeadlineExceeded "Timeout" + Timeout; malformed
//     request -> InvalidArgument "BadRequest" + BadRequest{message};
//     anything unexpected -> Unknown "Unknown" + Unknown. AccessDenied is
//     never sent (no ACLs).
//   - Deadline: the smaller of the options' deadline (Duration, or the
//     time until deadline_21_10_0) and BatchWriteTimeout (2 s, the real
//     server's default WriteTimeoutMs); without one, 2 s. Zero or negative
//     -> Timeout at once. It bounds only the assembly of a request: an id
//     still without is_final when it passes is answered Timeout and its
//     later requests are ignored. The write itself is not bounded by it.
//   - Sizes, as AddEvents counts them: each event against the event limit as
//     it comes, then the id's running total (all its requests so far)
//     against the append limit once the request's events are in. Over
//     either: answered at once, the append is dropped, later requests of
//     the id ignored.
//   - Malformed: a request without options for an id not pending (never
//     opened, or already answered) is ignored without an answer, as the
//     real server does. A missing or invalid correlation id, a missing
//     stream identifier or expected position, an empty stream name, an
//     event id that is not a UUID or is all zero, or a proposed message
//     without "type" or "content-type" metadata -> BadRequest (the real
//     server fails the whole call instead when the request with a bad
//     correlation id also has no options, inferred). Divergence:
//     after a bad proposed message the real server leaves the id pending
//     (later requests still add to it and its timer later answers Timeout
//     again); this server drops it, so every id is answered once.
//   - Ordering: answers are sent as writes complete, in any order. Writes
//     of different ids run concurrently (injected latency included); writes
//     to the same stream on one call reserve their revisions in the order
//     their is_final requests arrived. Subscribers and $all see batch
//     appended events exactly like appended ones (same store path).
//   - Faults are taken when a request completes and apply to it as to one
//     Append call: latency (in the write's own goroutine, so it does not
//     hold back other ids), then the injected error, before the write or
//     after it is durable (FailAfterCommit). Unavailable is answered like
//     the real server's not-ready reply (message "Server Is Not Ready",
//     Empty detail) but with code Unavailable: the real one leaves the code
//     at 0 (OK), which no client should have to trust. Aborted (Append's
//     commit timeout) is answered Timeout, as the real server reports
//     commit timeouts on a batch. A closed store or a failed log is
//     answered not-ready too. NotLeader ends the whole call with the
//     not-leader status and trailers, as the real server's callback does.
//   - End of the call: when the client closes its side, the server answers
//     every complete request, answers incomplete ones Timeout at once (they
//     can no longer complete), then ends the response stream with OK.
//     Divergence: the real 24.10 server's send loop (inferred) may end
//     before all pending answers or not until the client cancels, so
//     clients should count answers, not wait for the end (the conformance
//     suite does). A cancelled call abandons writes not yet reserved in the
//     log; reserved ones complete. Close ends open calls with Unavailable
//     (DropSubscriptions does not touch them).
//
// # Security
//
// Options.TLS serves gRPC over TLS (the certificate and key are PEM files;
// URL then says tls=true and names Options.TLS.CAFile as tlsCAFile).
// Options.Users turns on what a secure KurrentDB 24.10 applies to the calls
// of the official clients, read from EventStore.Core/Authorization/
// (LegacyAuthorizationProviderFactory.cs, LegacyStreamPermissionAssertion.cs)
// and Streams.BatchAppend.cs; it requires TLS, as the clients send no
// credentials over plaintext. DefaultUsers are the built-in admin ($admins)
// and ops ($ops) with password changeit; SetPassword changes one (as the
// users API's ResetPassword does).
//
//   - Authentication: basic credentials in the Authorization header of a
//     known user with its password, or none (anonymous). Wrong ones:
//     Unauthenticated, for every call (the real server's middleware answers
//     HTTP 401, which gRPC clients see as Unauthenticated; the message here
//     is the server's own). ServerFeatures needs none.
//   - Stream access (Append, Read, subscriptions, Delete, Tombstone, each
//     BatchAppend request): anonymous callers may do nothing
//     (AllowAnonymousStreamAccess is off by default); writing or deleting
//     $all is denied to all; $$X is metadata read/write of X (deleting it is
//     denied); $admins (and the admin user) may do anything else; otherwise
//     the roles of the first ACL that names the action decide: the stream's
//     own "$acl" (in $$X; a string or a list per key $r, $w, $d, $mr, $mw),
//     then the last $settings event's $systemStreamAcl (for $-streams, $all
//     included) or $userStreamAcl, then the built-in default (user streams:
//     "$all", every authenticated user; system streams: $admins). A role is
//     the user's name or one of its groups. So reading $all needs $admins
//     unless $$$all grants $r.
//   - Denied: PermissionDenied "Access Denied" with trailer
//     exception=access-denied (the clients' access-denied error), after the
//     whole append request was read; a BatchAppend request is answered
//     PermissionDenied "AccessDenied" with an AccessDenied detail on its
//     correlation id and the call goes on (its later requests of that id
//     are ignored, as of any id that is not pending).
//
// Simplified: users exist only as Options.Users and SetPassword (no users
// service, no $users streams, no disabled accounts, no password hashing);
// access is checked when a call starts (a subscription is not ended when
// an ACL changes later); a $all read shows every event to whoever may read
// $all, as the real one does; no client-certificate authentication; the
// stream policy plugin (stream prefixes) is not modelled.
//
// # Memory
//
// The server holds an index of the log, not its events (index.go, store.go):
// per record its position and the previous event of its stream (8 bytes),
// per stream about 13 bytes (a hash table of tails, the names checked
// against the log), all in mmap'd memory outside the Go heap; the metadata
// of streams that have some, and tombstones, in maps. With a data directory
// the 8 bytes per record are in two unlinked scratch files there (shared
// mappings, rebuilt from the log at every start), of which only the two
// newest 1 MiB chunks stay resident: older ones are dropped from the
// resident set as the arrays grow, and a read of an old stream faults its
// pages back from the page cache (or the disk). So in durable mode the
// resident index grows with the streams, not with the events. Event bodies are read
// back from the log (pread on the file, or the in-memory log's bytes)
// through a record cache bounded by Options.CacheSize (default 16 MiB):
// appended records go in, so live subscribers and tail reads rarely touch
// the log; catch-up reads of $all read ranges of the log (1 MiB per read)
// without filling the cache. The idempotency cache of any/stream_exists
// appends is the real server's: first in, first out, 8 MiB as it counts
// entries. So memory grows with the number of records and streams, not with
// their bytes: figures in README.md ("Footprint"). The index numbers at most
// 2^32 - 2 records; a frame over 64 MiB (a server never writes one) is
// damage at replay.
//
// # Concurrency
//
// All Server methods are safe for concurrent use. One mutex guards the
// index; it is held only to check and reserve an append (assign revisions
// and positions; a stream lookup may read an event's head from the log) and
// to locate what a read returns, never across an fsync or while event
// bodies are read. In durable mode one writer goroutine takes every frame
// queued so far, writes them with one write and one fsync (group commit),
// then makes them visible; appends wait for that. Readers and subscriptions only see synced records.
// Subscriptions read the log from their own cursor and wait on a change
// channel taken in the same locked read, so there is no catch-up/live switch
// to race (see rpc_subscribe.go for the walk-through). Close stops serving,
// flushes reserved frames and closes the log; it is idempotent.
//
// # Cluster
//
// StartCluster runs several nodes (default 3) in one process on one log:
// every node answers Gossip.Read with the members and their states; the
// leader serves everything; a follower answers requests with the header
// requires-leader: true with NotLeader naming the leader (on BatchAppend the
// call ends), serves other reads and performs other writes (the real one
// forwards them to the leader); without a leader writes are not ready.
// Kill(i) stops a node at once, as a killed process; the lowest survivor is
// elected after ClusterOptions.ElectionDelay; Restart and MoveLeader. The
// Cluster type's doc says what this models of a real cluster and what not
// (followers never lag: one log; nothing a node acknowledged is lost).
//
// # Decisions where the reference is inferred or silent
//
//   - Checkpoints of filtered $all subscriptions: one every multiplier x
//     window considered events (matching or not), in catch-up and live alike,
//     at the position of the last considered event; at the end of catch-up one
//     more at the last considered position if any event was considered since
//     the previous checkpoint. The real 24.10.14 server
//     (Enumerator.AllSubscriptionFiltered.cs) counts considered events per
//     page read, sends one at the end of every catch-up (at the read's
//     current position, or (0, 0) when it has none) and drops repeats; this
//     server never sends a checkpoint beyond the log, so resuming from any
//     checkpoint loses nothing (the conformance suite checks that property
//     and the timestamps, not exact checkpoint positions).
//   - A slow subscriber never falls behind a live buffer (there is none), so
//     caught_up is sent once and fell_behind never.
//   - DropSubscriptions and Close end subscriptions with gRPC Unavailable.
//   - Soft undelete by append writes the events first and the rewritten
//     metadata after them, in the same frame.
//   - A position that is not an event's position is accepted: forwards
//     reads start at the next event, backwards at the previous one. Only
//     prepare > commit is rejected (InvalidArgument).
//
// # Not implemented
//
// These services are not registered: ServerFeatures does not list them and
// every call answers Unimplemented "Service is unimplemented.", as ASP.NET
// Core gRPC answers for a service a server does not map (a method a
// registered service lacks: "Method is unimplemented."): persistent
// subscriptions, projections, users, operations (scavenge, shutdown, ...),
// cluster elections and replication between nodes (see Cluster), monitoring,
// redaction. Also not implemented: $maxAge and $maxCount scavenging (data is
// only hidden from reads, never removed), explicit transactions, the
// $by_category / $by_correlation_id system projections, fell_behind (see
// above).
package kurrentdb
