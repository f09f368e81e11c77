package store

import (
	"context"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"

	"github.com/chronicler-dev/chronicler/capture/retry"
	"github.com/chronicler-dev/chronicler/mapping/contract"
)

// Filter is a server-side filter of a $all subscription: on stream names
// (ByStream) or event types, by prefixes or by one regular expression.
type Filter struct {
	ByStream bool
	Prefixes []string
	Regex    string
}

// Equal reports whether f and g filter alike.
func (f Filter) Equal(g Filter) bool {
	return f.ByStream == g.ByStream && f.Regex == g.Regex && slices.Equal(f.Prefixes, g.Prefixes)
}

// Matcher is f applied to one event on the client, for readers that read
// $all without a server-side filter (`chronicler status`).
func (f Filter) Matcher() func(*Recorded) bool {
	var re *regexp.Regexp
	if f.Regex != "" {
		re = regexp.MustCompile(f.Regex)
	}
	return func(ev *Recorded) bool {
		s := ev.Type
		if f.ByStream {
			s = ev.Stream
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

func (f Filter) esdb() *esdb.SubscriptionFilter {
	t := esdb.EventFilterType
	if f.ByStream {
		t = esdb.StreamFilterType
	}
	return &esdb.SubscriptionFilter{Type: t, Prefixes: f.Prefixes, Regex: f.Regex}
}

// Subscribe delivers the events of $all after from that pass filter to out,
// in order, until ctx ends. A dropped subscription is resumed after the last
// event delivered, so nothing is skipped or delivered twice.
func (c *Client) Subscribe(ctx context.Context, filter Filter, from contract.StoreFrom, out chan<- *Recorded, log *slog.Logger) {
	c.subscribe(ctx, c.direct, filter, from, out, log)
}

// subscribe is Subscribe over d (subscribe_direct.go), or through the
// official client when d is nil.
func (c *Client) subscribe(ctx context.Context, d *direct, filter Filter, from contract.StoreFrom, out chan<- *Recorded, log *slog.Logger) {
	// open subscribes after pos and returns how to deliver its events and
	// how to end it.
	open := func(pos contract.StoreFrom) (func() contract.StoreFrom, func(), error) {
		if d != nil {
			st, cancel, err := subscribeDirect(ctx, d, filter, pos)
			if err != nil {
				return nil, nil, err
			}
			return func() contract.StoreFrom { return deliverDirect(ctx, st, pos, out, log) }, cancel, nil
		}
		sub, err := c.db.SubscribeToAll(ctx, esdb.SubscribeToAllOptions{From: allPosition(pos), Filter: filter.esdb(), MaxSearchWindow: 32, CheckpointInterval: 1})
		if err != nil {
			return nil, nil, err
		}
		return func() contract.StoreFrom { return deliver(ctx, sub, pos, out, log) }, func() { _ = sub.Close() }, nil
	}
	pos := from
	var backoff retry.Backoff
	for ctx.Err() == nil {
		run, end, err := open(pos)
		if err != nil {
			log.Warn("subscribing to $all failed; retrying", "from", pos, "err", err, "backoff", backoff.Next())
			if !backoff.Wait(ctx) {
				return
			}
			continue
		}
		backoff.Reset()
		pos = run()
		end()
		if !retry.Sleep(ctx, 50*time.Millisecond) {
			return
		}
	}
}

// deliver hands sub's events to out until the subscription drops or ctx
// ends, and returns the position after the last one delivered.
func deliver(ctx context.Context, sub *esdb.Subscription, pos contract.StoreFrom, out chan<- *Recorded, log *slog.Logger) contract.StoreFrom {
	for {
		e := sub.Recv()
		if e.SubscriptionDropped != nil {
			if ctx.Err() == nil {
				log.Warn("subscription dropped; resubscribing", "after", pos, "err", e.SubscriptionDropped.Error)
			}
			return pos
		}
		if e.EventAppeared == nil {
			continue
		}
		ev := recorded(e.EventAppeared.OriginalEvent())
		select {
		case out <- ev:
		case <-ctx.Done():
			return pos
		}
		pos = contract.After(ev.Pos)
	}
}
