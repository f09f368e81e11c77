// Command rsscheck runs a capture Source against a database until it has
// received a given number of changes, then prints its peak resident set size
// (VmHWM from /proc/self/status). The large-transaction memory test builds
// and runs it as a child process, so the figure is the capture's alone, not
// the test binary's (nor the race detector's).
//
// Output, one line on stdout: "changes=<n> vmhwm_kib=<k>". It prints
// "ready" on stdout once the slot is streaming.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/chronicler-dev/chronicler/capture/postgres"
	"github.com/chronicler-dev/chronicler/mapping/contract"
)

type countingSink struct {
	src   *postgres.Source
	n     atomic.Int64
	want  int64
	done  chan struct{}
	bytes int64
}

func (s *countingSink) Begin(context.Context, contract.Tx) error { return nil }
func (s *countingSink) Abort(context.Context, contract.Tx) error { return nil }
func (s *countingSink) Change(_ context.Context, c *contract.Change) error {
	s.bytes += int64(len(c.New))
	if s.n.Add(1) == s.want {
		close(s.done)
	}
	return nil
}
func (s *countingSink) Commit(_ context.Context, tx contract.Tx) error {
	s.src.Ack(tx.CommitLSN)
	return nil
}

func main() {
	url := flag.String("url", "", "database URL")
	table := flag.String("table", "", "schema.table")
	want := flag.Int64("changes", 0, "changes to wait for")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	src, err := postgres.New(postgres.Config{
		URL: *url, Slot: "rss", Publication: "rss_pub", Tables: []string{*table},
		SnapshotMode: postgres.SnapshotNever, HeartbeatInterval: -1,
	}, log)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	sink := &countingSink{src: src, want: *want, done: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- src.Run(ctx, sink) }()
	fmt.Println("ready")
	select {
	case <-sink.done:
	case err := <-errc:
		fmt.Fprintln(os.Stderr, "Run:", err)
		os.Exit(1)
	case <-time.After(10 * time.Minute):
		fmt.Fprintln(os.Stderr, "timed out")
		os.Exit(1)
	}
	cancel()
	<-errc
	fmt.Printf("changes=%d vmhwm_kib=%d\n", sink.n.Load(), vmHWM())
}

func vmHWM() int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return -1
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			var kb int64
			fmt.Sscanf(strings.TrimSpace(v), "%d", &kb)
			return kb
		}
	}
	return -1
}
