package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// workerEnv names the environment variable that turns the bench binary (or
// the test binary, see TestMain) into a worker: its value is the worker's
// JSON configuration.
const workerEnv = "CHRONICLER_BENCH_WORKER"

// child is a worker process: the Chronicler part of a scenario, or the
// KurrentDB-compatible server. Its stdout carries one JSON progress line at
// a time; its stderr is kept for error messages.
type child struct {
	cmd   *exec.Cmd
	start time.Time
	what  string

	mu       sync.Mutex
	series   []progress
	changed  chan struct{} // closed and replaced on every line
	stderr   bytes.Buffer
	exited   chan struct{}
	exitErr  error
	listenOn string
}

// startChild re-executes this binary as a worker with cfg.
func startChild(cfg workerConfig) (*child, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	c := &child{what: cfg.Mode, changed: make(chan struct{}), exited: make(chan struct{})}
	c.cmd = exec.Command(exe)
	c.cmd.Env = append(os.Environ(), workerEnv+"="+string(b))
	c.cmd.Stderr = &lockedWriter{mu: &c.mu, w: &c.stderr}
	out, err := c.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	c.start = time.Now()
	if err := c.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting the %s worker: %w", cfg.Mode, err)
	}
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Bytes()
			c.mu.Lock()
			if rest, ok := bytes.CutPrefix(line, []byte("listening ")); ok {
				c.listenOn = string(rest)
			} else {
				var p progress
				if json.Unmarshal(line, &p) == nil {
					c.series = append(c.series, p)
				}
			}
			close(c.changed)
			c.changed = make(chan struct{})
			c.mu.Unlock()
		}
		err := c.cmd.Wait()
		c.mu.Lock()
		c.exitErr = err
		c.mu.Unlock()
		close(c.exited)
	}()
	return c, nil
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.w.Len() > 1<<20 { // keep the start and bound the rest
		return len(p), nil
	}
	return l.w.Write(p)
}

// waitFor polls the child's progress until ok holds for the latest line,
// the child exits, ctx ends or the deadline passes.
func (c *child) waitFor(ctx context.Context, limit time.Duration, ok func(p progress, have bool) bool) error {
	deadline := time.NewTimer(limit)
	defer deadline.Stop()
	for {
		c.mu.Lock()
		var last progress
		have := len(c.series) > 0
		if have {
			last = c.series[len(c.series)-1]
		}
		ch := c.changed
		c.mu.Unlock()
		if ok(last, have) {
			return nil
		}
		if last.Err != "" {
			return fmt.Errorf("%s worker: %s", c.what, last.Err)
		}
		select {
		case <-ch:
		case <-c.exited:
			return fmt.Errorf("%s worker exited (%v): %s", c.what, c.exitErr, c.stderrTail())
		case <-ctx.Done():
			return ctx.Err()
		case <-deadline.C:
			return fmt.Errorf("%s worker: not done after %s (last progress %+v): %s", c.what, limit, last, c.stderrTail())
		}
	}
}

// last returns the latest progress line.
func (c *child) last() progress {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.series) == 0 {
		return progress{}
	}
	return c.series[len(c.series)-1]
}

// listenAddr is the address a server child printed ("": none yet).
func (c *child) listenAddr() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.listenOn
}

// progressSeries returns a copy of every progress line so far.
func (c *child) progressSeries() []progress {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]progress(nil), c.series...)
}

func (c *child) stderrTail() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := strings.TrimSpace(c.stderr.String())
	if len(s) > 4000 {
		s = "..." + s[len(s)-4000:]
	}
	if s == "" {
		return "(no output on stderr)"
	}
	return s
}

// usage reads the child's own CPU seconds (procCPU) and peak resident set
// (VmHWM) from /proc while it runs.
func (c *child) usage() (cpuSec, peakMiB float64, err error) {
	pid := c.cmd.Process.Pid
	if cpuSec, _, err = procCPU(pid); err != nil {
		return 0, 0, err
	}
	peakMiB, err = vmHWM(fmt.Sprintf("/proc/%d/status", pid))
	return cpuSec, peakMiB, err
}

// stop asks the child to finish (SIGTERM: it stops its work, writes its
// profiles and exits) and waits; after 60 s it is killed.
func (c *child) stop() error {
	select {
	case <-c.exited:
	default:
		_ = c.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-c.exited:
		case <-time.After(60 * time.Second):
			_ = c.cmd.Process.Kill()
			<-c.exited
			return fmt.Errorf("%s worker did not stop within 60 s of SIGTERM; killed: %s", c.what, c.stderrTail())
		}
	}
	c.mu.Lock()
	err := c.exitErr
	c.mu.Unlock()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return fmt.Errorf("%s worker: %v: %s", c.what, err, c.stderrTail())
	}
	return err
}
