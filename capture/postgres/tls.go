package postgres

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// DefaultSSLMode is the sslmode of a connection string that names none
// (and no PGSSLMODE in the environment): the server's certificate must be
// signed by a trusted CA (sslrootcert, else the system roots) and name the
// host connected to. libpq's default, prefer, would fall back to plaintext
// without a word and accepts any certificate; to connect without TLS, say
// sslmode=disable.
const DefaultSSLMode = "verify-full"

var kvSSLMode = regexp.MustCompile(`(?:^|\s)sslmode\s*=\s*'?([a-z-]*)`)

// sslModeOf returns the sslmode connStr asks for ("" when none) and connStr
// with DefaultSSLMode added when it names none. PGSSLMODE, when set, is
// pgx's (and libpq's) default, and is left to apply.
func sslModeOf(connStr string) (mode, withDefault string) {
	if strings.HasPrefix(connStr, "postgres://") || strings.HasPrefix(connStr, "postgresql://") {
		// The query alone: url.Parse refuses a multi-host URL's host list.
		if _, query, ok := strings.Cut(connStr, "?"); ok {
			if q, err := url.ParseQuery(query); err == nil && q.Has("sslmode") {
				return q.Get("sslmode"), connStr
			}
		}
	} else if m := kvSSLMode.FindStringSubmatch(connStr); m != nil {
		return m[1], connStr
	}
	if env := os.Getenv("PGSSLMODE"); env != "" {
		return env, connStr
	}
	if strings.HasPrefix(connStr, "postgres://") || strings.HasPrefix(connStr, "postgresql://") {
		sep := "?"
		if strings.Contains(connStr, "?") {
			sep = "&"
		}
		return DefaultSSLMode, connStr + sep + "sslmode=" + DefaultSSLMode
	}
	return DefaultSSLMode, strings.TrimSpace(connStr) + " sslmode=" + DefaultSSLMode
}

// Transport is how a connection to the captured database is secured, as
// read from the connection itself.
type Transport struct {
	Target  string // host:port/database
	Socket  bool   // a unix socket: no TLS (and none needed)
	TLS     bool
	Version string // "TLS 1.3"
	SSLMode string // as the connection string (or PGSSLMODE, or the default) says
	// ChainVerified: the certificate was checked against the roots
	// (verify-ca, verify-full, or require with sslrootcert); HostVerified:
	// and it names the host (verify-full).
	ChainVerified, HostVerified bool
}

// transportOf reads pc's connection: TLS or not, and what was verified
// (from the TLS settings the connection used).
func transportOf(conn *pgx.Conn, mode string) Transport {
	cfg := &conn.Config().Config
	pc := conn.PgConn()
	t := Transport{Target: targetOf(cfg), SSLMode: mode}
	if network, _ := pgconn.NetworkAddress(cfg.Host, cfg.Port); network == "unix" {
		t.Socket = true
		return t
	}
	tc, ok := pc.Conn().(*tls.Conn)
	if !ok {
		return t
	}
	st := tc.ConnectionState()
	t.TLS, t.Version = true, tls.VersionName(st.Version)
	switch {
	case len(st.VerifiedChains) > 0: // Go verified chain and host name
		t.ChainVerified, t.HostVerified = true, true
	case cfg.TLSConfig != nil && cfg.TLSConfig.VerifyPeerCertificate != nil:
		// pgx verifies the chain itself, not the host, for verify-ca and
		// for require with sslrootcert (libpq's rule); the connection
		// exists, so the chain passed.
		t.ChainVerified = true
	}
	return t
}

// Transport reads how this connection is secured.
func (c *Conn) Transport() Transport { return transportOf(c.pg, c.sslMode) }

// CheckTransport grades a connection's security: verified TLS passes;
// plaintext, an unverified certificate, or one whose host name is not
// checked is a Warn naming the connection, with the sslmode that fixes it.
// A unix socket passes (local, no TLS needed).
func CheckTransport(t Transport) Finding {
	f := Finding{Check: "tls"}
	full := "set sslmode=verify-full in postgres.url, with sslrootcert=<the CA file> unless the system roots sign the server's certificate"
	switch {
	case t.Socket:
		f.Found = t.Target + ": unix socket (local; no TLS needed)"
	case !t.TLS:
		f.Verdict = Warn
		f.Found = fmt.Sprintf("%s: plaintext (sslmode=%s): the password and every row cross the network unencrypted", t.Target, t.SSLMode)
		f.Fix = "turn ssl on on the server and " + full
	case !t.ChainVerified:
		f.Verdict = Warn
		f.Found = fmt.Sprintf("%s: %s, certificate not verified (sslmode=%s): anyone in the path can pose as the server", t.Target, t.Version, t.SSLMode)
		f.Fix = full
	case !t.HostVerified:
		f.Verdict = Warn
		f.Found = fmt.Sprintf("%s: %s, certificate chain verified but not its host name (sslmode=%s)", t.Target, t.Version, t.SSLMode)
		f.Fix = full
	default:
		f.Found = fmt.Sprintf("%s: %s, certificate verified (sslmode=%s)", t.Target, t.Version, t.SSLMode)
	}
	return f
}

// tlsFailure returns a *TLSError when err is a TLS failure of a connection
// to target (the server offers no TLS, or its certificate does not verify),
// else nil.
func tlsFailure(target, mode string, err error) error {
	if err == nil {
		return nil
	}
	var (
		cve *tls.CertificateVerificationError
		hne x509.HostnameError
		uae x509.UnknownAuthorityError
		cie x509.CertificateInvalidError
	)
	switch {
	// pgconn reports a server answering 'N' to the SSLRequest with this
	// text only (no sentinel error).
	case strings.Contains(err.Error(), "server refused TLS connection"):
		return &TLSError{Target: target, SSLMode: mode, Refused: true, Err: err}
	case errors.As(err, &cve), errors.As(err, &hne), errors.As(err, &uae), errors.As(err, &cie):
		return &TLSError{Target: target, SSLMode: mode, Err: err}
	}
	return nil
}
