package postgres

import (
	"errors"
	"testing"
)

func validConfig() Config {
	return Config{URL: "postgres://u@localhost/app", Slot: "s", Publication: "p", Tables: []string{"public.a", "b"}}
}

// TestConfigValidation mutates one field of a valid config per case and
// checks the ConfigError names that field; a config with several problems
// reports all of them.
func TestConfigValidation(t *testing.T) {
	cases := []struct {
		field  string
		mutate func(*Config)
	}{
		{"url", func(c *Config) { c.URL = "" }},
		{"url", func(c *Config) { c.URL = "postgres://u@localhost:notaport/app" }},
		{"slot", func(c *Config) { c.Slot = "Bad-Name" }},
		{"publication", func(c *Config) { c.Publication = "" }},
		{"tables", func(c *Config) { c.Tables = nil }},
		{"tables[1]", func(c *Config) { c.Tables = []string{"a", "public.a"} }},
		{"tables[0]", func(c *Config) { c.Tables = []string{"a.b.c"} }},
		{"need_old_values[0]", func(c *Config) { c.NeedOldValues = []string{"other"} }},
		{"snapshot_mode", func(c *Config) { c.SnapshotMode = "sometimes" }},
		{"snapshot_chunk_rows", func(c *Config) { c.SnapshotChunkRows = -1 }},
		{"status_interval", func(c *Config) { c.StatusInterval = -1 }},
		{"reconnect", func(c *Config) { c.ReconnectMin, c.ReconnectMax = 2, 1 }},
	}
	for _, tc := range cases {
		cfg := validConfig()
		tc.mutate(&cfg)
		_, err := New(cfg, nil)
		var ce *ConfigError
		if !errors.As(err, &ce) || ce.Field != tc.field {
			t.Errorf("%s: New = %v; want a ConfigError for %s", tc.field, err, tc.field)
		}
	}
	src, err := New(validConfig(), nil)
	if err != nil {
		t.Fatalf("valid config: %v", err)
	}
	if src.cfg.Tables[1] != "public.b" || src.cfg.SnapshotMode != SnapshotInitial || src.cfg.SnapshotChunkRows != 10000 {
		t.Fatalf("defaults not applied: %+v", src.cfg)
	}
	bad := validConfig()
	bad.Slot, bad.Publication, bad.SnapshotMode = "", "", "x"
	_, err = New(bad, nil)
	n := 0
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		var ce *ConfigError
		if errors.As(e, &ce) {
			n++
		}
	}
	if n != 3 {
		t.Fatalf("three problems, %d reported: %v", n, err)
	}
}
