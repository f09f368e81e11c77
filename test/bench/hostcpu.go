package main

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// hostTimes is the machine's CPU time so far, summed over its CPUs, from
// the "cpu" line of /proc/stat, in seconds.
type hostTimes struct {
	at    time.Time
	busy  float64 // user, nice, system, irq, softirq (guest time is counted in user)
	steal float64 // time the hypervisor ran other guests while this one wanted a CPU
}

// readHostTimes reads /proc/stat now.
func readHostTimes() (hostTimes, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return hostTimes{}, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	h, err := parseHostTimes(line)
	if err != nil {
		return hostTimes{}, fmt.Errorf("/proc/stat: %w", err)
	}
	h.at = time.Now()
	return h, nil
}

// parseHostTimes reads /proc/stat's first line: "cpu" and the clock ticks
// in user, nice, system, idle, iowait, irq, softirq, steal (and guest,
// guest_nice, which user and nice already hold). Idle and iowait are not
// kept: busy and steal are what the bench reports.
func parseHostTimes(line string) (hostTimes, error) {
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return hostTimes{}, fmt.Errorf("first line %q: want \"cpu\" and at least 8 counters", line)
	}
	var t [8]uint64
	var errs []error
	for i := range t {
		var err error
		t[i], err = strconv.ParseUint(f[i+1], 10, 64)
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return hostTimes{}, fmt.Errorf("first line %q: %w", line, err)
	}
	sec := func(ticks uint64) float64 { return float64(ticks) / clockTicks }
	return hostTimes{busy: sec(t[0] + t[1] + t[2] + t[5] + t[6]), steal: sec(t[7])}, nil
}

// hostLoad is what the machine as a whole did between two readings, as
// mean CPUs over the interval: busy in any process, the part of busy the
// measured processes (counted CPU seconds) do not account for, and steal.
type hostLoad struct {
	busy, outside, steal float64
}

// between is the machine's load from h0 to h1; counted is the CPU seconds
// the measured processes used in that interval.
func between(h0, h1 hostTimes, counted float64) (hostLoad, error) {
	wall := h1.at.Sub(h0.at).Seconds()
	if wall <= 0 {
		return hostLoad{}, fmt.Errorf("/proc/stat read twice %s apart", h1.at.Sub(h0.at))
	}
	busy := (h1.busy - h0.busy) / wall
	return hostLoad{busy: busy, outside: busy - counted/wall, steal: (h1.steal - h0.steal) / wall}, nil
}
