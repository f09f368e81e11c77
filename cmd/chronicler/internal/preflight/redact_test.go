package preflight

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chronicler-dev/chronicler/cmd/chronicler/config"
)

// TestScrubberRemovesEverySecret: each secret of a configuration, wherever
// it sits (a password setting, a URL's user info, a URL's query, a SASL
// password or token), is gone from text holding it, and the rest stays.
func TestScrubberRemovesEverySecret(t *testing.T) {
	type parts struct{ pgURL, pgExtra, storeURL, storeExtra, kafka string }
	cases := []struct {
		name   string
		p      parts
		secret string
	}{
		{"postgres.password", parts{pgURL: "postgres://u@db:5432/app", pgExtra: "  password: pw-setting-1\n"}, "pw-setting-1"},
		{"postgres url userinfo", parts{pgURL: "postgres://u:pw-url-2@db:5432/app"}, "pw-url-2"},
		{"postgres url query", parts{pgURL: "postgres://u@db:5432/app?password=pw-query-3"}, "pw-query-3"},
		{"postgres key=value", parts{pgURL: "host=db user=u password=pw-kv-4 dbname=app"}, "pw-kv-4"},
		// postgres.password replaces the URL's for the connections, but the
		// URL's own is a secret all the same.
		{"postgres url userinfo beside postgres.password", parts{pgURL: "postgres://u:pw-url-9@db:5432/app", pgExtra: "  password: pw-setting-10\n"}, "pw-url-9"},
		{"store url", parts{storeURL: "esdb://admin:pw-store-5@kdb:2113?tls=false"}, "pw-store-5"},
		{"store.password", parts{storeExtra: "  password: pw-store-6\n"}, "pw-store-6"},
		{"kafka.sasl.password", parts{kafka: "kafka:\n  brokers: [k:9092]\n  sasl:\n    mechanism: PLAIN\n    username: u\n    password: pw-sasl-7\n"}, "pw-sasl-7"},
		{"kafka.sasl.token", parts{kafka: "kafka:\n  brokers: [k:9092]\n  sasl:\n    mechanism: OAUTHBEARER\n    token: tok-8\n"}, "tok-8"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := tc.p
			if p.pgURL == "" {
				p.pgURL = "postgres://u@db:5432/app"
			}
			if p.storeURL == "" {
				p.storeURL = "esdb://kdb:2113?tls=false"
			}
			y := "postgres:\n  url: " + p.pgURL + "\n" + p.pgExtra + "  slot: s\n  publication: p\n  tables: [public.t]\n" +
				"store:\n  url: " + p.storeURL + "\n" + p.storeExtra + p.kafka + "rules:\n  paths: [r]\n"
			dir := t.TempDir()
			if err := os.Mkdir(filepath.Join(dir, "r"), 0o755); err != nil {
				t.Fatal(err)
			}
			cfg, err := config.Parse(filepath.Join(dir, "c.yaml"), []byte(y), config.Parts{Capture: true}, nil)
			if err != nil {
				t.Fatalf("config: %v\n%s", err, y)
			}
			s := newScrubber(cfg)
			text := "before " + tc.secret + " middle " + cfg.PostgresURL() + " " + cfg.Store.URL + " after"
			got := s.clean(text)
			if strings.Contains(got, tc.secret) {
				t.Fatalf("secret left in %q", got)
			}
			if !strings.HasPrefix(got, "before ") || !strings.HasSuffix(got, " after") || !strings.Contains(got, " middle ") {
				t.Fatalf("the rest of the text was changed: %q", got)
			}
		})
	}
}
