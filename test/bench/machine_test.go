package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

func ptr(v float64) *float64 { return &v }

// TestWhereTimeGoes checks the report's arithmetic on figures given to it:
// each process's share, the CPUs busy, the ceiling and its ratio to the
// limit, and the distance to the CPU goals, each computed from the result
// alone.
func TestWhereTimeGoes(t *testing.T) {
	r := Result{Scenario: "full", Workload: "bulk", Changes: 1000000, Seconds: 25, ChangesPerSec: 40000,
		LimitChangesSec: 200000, RatioToLimit: 0.2, CPUSecPerMChanges: 50, LimitCPUSecPerM: ptr(4),
		ServerCPUSecPerM: ptr(30), WalsenderCPUSecPerM: ptr(5), BrokerCPUSecPerM: ptr(15)}
	r.setMachine(50+30+5+15, true)
	r.MachineCPUs, *r.MachineCeiling = 2, 2e6/100 // the test's machine, whatever this one has
	got := whereTimeGoes(&r)
	for _, want := range []string{
		"the worker used 50.0 CPU s (50%), the server 30.0 (30%), the walsender 5.0 (5%) and the Kafka broker 15.0 (15%): 100.0 in all",
		"kept 4.00 of the 2 CPUs busy over the 25.00 s measured",
		"cap the machine at 20000 changes/s, 0.10 of the limit's 200000",
		"Decoding the same WAL in a backend took 4.0 CPU s per million changes; the scenario's walsender used 1.25 × that",
		"The worker's goal is 45 CPU s per million changes: it used 1.11 × that",
		"The goal for the four processes is 95: they used 1.05 × that",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q in:\n%s", want, got)
		}
	}

	unknown := Result{Scenario: "full", CPUSecPerMChanges: 20, ServerCPUSecPerM: ptr(10),
		CPUUnknown: []string{"walsender: slot s: walsender pid 7 exited before its CPU was read"}}
	unknown.setMachine(30, false)
	if unknown.MachineCPUSecPerM != nil || unknown.MachineCeiling != nil {
		t.Fatalf("a part unknown: machine %v, ceiling %v; want no sum, no ceiling", unknown.MachineCPUSecPerM, unknown.MachineCeiling)
	}
	if got := whereTimeGoes(&unknown); !strings.Contains(got, "pid 7 exited") || !strings.Contains(got, "no sum") {
		t.Fatalf("unknown walsender: %q; want the reason and no sum", got)
	}
}

// TestReferences checks the references' figures from their drains: each
// rate from the mean of its two drains, the ratios to both, the CPU means,
// and that a drain whose backend or walsender was not read is named and
// left out of the mean.
func TestReferences(t *testing.T) {
	lim := [2]drain{{dur: 2 * time.Second, wsCPU: 1}, {dur: 3 * time.Second, wsCPU: 3}}
	rec := [2]drain{{dur: 4 * time.Second, recvCPU: 1, wsCPU: 2}, {dur: 6 * time.Second, recvCPU: 3, wsCPU: 4}}
	r := Result{ChangesPerSec: 50000}
	r.setReferences(500000, lim, rec)
	if r.LimitChangesSec != 200000 || r.RatioToLimit != 0.25 || r.LimitSeconds != 2.5 || *r.LimitCPUSecPerM != 4 ||
		r.RecvlogicalChangesSec != 100000 || r.RatioToRecvlogical != 0.5 ||
		*r.RecvlogicalClientCPUSecPerM != 4 || *r.RecvlogicalWalsenderCPUSecPerM != 6 || *r.RecvlogicalCPUSecPerM != 10 || r.CPUUnknown != nil {
		t.Fatalf("limit %v/s ratio %v (%v s, backend %v), pg_recvlogical %v/s ratio %v (client %v, walsender %v, sum %v), unknown %v",
			r.LimitChangesSec, r.RatioToLimit, r.LimitSeconds, *r.LimitCPUSecPerM, r.RecvlogicalChangesSec, r.RatioToRecvlogical,
			*r.RecvlogicalClientCPUSecPerM, *r.RecvlogicalWalsenderCPUSecPerM, *r.RecvlogicalCPUSecPerM, r.CPUUnknown)
	}
	r = Result{ChangesPerSec: 50000}
	lim[0].wsErr = errors.New("gone")
	rec[0].wsErr = errors.New("gone")
	r.setReferences(500000, lim, rec)
	if *r.LimitCPUSecPerM != 6 || *r.RecvlogicalWalsenderCPUSecPerM != 8 || *r.RecvlogicalCPUSecPerM != 12 || len(r.CPUUnknown) != 2 ||
		!strings.Contains(r.CPUUnknown[0], "limit drain 1") || !strings.Contains(r.CPUUnknown[1], "pg_recvlogical drain 1") {
		t.Fatalf("backend %v, walsender %v, sum %v, unknown %v; want 6 and 8 (the second drains alone), 12, both first drains named",
			*r.LimitCPUSecPerM, *r.RecvlogicalWalsenderCPUSecPerM, *r.RecvlogicalCPUSecPerM, r.CPUUnknown)
	}
	r = Result{ChangesPerSec: 50000}
	lim[1].wsErr, rec[1].wsErr = errors.New("gone"), errors.New("gone")
	r.setReferences(500000, lim, rec)
	if r.LimitCPUSecPerM != nil || r.RecvlogicalWalsenderCPUSecPerM != nil || r.RecvlogicalCPUSecPerM != nil || len(r.CPUUnknown) != 4 {
		t.Fatalf("backend %v, walsender %v, sum %v, unknown %v; want all unknown and named", r.LimitCPUSecPerM, r.RecvlogicalWalsenderCPUSecPerM, r.RecvlogicalCPUSecPerM, r.CPUUnknown)
	}
}

// TestListenersFindTheProcess: the process listening on an address is found
// by its socket (here this test's own listener), and an address nobody on
// this machine listens on is an error, so a broker's CPU is never a silent
// zero.
func TestListenersFindTheProcess(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	procs, err := listeners([]string{addr})
	if err != nil {
		t.Fatal(err)
	}
	if len(procs) != 1 || procs[0].pid != os.Getpid() {
		t.Fatalf("listeners(%s) = %+v; want this process, pid %d", addr, procs, os.Getpid())
	}
	if _, err := brokerCPU(procs); err != nil {
		t.Fatal(err)
	}
	ln.Close()
	if procs, err := listeners([]string{addr}); err == nil || !strings.Contains(err.Error(), addr) {
		t.Fatalf("after Close: listeners(%s) = %+v, %v; want an error naming the address", addr, procs, err)
	}
	if _, err := brokerCPU([]procRef{{pid: os.Getpid(), start: 1}}); err == nil {
		t.Fatal("brokerCPU of a process with another start time: no error; want the broker named as exited")
	}
}

// TestExitedWalsenderIsUnknown: a watched process that exits before the
// end read makes the walsender's figure unknown, named in CPUUnknown, and
// leaves no machine sum, instead of a silent zero.
func TestExitedWalsenderIsUnknown(t *testing.T) {
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	_, start, err := backendCPU(pid)
	if err != nil {
		t.Fatal(err)
	}
	ww := &walsenderWatch{slot: "s", pid: pid, start: start, samples: 1}
	o := &others{ws: ww}
	r := Result{Scenario: "capture", Changes: 1000, CPUSecPerMChanges: 1}
	o.end(&r)
	if r.WalsenderCPUSecPerM == nil || r.MachineCPUSecPerM == nil || len(r.CPUUnknown) != 0 {
		t.Fatalf("running: walsender %v, machine %v, unknown %v; want both read", r.WalsenderCPUSecPerM, r.MachineCPUSecPerM, r.CPUUnknown)
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	r = Result{Scenario: "capture", Changes: 1000, CPUSecPerMChanges: 1}
	o.end(&r)
	if r.WalsenderCPUSecPerM != nil || r.MachineCPUSecPerM != nil || r.MachineCeiling != nil ||
		len(r.CPUUnknown) != 1 || !strings.Contains(r.CPUUnknown[0], fmt.Sprintf("pid %d exited", pid)) {
		t.Fatalf("exited: walsender %v, machine %v, unknown %v; want unknown, named, no sum", r.WalsenderCPUSecPerM, r.MachineCPUSecPerM, r.CPUUnknown)
	}
}
