// Command testsum reads `go test -json` on stdin and prints a readable
// account of the run: the full output of every failed test and package,
// every test that ran with its result and time, every skipped test with its
// reason, the figures tests measured (log lines containing "figure:"), the
// failure messages of every failed test again, and a closing line
// "N passed, N failed, N skipped".
//
// The failure messages are repeated last because a failed test's full output
// ends with long log tails (its cleanups print them), and a reader who sees
// only the end of a CI log must still see why each test failed.
//
// It exits 1 if anything failed (a test, a package's build, a panic outside a
// test) or if no test ran at all, so ./test/run.sh cannot pass on nothing.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"
)

type event struct {
	Action  string
	Package string
	Test    string
	Elapsed float64
	Output  string
}

// verboseSubtests prints passing subtests too (they show which server a
// self-test ran against); failures and skips are always printed.
const verboseSubtests = true

type key struct{ pkg, test string }

type result struct {
	action  string
	elapsed float64
	output  strings.Builder
}

func main() {
	verbose := len(os.Args) > 1 && os.Args[1] == "-v"
	os.Exit(run(os.Stdin, os.Stdout, verbose))
}

func run(in io.Reader, out io.Writer, verbose bool) int {
	results := map[key]*result{}
	var order []key
	get := func(k key) *result {
		r := results[k]
		if r == nil {
			r = &result{}
			results[k] = r
			order = append(order, k)
		}
		return r
	}
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var e event
		if err := json.Unmarshal(line, &e); err != nil || e.Action == "" {
			// Not test2json output (e.g. a build error printed by go test).
			fmt.Fprintf(out, "%s\n", line)
			continue
		}
		r := get(key{e.Package, e.Test})
		switch e.Action {
		case "output":
			r.output.WriteString(e.Output)
			if e.Test == "" && verbose {
				fmt.Fprint(out, e.Output)
			}
		case "pass", "fail", "skip":
			r.action = e.Action
			r.elapsed = e.Elapsed
			if e.Test == "" {
				fmt.Fprintf(out, "%-4s %s (%.1fs)\n", strings.ToUpper(e.Action), e.Package, e.Elapsed)
			}
		}
	}
	if err := sc.Err(); err != nil {
		fmt.Fprintf(out, "testsum: reading input: %v\n", err)
		return 1
	}

	var figures []string
	for _, k := range order {
		for _, l := range strings.Split(results[k].output.String(), "\n") {
			if i := strings.Index(l, "figure:"); i >= 0 && k.test != "" {
				figures = append(figures, fmt.Sprintf("%s %s: %s", shortPkg(k.pkg), k.test, strings.TrimSpace(l[i+len("figure:"):])))
			}
		}
	}

	var passed, failed, skipped int
	pkgFailed := false
	sort.SliceStable(order, func(i, j int) bool { return order[i].pkg < order[j].pkg })
	fmt.Fprintln(out, "\n== tests ==")
	for _, k := range order {
		r := results[k]
		if k.test == "" {
			if r.action == "fail" {
				pkgFailed = true
			}
			continue
		}
		sub := strings.Contains(k.test, "/")
		switch r.action {
		case "pass":
			passed++
		case "fail":
			failed++
		case "skip":
			skipped++
		default: // started, never finished: a panic or a timeout
			failed++
			r.action = "fail"
		}
		if !sub || r.action != "pass" || verboseSubtests {
			fmt.Fprintf(out, "--- %s %s %s (%s)\n", strings.ToUpper(r.action), shortPkg(k.pkg), k.test, time.Duration(r.elapsed*float64(time.Second)).Round(10*time.Millisecond))
		}
		if r.action == "skip" {
			fmt.Fprintf(out, "    reason: %s\n", skipReason(r.output.String()))
		}
	}
	for _, k := range order {
		r := results[k]
		if r.action == "fail" {
			name := k.pkg
			if k.test != "" {
				name += " " + k.test
			}
			fmt.Fprintf(out, "\n== output of failed %s ==\n%s", name, r.output.String())
		}
	}
	if len(figures) > 0 {
		fmt.Fprintln(out, "\n== figures ==")
		for _, f := range figures {
			fmt.Fprintln(out, f)
		}
	}
	var why []string
	for _, k := range order {
		if r := results[k]; r.action == "fail" && k.test != "" {
			depth := strings.Count(k.test, "/")
			for _, m := range failureMessages(r.output.String(), 4*(depth+1), 8) {
				why = append(why, fmt.Sprintf("%s %s: %s", shortPkg(k.pkg), k.test, m))
			}
		}
	}
	if len(why) > 0 {
		fmt.Fprintln(out, "\n== why each failed ==")
		for _, w := range why {
			fmt.Fprintln(out, w)
		}
	}
	fmt.Fprintf(out, "\n%d passed, %d failed, %d skipped\n", passed, failed, skipped)
	if failed > 0 || pkgFailed {
		return 1
	}
	if passed == 0 {
		fmt.Fprintln(out, "testsum: no test ran")
		return 1
	}
	return 0
}

func shortPkg(p string) string {
	return strings.TrimPrefix(p, "github.com/chronicler-dev/chronicler/")
}

// skipReason picks the t.Skip message out of a test's output.
func skipReason(output string) string {
	for _, l := range strings.Split(output, "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "=== ") || strings.HasPrefix(l, "--- ") {
			continue
		}
		return l
	}
	return "(no reason given)"
}

// failureMessages returns up to max of a failed test's own messages: the
// lines t.Error, t.Fatal and t.Log print at the test's own indentation
// (4 spaces for a test, 8 for its subtests: "    name_test.go:N: ..."),
// without figures and without the headings of log tails (their content is
// indented deeper), and panics.
func failureMessages(output string, indent, max int) []string {
	var msgs []string
	for _, l := range strings.Split(output, "\n") {
		trimmed := strings.TrimLeft(l, " ")
		own := len(l)-len(trimmed) == indent && isFileLine(trimmed)
		if !own && !strings.HasPrefix(l, "panic: ") {
			continue
		}
		if strings.Contains(l, "figure:") || strings.HasSuffix(strings.TrimSpace(l), "log tail:") {
			continue
		}
		msgs = append(msgs, strings.TrimSpace(l))
		if len(msgs) == max {
			break
		}
	}
	return msgs
}

// isFileLine reports whether s starts like "name.go:123: ".
func isFileLine(s string) bool {
	i := strings.Index(s, ".go:")
	if i <= 0 || strings.ContainsAny(s[:i], " \t") {
		return false
	}
	rest := s[i+len(".go:"):]
	j := 0
	for j < len(rest) && rest[j] >= '0' && rest[j] <= '9' {
		j++
	}
	return j > 0 && strings.HasPrefix(rest[j:], ": ")
}
