//go:build release

package main

import (
	"errors"

	"github.com/spf13/cobra"
)

// The release build (the container image: go build -tags release) carries
// no test servers, no in-process Kafka and no Postgres installer, so it has
// no dev command; `go run ./cmd/chronicler dev` in the repository has.
func newDevCmd() *cobra.Command {
	return &cobra.Command{
		Use:    "dev",
		Short:  "Not in this build: run `go run ./cmd/chronicler dev` from the repository",
		Hidden: true,
		Args:   cobra.ArbitraryArgs,
		RunE: func(*cobra.Command, []string) error {
			return errors.New("dev is not in the release build (it would carry the test servers): run `go run ./cmd/chronicler dev` from a clone of the repository")
		},
	}
}
