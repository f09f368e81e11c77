package ruletest

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"slices"
	"sort"
	"strings"

	"github.com/chronicler-dev/chronicler/mapping"
	"github.com/chronicler-dev/chronicler/mapping/contract"
)

// Result is the outcome of one test case.
type Result struct {
	Case Case
	// Failure is "" when the case passed, else what differs: a message and
	// a line diff of expected (-) against got (+).
	Failure string
}

// Report is the outcome of a run.
type Report struct {
	Results        []Result
	Passed, Failed int
}

// Slot is the replication slot named in the metadata of the stored events a
// test case makes (event.metadata.slot).
const Slot = "ruletest"

// RunCase runs one test case against rs.
//
// Changes run through Capture; the resulting events become stored events
// (stream revisions counted from 0, data and metadata as the publisher
// decodes them from the stored bytes, contract.DecodeJSON, the metadata
// written for slot [Slot]) that run through Promote one by one
// and then, together as one transaction, through PromoteTx. Integration
// events are compared in that order: per-event outputs first, then
// transaction outputs.
func RunCase(rs *mapping.RuleSet, c Case) Result {
	var r caseRun
	stored := c.Stored
	if c.Changes != nil {
		stored = r.capture(rs, c.Changes)
	}
	var integ []mapping.Integration
	for i := range stored {
		var err error
		integ, err = rs.Promote(&stored[i], integ)
		r.collect(err)
	}
	integ, err := rs.PromoteTx(stored, integ)
	r.collect(err)

	var fails []string
	if c.Events != nil {
		fails = append(fails, r.compareEvents(c.Events)...)
	}
	if c.Integration != nil {
		fails = append(fails, compareIntegration(rs, c.Integration, integ)...)
	}
	fails = append(fails, r.compareErrors(c.Errors)...)
	return Result{Case: c, Failure: strings.Join(fails, "\n")}
}

// caseRun is what a case's rules produced.
type caseRun struct {
	events   []mapping.Event
	metas    []map[string]any // stored metadata of events[i]
	evalErrs mapping.EvalErrors
}

// collect keeps a rule failure.
func (r *caseRun) collect(err error) {
	if err == nil {
		return
	}
	var es mapping.EvalErrors
	if errors.As(err, &es) {
		r.evalErrs = append(r.evalErrs, es...)
		return
	}
	r.evalErrs = append(r.evalErrs, &mapping.EvalError{Cause: err})
}

// capture runs the capture rules on changes and returns the events as the
// store would hold them (revisions per stream, positions in order).
func (r *caseRun) capture(rs *mapping.RuleSet, changes []contract.Change) []mapping.StoredEvent {
	var stored []mapping.StoredEvent
	revisions := map[string]uint64{}
	for i := range changes {
		ch := &changes[i]
		n := len(r.events)
		var err error
		r.events, err = rs.Capture(ch, r.events)
		r.collect(err)
		for j := n; j < len(r.events); j++ {
			e := &r.events[j]
			data, err := contract.DecodeJSON(e.Data)
			if err != nil {
				r.collect(fmt.Errorf("rule %q produced invalid JSON: %w", e.Rule, err))
			}
			src := contract.SourceOf(Slot, ch, e.Rule, uint32(e.Index))
			meta, err := storedMetadata(&src, e.Metadata)
			if err != nil {
				r.collect(fmt.Errorf("rule %q: %w", e.Rule, err))
			}
			r.metas = append(r.metas, meta)
			rev := revisions[e.Stream]
			revisions[e.Stream] = rev + 1
			stored = append(stored, mapping.StoredEvent{
				ID: fmt.Sprintf("%s/%d/%d", ch.Tx.CommitLSN, ch.Ordinal, e.Index), Stream: e.Stream,
				Revision: rev, Position: uint64(len(stored) + 1), Type: e.Type, Data: data,
				Metadata: r.metas[len(r.metas)-1], Created: ch.Tx.CommitTime,
			})
		}
	}
	return stored
}

// storedMetadata is an event's metadata as the publisher hands it to
// promotion rules: written as capture stores it (contract.AppendMetadata)
// and decoded from those bytes (contract.DecodeJSON), so commitTime is its
// RFC 3339 text and the rule's own values are in their stored form (nil
// with the error when it cannot be written).
func storedMetadata(src *contract.Source, extra map[string]any) (map[string]any, error) {
	b, err := contract.AppendMetadata(nil, src, extra)
	if err != nil {
		return nil, err
	}
	v, err := contract.DecodeJSON(b)
	if err != nil {
		return nil, err
	}
	return v.(map[string]any), nil
}

// compareEvents compares the low-level events with the expected ones.
func (r *caseRun) compareEvents(want []map[string]any) []string {
	got := make([]map[string]any, len(r.events))
	for i, e := range r.events {
		data, _ := contract.DecodeJSON(e.Data)
		got[i] = map[string]any{"rule": e.Rule, "stream": e.Stream, "type": e.Type, "data": data}
		// Metadata: only the keys the expected entry names are compared.
		var wantMeta map[string]any
		if i < len(want) {
			wantMeta, _ = want[i]["metadata"].(map[string]any)
		}
		meta := map[string]any{}
		for k := range wantMeta {
			if v, ok := r.metas[i][k]; ok {
				meta[k] = v
			}
		}
		got[i]["metadata"] = jsonValue(meta)
	}
	if d := compare(want, got, []string{"stream", "type", "data"}); d != "" {
		return []string{"low-level events differ (- expected, + got):\n" + d}
	}
	return nil
}

// compareIntegration compares the integration events with the expected
// ones, and checks each expected value against its rule's schema.
func compareIntegration(rs *mapping.RuleSet, want []map[string]any, integ []mapping.Integration) []string {
	var fails []string
	got := make([]map[string]any, len(integ))
	for i, e := range integ {
		value, _ := contract.DecodeJSON(e.Value)
		headers := map[string]any{}
		for _, h := range e.Headers {
			headers[h.Key] = h.Value
		}
		got[i] = map[string]any{"rule": e.Rule, "topic": e.Topic, "key": e.Key, "type": e.Type, "subject": e.Subject, "value": value, "headers": headers}
	}
	if d := compare(want, got, []string{"topic", "key", "type", "value"}); d != "" {
		fails = append(fails, "integration events differ (- expected, + got):\n"+d)
	}
	return append(fails, schemaFailures(rs, want, integ)...)
}

// compareErrors compares the rule failures with the expected ones (none,
// when the case names none).
func (r *caseRun) compareErrors(want []map[string]any) []string {
	gotErrs := make([]map[string]any, len(r.evalErrs))
	for i, e := range r.evalErrs {
		gotErrs[i] = map[string]any{"rule": e.Rule, "field": e.Field, "error": e.Error()}
	}
	if want == nil && len(gotErrs) == 0 {
		return nil
	}
	if want == nil {
		want = []map[string]any{}
	}
	if d := compare(want, gotErrs, []string{"rule", "field"}); d != "" {
		return []string{"rule failures differ (- expected, + got):\n" + d}
	}
	return nil
}

// jsonValue round-trips v through JSON so it compares like expected values,
// written as the store holds it (AppendJSON, the writer of event data and
// metadata: times in UTC, unknown types as their text).
func jsonValue(v any) any {
	if v == nil {
		return nil
	}
	if m, ok := v.(map[string]any); ok && m == nil {
		return nil
	}
	b, err := contract.AppendJSON(nil, v, contract.UnchangedMarker)
	if err != nil {
		return fmt.Sprintf("<%v>", err)
	}
	out, _ := contract.DecodeJSON(b)
	return out
}

// compare renders expected and got (restricted to the fields the expected
// entries name, plus always) as indented JSON and returns a line diff, or ""
// when they are equal.
func compare(want, got []map[string]any, always []string) string {
	fields := map[string]bool{}
	for _, f := range always {
		fields[f] = true
	}
	for _, w := range want {
		for k := range w {
			fields[k] = true
		}
	}
	norm := func(list []map[string]any, pick bool) []any {
		out := make([]any, len(list))
		for i, m := range list {
			n := map[string]any{}
			for k, v := range m {
				if !pick || fields[k] {
					n[k] = jsonValue(v)
				}
			}
			if pick {
				for k := range fields {
					if _, ok := n[k]; !ok {
						n[k] = nil
					}
				}
			}
			out[i] = n
		}
		return out
	}
	w, g := norm(want, true), norm(got, true)
	for i := range w {
		wm := w[i].(map[string]any)
		for k := range fields {
			if _, ok := want[i][k]; !ok && !slices.Contains(always, k) {
				delete(wm, k) // not named by this entry: not compared
				if i < len(g) {
					delete(g[i].(map[string]any), k)
				}
			}
		}
	}
	if reflect.DeepEqual(w, g) {
		return ""
	}
	return lineDiff(render(w), render(g))
}

func render(v any) []string {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return []string{err.Error()}
	}
	return strings.Split(string(b), "\n")
}

// lineDiff returns a unified-style diff of a and b (whole, no hunks).
func lineDiff(a, b []string) string {
	n, m := len(a), len(b)
	lcs := make([][]int, n+1)
	for i := range lcs {
		lcs[i] = make([]int, m+1)
	}
	for i := n - 1; i >= 0; i-- {
		for j := m - 1; j >= 0; j-- {
			if a[i] == b[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var sb strings.Builder
	i, j := 0, 0
	for i < n || j < m {
		switch {
		case i < n && j < m && a[i] == b[j]:
			sb.WriteString("    " + a[i] + "\n")
			i++
			j++
		case i < n && (j == m || lcs[i+1][j] >= lcs[i][j+1]):
			sb.WriteString("  - " + a[i] + "\n")
			i++
		default:
			sb.WriteString("  + " + b[j] + "\n")
			j++
		}
	}
	return strings.TrimRight(sb.String(), "\n")
}

// Run loads the rules in paths, finds the test files in paths (and next to
// rule files given by name), runs every case and writes a report to w.
// It returns a *mapping.LoadError when rules or test files have problems.
func Run(paths []string, opts mapping.Options, w io.Writer) (Report, error) {
	rs, err := mapping.Load(paths, opts)
	if err != nil {
		return Report{}, err
	}
	files, probs := mapping.TestFiles(paths)
	var cases []Case
	for _, f := range files {
		cs, ps := ReadFile(f)
		cases = append(cases, cs...)
		probs = append(probs, ps...)
	}
	if len(probs) > 0 {
		sort.SliceStable(probs, func(i, j int) bool {
			if probs[i].File != probs[j].File {
				return probs[i].File < probs[j].File
			}
			return probs[i].Line < probs[j].Line
		})
		return Report{}, &mapping.LoadError{Problems: probs}
	}
	var rep Report
	for _, c := range cases {
		res := RunCase(rs, c)
		rep.Results = append(rep.Results, res)
		if res.Failure == "" {
			rep.Passed++
			fmt.Fprintf(w, "ok   %s:%d %s\n", c.File, c.Line, c.Name)
		} else {
			rep.Failed++
			fmt.Fprintf(w, "FAIL %s:%d %s\n%s\n", c.File, c.Line, c.Name, indent(res.Failure))
		}
	}
	fmt.Fprintf(w, "%d passed, %d failed, %s\n", rep.Passed, rep.Failed, mapping.Count(len(files), "test file"))
	return rep, nil
}

func indent(s string) string {
	return "  " + strings.ReplaceAll(s, "\n", "\n  ")
}
