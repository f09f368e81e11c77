package app

import (
	"fmt"

	"github.com/chronicler-dev/chronicler/capture"
	"github.com/chronicler-dev/chronicler/cmd/chronicler/config"
)

// reloadedKeys are the settings of the configuration file a reload applies
// (besides the rule files): the captured tables can grow while capture runs.
var reloadedKeys = []string{"postgres.tables", "postgres.add_missing_tables"}

// reloadTables reads the configuration file again for a reload (the same
// file and environment as at start) and returns its postgres.tables and
// postgres.add_missing_tables; nil when this instance does not capture or
// its configuration came from the environment alone (which cannot change).
// Other settings that differ from the running ones are logged in one
// warning: they need a restart.
func (a *App) reloadTables() (*capture.Tables, error) {
	if a.cap == nil || a.cfg.File() == "" {
		return nil, nil
	}
	cfg, err := config.Load(a.cfg.File(), a.parts)
	if err != nil {
		return nil, fmt.Errorf("reading the configuration again for the reload (postgres.tables): %w", err)
	}
	if changed := config.Changed(a.cfg, cfg, reloadedKeys...); len(changed) > 0 {
		a.log.Warn("reload: settings changed in the configuration file need a restart; a reload applies only the rules, postgres.tables and postgres.add_missing_tables",
			"file", a.cfg.File(), "settings", changed)
	}
	return &capture.Tables{Names: cfg.Postgres.Tables, AddMissing: cfg.Postgres.AddMissingTables}, nil
}

// configFiles are the files besides the rules whose changes the reloader
// watches: the configuration file, when capture runs and there is one.
func (a *App) configFiles() []string {
	if a.cap == nil || a.cfg.File() == "" {
		return nil
	}
	return []string{a.cfg.File()}
}
