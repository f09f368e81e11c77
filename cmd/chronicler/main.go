// Command chronicler is the Chronicler binary: a sidecar that turns a legacy
// Postgres database into an event source (see the README).
package main

import (
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
)

// version is stamped at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	if len(os.Args) > 1 && os.Args[1] == "version" {
		fmt.Println(versionString())
		return
	}
	fmt.Fprintln(os.Stderr, "usage: chronicler version\n\nThe pipeline commands (run, dev, check, status, replay, rules) are being built; see the README.")
	os.Exit(2)
}

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
