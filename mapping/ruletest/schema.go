package ruletest

import (
	"encoding/json"
	"fmt"

	"github.com/chronicler-dev/chronicler/mapping"
)

// schemaFailures validates every expected integration value against the
// schema of the rule that produces it: a fixture must itself keep the
// contract, whatever the rules produce. The rule is the entry's rule, else
// the rule of the event produced at the same place, else the one rule with
// a schema writing the entry's topic and type.
func schemaFailures(rs *mapping.RuleSet, want []map[string]any, got []mapping.Integration) []string {
	var fails []string
	for i, w := range want {
		v, ok := w["value"]
		if !ok {
			continue
		}
		s := schemaFor(rs, w, i, got)
		if s == nil {
			continue
		}
		b, err := json.Marshal(v)
		if err == nil {
			err = s.Validate(b)
		}
		if err != nil {
			fails = append(fails, fmt.Sprintf("expected integration event %d (rule %s): %v", i+1, s.Rule, err))
		}
	}
	return fails
}

func schemaFor(rs *mapping.RuleSet, w map[string]any, i int, got []mapping.Integration) *mapping.Schema {
	if rule, ok := w["rule"].(string); ok {
		return rs.Schema(rule)
	}
	if i < len(got) {
		return rs.Schema(got[i].Rule)
	}
	var match *mapping.Schema
	for _, s := range rs.Schemas() {
		if s.Topic == w["topic"] && s.Type == w["type"] {
			if match != nil {
				return nil // two rules could have written it: not decidable
			}
			match = s
		}
	}
	return match
}
