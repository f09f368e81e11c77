package preflight

import (
	"sort"
	"strings"

	cpg "github.com/chronicler-dev/chronicler/capture/postgres"
	"github.com/chronicler-dev/chronicler/capture/store"
	"github.com/chronicler-dev/chronicler/cmd/chronicler/config"
)

// scrubber removes every secret of a configuration from text that is about
// to be printed. Messages are built not to hold secrets in the first place;
// this is the second line: a driver's error that quotes a connection string
// cannot leak one either.
type scrubber struct {
	secrets []string
	urls    []string
}

func newScrubber(cfg *config.Config) *scrubber {
	s := &scrubber{}
	add := func(v string) {
		if v != "" {
			s.secrets = append(s.secrets, v)
		}
	}
	add(cfg.Postgres.Password)
	add(cfg.Store.Password)
	add(cfg.Kafka.SASL.Password)
	add(cfg.Kafka.SASL.Token)
	add(cfg.Kafka.SchemaRegistry.Password)
	add(cfg.Kafka.SchemaRegistry.Token)
	add(cpg.URLPassword(cfg.Postgres.URL))
	add(store.URLPassword(cfg.Store.URL))
	for _, u := range []string{cfg.Postgres.URL, cfg.PostgresURL(), cfg.Store.URL} {
		if u != "" {
			s.urls = append(s.urls, u)
		}
	}
	// Longest first, so a secret containing another is replaced whole.
	sort.Slice(s.secrets, func(i, j int) bool { return len(s.secrets[i]) > len(s.secrets[j]) })
	sort.Slice(s.urls, func(i, j int) bool { return len(s.urls[i]) > len(s.urls[j]) })
	return s
}

// clean returns text with whole connection strings replaced by their
// redacted form and every secret by "<redacted>".
func (s *scrubber) clean(text string) string {
	for _, u := range s.urls {
		text = strings.ReplaceAll(text, u, config.RedactURL(u))
	}
	for _, v := range s.secrets {
		text = strings.ReplaceAll(text, v, "<redacted>")
	}
	return text
}
