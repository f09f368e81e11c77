package capture

import (
	"context"
	"fmt"
	"time"

	"github.com/chronicler-dev/chronicler/capture/postgres"
	"github.com/chronicler-dev/chronicler/capture/retry"
	"github.com/chronicler-dev/chronicler/capture/store"
	"github.com/chronicler-dev/chronicler/mapping/contract"
)

// Run writes progress markers and confirms positions until ctx is cancelled
// (it then returns nil); nothing is confirmed to the source unless Run runs.
// After each durable report it appends {"slot", "durableLsn"} to the
// progress stream if the durable LSN grew (at most one append in flight,
// rounds at least markerGap apart, always the latest LSN: reports that
// arrive meanwhile are coalesced), and then calls Config.Ack with that LSN. Failed appends are retried with
// backoff (confirmation waits); a marker is never ahead of the store.
//
// Markers never go backwards, also with two writers: each append expects
// the revision of the last marker this run read or wrote. During an HA
// takeover the instance that lost its lock may still write a marker after
// the new one started (it stops within 1.5 x ha.keepalive); the new one's
// next append is then a wrong-expected-version, and it reads the stream's
// last marker again and writes only an LSN above it. The same read settles
// an append whose answer was lost but which landed.
func (p *Pipeline) Run(ctx context.Context) error {
	if p.cfg.ProgressMaxCount > 0 {
		p.limitProgressStream(ctx)
	}
	// Start from the last marker stored (by an earlier run): markers then
	// never go backwards, although a restart re-delivers, and confirms again,
	// transactions below it.
	last, ok := p.readLastMarker(ctx)
	if !ok {
		return nil
	}
	written := uint64(last.lsn)
	var backoff retry.Backoff
	var began time.Time // when the last round of writing began
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-p.wake:
		}
		if !waitUntil(ctx, began.Add(markerGap)) {
			return nil
		}
		began = time.Now()
		lsn := p.durable.Load()
		for lsn > written {
			rev, err := p.writeProgress(ctx, contract.LSN(lsn), last)
			if err == nil {
				backoff.Reset()
				last = marker{lsn: contract.LSN(lsn), rev: rev, exists: true}
				written = lsn
				p.m.progressLSN.Set(float64(lsn))
				break
			}
			if ctx.Err() != nil {
				return nil
			}
			if store.IsWrongVersion(err) {
				// Another writer appended since: re-read, and write only
				// above its marker.
				prev := last
				if last, ok = p.readLastMarker(ctx); !ok {
					return nil
				}
				if last != prev {
					p.cfg.Logger.Info("the progress stream has another writer's marker (an instance that lost the HA lock, or an append whose answer was lost); going on after it",
						"stream", p.progressStream, "their_lsn", last.lsn.String(), "durable_lsn", contract.LSN(lsn).String())
					written = max(written, uint64(last.lsn))
					continue
				}
				// The stream did not move, yet the revision was wrong (a
				// stream deleted and recreated?): append with any revision
				// next, after the backoff below, rather than spin.
				last.exists = false
				err = fmt.Errorf("wrong expected revision %d, and the last marker is still at it", prev.rev)
			}
			p.m.progressErrs.Inc()
			p.cfg.Logger.Warn("writing progress marker failed; retrying (positions are confirmed once it is written)", "stream", p.progressStream, "lsn", contract.LSN(lsn).String(), "err", err, "backoff", backoff.Next())
			if !backoff.Wait(ctx) {
				return nil
			}
			lsn = p.durable.Load()
		}
		// Also when the LSN did not grow: transactions sharing a commit LSN
		// (snapshot chunks) are each confirmed after they became durable.
		p.cfg.Ack(contract.LSN(lsn))
		p.confirmed(contract.LSN(lsn))
	}
}

// markerGap is the least time between two rounds of the progress writer:
// the durable reports that arrive meanwhile coalesce into the next marker,
// so a steady stream of small transactions gets at most 100 markers a
// second instead of about one per transaction (at 1,000 tx/s that is 6-9%
// of the worker's CPU and 10-14% of the store server's in test/bench's
// latency run, and as many marker events fewer in $all). The price: a
// position is confirmed to the source, and a transaction rule's outputs
// (the publisher completes a transaction at the marker covering it) come
// out, up to markerGap later.
const markerGap = 10 * time.Millisecond

// waitUntil waits until t (at once if it has passed); false when ctx ended
// first.
func waitUntil(ctx context.Context, t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err() == nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// marker is the last progress marker of the stream as this run knows it.
type marker struct {
	lsn    contract.LSN
	rev    uint64 // its revision in the stream
	exists bool   // false: the stream had no marker
}

// expected is the revision the next marker's append expects: the last
// marker's, or any when there was none (the stream may be new, or emptied
// by $maxCount truncation or a soft delete, where no exact revision is
// known to a reader).
func (m marker) expected() store.Expect {
	if !m.exists {
		return store.Any()
	}
	return store.At(m.rev)
}

func (p *Pipeline) writeProgress(ctx context.Context, lsn contract.LSN, last marker) (uint64, error) {
	data := contract.EncodeProgress(contract.Progress{Slot: p.cfg.Slot, DurableLSN: lsn})
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	defer func(t0 time.Time) { p.m.progressWrite.Observe(time.Since(t0).Seconds()) }(time.Now())
	// AppendOne gives the marker a random id: a deterministic one would make
	// the server drop, as an idempotent retry, the marker for an LSN a
	// killed run had already written, however long ago.
	return p.db.AppendOne(ctx, p.progressStream, last.expected(), contract.ProgressType, data)
}

// readLastMarker returns the last progress marker in the stream, retrying
// until the store answers; ok is false when ctx ended first.
func (p *Pipeline) readLastMarker(ctx context.Context) (m marker, ok bool) {
	var backoff retry.Backoff
	for {
		m, err := p.lastMarker(ctx)
		if err == nil {
			return m, true
		}
		if ctx.Err() != nil {
			return marker{}, false
		}
		p.cfg.Logger.Warn("reading the last progress marker failed; retrying", "stream", p.progressStream, "err", err, "backoff", backoff.Next())
		if !backoff.Wait(ctx) {
			return marker{}, false
		}
	}
}

func (p *Pipeline) lastMarker(ctx context.Context) (marker, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return readMarker(ctx, p.db, p.progressStream)
}

// readMarker reads the last progress marker of stream (exists false when
// the stream has none).
func readMarker(ctx context.Context, db *store.Client, stream string) (marker, error) {
	ev, err := db.ReadLast(ctx, stream)
	if err != nil {
		return marker{}, fmt.Errorf("reading %s: %w", stream, err)
	}
	if ev == nil {
		return marker{}, nil
	}
	m, err := contract.DecodeProgress(ev.Data)
	if err != nil {
		return marker{}, fmt.Errorf("event %d in %s: %w", ev.Revision, stream, err)
	}
	return marker{lsn: m.DurableLSN, rev: ev.Revision, exists: true}, nil
}

// limitProgressStream sets $maxCount on the progress stream once; failure is
// logged, not fatal (the stream only grows).
func (p *Pipeline) limitProgressStream(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := p.db.SetMaxCount(ctx, p.progressStream, uint64(p.cfg.ProgressMaxCount)); err != nil {
		p.cfg.Logger.Warn("could not set $maxCount on the progress stream; it will keep every marker", "stream", p.progressStream, "err", err)
	}
}

// SlotHistory says, one phrase each, what the store shows of capture having
// streamed through slot: its last progress marker and, with snapshot, a
// completed initial snapshot (capture's Source reads that itself). A
// missing slot with a history was dropped under capture
// (postgres.Config.History, and `chronicler check`). A stream that cannot
// be read, or whose last event does not decode, is an error: no history is
// then stated that was not read.
func SlotHistory(ctx context.Context, db *store.Client, slot string, snapshot bool) ([]string, error) {
	var out []string
	stream := contract.ProgressStream(slot)
	m, err := readMarker(ctx, db, stream)
	if err != nil {
		return nil, err
	}
	if m.exists {
		out = append(out, fmt.Sprintf("the store holds its progress up to %s in %s", m.lsn, stream))
	}
	if !snapshot {
		return out, nil
	}
	snaps, _, err := ReadSnapshots(ctx, db, slot)
	if err != nil {
		return nil, err
	}
	for _, s := range snaps.List {
		if s.Initial && s.Status == postgres.SnapshotDone {
			out = append(out, fmt.Sprintf("its initial snapshot %s completed (%s)", s.ID, contract.SnapshotStream(slot)))
		}
	}
	return out, nil
}
