package config

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestChangedNamesTheSettings: Changed lists the paths of the settings
// that differ, except those ignored, and not a secret read from a file.
func TestChangedNamesTheSettings(t *testing.T) {
	dir := validDir(t)
	a, err := Parse(filepath.Join(dir, "c.yaml"), []byte(valid), All, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	b := *a
	b.Postgres.Tables = append(slices.Clone(a.Postgres.Tables), "public.more")
	b.Postgres.AddMissingTables = !a.Postgres.AddMissingTables
	b.Log.Level = "debug"
	b.Kafka.Brokers = []string{"elsewhere:9092"}
	if got := Changed(a, &b, "postgres.tables", "postgres.add_missing_tables"); !slices.Equal(got, []string{"kafka.brokers", "log.level"}) {
		t.Errorf("Changed = %v; want [kafka.brokers log.level]", got)
	}
	if got := Changed(a, &b); !slices.Contains(got, "postgres.tables") || !slices.Contains(got, "postgres.add_missing_tables") {
		t.Errorf("Changed without ignore = %v; want postgres.tables and postgres.add_missing_tables in it", got)
	}
	if got := Changed(a, a); len(got) != 0 {
		t.Errorf("Changed(a, a) = %v; want none", got)
	}
	// A rotated secret file: the file setting is the same, the value read differs.
	a.Store.PasswordFile, a.Store.Password = "pw", "old"
	c := *a
	c.Store.Password = "new"
	if got := Changed(a, &c); len(got) != 0 {
		t.Errorf("Changed with a rotated store.password_file = %v; want none", got)
	}
	a.Store.PasswordFile = ""
	if got := Changed(a, &c); !slices.Equal(got, []string{"store.password", "store.password_file"}) || strings.Contains(strings.Join(got, ""), "new") {
		t.Errorf("Changed of a password = %v; want its path only", got)
	}
}
