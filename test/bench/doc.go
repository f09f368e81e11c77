// Command bench measures Chronicler against the physical limit Postgres sets:
// the rate at which pg_recvlogical drains the same WAL through pgoutput, from
// slots created at the same point, in the same run. Every throughput figure
// is reported as a ratio to that baseline.
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
// machine's CPU per scenario adds the server child's and that of the Postgres
// walsender decoding the scenario's slot (found by the slot's active_pid as
// soon as it is active, read before the worker stops; unknown, never zero,
// if it has exited); the baseline's is pg_recvlogical's plus its
// walsender's. The Kafka broker is external and never counted. A worker
// prints a JSON progress line every 100 ms on stdout and stops on SIGTERM,
// writing its profiles; the parent owns every child and stops each one when
// its scenario ends, also on failure.
//
// Within the parent, one goroutine reads each child's stdout and one runs each
// Kafka consumer; both hand results over under a mutex and stop when their
// child or client is closed; one goroutine per scenario and per baseline drain
// watches the slot's walsender (walsenderWatch), until the scenario or drain
// ends. Everything else runs in order: workload, baseline
// drain, scenarios, baseline drain.
package main
