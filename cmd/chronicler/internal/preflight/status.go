package preflight

import (
	"context"
	"errors"
	"time"

	"github.com/chronicler-dev/chronicler/capture/store"
	"github.com/chronicler-dev/chronicler/cmd/chronicler/config"
	"github.com/chronicler-dev/chronicler/mapping/contract"
)

// StatusReport is what [ReadStatus] read. Its JSON field names are stable (the
// `chronicler status --json` contract). A section that could not be read
// is null (or partly filled) and its error is in Errors.
type StatusReport struct {
	Slot        *SlotStatus       `json:"slot"`
	Store       *StoreStatus      `json:"store"`
	Publisher   *PublisherStatus  `json:"publisher"` // null when kafka.brokers is not set
	DeadLetters *DeadLetterStatus `json:"dead_letters"`
	// Errors lists, per section, what could not be read ("slot: ...").
	Errors []string `json:"errors"`
	// Unknown names each part that could not be read, with the error: a
	// section there is null (slot, store) or lacks that part (publisher:
	// its checkpoint; publisher_lag; dead_letters), never a guess such as
	// "absent" or "empty". Keys: slot, store, publisher, publisher_lag,
	// dead_letters.
	Unknown map[string]string `json:"unknown"`
}

// unknownSections sets the parts that failed to unknown: the sections are
// dropped rather than left with the zero values they were created with.
func (r *StatusReport) unknownSections(errs []error) {
	for _, err := range errs {
		var se *SectionError
		if !errors.As(err, &se) {
			continue
		}
		if _, seen := r.Unknown[se.Section]; !seen {
			r.Unknown[se.Section] = se.Cause.Error()
		}
		switch se.Section {
		case "slot":
			r.Slot = nil
		case "store":
			r.Store = nil
			if r.DeadLetters != nil {
				r.DeadLetters.Capture = nil
			}
			if r.Publisher != nil && r.Publisher.Checkpoint != nil {
				r.Unknown["publisher_lag"] = "the store could not be read (see store)"
			}
		case "publisher":
			if r.Publisher != nil {
				r.Publisher.Checkpoint, r.Publisher.LagEvents, r.Publisher.LagPositions = nil, nil, nil
			}
		case "publisher_lag":
			if r.Publisher != nil {
				r.Publisher.LagEvents, r.Publisher.LagPositions = nil, nil
			}
		case "dead_letters":
			if r.DeadLetters != nil {
				r.DeadLetters.Publish = nil
			}
		}
	}
}

// SlotStatus is the replication slot as Postgres reports it.
type SlotStatus struct {
	Name      string `json:"name"`
	Exists    bool   `json:"exists"`
	Active    bool   `json:"active"`
	ActivePID *int32 `json:"active_pid"`
	WALStatus string `json:"wal_status,omitempty"`
	// ConfirmedLSN is pg_replication_slots.confirmed_flush_lsn: every change
	// before it is durably stored (capture confirms only then).
	ConfirmedLSN string `json:"confirmed_flush_lsn,omitempty"`
	// CurrentLSN is pg_current_wal_lsn() when the slot was read.
	CurrentLSN string `json:"current_wal_lsn"`
	// LagBytes is CurrentLSN - ConfirmedLSN: WAL written and not yet
	// confirmed (it includes WAL of other databases and of tables not
	// captured, which capture confirms as it passes them).
	LagBytes *int64 `json:"lag_bytes"`
	// RetainedBytes is CurrentLSN - restart_lsn: the WAL the server keeps on
	// disk for the slot. SafeWALSize is pg_replication_slots.safe_wal_size
	// (null: unlimited, max_slot_wal_keep_size -1).
	RetainedBytes *int64 `json:"retained_wal_bytes"`
	SafeWALSize   *int64 `json:"safe_wal_size"`
	// LagSeconds: 0 when LagBytes is 0; else pg_stat_replication.flush_lag
	// of the slot's walsender when it is active and reports one; else the
	// age of the last progress marker (the time since the store last
	// advanced), an upper bound of how long the oldest unconfirmed change
	// has waited; null when none of these is known. LagSource says which.
	LagSeconds *float64 `json:"lag_seconds"`
	LagSource  string   `json:"lag_seconds_source"`
}

// The values of SlotStatus.LagSource.
const (
	LagCaughtUp    = "caught_up"
	LagFlushLag    = "pg_stat_replication.flush_lag"
	LagMarkerAge   = "progress_marker_age"
	LagUnknownTime = "unknown"
)

// StoreStatus is what the store holds.
type StoreStatus struct {
	// ProgressStream holds capture's progress markers.
	ProgressStream string `json:"progress_stream"`
	// DurableLSN is the last marker's durableLsn: every event of every
	// source transaction committed at or before it is stored. "" when no
	// marker was written yet.
	DurableLSN string `json:"durable_lsn"`
	// ProgressWritten is when the last marker was stored.
	ProgressWritten *time.Time `json:"progress_written_at"`
	// End is the $all position of the last event in the store (any
	// stream), null when the store is empty.
	End *Position `json:"end_position"`
	// Snapshots are capture's snapshots as last saved (the initial one and
	// those requested with `chronicler snapshot`), in request order; empty
	// when none was saved.
	Snapshots []SnapshotStatus `json:"snapshots"`
}

// SnapshotStatus is one snapshot's saved progress (a running one is saved
// after every chunk).
type SnapshotStatus struct {
	ID      string   `json:"id"`
	Initial bool     `json:"initial"`
	Tables  []string `json:"tables"`
	Where   string   `json:"where,omitempty"`
	// State is queued, running, done, cancelled or failed.
	State string `json:"state"`
	// Table is the table being read ("" unless queued or running).
	Table string `json:"table"`
	// RowsDone counts the rows of completed chunks; RowsEstimated the
	// tables' estimate when the snapshot started; RowsPerSecond the rate
	// since it (or its resume) started, as of UpdatedAt; ETASeconds the
	// time left at that rate (null unless running with a rate).
	RowsDone      uint64     `json:"rows_done"`
	RowsEstimated uint64     `json:"rows_estimated"`
	RowsPerSecond float64    `json:"rows_per_second"`
	ETASeconds    *float64   `json:"eta_seconds"`
	UpdatedAt     *time.Time `json:"updated_at"`
	Error         string     `json:"error,omitempty"`
}

// Position is a $all position.
type Position struct {
	Commit  uint64 `json:"commit"`
	Prepare uint64 `json:"prepare"`
}

// PublisherStatus is the publisher's checkpoint and how far it is behind.
type PublisherStatus struct {
	ID              string `json:"id"`
	CheckpointTopic string `json:"checkpoint_topic"`
	// Checkpoint is the last committed checkpoint of this publisher id,
	// read with read_committed; null when it never committed one.
	Checkpoint *Checkpoint `json:"checkpoint"`
	// LagEvents counts the events after the checkpoint (after its through
	// position) that the publisher's subscription delivers (the rules'
	// interest, as publish filters $all; system events never), up to
	// MaxLagEvents; LagEventsCapped says the count stopped there.
	LagEvents       *int64 `json:"lag_events"`
	LagEventsCapped bool   `json:"lag_events_capped"`
	// LagPositions is the store's end commit position minus the
	// checkpoint's (bytes of the store's log, not events).
	LagPositions *uint64 `json:"lag_commit_positions"`
}

// Checkpoint is a publisher checkpoint as the checkpoint topic holds it.
type Checkpoint struct {
	Commit  uint64     `json:"commit"`
	Prepare uint64     `json:"prepare"`
	Resume  *Resume    `json:"resume"`
	Written *time.Time `json:"written_at"`
	Offset  int64      `json:"offset"` // of the record in the checkpoint topic's partition 0
}

// Resume is the checkpoint's re-read position (open transactions).
type Resume struct {
	Start   bool   `json:"start"`
	Commit  uint64 `json:"commit"`
	Prepare uint64 `json:"prepare"`
}

// DeadLetterStatus counts dead letters on each side.
type DeadLetterStatus struct {
	// CaptureStream is capture's dead-letter stream; Capture its event count
	// (last revision + 1: every dead letter ever written unless the stream
	// was truncated). Null when it could not be read.
	CaptureStream string `json:"capture_stream"`
	Capture       *int64 `json:"capture"`
	// PublishTopic is the publisher's dead-letter topic; Publish the
	// committed records in it (read_committed; aborted ones are not
	// counted). Null when it could not be read or Kafka is not configured.
	PublishTopic string `json:"publish_topic"`
	Publish      *int64 `json:"publish"`
}

// DefaultMaxLagEvents bounds the publisher lag count.
const DefaultMaxLagEvents = 100000

// StatusOptions configure [ReadStatus].
type StatusOptions struct {
	// Timeout bounds the reads of each system. Default DefaultTimeout.
	Timeout time.Duration
	// MaxLagEvents bounds how many store events the publisher lag count
	// reads. Default DefaultMaxLagEvents.
	MaxLagEvents int64
	// Now is the clock for lag_seconds. Default time.Now.
	Now func() time.Time
}

// ReadStatus reads the pipeline's positions. It only reads: no slot is
// created or advanced, nothing is appended to the store, and Kafka is read
// by a plain consumer without a group and without a transactional id, so a
// running publisher is never fenced. Sections that fail are reported in
// Errors (the error is also returned, joined) and the others still read.
func ReadStatus(ctx context.Context, cfg *config.Config, opts StatusOptions) (*StatusReport, error) {
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.MaxLagEvents <= 0 {
		opts.MaxLagEvents = DefaultMaxLagEvents
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	st := &statusReader{cfg: cfg, opts: opts, scrub: newScrubber(cfg), rep: &StatusReport{Errors: []string{}, Unknown: map[string]string{}}}
	slot := cfg.Postgres.Slot
	dlStream := cfg.DeadLetter.Stream
	if dlStream == "" {
		dlStream = contract.DeadLetterStream(slot)
	}
	st.rep.DeadLetters = &DeadLetterStatus{CaptureStream: dlStream}
	st.readStore(ctx, contract.ProgressStream(slot))
	st.readSlot(ctx)
	if len(cfg.Kafka.Brokers) > 0 {
		st.rep.DeadLetters.PublishTopic = cfg.DeadLetter.Topic
		st.readPublisher(ctx)
	}
	if st.db != nil {
		_ = st.db.Close()
	}
	st.rep.unknownSections(st.errs)
	return st.rep, errors.Join(st.errs...)
}

type statusReader struct {
	cfg   *config.Config
	opts  StatusOptions
	scrub *scrubber
	rep   *StatusReport
	errs  []error

	marker *time.Time // the last progress marker's time, for lag_seconds
	// db is the store's client, opened once by readStore (nil when the
	// store did not answer, or a call may still be inside it) and closed
	// by ReadStatus.
	db *store.Client
}

func (s *statusReader) fail(section string, err error) {
	e := &SectionError{Section: section, Cause: errors.New(s.scrub.clean(err.Error()))}
	s.errs = append(s.errs, e)
	s.rep.Errors = append(s.rep.Errors, e.Error())
}
