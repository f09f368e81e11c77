package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat's times: 100 on every
// Linux architecture Go supports.
const clockTicks = 100

// vmHWM reads a process's peak resident set in MiB from its
// /proc/<pid>/status file (path).
func vmHWM(path string) (float64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmHWM:") {
			if f := strings.Fields(l); len(f) >= 2 {
				kb, err := strconv.ParseFloat(f[1], 64)
				return kb / 1024, err
			}
		}
	}
	return 0, fmt.Errorf("%s: no VmHWM line", path)
}

// procStat reads a process's CPU seconds (utime + stime, its own threads,
// not its children) and its start time (clock ticks since boot, which tells
// a process from a later one that got the same pid) from /proc/<pid>/stat.
func procStat(pid int) (cpuSec float64, startTicks uint64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, err
	}
	// The command name (field 2) is in parentheses and may hold spaces:
	// the fields counted from 3 start after the last ')'.
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 20 {
		return 0, 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	ut, err1 := strconv.ParseFloat(f[11], 64)            // field 14, utime, in clock ticks
	st, err2 := strconv.ParseFloat(f[12], 64)            // field 15, stime
	startTicks, err3 := strconv.ParseUint(f[19], 10, 64) // field 22, starttime
	if err := errors.Join(err1, err2, err3); err != nil {
		return 0, 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	return (ut + st) / clockTicks, startTicks, nil
}

// procCPU reads a process's CPU seconds (every thread's) to the
// nanosecond where it can: the sum of its threads' run times
// (/proc/<pid>/task/*/schedstat), or its utime + stime (procStat, whole 10 ms
// ticks, but counting threads that have exited) when that is more. The
// server child serving a small scenario uses a few ms, which ticks alone
// would read as zero.
func procCPU(pid int) (cpuSec float64, startTicks uint64, err error) {
	cpuSec, startTicks, err = procStat(pid)
	if err != nil {
		return 0, 0, err
	}
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return cpuSec, startTicks, nil
	}
	var ns uint64
	for _, t := range tasks {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/schedstat", pid, t.Name()))
		if err != nil {
			continue // the thread exited: /proc/<pid>/stat still counts it
		}
		if f := strings.Fields(string(b)); len(f) > 0 {
			v, _ := strconv.ParseUint(f[0], 10, 64)
			ns += v
		}
	}
	return max(cpuSec, float64(ns)/1e9), startTicks, nil
}

// backendCPU reads a single-threaded process's CPU seconds to the
// nanosecond: the time its one thread ran (the first field of
// /proc/<pid>/schedstat), where /proc/<pid>/stat counts in 10 ms clock
// ticks, too coarse for a walsender that decodes a small workload in a few
// ms. Its start time comes from /proc/<pid>/stat (see procStat). A Postgres
// backend is single-threaded; a Go process is not (use procStat).
func backendCPU(pid int) (cpuSec float64, startTicks uint64, err error) {
	ticksCPU, startTicks, err := procStat(pid)
	if err != nil {
		return 0, 0, err
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/schedstat", pid))
	if err != nil {
		return ticksCPU, startTicks, nil // a kernel without schedstat: ticks
	}
	f := strings.Fields(string(b))
	if len(f) < 1 {
		return ticksCPU, startTicks, nil
	}
	ns, err := strconv.ParseUint(f[0], 10, 64)
	if err != nil {
		return 0, 0, fmt.Errorf("/proc/%d/schedstat: %w", pid, err)
	}
	return float64(ns) / 1e9, startTicks, nil
}

// walsenderWatch finds the walsender serving a replication slot (the
// slot's active_pid in pg_replication_slots) as soon as the slot is active
// and samples its CPU seconds every period until stopped. Its goroutine is
// owned: stop ends it and waits. The walsender is a Postgres backend
// running as the Postgres user; the bench runs as root, which can read its
// /proc entry.
type walsenderWatch struct {
	slot   string
	cancel context.CancelFunc
	done   chan struct{}

	mu      sync.Mutex
	pid     int     // 0 until the slot is seen active
	start   uint64  // the walsender's start time, to tell pid reuse
	last    float64 // CPU seconds at the latest sample
	samples int
	exited  bool  // a read of its /proc entry failed after it was found
	err     error // the watcher's own failure (connecting, querying)
}

// watchWalsender starts watching slot on the Postgres at url. It connects
// before it returns, so a short-lived walsender started after it (the
// baseline's) is not missed for the connection's sake; a failure to connect
// makes every read say so.
func watchWalsender(ctx context.Context, url, slot string, period time.Duration) *walsenderWatch {
	ctx, cancel := context.WithCancel(ctx)
	ww := &walsenderWatch{slot: slot, cancel: cancel, done: make(chan struct{})}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		ww.err = fmt.Errorf("connecting to find the walsender of slot %s: %w", slot, err)
		close(ww.done)
		return ww
	}
	go ww.run(ctx, conn, period)
	return ww
}

func (ww *walsenderWatch) run(ctx context.Context, conn *pgx.Conn, period time.Duration) {
	defer close(ww.done)
	defer conn.Close(context.Background())
	fail := func(err error) {
		ww.mu.Lock()
		ww.err = err
		ww.mu.Unlock()
	}
	// Until the slot is active, poll every 10 ms (or period/5, if shorter:
	// a small drain's walsender lives a few ms), then sample every period.
	find := time.NewTicker(min(period/5, 10*time.Millisecond))
	defer find.Stop()
	tick := time.NewTicker(period)
	defer tick.Stop()
	for {
		ww.mu.Lock()
		pid, start, exited := ww.pid, ww.start, ww.exited
		ww.mu.Unlock()
		switch {
		case exited:
			return
		case pid == 0:
			var active *int32
			err := conn.QueryRow(ctx, "SELECT active_pid FROM pg_replication_slots WHERE slot_name = $1", ww.slot).Scan(&active)
			if ctx.Err() != nil {
				return
			}
			if err != nil && !errors.Is(err, pgx.ErrNoRows) {
				fail(fmt.Errorf("looking up the walsender of slot %s: %w", ww.slot, err))
				return
			}
			if active != nil {
				cpu, st, err := backendCPU(int(*active))
				ww.mu.Lock()
				if err == nil {
					ww.pid, ww.start, ww.last, ww.samples, ww.err = int(*active), st, cpu, 1, nil
				} else if !errors.Is(err, fs.ErrNotExist) { // gone already: keep looking
					ww.err = fmt.Errorf("slot %s: reading walsender pid %d: %w (the bench reads another user's /proc entries: run it as root or as the Postgres user)", ww.slot, *active, err)
				}
				ww.mu.Unlock()
			}
		default:
			cpu, st, err := backendCPU(pid)
			ww.mu.Lock()
			if err != nil || st != start {
				ww.exited = true
			} else {
				ww.last, ww.samples = cpu, ww.samples+1
			}
			ww.mu.Unlock()
		}
		wait := tick.C
		if pid == 0 {
			wait = find.C
		}
		select {
		case <-ctx.Done():
			return
		case <-wait:
		}
	}
}

// awaitFound waits up to limit for the walsender to be found (polling
// every 10 ms) and reports whether it was.
func (ww *walsenderWatch) awaitFound(limit time.Duration) bool {
	deadline := time.Now().Add(limit)
	for {
		ww.mu.Lock()
		found, failed := ww.pid != 0, ww.err != nil
		ww.mu.Unlock()
		if found || failed || time.Now().After(deadline) {
			return found
		}
		select {
		case <-ww.done:
			return false
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// read returns the walsender's CPU seconds now, or an error saying why
// they are unknown: not found yet, exited (or its pid reused), or the
// watcher failed.
func (ww *walsenderWatch) read() (float64, error) {
	ww.mu.Lock()
	pid, start, werr := ww.pid, ww.start, ww.err
	ww.mu.Unlock()
	if pid == 0 {
		if werr != nil {
			return 0, werr
		}
		return 0, fmt.Errorf("slot %s: no active walsender found yet", ww.slot)
	}
	cpu, st, err := backendCPU(pid)
	if err != nil || st != start {
		return 0, fmt.Errorf("slot %s: walsender pid %d exited before its CPU was read", ww.slot, pid)
	}
	return cpu, nil
}

// lastSample returns the CPU seconds of the walsender's latest sample,
// for a walsender that has exited (the baseline's): it misses at most one
// period of its CPU.
func (ww *walsenderWatch) lastSample() (float64, error) {
	ww.mu.Lock()
	defer ww.mu.Unlock()
	if ww.samples == 0 {
		if ww.err != nil {
			return 0, ww.err
		}
		return 0, fmt.Errorf("slot %s: its walsender was not found while it ran", ww.slot)
	}
	return ww.last, nil
}

// stop ends the watcher and waits for its goroutine.
func (ww *walsenderWatch) stop() {
	ww.cancel()
	<-ww.done
}

// others measures the processes besides the worker that do a scenario's
// work on this machine: the KurrentDB-compatible server child (srv, if the
// scenario has one), the walsender serving the scenario's slot (ws, if it
// reads one) and the Kafka broker (if it uses Kafka), as deltas over the
// scenario's interval: watchOthers (or mark) reads them at the interval's
// start, end at its end, while the worker still runs (its walsender exits
// with its connection).
type others struct {
	srv       *child
	srv0      float64
	srvErr    error
	ws        *walsenderWatch
	ws0       float64 // the walsender's CPU at the interval's start: 0 when it starts inside it
	wsErr     error
	broker    []procRef // nil with brokerErr: not found
	broker0   float64
	brokerErr error
	useBroker bool
	host0     hostTimes // the machine's CPU times at the interval's start
	hostErr   error
}

// brokers is what the bench knows of the Kafka broker processes: found on
// this machine by their listening sockets (listeners), or why not.
type brokers struct {
	procs []procRef
	err   error
}

// watchOthers reads the server's and the broker's CPU now (the interval's
// start: call it before starting the worker) and starts watching slot's
// walsender ("": no slot). kafka is nil for a scenario without Kafka. Stop
// it with stop.
func watchOthers(ctx context.Context, pgURL string, srv *child, slot string, kafka *brokers) *others {
	o := &others{srv: srv}
	if kafka != nil {
		o.useBroker, o.broker, o.brokerErr = true, kafka.procs, kafka.err
	}
	o.readStart()
	if slot != "" {
		o.ws = watchWalsender(ctx, pgURL, slot, 100*time.Millisecond)
	}
	return o
}

// readStart reads the server's and the broker's CPU at the interval's start.
func (o *others) readStart() {
	o.host0, o.hostErr = readHostTimes()
	if o.srv != nil {
		o.srv0, _, o.srvErr = o.srv.usage()
	}
	if o.useBroker && o.brokerErr == nil {
		o.broker0, o.brokerErr = brokerCPU(o.broker)
	}
}

// mark moves the interval's start to now (the latency run starts timing
// after its warm-up, when the walsender already runs).
func (o *others) mark() {
	o.readStart()
	if o.ws != nil {
		o.ws.awaitFound(5 * time.Second)
		o.ws0, o.wsErr = o.ws.read()
	}
}

// brokerCPU is the broker processes' CPU seconds now (utime + stime of all
// their threads), or an error naming one that exited.
func brokerCPU(procs []procRef) (float64, error) {
	var sum float64
	for _, p := range procs {
		cpu, start, err := procCPU(p.pid)
		if err != nil || start != p.start {
			return 0, fmt.Errorf("the Kafka broker (pid %d) exited during the run", p.pid)
		}
		sum += cpu
	}
	return sum, nil
}

// end sets r's server, walsender and broker figures (per million of
// r.Changes), or names in r.CPUUnknown what could not be read, the
// machine sum with the worker's r.CPUSecPerMChanges when every part is
// known, and the machine's load as a whole (endHost).
func (o *others) end(r *Result) {
	sum := r.CPUSecPerMChanges
	known := true
	// part is one process's CPU per million changes since start, or nil
	// (and what it is named in CPUUnknown) when err says it is unknown.
	part := func(what string, now, start float64, err error) *float64 {
		if err != nil {
			known = false
			r.CPUUnknown = append(r.CPUUnknown, what+": "+err.Error())
			return nil
		}
		v := (now - start) / float64(r.Changes) * 1e6
		sum += v
		return &v
	}
	if o.srv != nil {
		cpu, _, err := o.srv.usage()
		r.ServerCPUSecPerM = part("server", cpu, o.srv0, errors.Join(o.srvErr, err))
	}
	if o.ws != nil {
		cpu, err := o.ws.read()
		r.WalsenderCPUSecPerM = part("walsender", cpu, o.ws0, errors.Join(o.wsErr, err))
	}
	if o.useBroker {
		var cpu float64
		err := o.brokerErr
		if err == nil {
			cpu, err = brokerCPU(o.broker)
		}
		r.BrokerCPUSecPerM = part("broker", cpu, o.broker0, err)
	}
	r.setMachine(sum, known)
	o.endHost(r, sum*float64(r.Changes)/1e6, known)
}

// endHost sets r's figures of the machine as a whole since the interval's
// start; counted is the measured processes' CPU seconds (known false: not
// every one could be read, so the part outside them is unknown).
func (o *others) endHost(r *Result, counted float64, known bool) {
	h1, err := readHostTimes()
	var l hostLoad
	if err = errors.Join(o.hostErr, err); err == nil {
		l, err = between(o.host0, h1, counted)
	}
	if err != nil {
		r.CPUUnknown = append(r.CPUUnknown, "the machine: "+err.Error())
		return
	}
	r.HostBusyCPUs, r.HostStealCPUs = &l.busy, &l.steal
	if known {
		r.HostOutsideCPUs = &l.outside
	}
}

func (o *others) stop() {
	if o.ws != nil {
		o.ws.stop()
	}
}
