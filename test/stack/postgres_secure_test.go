package stack

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// TestSecurePostgres: a secure cluster answers only TLS with a password
// (hostssl + scram-sha-256): the superuser's URL works, the same without
// TLS is refused by pg_hba.conf, a wrong password is refused, a client
// certificate logs in a CertUsers role, and the least-privilege role has
// REPLICATION and SELECT on its tables only.
func TestSecurePostgres(t *testing.T) {
	certs := NewCerts(t, "certrole")
	p := StartPostgres(t, WithPostgresTLS(PostgresTLS{Certs: certs, CertUsers: []string{"certrole"}}))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn := p.Connect(t, "postgres")
	var ssl bool
	if err := conn.QueryRow(ctx, "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").Scan(&ssl); err != nil || !ssl {
		t.Fatalf("superuser connection: ssl %v, err %v; want a TLS session", ssl, err)
	}
	p.Exec(t, "postgres", "CREATE TABLE t (id int PRIMARY KEY); CREATE TABLE other (id int PRIMARY KEY); CREATE ROLE certrole LOGIN")
	p.CreateLeastPrivilegeRole(t, "postgres", "app", "app-pw", "public.t")

	plain := strings.Replace(p.DatabaseURL("postgres"), "sslmode=verify-full", "sslmode=disable", 1)
	if _, err := pgx.Connect(ctx, plain); err == nil || !strings.Contains(err.Error(), "no pg_hba.conf entry") {
		t.Errorf("plaintext connection: err %v, want refused by pg_hba.conf", err)
	}
	role := p.RoleURL("app", "postgres")
	if _, err := pgx.Connect(ctx, role+"&sslmode=verify-full&password=wrong"); err == nil || !strings.Contains(err.Error(), "password authentication failed") {
		t.Errorf("wrong password: err %v, want password authentication failed", err)
	}
	app, err := pgx.Connect(ctx, role+"&sslmode=verify-full&password=app-pw")
	if err != nil {
		t.Fatalf("least-privilege role: %v", err)
	}
	defer app.Close(context.Background())
	var repl, super, selT, selOther bool
	if err := app.QueryRow(ctx, `SELECT rolreplication, rolsuper, has_table_privilege('public.t', 'SELECT'), has_table_privilege('public.other', 'SELECT')
FROM pg_roles WHERE rolname = current_user`).Scan(&repl, &super, &selT, &selOther); err != nil {
		t.Fatal(err)
	}
	if !repl || super || !selT || selOther {
		t.Errorf("app role: replication %v superuser %v select t %v select other %v; want true false true false", repl, super, selT, selOther)
	}
	cc, err := pgx.Connect(ctx, p.RoleURL("certrole", "postgres")+"&sslmode=verify-full&sslcert="+certs.ClientCert+"&sslkey="+certs.ClientKey)
	if err != nil {
		t.Fatalf("client certificate: %v", err)
	}
	cc.Close(context.Background())
}
