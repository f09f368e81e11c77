package store

import (
	"errors"
	"math"
	"strings"
	"testing"
)

// TestClientConfig: Username and Password replace the URL's credentials
// (only when set), discovery is retried for as long as it takes, the
// client's own logging is routed or off, and a bad URL is named as
// store.url without quoting it (it may hold a password).
func TestClientConfig(t *testing.T) {
	for _, tc := range []struct {
		name, url, user, pass string
		wantUser, wantPass    string
	}{
		{"url credentials", "esdb://u:p@h:2113?tls=false", "", "", "u", "p"},
		{"settings replace them", "esdb://u:p@h:2113?tls=false", "admin", "secret", "admin", "secret"},
		{"password alone", "esdb://u:p@h:2113?tls=false", "", "secret", "u", "secret"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ec, err := ClientConfig{URL: tc.url, Username: tc.user, Password: tc.pass}.resolve()
			if err != nil {
				t.Fatal(err)
			}
			if ec.Username != tc.wantUser || ec.Password != tc.wantPass {
				t.Errorf("credentials %q/%q, want %q/%q", ec.Username, ec.Password, tc.wantUser, tc.wantPass)
			}
			if ec.Logger == nil {
				t.Error("no logger: the client would log on its own")
			}
			if ec.MaxDiscoverAttempts != math.MaxInt32 {
				t.Errorf("MaxDiscoverAttempts %d; want the one policy, MaxInt32", ec.MaxDiscoverAttempts)
			}
		})
	}
	_, err := ClientConfig{URL: "esdb://u:s3cret@h:2113/%zz"}.resolve() // url.Parse quotes the URL in its error
	var ue *URLError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "store.url") || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("resolve(bad url) = %v; want a *URLError naming store.url without the password", err)
	}
	// The official client cannot discover through esdb+discover:// with
	// several hosts (it dials the empty address): refused, not hung.
	if _, err := (ClientConfig{URL: "esdb+discover://a:2113,b:2113?tls=false"}).resolve(); !errors.As(err, &ue) || !strings.Contains(err.Error(), "esdb://node1:2113") {
		t.Fatalf("resolve(esdb+discover:// with two hosts) = %v; want a *URLError saying to list gossip seeds", err)
	}
	for _, ok := range []string{"esdb+discover://cluster:2113?tls=false", "esdb://a:2113,b:2113,c:2113?tls=false"} {
		if _, err := (ClientConfig{URL: ok}).resolve(); err != nil {
			t.Errorf("resolve(%s) = %v", ok, err)
		}
	}
	if got := URLPassword("esdb://u:s3cret@h:2113?tls=false"); got != "s3cret" {
		t.Errorf("URLPassword = %q", got)
	}
	if got := Target("esdb+discover://u:p@a:2113,b:2113"); got != "a:2113,b:2113" {
		t.Errorf("Target = %q; want the seeds without credentials", got)
	}
}
