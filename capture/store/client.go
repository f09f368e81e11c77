package store

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
)

// ClientConfig says how to reach the store.
type ClientConfig struct {
	// URL is the KurrentDB connection string: esdb://host:2113?tls=false
	// for one node; for a cluster, esdb://node1:2113,node2:2113,node3:2113
	// (gossip seeds) or esdb+discover://name:2113 (one DNS name for the
	// nodes); TLS and credentials as its parameters say. Required.
	URL string
	// Username and Password, when set, replace the URL's credentials (so a
	// password can come from a secret file instead of the URL).
	Username, Password string
	// Logger receives the official client's warnings and errors at debug
	// level (every failed call and, during an outage, every discovery
	// attempt; each failure that matters reaches Chronicler as an error).
	// Default: the client's own log lines are dropped.
	Logger *slog.Logger
}

// Client is a connection to the store: the only way the product talks to
// KurrentDB. Safe for concurrent use.
type Client struct {
	db     *esdb.Client
	conf   *esdb.Configuration
	target string
	// direct is a connection of Chronicler's own for the $all subscription
	// on a single-node store (subscribe_direct.go); nil for a cluster
	// connection string, which subscribes through the official client.
	direct *direct
}

// Connect parses cfg.URL and creates the client. With TLS (the default) it
// makes one TLS handshake with each server (CheckTLS, bounded by
// tlsCheckTimeout) and returns a *TLSError when a certificate does not
// verify: the official client would only retry such a server, its calls
// never answering. A server that cannot be reached is not an error here;
// the client dials it at its first call.
//
// Discovery policy (the one for every client the product makes): the
// official client closes itself for good after MaxDiscoverAttempts failed
// discoveries (default 10, 100 ms apart), so a store restart longer than a
// second would end every later call with ConnectionClosed. Chronicler's
// clients retry discovery for as long as it takes; a caller that must give
// up sooner bounds its call with a context and [Bounded], because the
// official client does not honour contexts while it discovers.
func Connect(cfg ClientConfig) (*Client, error) {
	conf, err := cfg.resolve()
	if err != nil {
		return nil, err
	}
	db, err := esdb.NewClient(conf)
	if err != nil {
		return nil, fmt.Errorf("creating the KurrentDB client for %s: %w", targetOf(conf), err)
	}
	c := &Client{db: db, conf: conf, target: targetOf(conf)}
	ctx, cancel := context.WithTimeout(context.Background(), tlsCheckTimeout)
	defer cancel()
	if err := c.CheckTLS(ctx); err != nil {
		_ = db.Close()
		return nil, err
	}
	d, err := dialDirect(conf, "the $all subscription")
	if err != nil {
		_ = db.Close()
		return nil, err
	}
	c.direct = d
	return c, nil
}

// tlsCheckTimeout bounds Connect's TLS handshakes.
const tlsCheckTimeout = 5 * time.Second

// resolve is the official client's configuration for cfg.
func (cfg ClientConfig) resolve() (*esdb.Configuration, error) {
	conf, err := parseURL(cfg.URL)
	if err != nil {
		return nil, err
	}
	if cfg.Username != "" {
		conf.Username = cfg.Username
	}
	if cfg.Password != "" {
		conf.Password = cfg.Password
	}
	conf.Logger = esdb.NoopLogging()
	if cfg.Logger != nil {
		conf.Logger = clientLogger(cfg.Logger)
	}
	conf.MaxDiscoverAttempts = math.MaxInt32
	return conf, nil
}

// URLPassword is the password a connection string holds ("" when none, or
// when it does not parse), for redaction.
func URLPassword(url string) string {
	conf, err := esdb.ParseConnectionString(url)
	if err != nil {
		return ""
	}
	return conf.Password
}

// ParseURL checks a connection string the way Connect does, for
// configuration checks.
func ParseURL(url string) error {
	_, err := parseURL(url)
	return err
}

func parseURL(url string) (*esdb.Configuration, error) {
	conf, err := esdb.ParseConnectionString(url)
	if err != nil {
		// The client's message can quote the URL, credentials included.
		msg := err.Error()
		if url != "" {
			msg = strings.ReplaceAll(msg, url, "<store.url>")
		}
		return nil, &URLError{Reason: "not a valid KurrentDB connection string: " + msg}
	}
	if conf.DnsDiscover && len(conf.GossipSeeds) > 0 {
		// The official client (v4.2.0, esdb/impl.go discoverNode) dials only
		// the address of an esdb+discover:// string, which is empty when it
		// names several hosts: every call would fail discovery forever.
		return nil, &URLError{Reason: "esdb+discover:// takes one host (a DNS name for the cluster's nodes): for several nodes list them as gossip seeds, esdb://node1:2113,node2:2113,node3:2113"}
	}
	return conf, nil
}

// Target names the server(s) of a connection string without credentials
// ("host:port", or the gossip seeds); "" when the string does not parse.
func Target(url string) string {
	conf, err := esdb.ParseConnectionString(url)
	if err != nil {
		return ""
	}
	return targetOf(conf)
}

func targetOf(conf *esdb.Configuration) string {
	if conf.Address != "" {
		return conf.Address
	}
	seeds := make([]string, len(conf.GossipSeeds))
	for i, s := range conf.GossipSeeds {
		seeds[i] = s.String()
	}
	return strings.Join(seeds, ",")
}

// Target names the server without credentials.
func (c *Client) Target() string { return c.target }

// Close closes the client. During an outage the official client may block
// in discovery; callers that must not wait call it in a goroutine.
func (c *Client) Close() error {
	if c.direct != nil {
		_ = c.direct.conn.Close()
	}
	return c.db.Close()
}

// Version is the server's version as it reports it.
type Version struct{ Major, Minor, Patch int }

func (v Version) String() string { return fmt.Sprintf("%d.%d.%d", v.Major, v.Minor, v.Patch) }

// ServerVersion asks the server for its version (ServerFeatures); a zero
// Version means it did not report one (a server older than 21.10).
func (c *Client) ServerVersion() (Version, error) {
	v, err := c.db.GetServerVersion()
	if err != nil {
		return Version{}, err
	}
	return Version{Major: v.Major, Minor: v.Minor, Patch: v.Patch}, nil
}

// clientLogger routes the official client's warnings and errors to log at
// debug level.
func clientLogger(log *slog.Logger) esdb.LoggingFunc {
	return func(level esdb.LogLevel, format string, args ...any) {
		if level == esdb.LogWarn || level == esdb.LogError {
			log.Debug("kurrentdb client: "+fmt.Sprintf(format, args...), "client_level", level)
		}
	}
}

// URLUser is the user name a connection string holds ("" when none, or
// when it does not parse).
func URLUser(url string) string {
	conf, err := esdb.ParseConnectionString(url)
	if err != nil {
		return ""
	}
	return conf.Username
}
