package main

import (
	"bufio"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// procRef names one process across its life: its pid and its start time
// (clock ticks since boot, procStat), which tells it from a later process
// that got the same pid.
type procRef struct {
	pid   int
	start uint64
}

// listeners finds the processes on this machine listening on addrs
// (host:port each; the Kafka brokers), one per distinct process: the
// listening TCP socket for the address in /proc/net/tcp and tcp6 gives its
// inode, and the /proc/<pid>/fd entry linking to that socket its process.
// A broker on another machine, or one whose process cannot be read, is an
// error naming its address: its CPU is unknown, never zero.
func listeners(addrs []string) ([]procRef, error) {
	inodes := map[string]string{} // socket inode -> the address it serves
	for _, addr := range addrs {
		host, portText, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, fmt.Errorf("broker address %q: %w", addr, err)
		}
		port, err := strconv.ParseUint(portText, 10, 16)
		if err != nil {
			return nil, fmt.Errorf("broker address %q: port: %w", addr, err)
		}
		ips, err := net.LookupIP(host)
		if err != nil {
			return nil, fmt.Errorf("broker address %q: %w", addr, err)
		}
		found := false
		for _, table := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
			socks, err := listening(table)
			if err != nil && !errors.Is(err, os.ErrNotExist) {
				return nil, err
			}
			for _, s := range socks {
				if s.port == uint16(port) && (s.ip.IsUnspecified() || slices.ContainsFunc(ips, s.ip.Equal)) {
					inodes[s.inode] = addr
					found = true
				}
			}
		}
		if !found {
			return nil, fmt.Errorf("broker %s: no process on this machine listens on it (a remote broker's CPU cannot be read here)", addr)
		}
	}
	pids, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	var out []procRef
	served := map[string]bool{}
	for _, d := range pids {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		fds, err := os.ReadDir(filepath.Join("/proc", d.Name(), "fd"))
		if err != nil {
			continue // exited, or not ours to read
		}
		for _, fd := range fds {
			link, err := os.Readlink(filepath.Join("/proc", d.Name(), "fd", fd.Name()))
			if err != nil || !strings.HasPrefix(link, "socket:[") {
				continue
			}
			addr, ok := inodes[strings.TrimSuffix(strings.TrimPrefix(link, "socket:["), "]")]
			if !ok {
				continue
			}
			served[addr] = true
			if !slices.ContainsFunc(out, func(p procRef) bool { return p.pid == pid }) {
				_, start, err := procStat(pid)
				if err != nil {
					return nil, fmt.Errorf("broker %s: pid %d: %w", addr, pid, err)
				}
				out = append(out, procRef{pid: pid, start: start})
			}
		}
	}
	for _, addr := range addrs {
		if !served[addr] {
			return nil, fmt.Errorf("broker %s: its listening socket belongs to no process the bench can read (run the bench as root or as the broker's user)", addr)
		}
	}
	return out, nil
}

// socket is a listening TCP socket of /proc/net/tcp{,6}.
type socket struct {
	ip    net.IP
	port  uint16
	inode string
}

// listening reads the listening sockets (state 0A) of a /proc/net/tcp
// table. Addresses are hex: IPv4 as one little-endian 32-bit word, IPv6 as
// four; the port is big-endian hex.
func listening(table string) ([]socket, error) {
	f, err := os.Open(table)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []socket
	sc := bufio.NewScanner(f)
	sc.Scan() // the header
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 10 || f[3] != "0A" {
			continue
		}
		ipHex, portHex, ok := strings.Cut(f[1], ":")
		if !ok {
			continue
		}
		raw, err := hex.DecodeString(ipHex)
		if err != nil || (len(raw) != 4 && len(raw) != 16) {
			continue
		}
		for i := 0; i+4 <= len(raw); i += 4 { // each 32-bit word is little-endian
			raw[i], raw[i+1], raw[i+2], raw[i+3] = raw[i+3], raw[i+2], raw[i+1], raw[i]
		}
		port, err := strconv.ParseUint(portHex, 16, 16)
		if err != nil {
			continue
		}
		out = append(out, socket{ip: net.IP(raw), port: uint16(port), inode: f[9]})
	}
	return out, sc.Err()
}
