package postgres

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/chronicler-dev/chronicler/test/stack"
)

// TestDefaultSSLModeVerifies: a connection string without sslmode gets
// verify-full (TLS, no plaintext fallback, the host name checked), in URL
// and key=value form; an explicit sslmode and PGSSLMODE are left to apply.
func TestDefaultSSLModeVerifies(t *testing.T) {
	t.Setenv("PGSSLMODE", "")
	for _, u := range []string{"postgres://u@db.internal:5432/app", "postgres://u@db.internal:5432/app?application_name=x", "host=db.internal user=u dbname=app", "postgres://u@db.internal:5432,db.internal:5433/app"} {
		cfg, mode, err := connConfigMode(ConnSettings{URL: u}, nil)
		if err != nil {
			t.Fatalf("%s: %v", u, err)
		}
		tc := cfg.TLSConfig
		plainFallback := false
		for _, f := range cfg.Fallbacks { // a multi-host URL's other hosts, never without TLS
			plainFallback = plainFallback || f.TLSConfig == nil || f.TLSConfig.InsecureSkipVerify
		}
		if tc == nil {
			t.Errorf("%s: mode %q, no TLS; want verify-full", u, mode)
		} else if mode != "verify-full" || tc.InsecureSkipVerify || tc.ServerName != "db.internal" || plainFallback {
			t.Errorf("%s: mode %q, TLS verifying %q (skip %v), plaintext fallback %v; want verify-full: TLS verifying db.internal, no plaintext fallback", u, mode, tc.ServerName, tc.InsecureSkipVerify, plainFallback)
		}
	}
	for _, u := range []string{"postgres://u@db/app?sslmode=disable", "host=db user=u sslmode=disable", "postgres://u@db1:5432,db2:5433/app?sslmode=disable"} {
		cfg, mode, err := connConfigMode(ConnSettings{URL: u}, nil)
		if err != nil || mode != "disable" || cfg.TLSConfig != nil {
			t.Errorf("%s: mode %q, TLS %v, err %v; want plaintext as asked", u, mode, cfg.TLSConfig, err)
		}
	}
	t.Setenv("PGSSLMODE", "require")
	cfg, mode, err := connConfigMode(ConnSettings{URL: "postgres://u@db/app"}, nil)
	if err != nil || mode != "require" || cfg.TLSConfig == nil || !cfg.TLSConfig.InsecureSkipVerify {
		t.Errorf("PGSSLMODE=require: mode %q, err %v; want require (the environment's default applies)", mode, err)
	}
}

// TestTLSByDefault: against real servers, a connection string without
// sslmode refuses a server that offers no TLS (the error says to set
// sslmode=disable in postgres.url) and a server whose certificate names
// another host, and reports a verified connection as such; sslmode=disable
// and sslmode=require are reported as plaintext and unverified.
func TestTLSByDefault(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	t.Setenv("PGSSLMODE", "")
	certs := stack.NewCerts(t, "")

	plain := stack.StartPostgres(t)
	noMode := strings.Replace(plain.URL(), "?sslmode=disable", "", 1)
	_, err := Connect(ctx, ConnSettings{URL: noMode})
	var te *TLSError
	if !errors.As(err, &te) || !te.Refused || !strings.Contains(err.Error(), "set sslmode=disable in postgres.url") {
		t.Errorf("plaintext server, no sslmode: %v; want a TLSError saying to set sslmode=disable in postgres.url", err)
	}
	c, err := Connect(ctx, ConnSettings{URL: plain.URL()})
	if err != nil {
		t.Fatal(err)
	}
	f := CheckTransport(c.Transport())
	c.Close(ctx)
	if f.Verdict != Warn || !strings.Contains(f.Found, "127.0.0.1:") || !strings.Contains(f.Found, ": plaintext") || !strings.Contains(f.Fix, "sslmode=verify-full") {
		t.Errorf("sslmode=disable: %+v; want a warning naming the connection as plaintext", f)
	}

	wrong := stack.StartPostgres(t, stack.WithPostgresTLS(stack.PostgresTLS{Certs: certs, WrongHost: true}))
	wrong.Exec(t, "postgres", "CREATE ROLE app LOGIN PASSWORD 'pw'")
	_, err = Connect(ctx, ConnSettings{URL: wrong.RoleURL("app", "postgres"), Password: "pw"})
	if !errors.As(err, &te) || te.Refused {
		t.Errorf("wrong-host certificate, no sslmode: %v; want a TLSError (certificate does not verify)", err)
	} else {
		t.Logf("refused: %v", err)
	}

	good := stack.StartPostgres(t, stack.WithPostgresTLS(stack.PostgresTLS{Certs: certs}))
	good.Exec(t, "postgres", "CREATE ROLE app LOGIN PASSWORD 'pw'")
	c, err = Connect(ctx, ConnSettings{URL: good.RoleURL("app", "postgres"), Password: "pw"})
	if err != nil {
		t.Fatalf("secure server, CA given, no sslmode: %v", err)
	}
	f = CheckTransport(c.Transport())
	c.Close(ctx)
	if f.Verdict != Pass || !strings.Contains(f.Found, "certificate verified (sslmode=verify-full)") {
		t.Errorf("verified: %+v", f)
	}
	c, err = Connect(ctx, ConnSettings{URL: good.RoleURL("app", "postgres") + "&sslmode=require", Password: "pw"})
	if err != nil {
		t.Fatal(err)
	}
	f = CheckTransport(c.Transport())
	c.Close(ctx)
	// require with sslrootcert verifies the chain, not the host (libpq's rule).
	if f.Verdict != Warn || !strings.Contains(f.Found, "chain verified but not its host name (sslmode=require)") {
		t.Errorf("require with sslrootcert: %+v; want chain verified, host not", f)
	}
	noRoot, _, _ := strings.Cut(good.RoleURL("app", "postgres"), "?")
	noRoot += "?sslmode=require"
	c, err = Connect(ctx, ConnSettings{URL: noRoot, Password: "pw"})
	if err != nil {
		t.Fatal(err)
	}
	f = CheckTransport(c.Transport())
	c.Close(ctx)
	if f.Verdict != Warn || !strings.Contains(f.Found, "certificate not verified (sslmode=require)") {
		t.Errorf("require without a root: %+v; want certificate not verified", f)
	}
}

// TestPasswordFileIsReadPerConnection: after the role's password changes and
// the file is rewritten, the next connection of the same settings uses the
// new password, without a restart; the settings frozen with the old
// password (what reading the file once would give) fail.
func TestPasswordFileIsReadPerConnection(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	certs := stack.NewCerts(t, "")
	p := stack.StartPostgres(t, stack.WithPostgresTLS(stack.PostgresTLS{Certs: certs}))
	p.Exec(t, "postgres", "CREATE ROLE app LOGIN PASSWORD 'first'")
	file := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(file, []byte("first\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cs := ConnSettings{URL: p.RoleURL("app", "postgres"), PasswordFile: file}
	c, err := Connect(ctx, cs)
	if err != nil {
		t.Fatalf("first password: %v", err)
	}
	c.Close(ctx)
	p.Exec(t, "postgres", "ALTER ROLE app PASSWORD 'second'")
	if err := os.WriteFile(file, []byte("second\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if c, err = Connect(ctx, cs); err != nil {
		t.Fatalf("after rotation: %v", err)
	}
	c.Close(ctx)
	if _, err := Connect(ctx, ConnSettings{URL: p.RoleURL("app", "postgres"), Password: "first"}); err == nil {
		t.Fatal("the old password still logs in: the rotation proved nothing")
	}
	if err := os.Remove(file); err != nil {
		t.Fatal(err)
	}
	_, err = Connect(ctx, cs)
	var ce *ConfigError
	if !errors.As(err, &ce) || ce.Field != "password_file" || !strings.Contains(err.Error(), file) {
		t.Errorf("missing file: %v; want a ConfigError naming password_file and the file", err)
	}
}

// TestClientCertificate: with sslcert and sslkey in the URL and no
// password, a role whose hba line is "hostssl ... cert" opens both an
// ordinary and a replication connection (the client-certificate variant of
// a secure server), verified by default.
func TestClientCertificate(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	t.Setenv("PGSSLMODE", "")
	certs := stack.NewCerts(t, "chronicler")
	p := stack.StartPostgres(t, stack.WithPostgresTLS(stack.PostgresTLS{Certs: certs, CertUsers: []string{"chronicler"}}))
	p.Exec(t, "postgres", "CREATE ROLE chronicler LOGIN REPLICATION")
	cs := ConnSettings{URL: p.RoleURL("chronicler", "postgres") + "&sslcert=" + certs.ClientCert + "&sslkey=" + certs.ClientKey}
	c, err := Connect(ctx, cs)
	if err != nil {
		t.Fatalf("client certificate: %v", err)
	}
	srv, err := c.ReadServer(ctx)
	f := CheckTransport(c.Transport())
	c.Close(ctx)
	if err != nil || srv.Role != "chronicler" || f.Verdict != Pass {
		t.Errorf("client certificate: role %q, %v, transport %+v; want chronicler, verified", srv.Role, err, f)
	}
	cfg, err := connConfig(cs, map[string]string{"replication": "database"})
	if err != nil {
		t.Fatal(err)
	}
	rc, err := pgconn.ConnectConfig(ctx, &cfg.Config)
	if err != nil {
		t.Fatalf("replication connection with a client certificate: %v", err)
	}
	rc.Close(ctx)
	if _, err := Connect(ctx, ConnSettings{URL: p.RoleURL("chronicler", "postgres")}); err == nil {
		t.Error("connected without the client certificate: the hba cert line proved nothing")
	}
}

// TestRunStopsOnTLSFailure: Run does not retry a TLS failure (a retry does
// not mend it): against a server without TLS and a URL without sslmode,
// and against a server whose certificate names another host, it returns a
// *TLSError naming the server instead of reconnecting until its context
// ends (which would return nil).
func TestRunStopsOnTLSFailure(t *testing.T) {
	t.Setenv("PGSSLMODE", "")
	certs := stack.NewCerts(t, "")
	plain := stack.StartPostgres(t)
	wrong := stack.StartPostgres(t, stack.WithPostgresTLS(stack.PostgresTLS{Certs: certs, WrongHost: true}))
	wrong.Exec(t, "postgres", "CREATE ROLE app LOGIN REPLICATION PASSWORD 'pw'")
	for _, tc := range []struct {
		name    string
		cfg     Config
		port    int
		refused bool
	}{
		{"server without TLS", Config{URL: strings.Replace(plain.URL(), "?sslmode=disable", "", 1)}, plain.Port, true},
		{"certificate for another host", Config{URL: wrong.RoleURL("app", "postgres"), Password: "pw"}, wrong.Port, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			cfg.Slot, cfg.Publication, cfg.Tables, cfg.HeartbeatInterval = "chron", "chron_pub", []string{"a"}, -1
			cfg.ReconnectMin, cfg.ReconnectMax = 10*time.Millisecond, 10*time.Millisecond
			err := runOnce(t, cfg)
			var te *TLSError
			if !errors.As(err, &te) || te.Refused != tc.refused || !strings.Contains(err.Error(), fmt.Sprintf("127.0.0.1:%d/postgres", tc.port)) {
				t.Fatalf("Run = %v; want a *TLSError (refused %v) naming 127.0.0.1:%d/postgres, not retried", err, tc.refused, tc.port)
			}
		})
	}
}
