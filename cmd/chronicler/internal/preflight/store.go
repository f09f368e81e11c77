package preflight

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"

	"github.com/chronicler-dev/chronicler/capture/store"
	"github.com/chronicler-dev/chronicler/cmd/chronicler/internal/config"
)

// openStore creates a KurrentDB client for cfg's store with a bounded
// discovery (the default closes the client after 10 failed attempts; run
// retries forever, check and status give up sooner). target names the
// server without credentials.
func openStore(cfg *config.Config) (db *esdb.Client, target string, err error) {
	ec, err := cfg.StoreClientConfig()
	if err != nil {
		return nil, config.RedactURL(cfg.Store.URL), &ConfigError{Setting: "store.url", Reason: "not a valid KurrentDB connection string"}
	}
	ec.MaxDiscoverAttempts = 3
	target = ec.Address
	if target == "" {
		var seeds []string
		for _, s := range ec.GossipSeeds {
			seeds = append(seeds, s.String())
		}
		target = strings.Join(seeds, ",")
	}
	db, err = esdb.NewClient(ec)
	if err != nil {
		return nil, target, fmt.Errorf("creating the KurrentDB client for %s: %w", target, err)
	}
	return db, target, nil
}

// bounded runs f and returns its error, or ctx's once ctx ends first. The
// official client does not honour contexts while it discovers a node, so
// f may outlive the call; it must only touch what it owns.
func bounded(ctx context.Context, f func(ctx context.Context) error) error {
	done := make(chan error, 1)
	go func() { done <- f(ctx) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("no answer: %w", ctx.Err())
	}
}

// lastAll reads the last event of $all (nil when $all is empty).
func lastAll(ctx context.Context, db *esdb.Client) (*esdb.RecordedEvent, error) {
	return store.ReadLastAll(ctx, db)
}

// store checks the store is reachable (one event of $all read backwards)
// and reports its version.
func (c *checker) store(ctx context.Context) {
	db, target, err := openStore(c.cfg)
	if err != nil {
		c.add("store url", Fail, err.Error(), "fix store.url (esdb://host:2113?tls=false, esdb+discover://...)")
		return
	}
	ctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
	defer cancel()
	var last *esdb.RecordedEvent
	err = bounded(ctx, func(ctx context.Context) error {
		var err error
		last, err = lastAll(ctx, db)
		return err
	})
	if err != nil {
		go db.Close() // may block while the client discovers
		fix := "check store.url (host, port, tls), that the server runs, and store.username/password"
		var e *esdb.Error
		if errors.As(err, &e) && (e.Code() == esdb.ErrorCodeAccessDenied || e.Code() == esdb.ErrorCodeUnauthenticated) {
			fix = "the publisher subscribes to $all: give the store user read access to $all (e.g. the $ops or $admins group), and check store.username/password"
		}
		c.add("store reachable "+target, Fail, "reading $all: "+err.Error(), fix)
		return
	}
	defer db.Close()
	found := "read $all: empty"
	if last != nil {
		found = fmt.Sprintf("read $all: last event at commit position %d (%s in %s)", last.Position.Commit, last.EventType, last.StreamID)
	}
	c.add("store reachable "+target, OK, found, "")
	v, err := db.GetServerVersion()
	switch {
	case err != nil:
		c.add("store version", Warn, "not reported: "+err.Error(), "nothing required; KurrentDB 21.10 or later reports it")
	case v.Major == 0 && v.Minor == 0 && v.Patch == 0:
		c.add("store version", Warn, "not reported (the server has no ServerFeatures service: older than 21.10?)", "use EventStoreDB 21.10 / KurrentDB or later")
	default:
		c.add("store version", OK, fmt.Sprintf("%d.%d.%d", v.Major, v.Minor, v.Patch), "")
	}
}

func isEOF(err error) bool { return errors.Is(err, io.EOF) }
