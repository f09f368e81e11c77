package postgres

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// SnapshotMode says whether the first start reads the existing rows.
type SnapshotMode string

// The snapshot modes.
const (
	// SnapshotInitial reads existing rows when the slot is created, then streams.
	SnapshotInitial SnapshotMode = "initial"
	// SnapshotNever creates the slot without a snapshot and only streams.
	SnapshotNever SnapshotMode = "never"
	// SnapshotInitialOnly reads existing rows, then drops the slot and returns.
	SnapshotInitialOnly SnapshotMode = "initial_only"
)

// MissingSlotPolicy says what a slot that was dropped under capture does
// ([Config.OnMissingSlot]).
type MissingSlotPolicy string

// The missing-slot policies.
const (
	// MissingSlotRefuse stops capture with a *SlotMissingError.
	MissingSlotRefuse MissingSlotPolicy = "refuse"
	// MissingSlotResnapshot creates the slot again and takes a new snapshot.
	MissingSlotResnapshot MissingSlotPolicy = "resnapshot"
)

// Config configures a [Source]. Zero values take the documented defaults.
type Config struct {
	// DryRun makes Run check everything and plan, without changing the
	// database: the DDL it would run (publication, slot) is logged and
	// returned by Source.Planned, and Run returns nil after the checks.
	DryRun bool
	// Guard, when set, is asked before every connection (the first and each
	// reconnect) and before every status update that confirms a position
	// beyond the last one: an HA lease that must still be held. An error
	// stops the Source at once (Run returns a *GuardError): nothing more is
	// confirmed and no connection is opened. Default nil: no guard.
	Guard func(ctx context.Context) error
	// URL is the connection string of the captured database (URL or key=value
	// form; TLS per its sslmode). The replication connection uses the same
	// settings plus replication=database. Required.
	URL string
	// Password, when set, replaces the URL's password. Default: the URL's.
	Password string
	// Slot is the logical replication slot name (lower-case letters, digits,
	// underscore; at most 63). Required.
	Slot string
	// Publication is the publication name (same rules as Slot). Required.
	Publication string
	// Tables lists the captured tables as "schema.table" (a bare name means
	// "public."). Required, no duplicates.
	Tables []string
	// AddMissingTables lets capture ALTER an existing publication to add
	// configured tables it lacks. Default false: a publication missing
	// configured tables is an error. A publication with tables that are not
	// configured (or FOR ALL TABLES) is always an error: capture never
	// silently widens or narrows what someone else published.
	AddMissingTables bool
	// NeedOldValues lists tables ("schema.table") whose rules read old
	// values; capture warns at start for each whose REPLICA IDENTITY is not
	// FULL. Default none.
	NeedOldValues []string

	// FailoverSlot creates the slot with FAILOVER true (and turns failover
	// on for an existing slot), so Postgres synchronizes it to the standbys
	// that set sync_replication_slots and capture resumes on a promoted
	// standby. Postgres 17 or later: on an older server Run refuses to
	// start (*FailoverUnsupportedError). Default false.
	FailoverSlot bool

	// SnapshotMode is used when the slot does not exist yet. Default
	// SnapshotInitial.
	SnapshotMode SnapshotMode
	// SnapshotChunkRows is the number of rows per primary-key chunk. Default 10000.
	SnapshotChunkRows int
	// SnapshotState persists snapshot progress for crash resume. Default: a
	// new in-memory state (progress survives reconnects, not a process restart).
	SnapshotState SnapshotState

	// OnMissingSlot is what a missing slot does when capture streamed
	// through it before (this process confirmed a position through it, its
	// snapshot state says the initial snapshot completed, or History
	// says so): MissingSlotRefuse (default) stops Run with a
	// *SlotMissingError; MissingSlotResnapshot creates the slot again and
	// takes a new snapshot per SnapshotMode. Either is logged at ERROR,
	// naming the gap. A slot never seen before is created either way.
	OnMissingSlot MissingSlotPolicy
	// History, when set, says what outside capture/postgres shows that
	// capture streamed through Slot before (capture: progress markers in
	// the store), one phrase each; none when nothing does. Default nil:
	// only the snapshot state and this process's confirmations count.
	History func(ctx context.Context) ([]string, error)

	// StatusInterval is how often capture sends a standby status update
	// (and notices new acknowledgements). Default 1s. Must be well below the
	// server's wal_sender_timeout (default 60s).
	StatusInterval time.Duration
	// HeartbeatInterval is how long the stream may be idle before capture
	// emits a heartbeat logical message in the captured database. Default
	// 10s; negative disables heartbeats.
	HeartbeatInterval time.Duration
	// ReconnectMin and ReconnectMax bound the exponential reconnect backoff
	// (capture/retry: each wait drawn from [d/2, d]). Defaults 250ms and 30s.
	ReconnectMin, ReconnectMax time.Duration

	// Registerer receives capture's metrics. Default nil: not registered.
	Registerer prometheus.Registerer
}

var identRE = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

// ConfigError is one invalid setting.
type ConfigError struct {
	Field  string // e.g. "tables[2]"
	Reason string
}

func (e *ConfigError) Error() string { return "capture config " + e.Field + ": " + e.Reason }

// validate fills defaults and returns every problem joined.
func (c *Config) validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, &ConfigError{Field: field, Reason: fmt.Sprintf(format, args...)})
	}
	if err := (ConnSettings{URL: c.URL}).Validate(); err != nil {
		errs = append(errs, err) // pgconn redacts the password in its ParseConfigError
	}
	if !identRE.MatchString(c.Slot) {
		bad("slot", "%q must be 1-63 lower-case letters, digits or '_', not starting with a digit", c.Slot)
	}
	if !identRE.MatchString(c.Publication) {
		bad("publication", "%q must be 1-63 lower-case letters, digits or '_', not starting with a digit", c.Publication)
	}
	if len(c.Tables) == 0 {
		bad("tables", "required: at least one \"schema.table\"")
	}
	seen := map[string]int{}
	for i, t := range c.Tables {
		q, err := QualifyTable(t)
		if err != nil {
			bad(fmt.Sprintf("tables[%d]", i), "%v", err)
			continue
		}
		if j, dup := seen[q]; dup {
			bad(fmt.Sprintf("tables[%d]", i), "%s repeats tables[%d]", q, j)
			continue
		}
		seen[q] = i
		c.Tables[i] = q
	}
	for i, t := range c.NeedOldValues {
		q, err := QualifyTable(t)
		if err != nil {
			bad(fmt.Sprintf("need_old_values[%d]", i), "%v", err)
			continue
		}
		if _, ok := seen[q]; !ok && len(c.Tables) > 0 {
			bad(fmt.Sprintf("need_old_values[%d]", i), "%s is not one of the captured tables", q)
		}
		c.NeedOldValues[i] = q
	}
	switch c.SnapshotMode {
	case "":
		c.SnapshotMode = SnapshotInitial
	case SnapshotInitial, SnapshotNever, SnapshotInitialOnly:
	default:
		bad("snapshot_mode", "%q is not one of initial, never, initial_only", c.SnapshotMode)
	}
	switch c.OnMissingSlot {
	case "":
		c.OnMissingSlot = MissingSlotRefuse
	case MissingSlotRefuse, MissingSlotResnapshot:
	default:
		bad("on_missing_slot", "%q is not one of refuse, resnapshot", c.OnMissingSlot)
	}
	if c.SnapshotChunkRows == 0 {
		c.SnapshotChunkRows = 10000
	} else if c.SnapshotChunkRows < 0 {
		bad("snapshot_chunk_rows", "%d must be positive", c.SnapshotChunkRows)
	}
	if c.SnapshotState == nil {
		c.SnapshotState = NewMemorySnapshotState()
	}
	if c.StatusInterval == 0 {
		c.StatusInterval = time.Second
	} else if c.StatusInterval < 0 {
		bad("status_interval", "%s must be positive", c.StatusInterval)
	}
	if c.HeartbeatInterval == 0 {
		c.HeartbeatInterval = 10 * time.Second
	}
	if c.ReconnectMin == 0 {
		c.ReconnectMin = 250 * time.Millisecond
	}
	if c.ReconnectMax == 0 {
		c.ReconnectMax = 30 * time.Second
	}
	if c.ReconnectMin < 0 || c.ReconnectMax < c.ReconnectMin {
		bad("reconnect", "need 0 < reconnect_min (%s) <= reconnect_max (%s)", c.ReconnectMin, c.ReconnectMax)
	}
	return errors.Join(errs...)
}

// QualifyTable turns "t" into "public.t" and checks "schema.table" shape.
// Names are taken as written (case-sensitive, unquoted in the config). On
// error it returns t unchanged.
func QualifyTable(t string) (string, error) {
	parts := strings.Split(t, ".")
	switch {
	case len(parts) == 1 && parts[0] != "":
		return "public." + parts[0], nil
	case len(parts) == 2 && parts[0] != "" && parts[1] != "":
		return t, nil
	}
	return t, fmt.Errorf("%q is not \"schema.table\"", t)
}

// SplitTable splits a qualified name ("schema.table").
func SplitTable(q string) (schema, table string) {
	i := strings.IndexByte(q, '.')
	return q[:i], q[i+1:]
}
