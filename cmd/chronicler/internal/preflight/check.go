package preflight

import (
	"context"
	"time"

	"github.com/chronicler-dev/chronicler/cmd/chronicler/config"
)

// Status is the outcome of one check.
type Status string

// The outcomes. Only Fail makes a report not OK.
const (
	OK   Status = "ok"
	Warn Status = "warn"
	Fail Status = "FAIL"
)

// Check is one prerequisite: what was checked (naming its table, slot,
// topic or broker), what was found, and for Warn and Fail what to do.
type Check struct {
	Name   string `json:"name"`
	Status Status `json:"status"`
	Found  string `json:"found"`
	Fix    string `json:"fix"` // "" for ok
}

// Report is the result of [Run], in check order.
type Report struct {
	Checks []Check `json:"checks"`
	// OK is true when no check failed (warnings allowed).
	OK bool `json:"ok"`
}

// DefaultLagWarnBytes is the slot lag above which check warns: 1 GiB.
const DefaultLagWarnBytes = 1 << 30

// DefaultTimeout bounds the checks of one system (Postgres, the store,
// Kafka).
const DefaultTimeout = 10 * time.Second

// Options configure [Run].
type Options struct {
	// Capture checks Postgres (and the rules against its catalogue);
	// Publish checks Kafka. The store and the rules are always checked.
	Capture, Publish bool
	// LagWarnBytes is the slot lag (bytes of WAL not yet confirmed) above
	// which the slot lag check warns. Default DefaultLagWarnBytes.
	LagWarnBytes int64
	// Timeout bounds the checks of each system. Default DefaultTimeout.
	Timeout time.Duration
}

func (o *Options) defaults() {
	if o.LagWarnBytes <= 0 {
		o.LagWarnBytes = DefaultLagWarnBytes
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
}

// checker collects the checks of one Run.
type checker struct {
	cfg    *config.Config
	opts   Options
	scrub  *scrubber
	checks []Check
	// slotAbsent: the slot does not exist (read from Postgres), so the
	// store is asked whether capture streamed through it (slotGap).
	slotAbsent bool
}

func (c *checker) add(name string, st Status, found, fix string) {
	c.checks = append(c.checks, Check{Name: name, Status: st, Found: c.scrub.clean(found), Fix: c.scrub.clean(fix)})
}

// Run checks every prerequisite cfg names and returns the report. It never
// writes anything anywhere, except the transactions probe, which begins and
// ends an empty transaction under its own transactional id
// (kafka.ProbeTransactionalID: "chronicler-<publisher_id>.check-<pid>"),
// never the publisher's; the store's permission probes are appends the
// store refuses either way. Unreachable systems are
// Fail checks, not errors; Run returns when ctx ends or every check is done.
func Run(ctx context.Context, cfg *config.Config, opts Options) *Report {
	opts.defaults()
	c := &checker{cfg: cfg, opts: opts, scrub: newScrubber(cfg)}

	var pg *pgFacts
	if opts.Capture {
		pg = c.postgres(ctx)
	}
	rules := c.rules(pg)
	if pg != nil {
		c.replicaIdentity(pg, rules)
		c.publicationAndSlot(pg)
		pg.close()
	}
	c.ruleChecks(rules)
	c.store(ctx)
	if opts.Publish {
		c.kafka(ctx, rules)
		c.registry(ctx, rules)
	}

	rep := &Report{Checks: c.checks, OK: true}
	for _, ch := range c.checks {
		if ch.Status == Fail {
			rep.OK = false
		}
	}
	return rep
}
