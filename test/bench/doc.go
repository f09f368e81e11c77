// Command bench measures Chronicler against the limit Postgres sets: the
// rate at which a backend decodes the same WAL (logical decoding and
// pgoutput, pg_logical_slot_get_binary_changes, no transport), from a slot
// created at the same point, drained first and last in the same run. Every
// throughput figure is reported as a ratio to it, and to pg_recvlogical
// draining its own slot (the second reference), and every scenario's CPU in
// seconds per million changes for each process doing its work.
//
//	go run ./test/bench -scenario all -json
//	go run ./test/bench -scenario full,publish -workload bulk -bulk-rows 200000 -cpuprofile /tmp/b
//
// Scenarios: capture (1), store-0ms and store-2ms (2), full (3), publish (4)
// and a steady-rate latency run; workloads: pgbench, bulk (one large
// transaction) and wide (jsonb, text and numeric columns, TOASTed values,
// updates that leave them unchanged). See test/bench/README.md for the goals
// and the output.
//
// # Processes
//
// The Chronicler part of each scenario runs in a child process: this binary
// again, told what to do by the CHRONICLER_BENCH_WORKER environment variable
// (the test binary does the same in TestMain). So does the
// KurrentDB-compatible server, a fresh one per scenario. CPU seconds and peak
// RSS are read from the worker's /proc entries, so they are its own. The
// machine's CPU per scenario adds the server child's, the Kafka broker's
// (full, publish, latency: the process listening on the broker's address,
// found once through /proc/net/tcp and the processes' socket descriptors; a
// broker on another machine is unknown) and that of the Postgres walsender
// decoding the scenario's slot (found by the slot's active_pid as soon as it
// is active, read before the worker stops; unknown, never zero, if it has
// exited). The limit's CPU is its backend's; pg_recvlogical's is its own
// plus its walsender's. The machine as a whole (/proc/stat over the same
// interval: CPUs busy, the part outside those processes, and steal) says
// whether a run had the machine to itself. A worker prints a JSON progress line every 100 ms
// on stdout and stops on SIGTERM, writing its profiles; the parent owns
// every child and stops each one when its scenario ends, also on failure.
//
// The kernel's autogroup scheduling, when on, shares the CPUs between
// sessions first; Postgres makes every backend a session of its own, and
// the walsender was at times starved for hundreds of ms beside the bench's
// own session (autogroup.go has the measurements). The bench turns it off
// for its run when it may (-autogroup off, the default) and back on at the
// end, and reports which it had.
//
// Within the parent, one goroutine reads each child's stdout and one runs each
// Kafka consumer; both hand results over under a mutex and stop when their
// child or client is closed; one goroutine per scenario and per
// pg_recvlogical drain watches the slot's walsender (walsenderWatch), until
// the scenario or drain ends. Everything else runs in order: workload, the
// limit's first drain, pg_recvlogical's first drain, scenarios,
// pg_recvlogical's second drain, the limit's second drain.
package main
