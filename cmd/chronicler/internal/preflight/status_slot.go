package preflight

import (
	"context"
	"errors"
	"fmt"

	cpg "github.com/chronicler-dev/chronicler/capture/postgres"
)

// readSlot reads the slot (capture/postgres's slot reader: its row of
// pg_replication_slots, the server's WAL position and the walsender's lag).
func (s *statusReader) readSlot(ctx context.Context) {
	ss := &SlotStatus{Name: s.cfg.Postgres.Slot, LagSource: LagUnknownTime}
	s.rep.Slot = ss
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	conn, err := cpg.Connect(ctx, pgSettings(s.cfg, "chronicler-status"))
	var (
		bad *cpg.ConfigError
		ce  *cpg.ConnectError
	)
	switch {
	case errors.As(err, &bad):
		s.fail("slot", fmt.Errorf("postgres.url is %s", bad.Reason))
		return
	case errors.As(err, &ce):
		s.fail("slot", fmt.Errorf("connecting to %s: %w", ce.Target, ce.Err))
		return
	case err != nil:
		s.fail("slot", err)
		return
	}
	defer conn.Close(context.Background())
	si, exists, err := conn.ReadSlot(ctx, ss.Name)
	if err != nil {
		s.fail("slot", fmt.Errorf("reading slot %s on %s: %w", ss.Name, conn.Target(), err))
		return
	}
	ss.CurrentLSN = si.Current.String()
	if !exists {
		return // exists false: capture never ran (or the slot was dropped)
	}
	ss.Exists, ss.Active, ss.ActivePID, ss.WALStatus = true, si.Active, si.ActivePID, si.WALStatus
	if si.Confirmed != 0 {
		ss.ConfirmedLSN = si.Confirmed.String()
	}
	if lag, ok := si.Lag(); ok {
		ss.LagBytes = &lag
	}
	if ret, ok := si.Retained(); ok {
		ss.RetainedBytes = &ret
	}
	ss.SafeWALSize = si.SafeWALSize
	switch {
	case ss.LagBytes != nil && *ss.LagBytes <= 0:
		zero := 0.0
		ss.LagSeconds, ss.LagSource = &zero, LagCaughtUp
	case ss.Active && si.FlushLag != nil:
		secs := si.FlushLag.Seconds()
		ss.LagSeconds, ss.LagSource = &secs, LagFlushLag
	case s.marker != nil:
		age := s.opts.Now().Sub(*s.marker).Seconds()
		ss.LagSeconds, ss.LagSource = &age, LagMarkerAge
	}
}
