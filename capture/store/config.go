package store

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/chronicler-dev/chronicler/mapping/contract"
)

// ConflictPolicy says what a wrong-expected-version from a foreign writer does.
type ConflictPolicy int

const (
	// ConflictStop makes a foreign write fatal (the default): someone else
	// wrote to a Chronicler stream, a human must look.
	ConflictStop ConflictPolicy = iota
	// ConflictReread records the conflict (log, metric) and appends after the
	// foreign events.
	ConflictReread
)

// Config configures an Appender.
type Config struct {
	// Slot is the replication slot's name; it is part of every event id and
	// position, so two slots never collide. Required.
	Slot string
	// OnDurable is called with the durable LSN (see the package doc) each
	// time more transactions became durable, from the appender's goroutines,
	// never concurrently, never backwards; the LSN repeats when transactions
	// share a commit LSN (snapshot chunks).
	OnDurable func(contract.LSN)
	// BatchAppend makes the appender open a gRPC connection of its own to
	// the client's server (a cluster's leader, found by gossip and
	// followed when it moves) and append through the BatchAppend RPC, one
	// long-lived call for every stream, if the server lists it in its
	// features (KurrentDB does since 21.10). False, or a server without
	// it: every append is an AppendToStream call of the official client.
	BatchAppend bool
	// OnConflict is the foreign-writer policy. Default ConflictStop.
	OnConflict ConflictPolicy
	// MaxInFlight bounds concurrent appends. Default 64.
	MaxInFlight int
	// MaxPendingBytes bounds the data and metadata bytes of queued and
	// in-flight events; Add blocks above it. Default 8 MiB (test/bench: the same
	// throughput as 64 MiB, and a third of the peak RSS through a
	// 1,000,000-row transaction).
	MaxPendingBytes int
	// MaxBatchEvents bounds the events in one append. Default 500.
	MaxBatchEvents int
	// MaxBatchBytes bounds the bytes of one append; it must not exceed the
	// server's maximum append size (at most 16 MiB - 10,000 bytes, KurrentDB's
	// gRPC message limit, which New enforces). Default 1 MiB - 64 KiB. A
	// single event larger than this is refused by Add with *TooLargeError.
	MaxBatchBytes int
	// WarmStreams bounds how many streams' revisions are remembered (LRU).
	// Default 100,000.
	WarmStreams int
	// RetryBackoff is the first retry delay after a transient store error,
	// doubled up to MaxRetryBackoff, with jitter. Defaults 100 ms and 5 s.
	RetryBackoff, MaxRetryBackoff time.Duration
	// Logger receives state changes. Default slog.Default().
	Logger *slog.Logger
}

// DefaultMaxBatchBytes is MaxBatchBytes when it is not set: under
// KurrentDefaultMaxAppendSize with room for the request's framing.
const DefaultMaxBatchBytes = 1<<20 - 64<<10

// KurrentDefaultMaxAppendSize is KurrentDB's default maximum append size
// (its MaxAppendSize setting, 1 MiB). The server's own setting cannot be
// read through its client API: an append over it is refused when sent
// (see "Events the store refuses as too large" in doc.go).
const KurrentDefaultMaxAppendSize = 1 << 20

// maxStoreMessage is the largest gRPC message KurrentDB's Streams service
// accepts (16 MiB less 10,000 bytes of log record overhead); a larger one
// fails its call with ResourceExhausted, however often it is sent.
const maxStoreMessage = 16<<20 - 10_000

func (c *Config) validate() error {
	var errs []error
	if c.Slot == "" {
		errs = append(errs, errors.New("store: slot name is required (it is part of every event id)"))
	}
	def := func(p *int, name string, v int) {
		if *p == 0 {
			*p = v
		} else if *p < 0 {
			errs = append(errs, fmt.Errorf("store.%s: %d is negative", name, *p))
		}
	}
	def(&c.MaxInFlight, "max_in_flight", 64)
	def(&c.MaxPendingBytes, "max_pending_bytes", 8<<20)
	def(&c.MaxBatchEvents, "max_batch_events", 500)
	def(&c.MaxBatchBytes, "max_batch_bytes", DefaultMaxBatchBytes)
	def(&c.WarmStreams, "warm_streams", 100_000)
	if c.MaxBatchBytes > maxStoreMessage {
		errs = append(errs, fmt.Errorf("store.max_batch_bytes (%d) is over %d bytes, the largest gRPC message KurrentDB accepts (its maximum append size cannot be larger either): lower it", c.MaxBatchBytes, maxStoreMessage))
	}
	if c.MaxPendingBytes < c.MaxBatchBytes && c.MaxPendingBytes > 0 {
		errs = append(errs, fmt.Errorf("store.max_pending_bytes (%d) is below store.max_batch_bytes (%d): one batch must fit", c.MaxPendingBytes, c.MaxBatchBytes))
	}
	if c.OnConflict != ConflictStop && c.OnConflict != ConflictReread {
		errs = append(errs, fmt.Errorf("store.on_conflict: unknown policy %d", c.OnConflict))
	}
	if c.RetryBackoff == 0 {
		c.RetryBackoff = 100 * time.Millisecond
	}
	if c.MaxRetryBackoff == 0 {
		c.MaxRetryBackoff = 5 * time.Second
	}
	if c.OnDurable == nil {
		c.OnDurable = func(contract.LSN) {}
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return errors.Join(errs...)
}
