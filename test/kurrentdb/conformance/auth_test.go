package conformance_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/shared"
	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Security as KurrentDB 24.10 applies it to the calls Chronicler makes
// (LegacyStreamPermissionAssertion, the default ACLs of SystemSettings):
// authentication of basic credentials over TLS, stream access by ACL. See
// secure_main_test.go for the server the cases run against.

func secureClient(t testing.TB, acct *[2]string) *esdb.Client {
	t.Helper()
	cfg, err := esdb.ParseConnectionString(secureURLAs(acct))
	if err != nil {
		t.Fatalf("parsing the secure URL: %v", err)
	}
	cfg.Logger = esdb.NoopLogging()
	c, err := esdb.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func admin(t testing.TB) *esdb.Client { return secureClient(t, &secure.admin) }
func ops(t testing.TB) *esdb.Client   { return secureClient(t, &secure.ops) }

func appendTo(c *esdb.Client, t testing.TB, stream string, n int) error {
	_, err := c.AppendToStream(ctx(t), stream, esdb.AppendToStreamOptions{}, evs(n, "Conformance")...)
	return err
}

// readErr reads stream (nil: $all) backwards, one event, and returns the
// error of the call or of its first Recv (io.EOF and not-found are nil).
func readErr(c *esdb.Client, t testing.TB, stream string) error {
	var rs *esdb.ReadStream
	var err error
	if stream == "" {
		rs, err = c.ReadAll(ctx(t), esdb.ReadAllOptions{Direction: esdb.Backwards, From: esdb.End{}}, 1)
	} else {
		rs, err = c.ReadStream(ctx(t), stream, esdb.ReadStreamOptions{Direction: esdb.Backwards, From: esdb.End{}}, 1)
	}
	if err == nil {
		defer rs.Close()
		_, err = rs.Recv()
	}
	if errors.Is(err, io.EOF) || codeOf(err) == esdb.ErrorCodeResourceNotFound {
		return nil
	}
	return err
}

func wantCode(t testing.TB, what string, err error, want esdb.ErrorCode, wantGRPC string) {
	t.Helper()
	if codeOf(err) != want || grpcCode(err) != wantGRPC {
		t.Errorf("%s: %v (client code %d, gRPC %s), want client code %d, gRPC %s", what, err, codeOf(err), grpcCode(err), want, wantGRPC)
	}
}

func setACL(t testing.TB, stream string, acl *esdb.Acl) {
	t.Helper()
	var m esdb.StreamMetadata
	m.SetAcl(*acl)
	if _, err := admin(t).SetStreamMetadata(ctx(t), stream, esdb.AppendToStreamOptions{}, m); err != nil {
		t.Fatalf("admin setting the ACL of %s: %v", stream, err)
	}
}

// TestAuthWrongPasswordIsUnauthenticated: a known user with a wrong
// password is Unauthenticated, for reads and appends alike. The append's
// answer is read with the generated client: the server answers when the
// call opens, before it reads a message (as the real server's middleware
// does), and the official client v4.2.0 reports a Send that meets that
// answer as "could not send append request: EOF" without reading it (it
// did so once in CI), whereas rawAppendOn reads the status after a failed
// Send.
func TestAuthWrongPasswordIsUnauthenticated(t *testing.T) {
	bad := [2]string{secure.ops[0], secure.ops[1] + "-wrong"}
	c := secureClient(t, &bad)
	stream := newStream("auth")
	res := rawAppendOn(t, grpcConnTo(t, secureURLAs(&bad)), stream, rawJSON("Conformance", `{}`))
	if status.Code(res.err) != codes.Unauthenticated {
		t.Errorf("append with a wrong password: %v (gRPC %s), want gRPC Unauthenticated", res.err, status.Code(res.err))
	}
	wantCode(t, "read with a wrong password", readErr(c, t, stream), esdb.ErrorCodeUnauthenticated, codes.Unauthenticated.String())
	unknown := [2]string{"nobody-" + uuid.NewString()[:8], "x"}
	wantCode(t, "read as an unknown user", readErr(secureClient(t, &unknown), t, stream), esdb.ErrorCodeUnauthenticated, codes.Unauthenticated.String())
}

// TestAuthAnonymousHasNoStreamAccess: without credentials (TLS on) no
// stream may be read or written: AllowAnonymousStreamAccess is off by
// default, so the ACL's "$all" means every authenticated user.
func TestAuthAnonymousHasNoStreamAccess(t *testing.T) {
	c := secureClient(t, nil)
	stream := newStream("auth")
	wantCode(t, "anonymous append", appendTo(c, t, stream, 1), esdb.ErrorCodeAccessDenied, codes.PermissionDenied.String())
	wantCode(t, "anonymous read", readErr(c, t, stream), esdb.ErrorCodeAccessDenied, codes.PermissionDenied.String())
}

// TestAuthUserStreamsForAuthenticatedUsers: with the default ACLs any
// authenticated user reads, writes and deletes user streams and their
// metadata; system streams ($-prefixed) are for $admins.
func TestAuthUserStreamsForAuthenticatedUsers(t *testing.T) {
	o := ops(t)
	stream := newStream("auth")
	if err := appendTo(o, t, stream, 2); err != nil {
		t.Fatalf("ops appending to a user stream: %v", err)
	}
	if err := readErr(o, t, stream); err != nil {
		t.Errorf("ops reading a user stream: %v", err)
	}
	var m esdb.StreamMetadata
	m.SetMaxCount(10)
	if _, err := o.SetStreamMetadata(ctx(t), stream, esdb.AppendToStreamOptions{}, m); err != nil {
		t.Errorf("ops writing a user stream's metadata: %v", err)
	}
	if _, err := o.GetStreamMetadata(ctx(t), stream, esdb.ReadStreamOptions{}); err != nil {
		t.Errorf("ops reading a user stream's metadata: %v", err)
	}
	if _, err := o.DeleteStream(ctx(t), stream, esdb.DeleteStreamOptions{}); err != nil {
		t.Errorf("ops deleting a user stream: %v", err)
	}
	sys := "$" + newStream("auth")
	wantCode(t, "ops appending to a system stream", appendTo(o, t, sys, 1), esdb.ErrorCodeAccessDenied, codes.PermissionDenied.String())
	if err := appendTo(admin(t), t, sys, 1); err != nil {
		t.Fatalf("admin appending to a system stream: %v", err)
	}
	wantCode(t, "ops reading a system stream", readErr(o, t, sys), esdb.ErrorCodeAccessDenied, codes.PermissionDenied.String())
}

// TestAuthStreamACL: a stream's own $acl decides the actions it names,
// for users and groups; the others fall back to the default; $admins
// bypass it.
func TestAuthStreamACL(t *testing.T) {
	o := ops(t)
	stream := newStream("auth")
	if err := appendTo(admin(t), t, stream, 1); err != nil {
		t.Fatal(err)
	}
	setACL(t, stream, &esdb.Acl{})
	var acl esdb.Acl
	acl.AddWriteRoles("$admins")
	acl.AddReadRoles(secure.ops[0])
	acl.AddDeleteRoles("$admins")
	setACL(t, stream, &acl)
	wantCode(t, "ops appending with $w [$admins]", appendTo(o, t, stream, 1), esdb.ErrorCodeAccessDenied, codes.PermissionDenied.String())
	if err := readErr(o, t, stream); err != nil {
		t.Errorf("ops reading with $r [ops]: %v", err)
	}
	_, err := o.DeleteStream(ctx(t), stream, esdb.DeleteStreamOptions{})
	wantCode(t, "ops deleting with $d [$admins]", err, esdb.ErrorCodeAccessDenied, codes.PermissionDenied.String())
	if err := appendTo(admin(t), t, stream, 1); err != nil {
		t.Errorf("admin appending despite $w [$admins]: %v", err)
	}
	var byGroup esdb.Acl
	byGroup.AddReadRoles("$ops")
	byGroup.AddWriteRoles("$ops")
	setACL(t, stream, &byGroup)
	if err := appendTo(o, t, stream, 1); err != nil {
		t.Errorf("ops appending with $w [$ops] (its group): %v", err)
	}
}

// TestAuthReadAllACL: reading or subscribing to $all is for $admins, unless
// $all's own metadata ($$$all) grants read; writing $all is denied to all.
func TestAuthReadAllACL(t *testing.T) {
	o := ops(t)
	wantCode(t, "ops reading $all", readErr(o, t, ""), esdb.ErrorCodeAccessDenied, codes.PermissionDenied.String())
	_, err := o.SubscribeToAll(ctx(t), esdb.SubscribeToAllOptions{From: esdb.End{}})
	wantCode(t, "ops subscribing to $all", err, esdb.ErrorCodeAccessDenied, codes.PermissionDenied.String())
	if err := readErr(admin(t), t, ""); err != nil {
		t.Fatalf("admin reading $all: %v", err)
	}
	prev := allMetadata(t)
	t.Cleanup(func() { restoreAllMetadata(t, prev) })
	var acl esdb.Acl
	acl.AddReadRoles(secure.ops[0])
	setACL(t, "$all", &acl)
	if err := readErr(o, t, ""); err != nil {
		t.Errorf("ops reading $all with $$$all granting it $r: %v", err)
	}
	sub, err := o.SubscribeToAll(ctx(t), esdb.SubscribeToAllOptions{From: esdb.End{}})
	if err != nil {
		t.Errorf("ops subscribing to $all with $$$all granting it $r: %v", err)
	} else {
		sub.Close()
	}
}

// allMetadata is $$$all's last event's data (nil when none).
func allMetadata(t testing.TB) []byte {
	t.Helper()
	rs, err := admin(t).ReadStream(ctx(t), "$$$all", esdb.ReadStreamOptions{Direction: esdb.Backwards, From: esdb.End{}}, 1)
	if err != nil {
		if codeOf(err) == esdb.ErrorCodeResourceNotFound {
			return nil
		}
		t.Fatalf("admin reading $$$all: %v", err)
	}
	defer rs.Close()
	ev, err := rs.Recv()
	if err != nil {
		return nil
	}
	return ev.Event.Data
}

func restoreAllMetadata(t testing.TB, prev []byte) {
	if prev == nil {
		prev = []byte(`{}`)
	}
	_, err := admin(t).AppendToStream(context.Background(), "$$$all", esdb.AppendToStreamOptions{},
		esdb.EventData{EventID: uuid.New(), EventType: "$metadata", ContentType: esdb.ContentTypeJson, Data: prev})
	if err != nil {
		t.Errorf("putting $$$all back: %v", err)
	}
}

// TestAuthSettingsDefaultACL: $settings' $userStreamAcl replaces the
// built-in default for user streams without an ACL of their own; a stream's
// own ACL still wins.
func TestAuthSettingsDefaultACL(t *testing.T) {
	o := ops(t)
	own := newStream("auth")
	var acl esdb.Acl
	acl.AddWriteRoles(secure.ops[0])
	setACL(t, own, &acl)
	prev := lastData(t, "$settings")
	t.Cleanup(func() {
		if prev == nil {
			prev = []byte(`{"$userStreamAcl":{"$r":"$all","$w":"$all","$d":"$all","$mr":"$all","$mw":"$all"},"$systemStreamAcl":{"$r":"$admins","$w":"$admins","$d":"$admins","$mr":"$admins","$mw":"$admins"}}`)
		}
		writeSettings(t, prev)
	})
	writeSettings(t, []byte(`{"$userStreamAcl":{"$r":"$all","$w":"$admins","$d":"$admins","$mr":"$all","$mw":"$admins"},"$systemStreamAcl":{"$r":"$admins","$w":"$admins","$d":"$admins","$mr":"$admins","$mw":"$admins"}}`))
	stream := newStream("auth")
	wantCode(t, "ops appending with $userStreamAcl $w [$admins]", appendTo(o, t, stream, 1), esdb.ErrorCodeAccessDenied, codes.PermissionDenied.String())
	if err := readErr(o, t, stream); err != nil {
		t.Errorf("ops reading with $userStreamAcl $r $all: %v", err)
	}
	if err := appendTo(o, t, own, 1); err != nil {
		t.Errorf("ops appending to a stream whose own $acl grants it $w: %v", err)
	}
}

func lastData(t testing.TB, stream string) []byte {
	t.Helper()
	rs, err := admin(t).ReadStream(ctx(t), stream, esdb.ReadStreamOptions{Direction: esdb.Backwards, From: esdb.End{}}, 1)
	if err != nil {
		return nil
	}
	defer rs.Close()
	ev, err := rs.Recv()
	if err != nil {
		return nil
	}
	return ev.Event.Data
}

func writeSettings(t testing.TB, data []byte) {
	if !json.Valid(data) {
		t.Fatalf("settings %s are not JSON", data)
	}
	_, err := admin(t).AppendToStream(context.Background(), "$settings", esdb.AppendToStreamOptions{},
		esdb.EventData{EventID: uuid.New(), EventType: "$settings", ContentType: esdb.ContentTypeJson, Data: data})
	if err != nil {
		t.Fatalf("admin writing $settings: %v", err)
	}
}

// TestAuthBatchAppendAccessDenied: in a BatchAppend call, a request to a
// stream the user may not write is answered PermissionDenied "AccessDenied"
// (an AccessDenied detail) on its correlation id, and the call goes on: a
// later request to a writable stream succeeds.
func TestAuthBatchAppendAccessDenied(t *testing.T) {
	denied := newStream("auth")
	if err := appendTo(admin(t), t, denied, 1); err != nil {
		t.Fatal(err)
	}
	var acl esdb.Acl
	acl.AddWriteRoles("$admins")
	setACL(t, denied, &acl)
	b := openBatch(t, grpcConnTo(t, secureURLAs(&secure.ops)))
	st := errorOf(t, b.append(t, denied, esdb.Any{}, evs(1, "Conformance")...), codes.PermissionDenied)
	if st.GetMessage() != "AccessDenied" {
		t.Errorf("message %q, want AccessDenied", st.GetMessage())
	}
	detailOf[*shared.AccessDenied](t, st)
	successOf(t, b.append(t, newStream("auth"), esdb.Any{}, evs(1, "Conformance")...))
	rs, err := admin(t).ReadStream(ctx(t), denied, esdb.ReadStreamOptions{}, 100)
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	n := 0
	for {
		if _, err := rs.Recv(); err != nil {
			break
		}
		n++
	}
	if n != 1 {
		t.Errorf("%s holds %d events after the denied append, want 1", denied, n)
	}
}

// TestAuthWrongHostCertificateRefused: the official client refuses a
// server certificate that does not name the host it dials, though a CA it
// trusts signed it (in-process servers only: a real server's certificate
// is its operator's).
func TestAuthWrongHostCertificateRefused(t *testing.T) {
	if !secure.inProcessServers {
		t.Skip("needs the in-process wrong-host server; " + secureURLEnv + " names a real server")
	}
	rest, _ := strings.CutPrefix(secure.wrongHostURL, "esdb://")
	cfg, err := esdb.ParseConnectionString("esdb://admin:changeit@" + rest)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Logger = esdb.NoopLogging()
	cfg.MaxDiscoverAttempts = 1
	c, err := esdb.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	err = readErr(c, t, newStream("auth"))
	if err == nil {
		t.Fatal("the client read from a server whose certificate names wrong.invalid, not 127.0.0.1")
	}
	t.Logf("refused: %v", err)

	// The control: the same server, verified against the same CA for the
	// host its certificate names, completes the handshake, so what the
	// client refused is the host name, not the CA or a server that is down.
	pem, err := os.ReadFile(secure.wrongHostCAFile)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		t.Fatalf("no certificate in %s", secure.wrongHostCAFile)
	}
	u, err := url.Parse(secure.wrongHostURL)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := tls.Dial("tcp", u.Host, &tls.Config{RootCAs: roots, ServerName: "wrong.invalid", NextProtos: []string{"h2"}})
	if err != nil {
		t.Fatalf("TLS handshake with the wrong-host server as wrong.invalid, with the CA: %v; want it to succeed (the refusal above must be the host name's)", err)
	}
	conn.Close()
}
