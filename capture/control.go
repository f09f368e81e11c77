package capture

import (
	"path"
	"sort"
	"sync/atomic"

	"github.com/chronicler-dev/chronicler/capture/postgres"
	"github.com/chronicler-dev/chronicler/capture/store"
	"github.com/chronicler-dev/chronicler/mapping"
	"github.com/chronicler-dev/chronicler/mapping/contract"
)

func (c *Capture) attach(pipe *Pipeline, src *atomic.Pointer[postgres.Source], app *store.Appender) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pipe, c.src, c.app, c.counted = pipe, src, app, pipe
}

func (c *Capture) detach() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pipe, c.src = nil, nil
}

// Status is a running capture's state.
type Status struct {
	// Phase is postgres.PhaseStarting until Run has wired its parts, then
	// the source's phase; PhaseStopped once Run returned.
	Phase postgres.Phase
	// LagSeconds: see [Pipeline.LagSeconds].
	LagSeconds float64
	// WALEnd is the server's WAL end last reported by the walsender,
	// Confirmed the position last confirmed to Postgres: WALEnd-Confirmed is
	// the slot's lag in bytes (0 when WALEnd is not known yet).
	WALEnd, Confirmed contract.LSN
}

// LagBytes is WALEnd - Confirmed, 0 when not known or not behind.
func (s Status) LagBytes() uint64 {
	if s.WALEnd > s.Confirmed && s.Confirmed > 0 {
		return uint64(s.WALEnd - s.Confirmed)
	}
	return 0
}

// Status returns the current state.
func (c *Capture) Status() Status {
	c.mu.Lock()
	pipe, src := c.pipe, c.src
	c.mu.Unlock()
	if pipe == nil {
		return Status{Phase: postgres.PhaseStarting}
	}
	s := src.Load()
	st := Status{Phase: s.Phase(), LagSeconds: pipe.LagSeconds()}
	st.WALEnd, st.Confirmed = s.Positions()
	return st
}

// LoadRules loads the rule files in paths for a reload: mapping.Load
// against the captured tables' columns read again now (so a rule fixed
// after a column was renamed loads), and every table a capture rule names
// must be captured (*RulesError). Unlike the start, a rule reading a
// column its table does not have is refused (a reload is a change the
// operator makes now: a wrong column is a mistake to report, not a schema
// change to ride out). It returns ErrNotRunning before Run has read the
// catalogue. [Capture.LoadRulesWith] also adds tables.
func (c *Capture) LoadRules(paths []string) (*mapping.RuleSet, error) {
	return c.LoadRulesWith(paths, nil)
}

// SwapRules makes rs (from LoadRules) the capture rule set from the next
// source transaction on. The channel is closed once it took effect.
//
// When rs came from LoadRulesWith with tables to add, SwapRules then adds
// them (addTables): the publication gets them (ALTER PUBLICATION, with
// postgres.add_missing_tables), the source captures them, and a snapshot
// of those rs has snapshot rules for is requested. The rules are handed
// to the pipeline first: the swap takes effect at the pipeline's next
// Begin, and every change of a new table is in a transaction that commits
// after the ALTER, so its Begin comes after the swap. An error there
// leaves rs in force (its rules for a table not streamed match nothing).
func (c *Capture) SwapRules(rs *mapping.RuleSet) (<-chan struct{}, error) {
	c.mu.Lock()
	pipe := c.pipe
	c.mu.Unlock()
	if pipe == nil {
		return nil, ErrNotRunning
	}
	took := pipe.SwapRules(rs)
	return took, c.addTables(rs)
}

// Counts are a capture's counters since its Run started (zero before).
type Counts struct {
	// Durable is the appender's durable LSN, read before the counters: the
	// appender counts a batch's events before it advances the durable
	// position, so the counters include every event Durable covers.
	Durable  contract.LSN
	Pipeline Stats       // changes mapped, unmatched, dead-lettered; events handed on
	Store    store.Stats // the appender's: events stored, appends, ...
}

// Counts returns the current counters.
func (c *Capture) Counts() Counts {
	c.mu.Lock()
	pipe, app := c.counted, c.app // the last Run's, also once it returned
	c.mu.Unlock()
	var n Counts
	if app != nil {
		n.Durable = app.Durable()
	}
	if pipe != nil {
		n.Pipeline = pipe.Stats()
	}
	if app != nil {
		n.Store = app.Stats()
	}
	return n
}

// loadRules is the rule check of start and reload. With drift (at start),
// a rule reading a column its table no longer has loads, and the pipeline
// dead-letters its changes (schema.go), so a schema change made while
// capture was stopped stops only the rules it breaks, not the pipeline.
func loadRules(paths []string, cat mapping.Catalogue, drift bool) (*mapping.RuleSet, error) {
	rs, err := mapping.Load(paths, mapping.Options{Catalogue: cat, Drift: drift})
	if err != nil {
		return nil, err
	}
	tables := make([]string, 0, len(cat))
	for t := range cat {
		tables = append(tables, t)
	}
	sort.Strings(tables)
	for _, p := range rs.TablePatterns() {
		matched := false
		for _, t := range tables {
			if ok, _ := path.Match(p, t); ok {
				matched = true
				break
			}
		}
		if !matched {
			return nil, &RulesError{Pattern: p, Tables: tables}
		}
	}
	return rs, nil
}
