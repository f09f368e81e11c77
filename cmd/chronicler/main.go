// Command chronicler is the Chronicler binary: a sidecar that turns a legacy
// Postgres database into an event source (see the README).
//
// Exit codes: 0 success; 1 the command ran and found problems (rule errors,
// failing rule tests) or, for run, the pipeline failed, the HA lock was
// lost, a graceful stop did not finish within shutdown.grace, or a second
// signal forced the exit; 2 usage errors (unknown command or flag, invalid
// config, an http.addr that cannot be listened on).
//
// This package reads flags and configuration, forwards signals and prints;
// run (runner.go), dev and the benchmark run the one composition root,
// package app (the parts, the HA lease, the reloader, the stop sequence,
// /healthz and /readyz), built from package config; its runtime parts are
// internal/ha, internal/opsserver and internal/reload. The dependency rule
// is in the README (Layout) and layout_test.go holds it.
package main

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
)

// version is stamped at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run executes the command line args and returns the exit code.
func run(args []string, stdout, stderr io.Writer) int {
	root := newRootCmd(stdout, stderr)
	root.SetArgs(args)
	err := root.Execute()
	if err == nil {
		return 0
	}
	if ee, ok := err.(exitError); ok {
		return int(ee)
	}
	fmt.Fprintln(stderr, "error:", err)
	fmt.Fprintln(stderr, "run 'chronicler --help' for usage")
	return 2
}

// exitError is returned by commands that have already printed their output
// and only need to set the exit code.
type exitError int

func (e exitError) Error() string { return fmt.Sprintf("exit %d", int(e)) }

func versionString() string {
	rev := "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				rev = s.Value
			}
		}
	}
	return fmt.Sprintf("chronicler %s (%s, %s)", version, rev, runtime.Version())
}
