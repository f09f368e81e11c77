package main

import (
	"fmt"

	"github.com/chronicler-dev/chronicler/capture/postgres"
	"github.com/chronicler-dev/chronicler/publish"
)

// health is /healthz: nil while the process's loops are alive; the error
// once a part failed (the process is stopping with exit code 1).
func (r *runner) health() error {
	if p := r.failed.Load(); p != nil {
		return *p
	}
	return nil
}

// ready is /readyz. Ready: "active" (holds the lock or HA is off, every
// part streaming and within http.ready_max_lag) or "standby" (waiting for
// the lock, lock session working). Not ready, with the reason: failed,
// stopping, a standby that cannot reach Postgres, capture starting or in
// its initial snapshot, a part lagging.
func (r *runner) ready() (bool, string) {
	if err := r.health(); err != nil {
		return false, "failed: " + err.Error()
	}
	if r.stopping.Load() {
		return false, "stopping"
	}
	if !r.active.Load() {
		el := r.elector.Load()
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
	maxLag := r.cfg.ReadyMaxLag()
	if r.capCtl != nil {
		st := r.capCtl.Status()
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
	if r.parts.Publish {
		if r.pub == nil || r.pub.Phase() != publish.PhaseRunning {
			return false, "publish: starting (connecting to Kafka, reading the checkpoint)"
		}
		if lag := r.pub.LagSeconds(); maxLag > 0 && lag > maxLag.Seconds() {
			return false, fmt.Sprintf("publish: lagging %.1fs behind (oldest stored event not yet on Kafka; http.ready_max_lag %s)", lag, maxLag)
		}
	}
	return true, "active"
}
