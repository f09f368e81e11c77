package main

import (
	"fmt"
	"os"
	"strings"
)

// autogroupPath is the kernel's autogroup switch (CONFIG_SCHED_AUTOGROUP).
//
// With autogroup on, the scheduler shares the CPUs between sessions first
// and between a session's processes second. Postgres calls setsid() in
// every child it starts, so each backend, the walsender among them, is a
// session of its own, while the bench, its worker and server children,
// pgbench and the Kafka broker share the bench's. In the latency runs timed
// for it (2026-12-05, this machine's 6.18 kernel) the walsender decoding
// the run's slot was at times runnable but ran 0.2 ms of every 4 ms for
// 100-400 ms (its /proc schedstat, sampled every 4 ms), and every commit
// in that window reached the store that much later: the capture stalls of
// 60-230 ms behind most of the runs whose p99 was over 60 ms (6 of 16). With
// autogroup off, no run had such a stall and capture's part of the slowest
// 1% was 1-6 ms. A container runtime puts each container in a cpu cgroup
// of its own, where autogroup does not apply; so the bench turns it off
// for its run (when it may: as root) and puts it back at the end, unless
// -autogroup keep.
const autogroupPath = "/proc/sys/kernel/sched_autogroup_enabled"

// setAutogroup applies -autogroup (off or keep) to the switch at path and
// says what the run had: the state for the report, and restore, which puts
// back what it changed.
func setAutogroup(path, mode string) (state string, restore func()) {
	restore = func() {}
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("unknown (%v)", err), restore
	}
	switch on := strings.TrimSpace(string(b)) != "0"; {
	case !on:
		return "off", restore
	case mode == "keep":
		return "on (-autogroup keep)", restore
	default:
		if err := os.WriteFile(path, []byte("0"), 0o644); err != nil {
			return fmt.Sprintf("on: could not turn it off (%v); the walsender may be starved at times, see test/bench/README.md", err), restore
		}
		return "off for this run (it was on; the bench turned it off and back on at the end)", func() {
			if err := os.WriteFile(path, []byte("1"), 0o644); err != nil {
				fmt.Fprintf(os.Stderr, "bench: turning the kernel's autogroup back on (%s): %v\n", path, err)
			}
		}
	}
}
