package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/chronicler-dev/chronicler/capture/postgres"
	"github.com/chronicler-dev/chronicler/cmd/chronicler/config"
)

// newSnapshotCmd is `chronicler snapshot`: ask the running capture of the
// configured slot to read tables again while it streams (issue 16).
func newSnapshotCmd() *cobra.Command {
	var (
		file, where, id, cancelID string
	)
	cmd := &cobra.Command{
		Use:   "snapshot TABLE... [--where SQL] [--id ID] | snapshot --cancel ID",
		Short: "Read tables again into their streams while capture streams (a snapshot on demand)",
		Long: "Snapshot asks the capture of postgres.slot to read the named tables (schema.table; a bare name is\n" +
			"public.) in chunks by primary key while streaming goes on, emitting each row through the table's\n" +
			"`snapshot` rules. The request is a logical message in the database's WAL (no table is written):\n" +
			"the running capture picks it up at its place in the stream, or the next one to start does. Each\n" +
			"row's snapshot event lands in its stream after every change it shows and before every change it\n" +
			"does not; a restart or an HA takeover resumes at the chunk where it stopped. The events carry the\n" +
			"snapshot's id in their metadata (\"snapshot\"), and their ids derive from it: a new snapshot of the\n" +
			"same rows is a new id, the same snapshot never stores a row twice.\n\n" +
			"The tables must be in postgres.tables. --where reads only the rows an SQL condition holds for\n" +
			"(checked with EXPLAIN on every table first). Progress: `chronicler status` (store.snapshots) and\n" +
			"the chronicler_capture_snapshot_* metrics. --cancel ID stops a snapshot after its current chunk.\n\n" +
			"Exit codes: 0 requested (the id is printed); 1 refused or failed; 2 invalid config or arguments.",
		Example: "  chronicler snapshot public.orders --config chronicler.yaml\n" +
			"  chronicler snapshot public.orders --where \"created_at > now() - interval '7 days'\"\n" +
			"  chronicler snapshot --cancel snap-20261203T150405Z-1a2b3c4d",
		RunE: func(cmd *cobra.Command, args []string) error {
			if (cancelID == "") == (len(args) == 0) {
				fmt.Fprintln(cmd.ErrOrStderr(), "snapshot: name the tables to read, or --cancel ID (not both)")
				return exitError(2)
			}
			cfg, _, err := loadConfig(cmd, file, "capture")
			if err != nil {
				return err
			}
			return runSnapshot(cmd, cfg, args, where, id, cancelID)
		},
	}
	addConfigFlag(cmd, &file)
	cmd.Flags().StringVar(&where, "where", "", "an SQL condition: read only the rows it holds for")
	cmd.Flags().StringVar(&id, "id", "", "the snapshot's id (default snap-<UTC time>-<random>)")
	cmd.Flags().StringVar(&cancelID, "cancel", "", "cancel the snapshot with this id")
	return cmd
}

func runSnapshot(cmd *cobra.Command, cfg *config.Config, tables []string, where, id, cancelID string) error {
	out, errOut := cmd.OutOrStdout(), cmd.ErrOrStderr()
	ctx, cancel := context.WithTimeout(cmd.Context(), time.Minute)
	defer cancel()
	cs := cfg.PostgresSettings("chronicler-snapshot")
	target := config.RedactURL(cfg.PostgresURL())
	slot := cfg.Postgres.Slot
	if cancelID != "" {
		lsn, err := postgres.CancelSnapshot(ctx, cs, slot, cancelID)
		if err != nil {
			fmt.Fprintf(errOut, "error: snapshot --cancel %s: %s: %v\n", cancelID, target, err)
			return exitError(1)
		}
		fmt.Fprintf(out, "cancellation of snapshot %s of slot %s requested at %s\n", cancelID, slot, lsn)
		return nil
	}
	captured := map[string]bool{}
	for _, t := range cfg.Postgres.Tables {
		if q, err := postgres.QualifyTable(t); err == nil {
			captured[q] = true
		}
	}
	for _, t := range tables {
		q, err := postgres.QualifyTable(t)
		if err != nil {
			fmt.Fprintf(errOut, "snapshot: table %q: %v\n", t, err)
			return exitError(2)
		}
		if !captured[q] {
			fmt.Fprintf(errOut, "snapshot: %s is not in postgres.tables: capture does not stream it; add it there (and to the publication) first\n", q)
			return exitError(1)
		}
	}
	got, lsn, err := postgres.RequestSnapshot(ctx, cs, postgres.SnapshotRequest{Slot: slot, Tables: tables, Where: where, ID: id})
	if err != nil {
		var re *postgres.SnapshotRequestError
		if errors.As(err, &re) {
			fmt.Fprintf(errOut, "snapshot refused: %v\n", err)
		} else {
			fmt.Fprintf(errOut, "error: snapshot: %s: %v\n", target, err)
		}
		return exitError(1)
	}
	fmt.Fprintf(out, "snapshot %s of %v requested for slot %s at %s; follow it with `chronicler status` (store.snapshots)\n", got, tables, slot, lsn)
	return nil
}
