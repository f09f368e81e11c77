package capture

import (
	"context"
	"encoding/json"
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

var progressSpace = uuid.MustParse("0b7f6d1e-3c1a-4f57-8f0e-70726f677265")

// Run writes progress markers until ctx is cancelled (it then returns nil):
// after each durable report it appends {"slot", "durableLsn"} to the
// progress stream, at most one append in flight and always the latest LSN
// (reports that arrive meanwhile are coalesced). Failed appends are retried
// with backoff; a marker is only ever late, never ahead of the store.
func (p *Pipeline) Run(ctx context.Context) error {
	if p.cfg.ProgressMaxCount > 0 {
		p.limitProgressStream(ctx)
	}
	var written uint64
	backoff := 100 * time.Millisecond
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-p.wake:
		}
		for {
			lsn := p.durable.Load()
			if lsn <= written {
				break
			}
			if err := p.writeProgress(ctx, change.LSN(lsn)); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				p.m.progressErrs.Inc()
				p.cfg.Logger.Warn("writing progress marker failed; retrying", "stream", p.cfg.ProgressStream, "lsn", change.LSN(lsn).String(), "err", err, "backoff", backoff)
				if !sleepCtx(ctx, backoff/2+rand.N(backoff/2+1)) {
					return nil
				}
				backoff = min(2*backoff, 5*time.Second)
				continue
			}
			backoff = 100 * time.Millisecond
			written = lsn
			p.m.progressLSN.Set(float64(lsn))
		}
	}
}

func (p *Pipeline) writeProgress(ctx context.Context, lsn change.LSN) error {
	data, _ := json.Marshal(Progress{Slot: p.cfg.Slot, DurableLSN: lsn.String()})
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	_, err := p.db.AppendToStream(ctx, p.cfg.ProgressStream, esdb.AppendToStreamOptions{ExpectedRevision: esdb.Any{}}, esdb.EventData{
		EventID:     uuid.NewSHA1(progressSpace, []byte(p.cfg.Slot+"/"+lsn.String())),
		EventType:   ProgressType,
		ContentType: esdb.ContentTypeJson,
		Data:        data,
	})
	return err
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
