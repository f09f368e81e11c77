package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"
)

func newRootCmd(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "chronicler",
		Short: "Turn a legacy Postgres database into an event source",
		Long:  "Chronicler captures row changes from Postgres logical replication, maps them by rules into\nlow-level events stored in KurrentDB, and promotes them into integration events on Kafka.\n\n`run` runs the pipeline (capture and publish; --only to split), `check` tests its prerequisites,\n`status` shows its positions and lag, `replay` re-derives integration events from stored history;\n`dev` runs everything on throwaway servers. Configuration: deploy/examples/chronicler.yaml, and\nCHRONICLER_<SECTION>_<KEY> environment variables.",
		Example: "  go run ./cmd/chronicler dev                       # try it: the whole pipeline, throwaway servers\n" +
			"  chronicler check --config chronicler.yaml         # are Postgres, the store and Kafka ready?\n" +
			"  chronicler run --config chronicler.yaml\n" +
			"  chronicler status --config chronicler.yaml --json",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.AddCommand(&cobra.Command{
		Use:     "version",
		Short:   "Print the version",
		Example: "  chronicler version",
		Args:    cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			fmt.Fprintln(cmd.OutOrStdout(), versionString())
		},
	})
	root.AddCommand(newRulesCmd())
	root.AddCommand(newRunCmd())
	root.AddCommand(newReplayCmd())
	root.AddCommand(newDevCmd())
	root.AddCommand(newCheckCmd())
	root.AddCommand(newStatusCmd())
	root.AddCommand(newTeardownCmd())
	root.AddCommand(newSnapshotCmd())
	return root
}
