// Command kurrentdb-server runs the KurrentDB-compatible server as a process,
// for fault tests that kill -9 it and for local development.
//
// It prints exactly one line on stdout once it accepts connections:
//
//	listening esdb://127.0.0.1:PORT?tls=false
//
// or, with -tls-cert and -tls-key, "listening esdb://127.0.0.1:PORT?tls=true"
// (and &tlsCAFile=... with -tls-ca). -user name:password[:group,...]
// (repeatable) turns on basic authentication and stream ACLs; it needs TLS.
//
// Logs go to stderr. SIGINT/SIGTERM close it cleanly (exit 0); a second
// signal exits at once (exit 1). Exit code 2: bad flags; 1: the server could
// not start (invalid options, data directory in use or unreadable, address
// taken) or failed to close.
package main

import (
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/chronicler-dev/chronicler/test/kurrentdb"
)

func main() {
	var (
		opts   kurrentdb.Options
		faults kurrentdb.Faults
	)
	flag.StringVar(&opts.Addr, "addr", "127.0.0.1:0", "listen address (host:port); port 0 picks a free port")
	flag.StringVar(&opts.DataDir, "data-dir", "", "durable log directory; empty keeps everything in memory")
	flag.IntVar(&opts.CacheSize, "cache-size", kurrentdb.DefaultCacheSize, "bytes of decoded events kept in memory; the rest is read from the log")
	flag.IntVar(&opts.MaxAppendSize, "max-append-size", kurrentdb.DefaultMaxAppendSize, "maximum total size of one append (data + metadata + 2 x type length per event)")
	flag.IntVar(&opts.MaxAppendEventSize, "max-append-event-size", 0, "maximum size of one event of an append, counted the same way; 0: no limit")
	flag.DurationVar(&faults.AppendLatency, "append-latency", 0, "fixed delay added to every append, batch-append request, delete and tombstone")
	flag.DurationVar(&faults.AppendLatencyJitter, "append-latency-jitter", 0, "random extra delay in [0, d) added to each")
	flag.Float64Var(&faults.UnavailableRate, "unavailable-rate", 0, "fraction of writes answered Unavailable")
	flag.Float64Var(&faults.AbortedRate, "aborted-rate", 0, "fraction of writes answered Aborted")
	flag.BoolVar(&faults.FailAfterCommit, "fail-after-commit", false, "injected write errors happen after the write is durable")
	flag.BoolVar(&faults.NotLeader, "not-leader", false, "answer every Streams RPC with not-leader")
	flag.BoolVar(&opts.NoBatchAppend, "no-batch-append", false, "model a server before 21.10: BatchAppend is not served nor listed in ServerFeatures")
	var tlsOpts kurrentdb.TLSOptions
	flag.StringVar(&tlsOpts.CertFile, "tls-cert", "", "serve TLS with this certificate (PEM); needs -tls-key")
	flag.StringVar(&tlsOpts.KeyFile, "tls-key", "", "the certificate's private key (PEM)")
	flag.StringVar(&tlsOpts.CAFile, "tls-ca", "", "the CA file named as tlsCAFile in the printed URL")
	flag.Func("user", "name:password[:group,group...] of a user (repeatable); turns on authentication and ACLs (needs TLS)", func(v string) error {
		parts := strings.SplitN(v, ":", 3)
		if len(parts) < 2 || parts[0] == "" {
			return fmt.Errorf("want name:password[:group,...], got %q", v)
		}
		u := kurrentdb.User{Name: parts[0], Password: parts[1]}
		if len(parts) == 3 && parts[2] != "" {
			u.Groups = strings.Split(parts[2], ",")
		}
		opts.Users = append(opts.Users, u)
		return nil
	})
	verbose := flag.Bool("v", false, "debug logs")
	flag.Parse()
	opts.Faults = faults
	if tlsOpts.CertFile != "" || tlsOpts.KeyFile != "" {
		opts.TLS = &tlsOpts
	}

	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	opts.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	srv, err := kurrentdb.Start(opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("listening %s\n", srv.URL())

	sig := make(chan os.Signal, 2)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	<-sig
	go func() {
		<-sig
		os.Exit(1)
	}()
	if err := srv.Close(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
