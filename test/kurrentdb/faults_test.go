package kurrentdb_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/chronicler-dev/chronicler/test/kurrentdb"
	"github.com/chronicler-dev/chronicler/test/kurrentdb/kurrentdbtest"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func code(err error) esdb.ErrorCode {
	var e *esdb.Error
	if errors.As(err, &e) {
		return e.Code()
	}
	return -1
}

func count(t *testing.T, db *esdb.Client, stream string) int {
	t.Helper()
	return len(readIDs(t, db, stream))
}

// TestInjectedWriteErrors: each injected error reaches the client as the
// code it maps it to, and the write is performed only with FailAfterCommit.
func TestInjectedWriteErrors(t *testing.T) {
	cases := []struct {
		name   string
		faults kurrentdb.Faults
		want   esdb.ErrorCode
		stored int
	}{
		{"unavailable", kurrentdb.Faults{UnavailableRate: 1}, esdb.ErrorUnavailable, 0},
		{"aborted", kurrentdb.Faults{AbortedRate: 1}, esdb.ErrorAborted, 0},
		{"aborted after commit", kurrentdb.Faults{AbortedRate: 1, FailAfterCommit: true}, esdb.ErrorAborted, 1},
		{"unavailable after commit, with latency", kurrentdb.Faults{UnavailableRate: 1, FailAfterCommit: true, AppendLatency: time.Millisecond, AppendLatencyJitter: time.Millisecond}, esdb.ErrorUnavailable, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := kurrentdbtest.Start(t, kurrentdb.Options{})
			db := kurrentdbtest.Client(t, srv.URL())
			if err := srv.SetFaults(tc.faults); err != nil {
				t.Fatal(err)
			}
			_, err := db.AppendToStream(context.Background(), "faulty", esdb.AppendToStreamOptions{}, esdbEvent())
			if code(err) != tc.want {
				t.Fatalf("append: err = %v (code %d), want code %d", err, code(err), tc.want)
			}
			_, err = db.DeleteStream(context.Background(), "faulty", esdb.DeleteStreamOptions{})
			if code(err) != tc.want {
				t.Fatalf("delete: err = %v, want code %d", err, tc.want)
			}
			if err := srv.SetFaults(kurrentdb.Faults{}); err != nil {
				t.Fatal(err)
			}
			// Nothing readable either way: without FailAfterCommit nothing was
			// written; with it the delete went through after the append.
			if got := count(t, db, "faulty"); got != 0 {
				t.Fatalf("faulty stream has %d readable events, want 0", got)
			}
			res, err := db.AppendToStream(context.Background(), "faulty", esdb.AppendToStreamOptions{}, esdbEvent())
			if err != nil {
				t.Fatalf("append after clearing faults: %v", err)
			}
			if want := uint64(tc.stored); res.NextExpectedVersion != want {
				t.Fatalf("revision after clearing faults = %d, want %d (the faulty append was stored: %v)", res.NextExpectedVersion, want, tc.stored == 1)
			}
		})
	}
}

// TestNotLeader: with NotLeader on, the client gets ErrorCodeNotLeader and
// reconnects to the named leader (this server); once the fault is cleared
// the same client works again.
func TestNotLeader(t *testing.T) {
	srv := kurrentdbtest.Start(t, kurrentdb.Options{Faults: kurrentdb.Faults{NotLeader: true}})
	db := kurrentdbtest.Client(t, srv.URL())
	if _, err := db.AppendToStream(context.Background(), "nl", esdb.AppendToStreamOptions{}, esdbEvent()); code(err) != esdb.ErrorCodeNotLeader {
		t.Fatalf("append: err = %v, want NotLeader", err)
	}
	if err := srv.SetFaults(kurrentdb.Faults{}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := db.AppendToStream(context.Background(), "nl", esdb.AppendToStreamOptions{}, esdbEvent())
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("append after clearing NotLeader still fails: %v", err)
		}
		time.Sleep(20 * time.Millisecond) // polling the client's reconnect, with a deadline
	}
}

// TestDropSubscriptions: a dropped subscription ends with Unavailable on
// the client; a new one works.
func TestDropSubscriptions(t *testing.T) {
	srv := kurrentdbtest.Start(t, kurrentdb.Options{})
	db := kurrentdbtest.Client(t, srv.URL())
	sub, err := db.SubscribeToAll(context.Background(), esdb.SubscribeToAllOptions{From: esdb.Start{}})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	for ev := sub.Recv(); ev.CaughtUp == nil; ev = sub.Recv() {
		if ev.SubscriptionDropped != nil {
			t.Fatalf("dropped before caught up: %v", ev.SubscriptionDropped.Error)
		}
	}
	srv.DropSubscriptions()
	ev := sub.Recv()
	if ev.SubscriptionDropped == nil || status.Code(ev.SubscriptionDropped.Error) != codes.Unavailable {
		t.Fatalf("after DropSubscriptions got %+v, want dropped with Unavailable", ev)
	}
	again, err := db.SubscribeToAll(context.Background(), esdb.SubscribeToAllOptions{From: esdb.Start{}})
	if err != nil {
		t.Fatalf("resubscribing: %v", err)
	}
	again.Close()
}

// TestOptionsValidation: Start reports every invalid option at once, each
// as a *ConfigError naming the field.
func TestOptionsValidation(t *testing.T) {
	_, err := kurrentdb.Start(kurrentdb.Options{
		Addr:               "no-port",
		MaxAppendSize:      -1,
		MaxAppendEventSize: -1,
		Faults:             kurrentdb.Faults{AppendLatency: -1, UnavailableRate: 2, AbortedRate: -0.5, LeaderAddr: "x"},
	})
	want := map[string]bool{"Addr": true, "MaxAppendSize": true, "MaxAppendEventSize": true, "Faults.AppendLatency": true,
		"Faults.UnavailableRate": true, "Faults.AbortedRate": true, "Faults.LeaderAddr": true}
	var joined interface{ Unwrap() []error }
	if !errors.As(err, &joined) {
		t.Fatalf("err = %v, want joined config errors", err)
	}
	for _, e := range joined.Unwrap() {
		var ce *kurrentdb.ConfigError
		if !errors.As(e, &ce) {
			t.Errorf("%v is not a *ConfigError", e)
			continue
		}
		delete(want, ce.Field)
	}
	if len(want) > 0 {
		t.Errorf("fields not reported: %v", want)
	}
	srv := kurrentdbtest.Start(t, kurrentdb.Options{})
	if err := srv.SetFaults(kurrentdb.Faults{AbortedRate: 3}); err == nil {
		t.Error("SetFaults accepted an aborted rate of 3")
	}
}

// TestCloseIsIdempotent: Close twice returns the same result.
func TestCloseIsIdempotent(t *testing.T) {
	srv, err := kurrentdb.Start(kurrentdb.Options{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	if err := srv.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}
