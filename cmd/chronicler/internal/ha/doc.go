// Package ha elects the one active Chronicler instance of a replication
// slot: the instance holding a Postgres session-level advisory lock on the
// captured database is active, the others are standbys.
//
// # The lock
//
// The key is the configuration's ha.lock_key (default "chronicler/<slot>"),
// hashed with FNV-1a 64 into pg_advisory_lock's int64 ([LockID]). It is held
// by a dedicated ordinary connection (application_name chronicler-ha), not
// by the replication connection: the lock must outlive replication
// reconnects. That session's tcp_keepalives_idle, _interval and _count and
// tcp_user_timeout are set from ha.keepalive (K, default 5s): idle K,
// interval K/2 (at least 1s), count 3, user timeout 3K. So the server drops
// the session of a vanished host, and with it the lock, about 2.5K (12.5s)
// after the host went silent.
//
// A standby ([Elector.Acquire]) polls pg_try_advisory_lock every second on
// its own connection; it reconnects (capture/retry's backoff, from 200 ms
// to 5 s) when that connection fails, and reports whether it works
// ([Elector.Healthy]) so /readyz can say "standby" only for a standby that
// could take over. When it gets the lock,
// it terminates the walsender still holding the slot if that walsender is a
// Chronicler capture session (pg_replication_slots.active_pid whose
// application_name is chronicler-capture): holding the lock proves the
// instance that owned it lost its session, so its walsender is a leftover
// that Postgres would otherwise keep until wal_sender_timeout. It then
// waits up to 10 s for that walsender to go, signalling it again every
// 250 ms (one blocked writing to a frozen instance may not act on the first
// signal); the same PID only, so this instance's own walsender is never
// touched. Any other holder of the slot is left alone (capture waits for
// it).
//
// Every call to Postgres goes through capture/postgres's LockSession
// (connection settings, TryLock, Unlock, Ping, TerminateSlotHolder and
// TerminateSlotHolderAgain, which
// reads the slot with capture's one slot reader); this package holds the
// election and lease logic.
//
// The active instance pings its lock connection every K with a timeout of
// K/2 ([Lease.Lost]); when a ping fails, the lease is lost and the caller
// must stop all work at once: another instance may take over.
//
// # Failure cases
//
//   - Process killed (SIGKILL, OOM): the kernel closes its sockets, the
//     server ends the session at once and releases the lock. The standby's
//     next poll (within 1s) takes it, terminates the old walsender if it is
//     still there, and starts. Takeover: about 1s plus start-up.
//   - Node lost (power, kernel panic): no FIN/RST reaches the server; TCP
//     keepalives end the session after about 2.5K (12.5s with the default
//     5s), then as above. The old walsender would hold the slot until
//     wal_sender_timeout (60s by default): it is terminated.
//   - Network partition between the active instance and Postgres: the
//     server drops the session after about 2.5K; the old instance's ping
//     fails within 1.5K (next ping at most K away, K/2 timeout) and it stops
//     all work, so it stops before the new one can get the lock. Meanwhile
//     it could not read changes from Postgres anyway. Should it still be
//     appending to the store, its appends and the new instance's are
//     de-duplicated by deterministic ids and stream tails (capture/store);
//     its Kafka transactions are fenced by the new publisher's
//     transactional id (publish).
//   - Paused process (SIGSTOP, a long GC or VM pause): the kernel still
//     answers TCP keepalives, so the session stays, but the frozen process
//     stops pinging it. A standby reads the lock holder's last activity
//     (pg_stat_activity.state_change of the chronicler-ha session holding
//     the lock) at each poll and ends that session once it has been silent
//     for Config.StaleAfter (3K): the lock is free, the standby takes it,
//     terminates the frozen instance's walsender and starts. Takeover: 3K
//     plus a poll and start-up. The frozen instance, when it resumes, sees
//     the gap in its pinger's ticks (it logs the freeze), its lease is in
//     doubt at once ([Lease.Valid]: no successful ping within 1.5K), every
//     Check pings and fails (the session is gone), so capture confirms
//     nothing and reconnects nothing, and it exits 1. Its publisher is
//     fenced by the new instance's transactional id.
//   - Capture's guard: [Lease.Check] pings the lock session; the
//     composition root (cmd/chronicler/app) makes capture call it before
//     every connection and every confirmation to Postgres. Once the lock
//     session has ended on the server, the old instance confirms nothing
//     more (but for a ping that had already answered: one round trip).
//   - The lock session is ended on the server (pg_terminate_backend, an
//     idle-session timeout, a proxy): the lock is free at once and a standby
//     may take it before the old instance notices (within 1.5K). The new
//     one terminates the old walsender, so the old one captures nothing
//     more; appends it still had in flight are de-duplicated as above, and
//     its publisher is fenced. TestHALockLost (test/e2e) covers this case.
//     An append of the old instance landing on a stream after the new one
//     read that stream's tail makes the new one's next append to it a
//     wrong-expected-version on a known stream; the tail is then this
//     slot's own event, so the appender de-duplicates by position and goes
//     on (capture/store: not a foreign write). A progress marker the old
//     instance writes late is handled the same way: the new one's markers
//     expect the last revision they read, and never go below it (capture).
//   - Postgres restarts or fails over: every session ends, every lock is
//     released. The active instance's ping fails and it stops; all
//     instances then compete again and one wins.
//
// Exactly-once across a takeover does not rest on the lock alone: capture
// re-delivers from the slot's confirmed position and de-duplicates by stream
// tails, and the publisher fences its predecessor and resumes from the
// checkpoint committed with its last Kafka transaction.
//
// # Concurrency
//
// An Elector is used by one goroutine (Acquire); Healthy and Active may be
// called from any goroutine. A Lease owns one goroutine (the pinger), which
// Release stops and waits for; Lost may be read from any goroutine.
//
// # Example
//
//	el, err := ha.New(ha.Config{Conn: postgres.ConnSettings{URL: pgURL}, Key: "chronicler/orders", Slot: "orders"})
//	if err != nil {
//		return err
//	}
//	lease, err := el.Acquire(ctx) // blocks while standby
//	if err != nil {
//		return err // ctx ended
//	}
//	defer lease.Release()
//	work, stop := context.WithCancel(ctx)
//	go func() { <-lease.Lost(); stop() }()
//	return runEverything(work)
package ha
