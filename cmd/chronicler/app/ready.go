package app

import (
	"context"
	"fmt"

	"github.com/chronicler-dev/chronicler/capture/postgres"
	"github.com/chronicler-dev/chronicler/publish"
)

// Health is /healthz: nil while the process's loops are alive; the error
// once a part failed (the process is stopping with exit code 1).
func (a *App) Health() error {
	if p := a.failed.Load(); p != nil {
		return *p
	}
	return nil
}

// Ready is /readyz. Ready: "active" (holds the lock or HA is off, every
// part streaming and within http.ready_max_lag) or "standby" (waiting for
// the lock, lock session working). Not ready, with the reason: failed,
// stopping, a standby that cannot reach Postgres, capture starting or in
// its initial snapshot, a part lagging.
func (a *App) Ready() (bool, string) {
	if err := a.Health(); err != nil {
		return false, "failed: " + err.Error()
	}
	if a.stopping.Load() {
		return false, "stopping"
	}
	if !a.active.Load() {
		el := a.elector.Load()
		if el == nil {
			return false, "starting"
		}
		if !el.Healthy() {
			reason := "standby: the HA lock session is not connected yet"
			if err := el.LastError(); err != nil {
				reason = "standby: cannot reach Postgres for the HA lock: " + err.Error()
			}
			return false, reason
		}
		return true, "standby"
	}
	if l := a.lease.Load(); l != nil {
		// Asked, not remembered: the lock session answers now, or this
		// instance may already have been replaced.
		if err := l.Check(context.Background()); err != nil {
			return false, "not active: " + err.Error()
		}
	}
	maxLag := a.cfg.ReadyMaxLag()
	if a.cap != nil {
		st := a.cap.Status()
		switch st.Phase {
		case postgres.PhaseStreaming:
		case postgres.PhaseSnapshot:
			return false, "capture: initial snapshot in progress"
		case postgres.PhaseStarting:
			return false, "capture: starting (connecting, checking, or waiting for the slot)"
		default:
			return false, "capture: " + st.Phase.String()
		}
		if maxLag > 0 && st.LagSeconds > maxLag.Seconds() {
			return false, fmt.Sprintf("capture: lagging %.1fs behind (oldest unconfirmed transaction; http.ready_max_lag %s; %d bytes behind the server's WAL end)",
				st.LagSeconds, maxLag, st.LagBytes())
		}
	}
	if a.parts.Publish {
		if a.pub == nil || a.pub.Phase() != publish.PhaseRunning {
			return false, "publish: starting (connecting to Kafka, reading the checkpoint)"
		}
		if lag := a.pub.LagSeconds(); maxLag > 0 && lag > maxLag.Seconds() {
			return false, fmt.Sprintf("publish: lagging %.1fs behind (oldest stored event not yet on Kafka; http.ready_max_lag %s)", lag, maxLag)
		}
	}
	return true, "active"
}
