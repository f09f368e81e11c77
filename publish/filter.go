package publish

import (
	"github.com/chronicler-dev/chronicler/capture/store"
	"github.com/chronicler-dev/chronicler/mapping"
)

// serverFilter is the $all filter for the rules' interest. A server-side
// filter matches on either stream names or event types, not both, so:
// per-event rules naming only types filter by type (plus progress
// markers); rules naming only categories filter by stream prefix; anything
// else (transaction rules, which need every event of a transaction, or a
// mix) only excludes system events. The engine re-checks every event.
func serverFilter(in mapping.Interest) store.Filter {
	switch {
	case in.All || in.Transactional || (len(in.Types) > 0 && len(in.Categories) > 0):
		return store.Filter{Regex: `^[^$]`}
	case len(in.Categories) > 0:
		p := make([]string, len(in.Categories))
		for i, c := range in.Categories {
			p[i] = c + "-"
		}
		return store.Filter{ByStream: true, Prefixes: p}
	default:
		return store.Filter{Prefixes: in.Types}
	}
}

// MatchesInterest is serverFilter(in) applied to one event, for readers
// that read the store without a server-side filter (`chronicler status`
// counts the events the publisher has yet to see): system events never;
// with only type-named per-event rules, events of those types (prefixes);
// with only category rules, those categories' streams; else every
// non-system event.
func MatchesInterest(in mapping.Interest) func(*store.Recorded) bool {
	return serverFilter(in).Matcher()
}
