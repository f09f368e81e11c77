package preflight

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/chronicler-dev/chronicler/capture/store"
	"github.com/chronicler-dev/chronicler/cmd/chronicler/config"
	"github.com/chronicler-dev/chronicler/mapping/contract"
)

// openStore creates the store client for cfg (store.Connect: discovery is
// retried for as long as it takes, so every call here is bounded by a
// context through store.Bounded). target names the server without
// credentials.
func openStore(cfg *config.Config) (db *store.Client, target string, err error) {
	db, err = store.Connect(cfg.StoreClient())
	if err != nil {
		var ue *store.URLError
		if errors.As(err, &ue) {
			return nil, config.RedactURL(cfg.Store.URL), &ConfigError{Setting: "store.url", Reason: "not a valid KurrentDB connection string"}
		}
		return nil, store.Target(cfg.Store.URL), err
	}
	return db, db.Target(), nil
}

// store checks the store is reachable (one event of $all read backwards)
// and reports its version.
func (c *checker) store(ctx context.Context) {
	db, target, err := openStore(c.cfg)
	var te *store.TLSError
	switch {
	case errors.As(err, &te):
		c.add("store tls "+target, Fail, te.Error(), "name the CA with tlsCAFile= in store.url, and a host the certificate lists")
		return
	case err != nil:
		c.add("store url", Fail, err.Error(), "fix store.url (esdb://host:2113?tls=false, esdb+discover://...)")
		return
	}
	if found, fix := db.TransportIssue(); found != "" {
		c.add("store tls "+target, Warn, "store "+target+": "+found, fix)
	} else {
		c.add("store tls "+target, OK, "TLS, certificate verified", "")
	}
	ctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
	defer cancel()
	var last *store.Recorded
	err = store.Bounded(ctx, func(ctx context.Context) error {
		var err error
		last, err = db.ReadLastAll(ctx)
		return err
	})
	if err != nil {
		if !errors.Is(err, store.ErrNoAnswer) { // else the call may still be in the client (store.ErrNoAnswer)
			db.Close()
		}
		fix := "check store.url (host, port, tls), that the server runs, and store.username/password"
		if store.IsAccessDenied(err) {
			fix = fmt.Sprintf(`the publisher subscribes to $all: check store.username/password, and grant the user read of $all: write the metadata {"$acl": {"$r": ["$admins", %q]}} to $all (stream $$$all), or make the user a member of $admins`, c.storeUser())
		}
		c.add("store reachable "+target, Fail, "reading $all: "+err.Error(), fix)
		return
	}
	defer db.Close()
	if c.opts.Capture {
		c.storeWrites(ctx, db, target)
	}
	found := "read $all: empty"
	if last != nil {
		found = fmt.Sprintf("read $all: last event at commit position %d (%s in %s)", last.Pos.Commit, last.Type, last.Stream)
	}
	c.add("store reachable "+target, OK, found, "")
	c.slotGap(ctx, db)
	v, err := db.ServerVersion()
	switch {
	case err != nil:
		c.add("store version", Warn, "not reported: "+err.Error(), "nothing required; KurrentDB 21.10 or later reports it")
	case v.Major == 0 && v.Minor == 0 && v.Patch == 0:
		c.add("store version", Warn, "not reported (the server has no ServerFeatures service: older than 21.10?)", "use EventStoreDB 21.10 / KurrentDB or later")
	default:
		c.add("store version", OK, v.String(), "")
	}
	c.storeAppendLimit()
}

// storeAppendLimit compares store.max_batch_bytes with KurrentDB's default
// maximum append size. The server's own setting cannot be read through its
// API, so the line says so rather than claim a comparison with it.
func (c *checker) storeAppendLimit() {
	n, set := c.cfg.Store.MaxBatchBytes, "store.max_batch_bytes"
	if n == 0 {
		n, set = store.DefaultMaxBatchBytes, "store.max_batch_bytes (default)"
	}
	const unread = "the server's MaxAppendSize is not readable through its API"
	if n <= store.KurrentDefaultMaxAppendSize {
		c.add("store append limit", OK, fmt.Sprintf("%s %d bytes, within KurrentDB's default MaxAppendSize (%d); %s", set, n, store.KurrentDefaultMaxAppendSize, unread), "")
		return
	}
	c.add("store append limit", Warn,
		fmt.Sprintf("%s %d bytes, over KurrentDB's default MaxAppendSize (%d); %s", set, n, store.KurrentDefaultMaxAppendSize, unread),
		fmt.Sprintf("keep it if the server's MaxAppendSize is at least %d; else lower store.max_batch_bytes to %d or less (appends the server refuses are split, and an event over its limit is dead-lettered as too_large)", n, store.DefaultMaxBatchBytes))
}

// storeUser is the store user as ACLs name it.
func (c *checker) storeUser() string {
	if u := c.cfg.Store.Username; u != "" {
		return u
	}
	if u := store.URLUser(c.cfg.Store.URL); u != "" {
		return u
	}
	return "<store user>"
}

// storeWrites probes, without writing anything (store.Client.ProbeWrite),
// the appends capture makes to its own streams: the progress markers (and
// their $maxCount), the dead letters and the snapshot state. A refusal is
// a FAIL naming the stream and the ACL that grants it.
func (c *checker) storeWrites(ctx context.Context, db *store.Client, target string) {
	slot := c.cfg.Postgres.Slot
	dl := c.cfg.DeadLetter.Stream
	if dl == "" {
		dl = contract.DeadLetterStream(slot)
	}
	type probe struct {
		stream, why string
		meta        bool
	}
	probes := []probe{
		{contract.ProgressStream(slot), "capture writes its progress markers there", false},
		{contract.ProgressStream(slot), "capture sets $maxCount on it", true},
		{dl, "capture dead-letters changes there", false},
	}
	if c.cfg.Snapshot.Mode != "never" {
		probes = append(probes, probe{contract.SnapshotStreamPrefix + slot, "capture saves the initial snapshot's progress there", false})
	}
	user := c.storeUser()
	var granted []string
	for _, p := range probes {
		perm, probeFn := "$w", db.ProbeWrite
		if p.meta {
			perm, probeFn = "$mw", db.ProbeMetadataWrite
		}
		var access store.Access
		err := store.Bounded(ctx, func(ctx context.Context) error {
			var err error
			access, err = probeFn(ctx, p.stream)
			return err
		})
		name := fmt.Sprintf("store acl %s %s", perm, p.stream)
		fix := fmt.Sprintf(`write the metadata {"$acl": {%q: [%q]}} to stream %s (stream $$%s; keep its other entries), or grant it in $settings' $userStreamAcl`, perm, user, p.stream, p.stream)
		switch access {
		case store.Allowed:
			granted = append(granted, perm+" "+p.stream)
		case store.Denied:
			c.add(name, Fail, fmt.Sprintf("%s at %s: missing: %s", user, target, p.why), fix)
		default:
			c.add(name, Warn, fmt.Sprintf("unknown (probed with an append expecting a revision the stream never reaches): %v", err), "make sure the user has it: "+fix)
		}
	}
	if len(granted) > 0 {
		c.add("store acls", OK, user+" has "+strings.Join(granted, ", ")+" (probed without writing)", "")
	}
}
