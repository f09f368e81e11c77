package postgres

import "errors"

// Verdict grades a [Finding].
type Verdict int

// The verdicts.
const (
	// Pass: the prerequisite holds.
	Pass Verdict = iota
	// Warn: capture can run, but something needs attention.
	Warn
	// Fail: capture cannot run (or would harm the database) until it is fixed.
	Fail
)

func (v Verdict) String() string {
	switch v {
	case Pass:
		return "ok"
	case Warn:
		return "warn"
	}
	return "FAIL"
}

// Finding is the outcome of one check of a prerequisite, shared by
// [Source] (which refuses to start on it) and `chronicler check` (which
// prints it). Texts name settings by their keys in chronicler's
// configuration file (postgres.tables, postgres.slot, ...).
type Finding struct {
	// Check names what was checked, with its subject: "wal_level",
	// "role app", "table public.orders", "slot chronicler".
	Check   string
	Verdict Verdict
	// Found is what was found; Fix, for Warn and Fail, what to do: the SQL
	// or the setting.
	Found, Fix string
	// Err, when set, is the typed error Source returns: capture cannot
	// start now. It is set for every Fail, and for a Warn that only stops
	// this start (a slot another process streams from: a standby waits).
	Err error
}

// String is the finding on one line, as Source logs it.
func (f Finding) String() string {
	s := f.Check + ": " + f.Found
	if f.Fix != "" {
		s += " (fix: " + f.Fix + ")"
	}
	return s
}

// refuse returns the errors of findings joined (the one error itself when
// there is one), nil when capture may go on. Warnings without an error are
// logged and kept for [Source.Warnings].
func (s *Source) refuse(findings []Finding) error {
	var errs []error
	for _, f := range findings {
		switch {
		case f.Err != nil:
			errs = append(errs, f.Err)
		case f.Verdict == Warn:
			s.log.Warn("capture: "+f.Check, "found", f.Found, "fix", f.Fix)
			s.warnings = append(s.warnings, f.String())
		}
	}
	if len(errs) == 1 {
		return errs[0]
	}
	return errors.Join(errs...)
}
