package capture

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"

	"github.com/chronicler-dev/chronicler/capture/store"
	"github.com/chronicler-dev/chronicler/mapping/contract"
)

// Run writes progress markers and confirms positions until ctx is cancelled
// (it then returns nil); nothing is confirmed to the source unless Run runs.
// After each durable report it appends {"slot", "durableLsn"} to the
// progress stream if the durable LSN grew (at most one append in flight,
// always the latest LSN: reports that arrive meanwhile are coalesced), and
// then calls Config.Ack with that LSN. Failed appends are retried with
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
	var backoff retry
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-p.wake:
		}
		lsn := p.durable.Load()
		for lsn > written {
			rev, err := p.writeProgress(ctx, contract.LSN(lsn), last)
			if err == nil {
				backoff.reset()
				last = marker{lsn: contract.LSN(lsn), rev: rev, exists: true}
				written = lsn
				p.m.progressLSN.Set(float64(lsn))
				break
			}
			if ctx.Err() != nil {
				return nil
			}
			if store.HasCode(err, esdb.ErrorCodeWrongExpectedVersion) {
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
			p.cfg.Logger.Warn("writing progress marker failed; retrying (positions are confirmed once it is written)", "stream", p.progressStream, "lsn", contract.LSN(lsn).String(), "err", err, "backoff", backoff.next())
			if !backoff.wait(ctx) {
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
func (m marker) expected() esdb.ExpectedRevision {
	if !m.exists {
		return esdb.Any{}
	}
	return esdb.Revision(m.rev)
}

func (p *Pipeline) writeProgress(ctx context.Context, lsn contract.LSN, last marker) (uint64, error) {
	data := contract.EncodeProgress(contract.Progress{Slot: p.cfg.Slot, DurableLSN: lsn})
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	defer func(t0 time.Time) { p.m.progressWrite.Observe(time.Since(t0).Seconds()) }(time.Now())
	res, err := p.db.AppendToStream(ctx, p.progressStream, esdb.AppendToStreamOptions{ExpectedRevision: last.expected()}, esdb.EventData{
		// A random id: a deterministic one would make the server drop, as an
		// idempotent retry, the marker for an LSN a killed run had already
		// written, however long ago.
		EventID:     uuid.New(),
		EventType:   contract.ProgressType,
		ContentType: esdb.ContentTypeJson,
		Data:        data,
	})
	if err != nil {
		return 0, err
	}
	return res.NextExpectedVersion, nil
}

// readLastMarker returns the last progress marker in the stream, retrying
// until the store answers; ok is false when ctx ended first.
func (p *Pipeline) readLastMarker(ctx context.Context) (m marker, ok bool) {
	var backoff retry
	for {
		m, err := p.lastMarker(ctx)
		if err == nil {
			return m, true
		}
		if ctx.Err() != nil {
			return marker{}, false
		}
		p.cfg.Logger.Warn("reading the last progress marker failed; retrying", "stream", p.progressStream, "err", err, "backoff", backoff.next())
		if !backoff.wait(ctx) {
			return marker{}, false
		}
	}
}

func (p *Pipeline) lastMarker(ctx context.Context) (marker, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	ev, err := store.ReadLast(ctx, p.db, p.progressStream)
	if err != nil || ev == nil {
		return marker{}, err
	}
	m, err := contract.DecodeProgress(ev.Data)
	if err != nil {
		return marker{}, fmt.Errorf("event %d in %s: %w", ev.EventNumber, p.progressStream, err)
	}
	return marker{lsn: m.DurableLSN, rev: ev.EventNumber, exists: true}, nil
}

// limitProgressStream sets $maxCount on the progress stream once; failure is
// logged, not fatal (the stream only grows).
func (p *Pipeline) limitProgressStream(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var meta esdb.StreamMetadata
	meta.SetMaxCount(uint64(p.cfg.ProgressMaxCount))
	if _, err := p.db.SetStreamMetadata(ctx, p.progressStream, esdb.AppendToStreamOptions{ExpectedRevision: esdb.Any{}}, meta); err != nil {
		p.cfg.Logger.Warn("could not set $maxCount on the progress stream; it will keep every marker", "stream", p.progressStream, "err", err)
	}
}

// retry is the progress and snapshot writers' delay between attempts:
// 100 ms doubling to 5 s, each wait drawn from [d/2, d].
type retry struct{ d time.Duration }

// next is the delay the next wait is drawn from.
func (r *retry) next() time.Duration { return max(r.d, 100*time.Millisecond) }

// wait sleeps before the next attempt; false when ctx ended first.
func (r *retry) wait(ctx context.Context) bool {
	d := r.next()
	r.d = min(2*d, 5*time.Second)
	return sleepCtx(ctx, d/2+rand.N(d/2+1))
}

// reset starts again from 100 ms after a success.
func (r *retry) reset() { r.d = 0 }

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
