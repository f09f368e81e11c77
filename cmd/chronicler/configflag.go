package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/chronicler-dev/chronicler/cmd/chronicler/config"
)

// addConfigFlag adds --config, the config file flag of run, check and
// status.
func addConfigFlag(cmd *cobra.Command, file *string) {
	cmd.Flags().StringVar(file, "config", "", "the config file (YAML); default ./chronicler.yaml if it exists, else the environment alone")
}

// loadConfig reads the config for the parts --only names (run, check).
// A bad --only or an invalid config is printed to stderr and returned as
// exit code 2.
func loadConfig(cmd *cobra.Command, file, only string) (*config.Config, config.Parts, error) {
	parts, err := config.PartsFor(only)
	if err != nil {
		fmt.Fprintf(cmd.ErrOrStderr(), "%s: %v\n", cmd.Name(), err)
		return nil, parts, exitError(2)
	}
	cfg, err := config.Load(file, parts)
	if err != nil {
		fmt.Fprintln(cmd.ErrOrStderr(), err)
		return nil, parts, exitError(2)
	}
	return cfg, parts, nil
}
