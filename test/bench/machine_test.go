package main

import (
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"testing"
)

func ptr(v float64) *float64 { return &v }

// TestWhereTimeGoes checks the report's arithmetic on figures given to it:
// the CPUs busy, the ceiling and its ratio to the baseline, and what the
// goal's rate would take, each computed from the result alone.
func TestWhereTimeGoes(t *testing.T) {
	r := Result{Scenario: "store-0ms", Workload: "pgbench", Changes: 1000000, Seconds: 25, ChangesPerSec: 40000,
		BaselineChangesSec: 100000, Ratio: 0.4, CPUSecPerMChanges: 20,
		ServerCPUSecPerM: ptr(10), WalsenderCPUSecPerM: ptr(5),
		BaselineRecvlogicalCPUSecPerM: ptr(2), BaselineWalsenderCPUSecPerM: ptr(4), BaselineCPUSecPerM: ptr(6)}
	r.setMachine(20+10+5, true)
	r.MachineCPUs, *r.MachineCeiling = 2, 2e6/35 // the test's machine, whatever this one has
	got := whereTimeGoes(&r, 0.7)
	for _, want := range []string{
		"worker used 20.0 CPU s (57%), the server 10.0 (29%) and the walsender 5.0 (14%): 35.0 in all",
		"kept 1.40 of the 2 CPUs busy over the 25.00 s measured",
		"cap the machine at 57143 changes/s, 0.57 of the baseline's 100000",
		"its walsender kept 0.40 CPUs busy and pg_recvlogical 0.20; the scenario's walsender used 1.25 × the baseline walsender's CPU per change",
		"At 0.7 of the baseline (70000 changes/s) the server and walsender alone would need 1.05 CPUs and the worker at today's cost 1.40: 2.45 of 2",
		"at most 13.6 CPU s per million changes (0.68 × today's)",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q in:\n%s", want, got)
		}
	}
	if r.CPUNotCounted != "" {
		t.Errorf("store-0ms: cpu_not_counted %q; want none", r.CPUNotCounted)
	}

	unknown := Result{Scenario: "full", CPUSecPerMChanges: 20, ServerCPUSecPerM: ptr(10),
		CPUUnknown: []string{"walsender: slot s: walsender pid 7 exited before its CPU was read"}}
	unknown.setMachine(30, false)
	if unknown.MachineCPUSecPerM != nil || unknown.MachineCeiling != nil || unknown.CPUNotCounted == "" {
		t.Fatalf("a part unknown: machine %v, ceiling %v, not counted %q; want no sum, no ceiling, the broker named",
			unknown.MachineCPUSecPerM, unknown.MachineCeiling, unknown.CPUNotCounted)
	}
	if got := whereTimeGoes(&unknown, 0.5); !strings.Contains(got, "pid 7 exited") || !strings.Contains(got, "no sum") {
		t.Fatalf("unknown walsender: %q; want the reason and no sum", got)
	}
}

// TestBaselineCPU checks the baseline's mean over the drains, and that a
// drain whose walsender was not read is named and left out of the mean.
func TestBaselineCPU(t *testing.T) {
	var r Result
	setBaselineCPU(&r, 500000, drain{recvCPU: 1, wsCPU: 2}, drain{recvCPU: 3, wsCPU: 4})
	if *r.BaselineRecvlogicalCPUSecPerM != 4 || *r.BaselineWalsenderCPUSecPerM != 6 || *r.BaselineCPUSecPerM != 10 || r.CPUUnknown != nil {
		t.Fatalf("pg_recvlogical %v, walsender %v, sum %v, unknown %v; want 4, 6, 10, none",
			*r.BaselineRecvlogicalCPUSecPerM, *r.BaselineWalsenderCPUSecPerM, *r.BaselineCPUSecPerM, r.CPUUnknown)
	}
	r = Result{}
	setBaselineCPU(&r, 500000, drain{recvCPU: 1, wsErr: errors.New("gone")}, drain{recvCPU: 3, wsCPU: 4})
	if *r.BaselineWalsenderCPUSecPerM != 8 || *r.BaselineCPUSecPerM != 12 || len(r.CPUUnknown) != 1 || !strings.Contains(r.CPUUnknown[0], "drain 1") {
		t.Fatalf("walsender %v, sum %v, unknown %v; want 8 (drain 2 alone), 12, drain 1 named",
			*r.BaselineWalsenderCPUSecPerM, *r.BaselineCPUSecPerM, r.CPUUnknown)
	}
	r = Result{}
	setBaselineCPU(&r, 500000, drain{recvCPU: 1, wsErr: errors.New("gone")}, drain{recvCPU: 3, wsErr: errors.New("gone")})
	if r.BaselineWalsenderCPUSecPerM != nil || r.BaselineCPUSecPerM != nil || len(r.CPUUnknown) != 2 {
		t.Fatalf("walsender %v, sum %v, unknown %v; want both unknown and named", r.BaselineWalsenderCPUSecPerM, r.BaselineCPUSecPerM, r.CPUUnknown)
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
