package stack

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

// PostgresTLS makes a throwaway cluster secure, as managed Postgres
// services run: ssl = on with a certificate of the test CA, and a
// pg_hba.conf with hostssl lines only (no plaintext host line): every role
// authenticates with scram-sha-256 over TLS, the roles in CertUsers with
// their client certificate (hba "cert": the certificate's CN is the role).
// The superuser "postgres" gets a random password; DatabaseURL holds it.
type PostgresTLS struct {
	// Certs are the certificates (NewCerts). Required.
	Certs *Certs
	// WrongHost serves the certificate made for wrong.invalid instead of
	// the one for 127.0.0.1: a client verifying the host must refuse it
	// (the stack's own connections verify only the chain, verify-ca).
	WrongHost bool
	// CertUsers authenticate with a client certificate instead of a
	// password (database connections and replication alike).
	CertUsers []string
}

// WithPostgresTLS starts the cluster in secure mode (see PostgresTLS).
func WithPostgresTLS(t PostgresTLS) PostgresOption {
	return func(c *PostgresConfig) { c.TLS = &t }
}

// secureState is a secure cluster's files and superuser password.
type secureState struct {
	cfg        PostgresTLS
	password   string // the superuser's
	pwFile     string // initdb --pwfile
	cert, key  string // the server's, copies owned by the server's user
	ca         string // the CA (root for clients, ssl_ca_file for the server)
	clientRoot string // the CA file the test's clients use
}

// prepareSecure copies the certificates into the cluster's directory (the
// key owned by the server's user, mode 0600, or postgres refuses it) and
// writes the superuser's password file for initdb.
func (p *Postgres) prepareSecure(t *PostgresTLS) (*secureState, error) {
	if t.Certs == nil {
		return nil, fmt.Errorf("stack: PostgresTLS.Certs is required (stack.NewCerts)")
	}
	s := &secureState{cfg: *t, clientRoot: t.Certs.CAFile}
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	s.password = hex.EncodeToString(b)
	s.pwFile = filepath.Join(p.root, "superuser.pw")
	cert, key := t.Certs.ServerCert, t.Certs.ServerKey
	if t.WrongHost {
		cert, key = t.Certs.WrongHostCert, t.Certs.WrongHostKey
	}
	var err error
	for _, f := range []struct {
		dst  *string
		src  string
		mode os.FileMode
	}{{&s.cert, cert, 0o644}, {&s.key, key, 0o600}, {&s.ca, t.Certs.CAFile, 0o644}} {
		if *f.dst, err = copyFileFor(p.who, f.src, p.root, f.mode); err != nil {
			return nil, fmt.Errorf("stack: copying %s for postgres: %w", f.src, err)
		}
	}
	if err := os.WriteFile(s.pwFile, []byte(s.password+"\n"), 0o600); err != nil {
		return nil, err
	}
	if p.who != nil {
		if err := os.Chown(s.pwFile, int(p.who.uid), int(p.who.gid)); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// configure adds the TLS settings and writes pg_hba.conf: hostssl only.
func (s *secureState) configure(p *Postgres, settings map[string]string) error {
	settings["ssl"] = "on"
	settings["ssl_cert_file"] = "'" + s.cert + "'"
	settings["ssl_key_file"] = "'" + s.key + "'"
	settings["ssl_ca_file"] = "'" + s.ca + "'"
	settings["password_encryption"] = "'scram-sha-256'"
	var b strings.Builder
	b.WriteString("# written by chronicler's test stack: TLS only, no plaintext host line\n")
	for _, u := range s.cfg.CertUsers {
		fmt.Fprintf(&b, "hostssl all %s 127.0.0.1/32 cert\nhostssl replication %s 127.0.0.1/32 cert\n", u, u)
	}
	b.WriteString("hostssl all all 127.0.0.1/32 scram-sha-256\nhostssl replication all 127.0.0.1/32 scram-sha-256\n")
	path := filepath.Join(p.dataDir(), "pg_hba.conf")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		return err
	}
	if p.who != nil {
		return os.Chown(path, int(p.who.uid), int(p.who.gid))
	}
	return nil
}

// superURL is the superuser's URL: TLS verified against the CA (only the
// chain when the server shows the wrong-host certificate).
func (s *secureState) superURL(p *Postgres, db string) string {
	mode := "verify-full"
	if s.cfg.WrongHost {
		mode = "verify-ca"
	}
	return fmt.Sprintf("postgres://postgres:%s@127.0.0.1:%d/%s?sslmode=%s&sslrootcert=%s",
		s.password, p.Port, url.PathEscape(db), mode, url.QueryEscape(s.clientRoot))
}

// Secure reports whether the cluster runs in secure mode.
func (p *Postgres) Secure() bool { return p.sec != nil }

// CAFile is the CA file clients verify a secure cluster's certificate
// with ("" in plaintext mode).
func (p *Postgres) CAFile() string {
	if p.sec == nil {
		return ""
	}
	return p.sec.clientRoot
}

// RoleURL is a URL for role on db without a password and without sslmode:
// TLS settings are the caller's (the URL names the CA as sslrootcert in
// secure mode; a plaintext cluster gets sslmode=disable, since it has no
// TLS to offer).
func (p *Postgres) RoleURL(role, db string) string {
	u := fmt.Sprintf("postgres://%s@127.0.0.1:%d/%s", url.PathEscape(role), p.Port, url.PathEscape(db))
	if p.sec == nil {
		return u + "?sslmode=disable"
	}
	return u + "?sslrootcert=" + url.QueryEscape(p.sec.clientRoot)
}

// CreateLeastPrivilegeRole creates role in db with exactly what
// Chronicler's capture needs when the tables' owner makes the publication:
// LOGIN REPLICATION, a password, and SELECT on each table ("schema.table").
// The caller creates the publication as the owner (the superuser here).
func (p *Postgres) CreateLeastPrivilegeRole(t testing.TB, db, role, password string, tables ...string) {
	t.Helper()
	q := pgx.Identifier{role}.Sanitize()
	sql := fmt.Sprintf("CREATE ROLE %s LOGIN REPLICATION PASSWORD '%s';\n", q, strings.ReplaceAll(password, "'", "''"))
	for _, tbl := range tables {
		schema, name, _ := strings.Cut(tbl, ".")
		sql += fmt.Sprintf("GRANT SELECT ON %s TO %s;\n", pgx.Identifier{schema, name}.Sanitize(), q)
	}
	p.Exec(t, db, sql)
}
