package preflight

import (
	"context"

	"github.com/chronicler-dev/chronicler/capture"
	cpg "github.com/chronicler-dev/chronicler/capture/postgres"
	"github.com/chronicler-dev/chronicler/capture/store"
)

// slotGap reports a slot that Postgres does not have although the store
// shows capture streamed through it (progress markers, a completed
// snapshot): capture's own finding, the one run refuses to start on.
func (c *checker) slotGap(ctx context.Context, db *store.Client) {
	if !c.slotAbsent {
		return
	}
	slot := c.cfg.Postgres.Slot
	var history []string
	err := store.Bounded(ctx, func(ctx context.Context) error {
		var err error
		history, err = capture.SlotHistory(ctx, db, slot, true)
		return err
	})
	if err != nil {
		c.add("postgres slot "+slot+" history", Warn, "unknown: "+err.Error(),
			"check that the store user may read the progress and snapshot streams of the slot")
		return
	}
	if f, ok := cpg.CheckSlotGap(slot, history, cpg.MissingSlotPolicy(c.cfg.Postgres.OnMissingSlot)); ok {
		c.finding(f)
	}
}
