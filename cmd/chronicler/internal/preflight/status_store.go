package preflight

import (
	"context"
	"errors"
	"fmt"

	"github.com/chronicler-dev/chronicler/capture/store"
	"github.com/chronicler-dev/chronicler/mapping/contract"
)

// readStore reads the last progress marker, the end of $all and the
// capture dead-letter count.
func (s *statusReader) readStore(ctx context.Context, progressStream string) {
	ss := &StoreStatus{ProgressStream: progressStream}
	s.rep.Store = ss
	db, target, err := openStore(s.cfg)
	if err != nil {
		s.fail("store", err)
		return
	}
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	var (
		marker, end, dl *store.Recorded
	)
	err = store.Bounded(ctx, func(ctx context.Context) error {
		var err error
		if marker, err = db.ReadLast(ctx, progressStream); err != nil {
			return fmt.Errorf("reading %s: %w", progressStream, err)
		}
		if end, err = db.ReadLastAll(ctx); err != nil {
			return fmt.Errorf("reading $all backwards: %w", err)
		}
		if dl, err = db.ReadLast(ctx, s.rep.DeadLetters.CaptureStream); err != nil {
			return fmt.Errorf("reading %s: %w", s.rep.DeadLetters.CaptureStream, err)
		}
		return nil
	})
	if err != nil {
		if !errors.Is(err, store.ErrNoAnswer) { // else the call may still be in the client (store.ErrNoAnswer)
			db.Close()
		}
		s.fail("store", fmt.Errorf("%s: %w", target, err))
		return
	}
	defer db.Close()
	if marker != nil {
		if p, err := contract.DecodeProgress(marker.Data); err != nil {
			s.fail("store", fmt.Errorf("event %d in %s: %w", marker.Revision, progressStream, err))
		} else {
			ss.DurableLSN = p.DurableLSN.String()
			at := marker.Created.UTC()
			ss.ProgressWritten, s.marker = &at, &at
		}
	}
	if end != nil {
		ss.End = &Position{Commit: end.Pos.Commit, Prepare: end.Pos.Prepare}
	}
	n := int64(0)
	if dl != nil {
		n = int64(dl.Revision) + 1
	}
	s.rep.DeadLetters.Capture = &n
}
