package stack

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// runAs is the unprivileged account servers run as when the test process is
// root. Postgres refuses to run as root; Kafka does not care but it is better
// hygiene to treat both alike.
type runAs struct {
	uid, gid uint32
	name     string
}

// unprivileged returns the account to run servers as: nil when the process is
// not root (servers run as the current user), else the first of "postgres"
// and "nobody" that exists.
func unprivileged() (*runAs, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	for _, name := range []string{"postgres", "nobody"} {
		u, err := user.Lookup(name)
		if err != nil {
			continue
		}
		uid, _ := strconv.ParseUint(u.Uid, 10, 32)
		gid, _ := strconv.ParseUint(u.Gid, 10, 32)
		return &runAs{uid: uint32(uid), gid: uint32(gid), name: name}, nil
	}
	return nil, errors.New("running as root and no unprivileged account (postgres or nobody) exists to run servers as; create one with `useradd --system postgres`")
}

// mkdirFor creates a fresh temporary directory owned by who (or the current
// user when who is nil).
func mkdirFor(who *runAs, pattern string) (string, error) {
	dir, err := os.MkdirTemp("", pattern)
	if err != nil {
		return "", err
	}
	if who != nil {
		if err := os.Chown(dir, int(who.uid), int(who.gid)); err != nil {
			os.RemoveAll(dir)
			return "", err
		}
	}
	return dir, nil
}

// command builds an exec.Cmd that runs as who, writes its output to logPath,
// sits in its own process group, and is killed if the test process dies.
func command(who *runAs, logPath string, name string, args ...string) (*exec.Cmd, *os.File, error) {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, nil, err
	}
	cmd := exec.Command(name, args...)
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if who != nil {
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: who.uid, Gid: who.gid}
		cmd.Env = append(os.Environ(), "HOME="+os.TempDir(), "USER="+who.name)
	}
	return cmd, logf, nil
}

// proc is a started server process.
type proc struct {
	cmd  *exec.Cmd
	logf *os.File
	done chan struct{} // closed when the process has exited
	err  error         // exit status, valid after done
}

func startProc(cmd *exec.Cmd, logf *os.File) (*proc, error) {
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("starting %s: %w", cmd.Path, err)
	}
	p := &proc{cmd: cmd, logf: logf, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	return p, nil
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends sig and waits up to grace for the process to exit, then kills
// its whole process group.
func (p *proc) stop(sig syscall.Signal, grace time.Duration) {
	if p == nil || p.exited() {
		return
	}
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(grace):
	}
	p.kill()
}

// groupAlive reports whether a process of group pgid is still running.
// Zombies do not count: they hold no resources, and where PID 1 does not reap
// orphans (as in some sandboxes) they never disappear, so kill(-pgid, 0)
// would report the group alive forever.
func groupAlive(pgid int) bool {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return syscall.Kill(-pgid, 0) == nil
	}
	for _, e := range ents {
		if e.Name()[0] < '0' || e.Name()[0] > '9' {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// Format: pid (comm) state ppid pgrp ...; comm may contain spaces.
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) >= 3 && f[0] != "Z" && f[0] != "X" && f[2] == strconv.Itoa(pgid) {
			return true
		}
	}
	return false
}

// kill sends SIGKILL to the process group and waits until every process in
// it is gone. Waiting for the leader is not enough: a killed postmaster's
// backends can outlive it for a moment, still attached to its shared memory,
// and a restart in that moment fails with "pre-existing shared memory block
// is still in use".
func (p *proc) kill() {
	if p == nil {
		return
	}
	pgid := p.cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	<-p.done
	deadline := time.Now().Add(30 * time.Second)
	for groupAlive(pgid) && time.Now().Before(deadline) {
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		time.Sleep(5 * time.Millisecond) // poll interval while the kernel reaps the group
	}
}
