package store

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"
)

// The official client's TLS defaults are Chronicler's: a store URL without
// tls= uses TLS (tls=true), and verifies the server's certificate
// (tlsVerifyCert=true) against tlsCAFile, else the system roots, for the
// host named in the URL. Plaintext (tls=false) and an unverified
// certificate (tlsVerifyCert=false) are explicit opt-ins, which `check`
// reports (TransportIssue).

// TransportIssue says how the connection string leaves the store's
// connection open to the network ("" when it uses TLS and verifies the
// certificate), with the fix.
func (c *Client) TransportIssue() (found, fix string) {
	switch {
	case c.conf.DisableTLS:
		if c.conf.Username != "" {
			return "tls=false: plaintext (the store user's password and every event cross the network unencrypted)", "remove tls=false from store.url (TLS is the default) and name the CA with tlsCAFile= unless the system roots sign the server's certificate"
		}
		return "tls=false: plaintext", "remove tls=false from store.url (TLS is the default) and name the CA with tlsCAFile= unless the system roots sign the server's certificate"
	case c.conf.SkipCertificateVerification:
		return "tlsVerifyCert=false: certificate not verified (anyone in the path can pose as the store)", "remove tlsVerifyCert=false from store.url and name the CA that signed the server's certificate with tlsCAFile="
	}
	return "", ""
}

// TLSError: the store's certificate does not verify (unknown CA, another
// host name, expired). The official client only retries such a connection
// (its calls then never answer), so Connect finds it by a handshake of its
// own (CheckTLS).
type TLSError struct {
	Target string // host:port
	Err    error
}

func (e *TLSError) Error() string {
	return fmt.Sprintf("TLS with the store at %s: the server's certificate does not verify: %v (name the CA that signed it with tlsCAFile= in store.url, and connect by a host name the certificate lists)", e.Target, e.Err)
}

// Unwrap returns the handshake's error.
func (e *TLSError) Unwrap() error { return e.Err }

// CheckTLS makes a TLS handshake with each server of the connection string
// (the node, or every gossip seed), verifying as the official client does,
// and returns a *TLSError for the first certificate that does not verify;
// nil with tls=false, when every handshake verifies, or when a server
// cannot be reached at all (the caller's own call reports that).
func (c *Client) CheckTLS(ctx context.Context) error {
	if c.conf.DisableTLS {
		return nil
	}
	addrs := []string{c.conf.Address}
	if c.conf.Address == "" {
		addrs = addrs[:0]
		for _, s := range c.conf.GossipSeeds {
			addrs = append(addrs, net.JoinHostPort(s.Host, fmt.Sprint(s.Port)))
		}
	}
	for _, a := range addrs {
		host, _, err := net.SplitHostPort(a)
		if err != nil {
			continue
		}
		d := tls.Dialer{Config: &tls.Config{RootCAs: c.conf.RootCAs, ServerName: host, InsecureSkipVerify: c.conf.SkipCertificateVerification,
			NextProtos: []string{"h2"}, MinVersion: tls.VersionTLS12}}
		conn, err := d.DialContext(ctx, "tcp", a)
		if err == nil {
			conn.Close()
			continue
		}
		var (
			cve *tls.CertificateVerificationError
			hne x509.HostnameError
			uae x509.UnknownAuthorityError
			cie x509.CertificateInvalidError
		)
		if errors.As(err, &cve) || errors.As(err, &hne) || errors.As(err, &uae) || errors.As(err, &cie) {
			return &TLSError{Target: a, Err: err}
		}
	}
	return nil
}

// probeRevision is an expected revision no stream reaches: an append that
// expects it is refused, after the server checked the caller's access.
const probeRevision = 1 << 62

// Access is what a probe found of one permission on a stream.
type Access int

// The outcomes of a probe.
const (
	// Unknown: the probe failed otherwise (Err says how).
	Unknown Access = iota
	Allowed
	Denied
)

// ProbeWrite finds whether the store user may append to stream ($w)
// without writing anything: it appends one event expecting a revision the
// stream never reaches. KurrentDB checks access before the expected
// revision, so Access Denied means no write permission and a wrong
// expected version means the append would have been allowed.
func (c *Client) ProbeWrite(ctx context.Context, stream string) (Access, error) {
	_, err := c.db.AppendToStream(ctx, stream, esdb.AppendToStreamOptions{ExpectedRevision: esdb.Revision(probeRevision)},
		esdb.EventData{EventID: uuid.New(), EventType: "ChroniclerCheckProbe", ContentType: esdb.ContentTypeJson, Data: []byte("{}")})
	return probed(err)
}

// ProbeMetadataWrite is ProbeWrite for stream's metadata ($mw): capture
// sets $maxCount on its progress stream.
func (c *Client) ProbeMetadataWrite(ctx context.Context, stream string) (Access, error) {
	_, err := c.db.SetStreamMetadata(ctx, stream, esdb.AppendToStreamOptions{ExpectedRevision: esdb.Revision(probeRevision)}, esdb.StreamMetadata{})
	return probed(err)
}

func probed(err error) (Access, error) {
	switch {
	case err == nil:
		// Cannot happen (no stream reaches the revision); say so rather
		// than guess.
		return Unknown, errors.New("the probe append was accepted")
	case IsWrongVersion(err):
		return Allowed, nil
	case IsAccessDenied(err):
		return Denied, err
	}
	return Unknown, err
}
