package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/chronicler-dev/chronicler/cmd/chronicler/config"
	"github.com/chronicler-dev/chronicler/cmd/chronicler/internal/preflight"
)

func newStatusCmd() *cobra.Command {
	var (
		file    string
		asJSON  bool
		timeout time.Duration
		maxLag  int64
	)
	cmd := &cobra.Command{
		Use:   "status [--config FILE] [--json]",
		Short: "Show the pipeline's positions and lag: slot, store, publisher checkpoint, dead letters",
		Long: "Status reads, and never writes: no slot is created or advanced, nothing is appended, and Kafka is\n" +
			"read by a plain read_committed consumer without a group or transactional id, so a running\n" +
			"publisher is never fenced. The publisher section is read when kafka.brokers is set.\n\n" +
			"Fields (--json prints one object with these stable names):\n" +
			"  slot.name, .exists, .active, .active_pid, .wal_status\n" +
			"  slot.confirmed_flush_lsn   pg_replication_slots.confirmed_flush_lsn: every change before it is stored\n" +
			"  slot.current_wal_lsn       pg_current_wal_lsn() when read\n" +
			"  slot.lag_bytes             current_wal_lsn - confirmed_flush_lsn (WAL not yet confirmed)\n" +
			"  slot.retained_wal_bytes    current_wal_lsn - restart_lsn (WAL the server keeps for the slot)\n" +
			"  slot.safe_wal_size         bytes before the slot loses WAL it needs (null: unlimited)\n" +
			"  slot.lag_seconds           0 when lag_bytes is 0; else pg_stat_replication.flush_lag of the slot's\n" +
			"                             walsender when active and reported; else the age of the last progress\n" +
			"                             marker (time since the store last advanced: an upper bound of how long\n" +
			"                             the oldest unconfirmed change has waited); null when unknown.\n" +
			"  slot.lag_seconds_source    caught_up | pg_stat_replication.flush_lag | progress_marker_age | unknown\n" +
			"  store.progress_stream      chronicler-progress-<slot>\n" +
			"  store.durable_lsn          the last progress marker's durableLsn (\"\" when none yet)\n" +
			"  store.progress_written_at  when that marker was stored\n" +
			"  store.end_position         {commit, prepare} of the last event in $all (null when empty)\n" +
			"  store.snapshots            capture's snapshots as last saved: [{id, initial, tables, where, state\n" +
			"                             (queued|running|done|cancelled|failed), table (being read), rows_done,\n" +
			"                             rows_estimated, rows_per_second, eta_seconds, updated_at, error}]\n" +
			"  publisher.id, .checkpoint_topic\n" +
			"  publisher.checkpoint       {commit, prepare, resume, written_at, offset}: the last committed\n" +
			"                             checkpoint of this publisher id (null when none)\n" +
			"  publisher.lag_events       events after the checkpoint the publisher's subscription delivers\n" +
			"                             (counted up to --max-lag-events; lag_events_capped says it stopped)\n" +
			"  publisher.lag_commit_positions  store end commit position - checkpoint commit position\n" +
			"  dead_letters.capture_stream, .capture   capture's dead-letter stream and its event count\n" +
			"  dead_letters.publish_topic, .publish    the dead-letter topic and its committed record count\n" +
			"  errors                     what could not be read, per section\n" +
			"  unknown                    {part: error} for each part that could not be read: slot, store,\n" +
			"                             publisher (its checkpoint), publisher_lag, dead_letters; that part is\n" +
			"                             null in the JSON and \"unknown\" in the text, never absent or empty\n\n" +
			"Exit codes: 0 everything was read; 1 some section could not be read (see errors); 2 invalid config.",
		Example: "  chronicler status --config chronicler.yaml\n" +
			"  chronicler status --json | jq .slot.lag_bytes",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(file, config.Parts{Capture: true})
			if err != nil {
				fmt.Fprintln(cmd.ErrOrStderr(), err)
				return exitError(2)
			}
			rep, err := preflight.ReadStatus(cmd.Context(), cfg, preflight.StatusOptions{Timeout: timeout, MaxLagEvents: maxLag})
			if asJSON {
				if err := json.NewEncoder(cmd.OutOrStdout()).Encode(rep); err != nil {
					return err
				}
			} else {
				printStatus(cmd.OutOrStdout(), rep)
			}
			if err != nil {
				return exitError(1)
			}
			return nil
		},
	}
	addConfigFlag(cmd, &file)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON object (field names above)")
	cmd.Flags().DurationVar(&timeout, "timeout", preflight.DefaultTimeout, "time allowed per system (Postgres, store, Kafka)")
	cmd.Flags().Int64Var(&maxLag, "max-lag-events", preflight.DefaultMaxLagEvents, "most store events read to count the publisher's lag")
	return cmd
}

type lineFunc func(k, format string, args ...any)

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

func printSlot(line lineFunc, s *preflight.SlotStatus) {
	switch {
	case !s.Exists:
		line("slot "+s.Name, "absent (capture has not run, or the slot was dropped)")
	case s.Active:
		line("slot "+s.Name, "active, pid %d, wal_status %s", *s.ActivePID, orNone(s.WALStatus))
	default:
		line("slot "+s.Name, "inactive, wal_status %s", orNone(s.WALStatus))
	}
	if s.Exists {
		line("confirmed LSN", "%s (current WAL %s)", s.ConfirmedLSN, s.CurrentLSN)
	}
	if s.LagBytes != nil {
		line("slot lag", "%d bytes", *s.LagBytes)
	}
	if s.RetainedBytes != nil {
		bound := "no bound: max_slot_wal_keep_size is unlimited"
		if s.SafeWALSize != nil {
			bound = fmt.Sprintf("%d bytes more before the slot is in danger", *s.SafeWALSize)
		}
		line("slot retained WAL", "%d bytes (%s)", *s.RetainedBytes, bound)
	}
	if s.LagSeconds != nil {
		line("slot lag time", "%s (%s)", time.Duration(*s.LagSeconds*float64(time.Second)).Round(time.Millisecond), s.LagSource)
	} else if s.Exists {
		line("slot lag time", "unknown (no progress marker yet)")
	}
}

func printStore(line lineFunc, s *preflight.StoreStatus) {
	if s.DurableLSN != "" {
		line("store durable LSN", "%s (marker written %s, %s)", s.DurableLSN, s.ProgressWritten.Format(time.RFC3339), s.ProgressStream)
	} else {
		line("store durable LSN", "none (no progress marker in %s)", s.ProgressStream)
	}
	if s.End != nil {
		line("store end", "$all commit %d prepare %d", s.End.Commit, s.End.Prepare)
	} else {
		line("store end", "empty")
	}
	for _, sn := range s.Snapshots {
		switch sn.State {
		case "running", "queued":
			eta := ""
			if sn.ETASeconds != nil {
				eta = fmt.Sprintf(", eta %s", time.Duration(*sn.ETASeconds*float64(time.Second)).Round(time.Second))
			}
			line("snapshot "+sn.ID, "%s: %s, %d of ~%d rows, %.0f rows/s%s", sn.State, sn.Table, sn.RowsDone, sn.RowsEstimated, sn.RowsPerSecond, eta)
		case "failed":
			line("snapshot "+sn.ID, "failed: %s", sn.Error)
		default:
			line("snapshot "+sn.ID, "%s: %d rows", sn.State, sn.RowsDone)
		}
	}
}

func printPublisher(line lineFunc, unknown func(k, section string) bool, p *preflight.PublisherStatus) {
	if !unknown("publisher "+p.ID, "publisher") {
		if c := p.Checkpoint; c != nil {
			resume := ""
			if c.Resume != nil {
				resume = fmt.Sprintf(", resume commit %d", c.Resume.Commit)
				if c.Resume.Start {
					resume = ", resume from the start"
				}
			}
			line("publisher "+p.ID, "checkpoint commit %d prepare %d%s (written %s, %s offset %d)", c.Commit, c.Prepare, resume, c.Written.Format(time.RFC3339), p.CheckpointTopic, c.Offset)
		} else {
			line("publisher "+p.ID, "no checkpoint in %s", p.CheckpointTopic)
		}
	}
	if unknown("publisher lag", "publisher_lag") || p.LagEvents == nil {
		return
	}
	more := ""
	if p.LagEventsCapped {
		more = " or more"
	}
	pos := ""
	if p.LagPositions != nil {
		pos = fmt.Sprintf(" (%d commit positions)", *p.LagPositions)
	}
	line("publisher lag", "%d events%s%s", *p.LagEvents, more, pos)
}

// printStatus prints aligned "field  value" lines; a part that could not
// be read is "unknown" with its error, never a guess.
func printStatus(w io.Writer, r *preflight.StatusReport) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	line := func(k, format string, args ...any) { fmt.Fprintf(tw, "%s\t%s\n", k, fmt.Sprintf(format, args...)) }
	unknown := func(k, section string) bool {
		if e, ok := r.Unknown[section]; ok {
			line(k, "unknown: %s", e)
			return true
		}
		return false
	}
	if !unknown("slot", "slot") && r.Slot != nil {
		printSlot(line, r.Slot)
	}
	if !unknown("store", "store") && r.Store != nil {
		printStore(line, r.Store)
	}
	if p := r.Publisher; p != nil {
		printPublisher(line, unknown, p)
	}
	if d := r.DeadLetters; d != nil {
		if !unknown("dead letters (capture)", "store") && d.Capture != nil {
			line("dead letters (capture)", "%d in %s", *d.Capture, d.CaptureStream)
		}
		if !unknown("dead letters (publish)", "dead_letters") && d.Publish != nil {
			line("dead letters (publish)", "%d in %s", *d.Publish, d.PublishTopic)
		}
	}
	for _, e := range r.Errors {
		line("error", "%s", strings.TrimSpace(e))
	}
	_ = tw.Flush()
}
