package conformance_test

import (
	"fmt"
	"net/url"
	"os"
	"strings"

	"github.com/chronicler-dev/chronicler/test/kurrentdb"
	"github.com/chronicler-dev/chronicler/test/stack"
)

// The security cases (auth_test.go) need a server with TLS and users.
// Against a real KurrentDB, CHRONICLER_TEST_KURRENTDB_SECURE_URL names one
// (no credentials in it: esdb://host:2113?tls=true&tlsCAFile=ca.crt), and
// the suite uses its two built-in accounts, admin ($admins) and ops ($ops,
// which has no stream rights of its own: an ordinary authenticated user for
// the ACLs), with the default password changeit unless
// CHRONICLER_TEST_KURRENTDB_ADMIN / _OPS say user:password. The cases
// change only streams of their own, except TestAuthReadAllACL ($$$all) and
// TestAuthSettingsDefaultACL ($settings), which put back what they found.
// Without the variable, an in-process server with a throwaway CA and
// DefaultUsers runs them.
const secureURLEnv = "CHRONICLER_TEST_KURRENTDB_SECURE_URL"

var secure struct {
	url              string // without credentials
	admin, ops       [2]string
	wrongHostURL     string // the in-process server only: a server whose certificate names another host
	wrongHostCAFile  string
	inProcessServers bool
}

func account(env, def string) [2]string {
	v := os.Getenv(env)
	if v == "" {
		v = def
	}
	u, p, _ := strings.Cut(v, ":")
	return [2]string{u, p}
}

func startSecure() (stop func(), code int) {
	secure.admin = account("CHRONICLER_TEST_KURRENTDB_ADMIN", "admin:changeit")
	secure.ops = account("CHRONICLER_TEST_KURRENTDB_OPS", "ops:changeit")
	if u := os.Getenv(secureURLEnv); u != "" {
		secure.url = u
		return func() {}, 0
	}
	dir, err := os.MkdirTemp("", "chronicler-conformance-certs-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return nil, 1
	}
	certs, err := stack.MakeCerts(dir, "")
	if err != nil {
		fmt.Fprintln(os.Stderr, "making test certificates:", err)
		os.RemoveAll(dir)
		return nil, 1
	}
	srv, err := kurrentdb.Start(kurrentdb.Options{
		TLS:   &kurrentdb.TLSOptions{CertFile: certs.ServerCert, KeyFile: certs.ServerKey, CAFile: certs.CAFile},
		Users: kurrentdb.DefaultUsers(),
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "starting the secure in-process server:", err)
		os.RemoveAll(dir)
		return nil, 1
	}
	wrong, err := kurrentdb.Start(kurrentdb.Options{
		TLS:   &kurrentdb.TLSOptions{CertFile: certs.WrongHostCert, KeyFile: certs.WrongHostKey, CAFile: certs.CAFile},
		Users: kurrentdb.DefaultUsers(),
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "starting the wrong-host in-process server:", err)
		srv.Close()
		os.RemoveAll(dir)
		return nil, 1
	}
	secure.url, secure.wrongHostURL, secure.wrongHostCAFile, secure.inProcessServers = srv.URL(), wrong.URL(), certs.CAFile, true
	return func() { srv.Close(); wrong.Close(); os.RemoveAll(dir) }, 0
}

// secureURLAs is the secure server's URL with credentials (a nil account:
// none).
func secureURLAs(acct *[2]string) string {
	if acct == nil {
		return secure.url
	}
	rest, _ := strings.CutPrefix(secure.url, "esdb://")
	return "esdb://" + url.UserPassword(acct[0], acct[1]).String() + "@" + rest
}
