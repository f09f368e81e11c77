package capture

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"

	"github.com/chronicler-dev/chronicler/capture/change"
)

// ProgressType is the event type of progress markers.
const ProgressType = "ChroniclerProgress"

// Progress is the data of a progress marker: every event of every
// transaction with a commit LSN up to DurableLSN is in the store.
type Progress struct {
	Slot       string `json:"slot"`
	DurableLSN string `json:"durableLsn"`
}

// Run writes progress markers and confirms positions until ctx is cancelled
// (it then returns nil); nothing is confirmed to the source unless Run runs.
// After each durable report it appends {"slot", "durableLsn"} to the
// progress stream if the durable LSN grew (at most one append in flight,
// always the latest LSN: reports that arrive meanwhile are coalesced), and
// then calls Config.Ack with that LSN. Failed appends are retried with
// backoff (confirmation waits); a marker is never ahead of the store.
func (p *Pipeline) Run(ctx context.Context) error {
	if p.cfg.ProgressMaxCount > 0 {
		p.limitProgressStream(ctx)
	}
	// Start from the last marker stored (by an earlier run): markers then
	// never go backwards, although a restart re-delivers, and confirms again,
	// transactions below it.
	written, ok := p.readLastMarker(ctx)
	if !ok {
		return nil
	}
	backoff := 100 * time.Millisecond
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-p.wake:
		}
		lsn := p.durable.Load()
		for lsn > written {
			err := p.writeProgress(ctx, change.LSN(lsn))
			if err == nil {
				backoff = 100 * time.Millisecond
				written = lsn
				p.m.progressLSN.Set(float64(lsn))
				break
			}
			if ctx.Err() != nil {
				return nil
			}
			p.m.progressErrs.Inc()
			p.cfg.Logger.Warn("writing progress marker failed; retrying (positions are confirmed once it is written)", "stream", p.cfg.ProgressStream, "lsn", change.LSN(lsn).String(), "err", err, "backoff", backoff)
			if !sleepCtx(ctx, backoff/2+rand.N(backoff/2+1)) {
				return nil
			}
			backoff = min(2*backoff, 5*time.Second)
			lsn = p.durable.Load()
		}
		// Also when the LSN did not grow: transactions sharing a commit LSN
		// (snapshot chunks) are each confirmed after they became durable.
		p.cfg.Ack(change.LSN(lsn))
		p.confirmed(change.LSN(lsn))
	}
}

func (p *Pipeline) writeProgress(ctx context.Context, lsn change.LSN) error {
	data, _ := json.Marshal(Progress{Slot: p.cfg.Slot, DurableLSN: lsn.String()})
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	defer func(t0 time.Time) { p.m.progressWrite.Observe(time.Since(t0).Seconds()) }(time.Now())
	_, err := p.db.AppendToStream(ctx, p.cfg.ProgressStream, esdb.AppendToStreamOptions{ExpectedRevision: esdb.Any{}}, esdb.EventData{
		// A random id: a deterministic one would make the server drop, as an
		// idempotent retry, the marker for an LSN a killed run had already
		// written, however long ago.
		EventID:     uuid.New(),
		EventType:   ProgressType,
		ContentType: esdb.ContentTypeJson,
		Data:        data,
	})
	return err
}

// readLastMarker returns the durable LSN of the last progress marker in the
// stream (0 if none), retrying until the store answers; ok is false when ctx
// ended first.
func (p *Pipeline) readLastMarker(ctx context.Context) (lsn uint64, ok bool) {
	backoff := 100 * time.Millisecond
	for {
		l, err := p.lastMarker(ctx)
		if err == nil {
			return uint64(l), true
		}
		if ctx.Err() != nil {
			return 0, false
		}
		p.cfg.Logger.Warn("reading the last progress marker failed; retrying", "stream", p.cfg.ProgressStream, "err", err, "backoff", backoff)
		if !sleepCtx(ctx, backoff/2+rand.N(backoff/2+1)) {
			return 0, false
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

func (p *Pipeline) lastMarker(ctx context.Context) (change.LSN, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	rs, err := p.db.ReadStream(ctx, p.cfg.ProgressStream, esdb.ReadStreamOptions{Direction: esdb.Backwards, From: esdb.End{}}, 1)
	if err != nil {
		if isNotFound(err) {
			return 0, nil
		}
		return 0, err
	}
	defer rs.Close()
	ev, err := rs.Recv()
	if errors.Is(err, io.EOF) || (err != nil && isNotFound(err)) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	var m Progress
	if err := json.Unmarshal(ev.Event.Data, &m); err != nil {
		return 0, fmt.Errorf("progress marker %d in %s: %w", ev.Event.EventNumber, p.cfg.ProgressStream, err)
	}
	l, err := change.ParseLSN(m.DurableLSN)
	if err != nil {
		return 0, fmt.Errorf("progress marker %d in %s: %w", ev.Event.EventNumber, p.cfg.ProgressStream, err)
	}
	return l, nil
}

// limitProgressStream sets $maxCount on the progress stream once; failure is
// logged, not fatal (the stream only grows).
func (p *Pipeline) limitProgressStream(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var meta esdb.StreamMetadata
	meta.SetMaxCount(uint64(p.cfg.ProgressMaxCount))
	if _, err := p.db.SetStreamMetadata(ctx, p.cfg.ProgressStream, esdb.AppendToStreamOptions{ExpectedRevision: esdb.Any{}}, meta); err != nil {
		p.cfg.Logger.Warn("could not set $maxCount on the progress stream; it will keep every marker", "stream", p.cfg.ProgressStream, "err", err)
	}
}

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
