package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/chronicler-dev/chronicler/cmd/chronicler/internal/preflight"
)

func newCheckCmd() *cobra.Command {
	var (
		file    string
		only    string
		asJSON  bool
		lagWarn int64
		timeout time.Duration
	)
	cmd := &cobra.Command{
		Use:   "check [--config FILE] [--only capture|publish] [--json]",
		Short: "Check every prerequisite the config names: Postgres, the store, Kafka, the rules",
		Long: "Check connects to everything the config names and prints one line per prerequisite: ok, warn or\n" +
			"FAIL, the thing checked (table, slot, topic, broker), what was found and, for warn and FAIL, the fix\n" +
			"(the SQL or setting). It writes nothing, except that the Kafka transactions probe begins and aborts\n" +
			"an empty transaction under its own transactional id chronicler-<publisher_id>.check-<pid> (never the\n" +
			"publisher's), and the store's permissions are probed with appends that expect a revision no stream\n" +
			"reaches (refused either way, after the access check).\n\n" +
			"Checks: postgres reachable, version (14 or later), wal_level = logical, max_replication_slots and\n" +
			"max_wal_senders have room, the role has REPLICATION (or is superuser), each table exists and is\n" +
			"readable, its replica identity lets updates and deletes be published (and sends the old values\n" +
			"the rules or postgres.need_old_values read), the publication, the slot (plugin, holder, wal_status)\n" +
			"and its lag; the store is reachable (reads $all) and its version; Kafka brokers reachable and their\n" +
			"versions, every topic the rules name plus the dead-letter and checkpoint topics, transactions when\n" +
			"delivery.mode is exactly_once; the rules load (problems at file:line:col). Security: each connection\n" +
			"(postgres tls, store tls, kafka tls) warns when plaintext or its certificate is not verified; each\n" +
			"missing permission (Kafka ACLs per topic and transactional id, the store's $all read and writes to\n" +
			"capture's streams) FAILs, named with the grant that fixes it.\n\n" +
			"Secrets are never printed. --json prints {\"checks\":[{\"name\",\"status\",\"found\",\"fix\"}...],\"ok\":bool}.\n\n" +
			"Exit codes: 0 nothing FAILed (warnings allowed); 1 something FAILed; 2 invalid config or flags.",
		Example: "  chronicler check --config chronicler.yaml\n" +
			"  chronicler check --only capture --json",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, parts, err := loadConfig(cmd, file, only)
			if err != nil {
				return err
			}
			opts := preflight.Options{Capture: parts.Capture, Publish: parts.Publish, LagWarnBytes: lagWarn, Timeout: timeout}
			rep := preflight.Run(cmd.Context(), cfg, opts)
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				if err := enc.Encode(rep); err != nil {
					return err
				}
			} else {
				printChecks(cmd.OutOrStdout(), rep)
			}
			if !rep.OK {
				return exitError(1)
			}
			return nil
		},
	}
	addConfigFlag(cmd, &file)
	cmd.Flags().StringVar(&only, "only", "", "check only what this part needs: capture (Postgres, store, rules) or publish (store, Kafka, rules)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON object instead of lines")
	cmd.Flags().Int64Var(&lagWarn, "lag-warn-bytes", preflight.DefaultLagWarnBytes, "warn when the slot's unconfirmed WAL exceeds this many bytes")
	cmd.Flags().DurationVar(&timeout, "timeout", preflight.DefaultTimeout, "time allowed per system (Postgres, store, Kafka)")
	return cmd
}

// printChecks prints one aligned line per check and a summary line.
func printChecks(w io.Writer, rep *preflight.Report) {
	width := 0
	for _, c := range rep.Checks {
		width = max(width, len(c.Name))
	}
	counts := map[preflight.Status]int{}
	for _, c := range rep.Checks {
		counts[c.Status]++
		line := fmt.Sprintf("%-4s  %-*s  %s", c.Status, width, c.Name, c.Found)
		if c.Fix != "" && c.Status != preflight.OK {
			line += "  fix: " + c.Fix
		}
		fmt.Fprintln(w, strings.TrimRight(line, " "))
	}
	fmt.Fprintf(w, "%d ok, %d warn, %d FAIL\n", counts[preflight.OK], counts[preflight.Warn], counts[preflight.Fail])
}
