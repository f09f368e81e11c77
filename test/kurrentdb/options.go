package kurrentdb

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"time"
)

// DefaultMaxAppendSize is KurrentDB 24.10's default maximum append size.
const DefaultMaxAppendSize = 1 << 20

// MaxRecvMsgSize is the largest gRPC message the server accepts: KurrentDB
// 24.10's Streams service limit, TFConsts.EffectiveMaxLogRecordSize (16 MiB
// less 10,000 bytes of record overhead; ClusterVNodeStartup.cs). A larger
// message fails its whole call with ResourceExhausted, a BatchAppend call
// included.
const MaxRecvMsgSize = 16<<20 - 10_000

// Options configure a Server. The zero value is valid: in memory, on a free
// loopback port, no faults.
type Options struct {
	// Addr is the TCP address to listen on. Default "127.0.0.1:0" (a free
	// loopback port). Give a non-loopback host only on purpose: by default
	// the server has no TLS and no authentication.
	Addr string
	// DataDir, when set, makes the server durable: an append-only log in
	// DataDir/kurrentdb.log, fsynced per append batch, replayed at Start.
	// Default "": in memory, lost on Close.
	DataDir string
	// CacheSize bounds the memory of the record cache, in bytes: the
	// decoded events kept for reads (recent appends, and what point reads
	// fetched). Every other event is read from the log when asked for.
	// Default DefaultCacheSize (16 MiB).
	CacheSize int
	// MaxAppendSize is the largest total size of one append, in bytes, each
	// event counted as the real server counts it from 24.10.4 on
	// (Event.SizeOnDisk): data + custom metadata + 2 x the length of its
	// type in UTF-16 code units. Default DefaultMaxAppendSize (1 MiB).
	MaxAppendSize int
	// MaxAppendEventSize is the largest size of one event of an append,
	// counted as for MaxAppendSize (KurrentDB's MaxAppendEventSize, 24.10.4+).
	// Default 0: unlimited, as KurrentDB's default (int.MaxValue).
	MaxAppendEventSize int
	// Faults are the initial injected faults; change them with SetFaults.
	// Default: none.
	Faults Faults
	// Logger receives boot, replay and failure logs. Default: discard.
	Logger *slog.Logger
	// NoBatchAppend models a server before 21.10: BatchAppend is neither
	// listed by ServerFeatures nor served (Unimplemented).
	NoBatchAppend bool
	// TLS, when set, serves gRPC over TLS (tls.go). Default nil: plaintext,
	// as KurrentDB --insecure.
	TLS *TLSOptions
	// Users, when set, turns on basic authentication and stream ACLs
	// (auth.go, acl.go; DefaultUsers are KurrentDB's built-in accounts).
	// It requires TLS, as KurrentDB does: its clients send no credentials
	// over plaintext. Default nil: every call is allowed, as --insecure.
	Users []User
}

// Faults are the fault and cost injection settings. The zero value injects
// nothing. They apply to the Streams RPCs only (never to ServerFeatures).
type Faults struct {
	// AppendLatency delays every append, batch-append request (each
	// correlation id, concurrently with the others), delete and tombstone
	// before it is processed (models a real server's fsync). Default 0.
	AppendLatency time.Duration
	// AppendLatencyJitter adds a uniformly random extra delay in
	// [0, AppendLatencyJitter) to each. Default 0.
	AppendLatencyJitter time.Duration
	// UnavailableRate is the fraction (0..1) of appends, deletes and
	// tombstones answered with gRPC Unavailable (a batch-append request: an
	// error status with code Unavailable, see doc.go). Default 0.
	UnavailableRate float64
	// AbortedRate is the fraction (0..1) answered with gRPC Aborted (what the
	// real server answers on a commit timeout; a batch-append request: the
	// Timeout error status). Default 0.
	AbortedRate float64
	// FailAfterCommit makes the injected Unavailable/Aborted happen after
	// the write is durable, as a real timeout can: the client sees an error
	// but the events are stored. Default false: the write is not performed.
	FailAfterCommit bool
	// NotLeader answers every Streams RPC with the not-leader error, naming
	// LeaderAddr as the leader. Default false.
	NotLeader bool
	// LeaderAddr is the host:port the not-leader answers name. Default: this
	// server's own address (the client reconnects to it).
	LeaderAddr string
}

func (o Options) withDefaults() Options {
	if o.Addr == "" {
		o.Addr = "127.0.0.1:0"
	}
	if o.MaxAppendSize == 0 {
		o.MaxAppendSize = DefaultMaxAppendSize
	}
	if o.MaxAppendEventSize == 0 {
		o.MaxAppendEventSize = math.MaxInt32
	}
	if o.CacheSize == 0 {
		o.CacheSize = DefaultCacheSize
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// validate returns every problem at once (errors.Join of *ConfigError).
func (o Options) validate() error {
	var errs []error
	if _, _, err := net.SplitHostPort(o.Addr); err != nil {
		errs = append(errs, &ConfigError{Field: "Addr", Reason: "want host:port such as 127.0.0.1:2113 (" + err.Error() + ")"})
	}
	if o.MaxAppendSize < 0 || o.MaxAppendSize > MaxRecvMsgSize {
		errs = append(errs, &ConfigError{Field: "MaxAppendSize", Reason: "must be > 0 bytes and at most 16 MiB - 10,000 bytes (as KurrentDB's), or 0 for the default of 1 MiB"})
	}
	if o.CacheSize < 0 {
		errs = append(errs, &ConfigError{Field: "CacheSize", Reason: "must be > 0 bytes, or 0 for the default of 16 MiB"})
	}
	if o.MaxAppendEventSize < 0 {
		errs = append(errs, &ConfigError{Field: "MaxAppendEventSize", Reason: "must be > 0 bytes, or 0 for no limit"})
	}
	errs = append(errs, o.Faults.validate("Faults.")...)
	if o.TLS != nil && (o.TLS.CertFile == "" || o.TLS.KeyFile == "") {
		errs = append(errs, &ConfigError{Field: "TLS", Reason: "CertFile and KeyFile are required"})
	} else if o.TLS != nil {
		if _, err := o.TLS.load(); err != nil {
			errs = append(errs, err)
		}
	}
	if len(o.Users) > 0 && o.TLS == nil {
		errs = append(errs, &ConfigError{Field: "Users", Reason: "authentication needs TLS (set Options.TLS), as on KurrentDB: the official clients send no credentials over plaintext"})
	}
	seen := map[string]bool{}
	for i, u := range o.Users {
		if u.Name == "" || seen[u.Name] {
			errs = append(errs, &ConfigError{Field: fmt.Sprintf("Users[%d]", i), Reason: "a name is required, once per user"})
		}
		seen[u.Name] = true
	}
	return errors.Join(errs...)
}

func (f Faults) validate(prefix string) []error {
	var errs []error
	if f.AppendLatency < 0 {
		errs = append(errs, &ConfigError{Field: prefix + "AppendLatency", Reason: "must be >= 0"})
	}
	if f.AppendLatencyJitter < 0 {
		errs = append(errs, &ConfigError{Field: prefix + "AppendLatencyJitter", Reason: "must be >= 0"})
	}
	if f.UnavailableRate < 0 || f.UnavailableRate > 1 {
		errs = append(errs, &ConfigError{Field: prefix + "UnavailableRate", Reason: "must be a fraction in [0, 1]"})
	}
	if f.AbortedRate < 0 || f.AbortedRate > 1 {
		errs = append(errs, &ConfigError{Field: prefix + "AbortedRate", Reason: "must be a fraction in [0, 1]"})
	}
	if f.UnavailableRate+f.AbortedRate > 1 {
		errs = append(errs, &ConfigError{Field: prefix + "AbortedRate", Reason: "UnavailableRate + AbortedRate must be <= 1"})
	}
	if f.LeaderAddr != "" {
		if _, _, err := net.SplitHostPort(f.LeaderAddr); err != nil {
			errs = append(errs, &ConfigError{Field: prefix + "LeaderAddr", Reason: "want host:port (" + err.Error() + ")"})
		}
	}
	return errs
}
