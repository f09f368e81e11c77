package main

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/chronicler-dev/chronicler/capture/postgres"
	"github.com/chronicler-dev/chronicler/cmd/chronicler/config"
	"github.com/chronicler-dev/chronicler/cmd/chronicler/internal/ha"
)

// newTeardownCmd is `chronicler teardown`: remove what Chronicler created in
// the legacy database (the replication slot, which keeps WAL while it
// exists, and the publication).
func newTeardownCmd() *cobra.Command {
	var (
		file        string
		yes, dryRun bool
	)
	cmd := &cobra.Command{
		Use:   "teardown [--config FILE] [--dry-run] [--yes]",
		Short: "Remove the replication slot and the publication Chronicler created in the database",
		Long: "Teardown drops postgres.publication and the replication slot postgres.slot (an inactive slot keeps\n" +
			"every WAL segment written after its position, until the disk of the database fills). It shows the\n" +
			"statements first, and runs them with --yes (or after you type the slot's name at a terminal).\n\n" +
			"It refuses while an instance of this slot runs: while any of its HA locks is held or the slot is\n" +
			"active. The store's streams are left as they are: a later `chronicler run` on a new slot would\n" +
			"start a new history.\n\n" +
			"Exit codes: 0 removed, nothing to remove, or --dry-run; 1 refused (an instance runs, not\n" +
			"confirmed) or failed; 2 invalid config.",
		Example: "  chronicler teardown --config chronicler.yaml --dry-run\n" +
			"  chronicler teardown --config chronicler.yaml --yes",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, _, err := loadConfig(cmd, file, "capture")
			if err != nil {
				return err
			}
			return runTeardown(cmd, cfg, yes, dryRun)
		},
	}
	addConfigFlag(cmd, &file)
	cmd.Flags().BoolVar(&yes, "yes", false, "run the statements without asking")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "print the statements and change nothing")
	return cmd
}

func runTeardown(cmd *cobra.Command, cfg *config.Config, yes, dryRun bool) error {
	out, errOut := cmd.OutOrStdout(), cmd.ErrOrStderr()
	ctx, cancel := context.WithTimeout(cmd.Context(), time.Minute)
	defer cancel()
	slot, pub := cfg.Postgres.Slot, cfg.Postgres.Publication
	key := cfg.LockKey()
	locks := []int64{ha.LockID(key), ha.LockID(key + "/capture"), ha.LockID(key + "/publish")}
	target := config.RedactURL(cfg.PostgresURL())
	f, err := postgres.Inspect(ctx, cfg.PostgresURL(), slot, pub, locks)
	if err != nil {
		fmt.Fprintf(errOut, "error: teardown: %s: %v\n", target, err)
		return exitError(1)
	}
	if len(f.LockHolders) > 0 {
		fmt.Fprintf(errOut, "teardown refused: an instance of slot %s holds its HA lock (backend pid %v): stop every instance first\n", slot, f.LockHolders)
		return exitError(1)
	}
	stmts := f.Statements()
	if len(stmts) == 0 {
		fmt.Fprintf(out, "nothing to remove: no slot %s and no publication %s in %s\n", slot, pub, target)
		return nil
	}
	fmt.Fprintf(out, "in %s:\n", target)
	for _, s := range stmts {
		fmt.Fprintf(out, "  %s;\n", s)
	}
	if dryRun {
		fmt.Fprintln(out, "dry run: nothing changed")
		return nil
	}
	if !yes && !confirmed(cmd, slot) {
		fmt.Fprintln(errOut, "teardown not confirmed: nothing changed (run it again with --yes)")
		return exitError(1)
	}
	if _, err := postgres.Teardown(ctx, cfg.PostgresURL(), f, 10*time.Second, slog.New(slog.NewTextHandler(errOut, nil))); err != nil {
		fmt.Fprintf(errOut, "error: teardown: %v\n", err)
		return exitError(1)
	}
	fmt.Fprintf(out, "removed: slot %s and publication %s\n", slot, pub)
	return nil
}

// confirmed asks for the slot's name when stdin is a terminal.
func confirmed(cmd *cobra.Command, slot string) bool {
	in, ok := cmd.InOrStdin().(*os.File)
	if !ok {
		return false
	}
	if st, err := in.Stat(); err != nil || st.Mode()&os.ModeCharDevice == 0 {
		return false
	}
	fmt.Fprintf(cmd.OutOrStdout(), "type the slot's name (%s) to run them: ", slot)
	line, _ := bufio.NewReader(in).ReadString('\n')
	return strings.TrimSpace(line) == slot
}
