package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"
)

func newRootCmd(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:           "chronicler",
		Short:         "Turn a legacy Postgres database into an event source",
		Long:          "Chronicler captures row changes from Postgres logical replication, maps them by rules into\nlow-level events stored in KurrentDB, and promotes them into integration events on Kafka.\n\n`run` runs the pipeline (capture and publish; --only to split), `replay` re-derives integration\nevents from stored history; `dev` runs everything on throwaway servers.",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.AddCommand(&cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
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
	return root
}
