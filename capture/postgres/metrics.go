package postgres

import "github.com/prometheus/client_golang/prometheus"

// metrics are capture's Prometheus metrics. They exist (and are updated)
// whether or not a Registerer was given.
type metrics struct {
	changes          *prometheus.CounterVec
	transactions     prometheus.Counter
	decodeFallbacks  *prometheus.CounterVec
	reconnects       prometheus.Counter
	heartbeats       prometheus.Counter
	lagBytes         prometheus.Gauge
	confirmedLSN     prometheus.Gauge
	serverWALEnd     prometheus.Gauge
	snapshotRowsDone prometheus.Gauge
	snapshotRowsAll  prometheus.Gauge
	snapshotRate     prometheus.Gauge
	snapshotETA      prometheus.Gauge
	retainedWAL      prometheus.Gauge
	safeWALSize      prometheus.Gauge
	snapshotsPending prometheus.Gauge
	snapshotChunks   prometheus.Counter
	snapshotRequeued prometheus.Counter
	snapshotWaits    prometheus.Counter
	schemaChanges    *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		changes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chronicler_capture_changes_total", Help: "Changes handed to the sink, by operation (re-deliveries after a reconnect count again).",
		}, []string{"op"}),
		transactions: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "chronicler_capture_transactions_total", Help: "Transactions handed to the sink (snapshot chunks included).",
		}),
		decodeFallbacks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chronicler_capture_decode_fallbacks_total", Help: "Values that did not parse as their type and were delivered as contract.Unknown, by type name.",
		}, []string{"type"}),
		reconnects: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "chronicler_capture_reconnects_total", Help: "Sessions ended by a transient error and retried.",
		}),
		heartbeats: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "chronicler_capture_heartbeats_total", Help: "Heartbeat logical messages emitted.",
		}),
		lagBytes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "chronicler_capture_lag_bytes", Help: "Server WAL end minus the position confirmed to Postgres, in bytes.",
		}),
		confirmedLSN: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "chronicler_capture_confirmed_lsn_bytes", Help: "Position confirmed to Postgres (flush), as a byte offset.",
		}),
		serverWALEnd: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "chronicler_capture_server_wal_end_bytes", Help: "Server WAL end last reported by the walsender, as a byte offset.",
		}),
		snapshotRowsDone: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "chronicler_capture_snapshot_rows_done", Help: "Rows of the snapshot being read (or the last one) emitted by acknowledged chunks.",
		}),
		snapshotRowsAll: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "chronicler_capture_snapshot_rows_estimated", Help: "Estimated rows of the snapshot being read (pg_class.reltuples; for a table never analyzed a count up to 8 MiB, else the planner's estimate; the planner's estimate with a condition).",
		}),
		snapshotRate: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "chronicler_capture_snapshot_rows_per_second", Help: "Read rate of the snapshot being read since it (or its resume) started; 0 when none is.",
		}),
		snapshotETA: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "chronicler_capture_snapshot_eta_seconds", Help: "Estimated seconds until the snapshot being read completes; 0 when none is.",
		}),
		snapshotsPending: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "chronicler_capture_snapshots_pending", Help: "Snapshots queued or running (the initial one and those requested with chronicler snapshot).",
		}),
		snapshotChunks: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "chronicler_capture_snapshot_chunks_total", Help: "Snapshot chunks read, emitted and acknowledged.",
		}),
		snapshotRequeued: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "chronicler_capture_snapshot_rows_reread_total", Help: "Snapshot rows not emitted because a change the read did not see was committed between the chunk's watermarks; they are read again.",
		}),
		snapshotWaits: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "chronicler_capture_snapshot_visibility_waits_total", Help: "Chunk reads done again because a transaction streamed before the low watermark was not visible to the read yet (committed, not yet ended: e.g. waiting for a synchronous standby).",
		}),
		schemaChanges: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chronicler_capture_schema_changes_total", Help: "Relation messages that changed a table's columns while streaming (added, dropped, renamed or retyped), by table.",
		}, []string{"table"}),
		retainedWAL: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "chronicler_capture_slot_retained_wal_bytes", Help: "WAL the server keeps on disk for the slot (pg_current_wal_lsn - restart_lsn), read every 15s while streaming.",
		}),
		safeWALSize: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "chronicler_capture_slot_safe_wal_size_bytes", Help: "Bytes of WAL that can still be written before the slot is in danger of losing WAL it needs (pg_replication_slots.safe_wal_size); -1 when unbounded (max_slot_wal_keep_size -1).",
		}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.changes, m.transactions, m.decodeFallbacks, m.reconnects, m.heartbeats,
			m.lagBytes, m.confirmedLSN, m.serverWALEnd, m.snapshotRowsDone, m.snapshotRowsAll, m.snapshotRate, m.snapshotETA, m.retainedWAL, m.safeWALSize,
			m.snapshotsPending, m.snapshotChunks, m.snapshotRequeued, m.snapshotWaits, m.schemaChanges} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}
