// Package reload reloads the rule files of a running Chronicler: on SIGHUP
// (Config.Signals) and, with polling on, when their content changes.
//
// Changes are found by content hash ([Hash]: SHA-256 over the rule files'
// names and contents, as mapping.RuleFiles lists them, and the schema files
// beside them, mapping.SchemaFiles; a schema file kept elsewhere is reloaded
// by SIGHUP only), not by modification
// time, so a Kubernetes ConfigMap update (an atomic swap of a symlinked
// directory, with the old files' times) is seen. The files of Config.Also
// (`chronicler run` gives the configuration file, when capture runs and
// there is one) are hashed with them, so a change of postgres.tables alone
// triggers a reload too. Polling runs every Config.Interval; a SIGHUP
// reloads whether or not the hash changed.
//
// A reload first checks the new set exactly as at start (Config.Load:
// mapping.Load with the captured tables' catalogue, every rule's table
// captured, promotion rules present when publishing; `chronicler run`'s Load
// also reads the configuration file again, the same file and environment
// as at start, and checks the tables postgres.tables adds, see
// cmd/chronicler/app and capture/postgres "Tables added while running";
// other settings that changed are named in one warning: they need a
// restart). If the check fails the
// running set stays, the error (with file:line:col) is logged and counted
// (chronicler_rules_reloads_total{result="error"}), and the same content is
// not tried again until it changes or a SIGHUP asks. If it passes,
// Config.Apply swaps it in (capture: at the next source transaction;
// publish: at the next batch boundary), it is counted
// ({result="ok"}), and its hash is logged and exported
// (chronicler_rules_info{hash}). An Apply that swapped the set in and then
// failed at what came with it (capture adding the new tables) returns an
// *AppliedError: the set is in force (its hash exported and logged), the
// error is logged at ERROR and counted as {result="error"}, and the same
// content is tried again on SIGHUP or when the files change. Load returning an error matching
// ErrNotReady (the pipeline is starting) is neither: the attempt is not
// counted and the content is tried again at the next poll (with polling
// off: at the next SIGHUP).
//
// Determinism: a reload changes what the rules produce from the swap on.
// Transactions captured after it are mapped by the new capture rules, events
// published after it are promoted by the new promotion rules, and a replay
// of stored history re-derives integration events with the rules given to
// the replay, not with the ones in force when each event was first
// published.
//
// # Concurrency
//
// Run owns the loop and returns when its context ends. Load and Apply are
// called from Run's goroutine only. Hash may be called from anywhere.
//
// # Example
//
//	r, err := reload.New(reload.Config{Paths: paths, Interval: 5 * time.Second, Signals: hup,
//		Load: check, Apply: swap, Registerer: reg})
//	if err != nil {
//		return err
//	}
//	go r.Run(ctx)
package reload
