package publish

import (
	"context"
	"log/slog"
	"regexp"
	"strings"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"

	"github.com/chronicler-dev/chronicler/mapping"
	"github.com/chronicler-dev/chronicler/publish/kafka"
)

// serverFilter is the $all filter for the rules' interest. A server-side
// filter matches on either stream names or event types, not both, so:
// per-event rules naming only types filter by type (plus progress
// markers); rules naming only categories filter by stream prefix; anything
// else (transaction rules, which need every event of a transaction, or a
// mix) only excludes system events. The engine re-checks every event.
func serverFilter(in mapping.Interest) *esdb.SubscriptionFilter {
	switch {
	case in.All || in.Transactional || (len(in.Types) > 0 && len(in.Categories) > 0):
		return &esdb.SubscriptionFilter{Type: esdb.EventFilterType, Regex: `^[^$]`}
	case len(in.Categories) > 0:
		p := make([]string, len(in.Categories))
		for i, c := range in.Categories {
			p[i] = c + "-"
		}
		return &esdb.SubscriptionFilter{Type: esdb.StreamFilterType, Prefixes: p}
	default:
		return &esdb.SubscriptionFilter{Type: esdb.EventFilterType, Prefixes: in.Types}
	}
}

// MatchesInterest is serverFilter(in) applied to one event, for readers
// that read the store without a server-side filter (`chronicler status`
// counts the events the publisher has yet to see): system events never;
// with only type-named per-event rules, events of those types (prefixes);
// with only category rules, those categories' streams; else every
// non-system event.
func MatchesInterest(in mapping.Interest) func(*esdb.RecordedEvent) bool {
	f := serverFilter(in)
	var re *regexp.Regexp
	if f.Regex != "" {
		re = regexp.MustCompile(f.Regex)
	}
	return func(ev *esdb.RecordedEvent) bool {
		s := ev.EventType
		if f.Type == esdb.StreamFilterType {
			s = ev.StreamID
		}
		if re != nil {
			return re.MatchString(s)
		}
		for _, p := range f.Prefixes {
			if strings.HasPrefix(s, p) {
				return true
			}
		}
		return false
	}
}

func allPosition(r kafka.Resume) esdb.AllPosition {
	if r.Start {
		return esdb.Start{}
	}
	return esdb.Position{Commit: r.Commit, Prepare: r.Prepare}
}

// subscribe delivers events of $all after from to out, in order, until ctx
// ends. A dropped subscription is resumed after the last event delivered,
// so nothing is skipped or delivered twice.
func subscribe(ctx context.Context, db *esdb.Client, filter *esdb.SubscriptionFilter, from kafka.Resume, out chan<- *esdb.RecordedEvent, log *slog.Logger) {
	pos := from
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		sub, err := db.SubscribeToAll(ctx, esdb.SubscribeToAllOptions{From: allPosition(pos), Filter: filter, MaxSearchWindow: 32, CheckpointInterval: 1})
		if err != nil {
			log.Warn("subscribing to $all failed; retrying", "from", pos, "err", err)
			if !sleepCtx(ctx, backoff) {
				return
			}
			backoff = min(backoff*2, 5*time.Second)
			continue
		}
		backoff = 100 * time.Millisecond
		for {
			e := sub.Recv()
			if e.SubscriptionDropped != nil {
				if ctx.Err() == nil {
					log.Warn("subscription dropped; resubscribing", "after", pos, "err", e.SubscriptionDropped.Error)
				}
				break
			}
			if e.EventAppeared == nil {
				continue
			}
			ev := e.EventAppeared.OriginalEvent()
			select {
			case out <- ev:
			case <-ctx.Done():
				_ = sub.Close()
				return
			}
			pos = kafka.Resume{Commit: ev.Position.Commit, Prepare: ev.Position.Prepare}
		}
		_ = sub.Close()
		if !sleepCtx(ctx, 50*time.Millisecond) {
			return
		}
	}
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
