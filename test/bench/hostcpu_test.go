package main

import (
	"math"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestParseHostTimes reads /proc/stat's first line: busy is user, nice,
// system, irq and softirq (not guest, which user holds, nor idle and
// iowait), steal its own; a line that is not the "cpu" line is refused.
func TestParseHostTimes(t *testing.T) {
	h, err := parseHostTimes("cpu  1000 20 300 9000 50 6 70 800 40 0")
	if err != nil {
		t.Fatal(err)
	}
	if h.busy != 13.96 || h.steal != 8 {
		t.Fatalf("busy %v steal %v s; want 13.96 (1000+20+300+6+70 ticks), 8", h.busy, h.steal)
	}
	for _, bad := range []string{"cpu0 1 2 3 4 5 6 7 8", "cpu 1 2 3", "cpu 1 2 x 4 5 6 7 8"} {
		if _, err := parseHostTimes(bad); err == nil || !strings.Contains(err.Error(), bad) {
			t.Errorf("%q: err %v; want an error quoting the line", bad, err)
		}
	}
}

// TestBetween is the machine's load over an interval in mean CPUs: busy,
// the part the measured processes do not account for, and steal.
func TestBetween(t *testing.T) {
	t0 := time.Unix(1000, 0)
	l, err := between(hostTimes{at: t0, busy: 100, steal: 1}, hostTimes{at: t0.Add(10 * time.Second), busy: 115, steal: 3}, 11)
	if err != nil {
		t.Fatal(err)
	}
	if l.busy != 1.5 || math.Abs(l.outside-0.4) > 1e-9 || l.steal != 0.2 {
		t.Fatalf("busy %v outside %v steal %v; want 1.5, 0.4, 0.2 CPUs", l.busy, l.outside, l.steal)
	}
	if _, err := between(hostTimes{at: t0}, hostTimes{at: t0}, 0); err == nil {
		t.Fatal("no interval: want an error")
	}
}

// TestHostTimesCountThisProcess reads the real /proc/stat around CPU this
// process spends: the machine's busy time grew by at least that (less the
// sampling's granularity), and endHost puts the figures on a Result.
func TestHostTimesCountThisProcess(t *testing.T) {
	o := &others{}
	o.readStart()
	if o.hostErr != nil {
		t.Fatal(o.hostErr)
	}
	self0 := selfCPU(t)
	for x := 0; selfCPU(t)-self0 < 0.3; x++ {
		_ = x * x
	}
	spent := selfCPU(t) - self0
	var r Result
	o.endHost(&r, spent, true)
	if r.HostBusyCPUs == nil || r.HostOutsideCPUs == nil || r.HostStealCPUs == nil {
		t.Fatalf("figures not set: %+v (unknown: %v)", r, r.CPUUnknown)
	}
	h1, _ := readHostTimes()
	wall := h1.at.Sub(o.host0.at).Seconds()
	if grew := *r.HostBusyCPUs * wall; grew < 0.9*spent-0.02 {
		t.Fatalf("the machine's busy time grew %.3f s while this process spent %.3f s", grew, spent)
	}
	var unknown Result
	o.endHost(&unknown, 0, false)
	if unknown.HostBusyCPUs == nil || unknown.HostOutsideCPUs != nil {
		t.Fatalf("a process's CPU unknown: busy %v outside %v; want busy, and outside unknown", unknown.HostBusyCPUs, unknown.HostOutsideCPUs)
	}
}

// selfCPU is this process's user + system CPU seconds.
func selfCPU(t *testing.T) float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}
