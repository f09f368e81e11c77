package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/chronicler-dev/chronicler/capture"
	"github.com/chronicler-dev/chronicler/cmd/chronicler/config"
	"github.com/chronicler-dev/chronicler/cmd/chronicler/internal/preflight"
	"github.com/chronicler-dev/chronicler/mapping"
	"github.com/chronicler-dev/chronicler/mapping/contract"
	"github.com/chronicler-dev/chronicler/publish"
	"github.com/chronicler-dev/chronicler/test/kurrentdb/kurrentdbtest"
)

// statusJSON runs `chronicler status --json` and decodes it.
func statusJSON(t *testing.T, cfg string) preflight.StatusReport {
	t.Helper()
	code, out, errOut := runCLI("status", "--json", "--config", cfg)
	var rep preflight.StatusReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil || code != 0 {
		t.Fatalf("status --json: exit %d, %v\nstdout: %s\nstderr: %s", code, err, out, errOut)
	}
	return rep
}

// TestStatusReportsPositions: (check, meanwhile, warns that the running
// capture holds the slot.) Capture and the publisher run the shop
// rules over a small workload with one row a capture rule fails on and one
// event a promotion rule fails on; after both stop, status reports the
// slot's confirmed LSN as Postgres has it, the last progress marker's
// durable LSN, the checkpoint the checkpoint topic holds, one dead letter on
// each side, and no lag. Status writes nothing (the store's end and the
// checkpoint topic's end do not move). Rows written while capture is
// stopped show as slot lag in bytes.
func TestStatusReportsPositions(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	s := startShop(t, true)
	s.createTopics(t, append(s.topics, s.dlTopic)...)
	// Customers get phones: customer-phone-changed compares old.phone with
	// new.phone, which fails (and dead-letters) on NULL.
	// A capture rule that fails on payments with method 'broken', a
	// promotion rule that fails on the customer named 'Bad Promo'.
	extra := `capture:
  - name: payment-method-code
    table: public.payments
    on: [insert]
    when: new.method == "broken"
    stream: {category: order, id: new.order_id}
    type: PaymentMethodCoded
    data: {code: int(new.method)}
promote:
  - name: bad-promo
    from: CustomerRegistered
    when: event.data.fullName == "Bad Promo"
    topic: ` + s.topics[0] + `
    type: shop.bad-promo.v1
    value: {n: int(event.data.fullName)}
`
	if err := os.WriteFile(filepath.Join(s.rulesDir, "broken.yaml"), []byte(extra), 0o644); err != nil {
		t.Fatal(err)
	}
	cfgPath := s.configFile(t, "status_test", func(y string) string {
		return strings.Replace(y, "delivery:\n", "delivery:\n  publisher_id: status-test-"+s.suffix+"\n", 1)
	})
	cfg, err := config.Load(cfgPath, config.All)
	if err != nil {
		t.Fatal(err)
	}
	quiet := slog.New(slog.DiscardHandler)
	pgc := s.pg.Connect(t, "postgres")
	query := func(sql string, dst ...any) {
		t.Helper()
		if err := pgc.QueryRow(ctx, sql).Scan(dst...); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}

	// Capture.
	reg := prometheus.NewRegistry()
	capCtx, stopCapture := context.WithCancel(ctx)
	capDone := make(chan error, 1)
	go func() { capDone <- capture.Run(capCtx, cfg.CaptureOptions(quiet, reg)) }()
	defer func() { stopCapture(); <-capDone }()
	waitUntil(t, ctx, "capture to stream", func() bool { return metric(reg, "chronicler_capture_confirmed_lsn_bytes") > 0 })
	s.pg.Exec(t, "postgres", `
INSERT INTO customers (email, full_name, phone) SELECT 'c' || g || '@example.com', 'Customer ' || g, '+3100' || g FROM generate_series(1, 5) g;
INSERT INTO customers (email, full_name, phone) VALUES ('bad@example.com', 'Bad Promo', '+31009');
WITH o AS (INSERT INTO orders (customer_id, total_cents) VALUES (1, 1500) RETURNING id)
INSERT INTO order_lines (order_id, line_no, sku, quantity, price_cents) SELECT id, 1, 'PEN-7', 3, 500 FROM o;
INSERT INTO payments (order_id, amount_cents, method) VALUES (1, 1500, 'card');
INSERT INTO payments (order_id, amount_cents, method) VALUES (1, 0, 'broken');
UPDATE customers SET email = 'c1-new@example.com' WHERE id = 1;`)
	var end string
	query("SELECT pg_logical_emit_message(true, 'status-test', 'end')::text", &end)
	endLSN, err := contract.ParseLSN(end)
	if err != nil {
		t.Fatal(err)
	}
	waitUntil(t, ctx, "the workload to be durable in the store", func() bool {
		return metric(reg, "chronicler_pipeline_durable_lsn_bytes") >= float64(endLSN)
	})
	waitUntil(t, ctx, "the slot to confirm the end of WAL", func() bool {
		var caughtUp bool
		query("SELECT confirmed_flush_lsn = pg_current_wal_lsn() FROM pg_replication_slots WHERE slot_name = 'status_test'", &caughtUp)
		return caughtUp
	})
	// check while capture streams: the slot is held (warn, naming the
	// holder's pid), which is no failure.
	code, crep, all := checkJSON(t, "--only", "capture", "--config", cfgPath)
	if c, ok := findCheck(crep, "postgres slot status_test"); code != 0 || !ok || c.Status != preflight.Warn || !strings.Contains(c.Found, "held by pid ") {
		t.Errorf("check with capture running: exit %d, slot check %+v\n%s", code, c, all)
	}
	stopCapture()
	if err := <-capDone; err != nil {
		t.Fatalf("capture: %v", err)
	}
	capDone <- nil

	// The publisher, until it has handled the last stored event.
	db := kurrentdbtest.Client(t, s.store.URL())
	last := lastAllPosition(t, ctx, db)
	rules, err := mapping.Load(cfg.Rules.Paths, mapping.Options{})
	if err != nil {
		t.Fatal(err)
	}
	pc := cfg.PublishConfig()
	pc.Store, pc.Rules, pc.Logger = kurrentdbtest.Store(t, s.store.URL()), rules, quiet
	pub, err := publish.New(pc)
	if err != nil {
		t.Fatal(err)
	}
	pubCtx, stopPub := context.WithCancel(ctx)
	pubDone := make(chan error, 1)
	go func() { pubDone <- pub.Run(pubCtx) }()
	waitUntil(t, ctx, "the publisher to catch up", func() bool { return pub.Stats().Through.Commit >= last })
	// After its first commit the publisher records in the store that it has
	// published (an event of $all it commits past too): catch up with that.
	last = lastAllPosition(t, ctx, db)
	waitUntil(t, ctx, "the publisher to catch up past its record", func() bool { return pub.Stats().Through.Commit >= last })
	stopPub()
	if err := <-pubDone; err != nil && !errors.Is(err, context.Canceled) {
		t.Fatalf("publisher: %v", err)
	}
	if st := pub.Stats(); st.DeadLetters != 1 {
		t.Fatalf("the publisher committed %d dead letters, want 1 (the Bad Promo customer)", st.DeadLetters)
	}

	// What status must report, read independently.
	var confirmed, beforeLSN string
	query("SELECT confirmed_flush_lsn::text, pg_current_wal_lsn()::text FROM pg_replication_slots WHERE slot_name = 'status_test'", &confirmed, &beforeLSN)
	marker := readLastMarker(t, ctx, s, "chronicler-progress-status_test")
	checkpoints := readTopic(t, ctx, s.kafka, s.cpTopic)
	if len(checkpoints) == 0 {
		t.Fatal("the checkpoint topic is empty")
	}
	var cpValue struct{ Commit, Prepare uint64 }
	lastCP := checkpoints[len(checkpoints)-1]
	if key, _, _ := strings.Cut(lastCP, " | "); key != pc.PublisherID {
		t.Fatalf("last checkpoint record has key %q, want %q", key, pc.PublisherID)
	}
	if err := json.Unmarshal([]byte(strings.Split(lastCP, " | ")[1]), &cpValue); err != nil {
		t.Fatal(err)
	}
	dlRecords := len(readTopic(t, ctx, s.kafka, s.dlTopic))
	cpEnd := topicEnd(t, ctx, s, s.cpTopic)

	rep := statusJSON(t, cfgPath)
	if len(rep.Errors) > 0 {
		t.Fatalf("status errors: %v", rep.Errors)
	}
	var afterLSN string
	query("SELECT pg_current_wal_lsn()::text", &afterLSN)
	sl := rep.Slot
	if !sl.Exists || sl.Active || sl.ConfirmedLSN != confirmed {
		t.Errorf("slot: exists %v active %v confirmed %q; pg_replication_slots has %q (inactive)", sl.Exists, sl.Active, sl.ConfirmedLSN, confirmed)
	}
	// The lag is the WAL between the confirmed LSN and the current one:
	// between what was read before and after status. The server itself may
	// have written a record after capture stopped (a running-transactions
	// record, every 15 s when there is activity), so caught up (0 bytes,
	// 0 s) is asserted only when status found 0 bytes.
	if sl.LagBytes == nil || *sl.LagBytes < lsnDiff(t, beforeLSN, confirmed) || *sl.LagBytes > lsnDiff(t, afterLSN, confirmed) {
		t.Fatalf("slot lag %v bytes, want between %d and %d", sl.LagBytes, lsnDiff(t, beforeLSN, confirmed), lsnDiff(t, afterLSN, confirmed))
	}
	if *sl.LagBytes == 0 && (sl.LagSeconds == nil || *sl.LagSeconds != 0 || sl.LagSource != preflight.LagCaughtUp) {
		t.Errorf("caught up (0 bytes), but lag time %v s (%s)", fmtSeconds(sl.LagSeconds), sl.LagSource)
	}
	if rep.Store.DurableLSN != marker || marker == "" {
		t.Errorf("store durable LSN %q, the last progress marker says %q", rep.Store.DurableLSN, marker)
	}
	if l, _ := contract.ParseLSN(rep.Store.DurableLSN); l < endLSN {
		t.Errorf("durable LSN %s is before the workload's end %s", rep.Store.DurableLSN, endLSN)
	}
	if e := rep.Store.End; e == nil || e.Commit != last {
		t.Errorf("store end %+v, want commit %d", e, last)
	}
	p := rep.Publisher
	if p == nil || p.Checkpoint == nil || p.Checkpoint.Commit != cpValue.Commit || p.Checkpoint.Prepare != cpValue.Prepare {
		t.Fatalf("publisher checkpoint %+v, the checkpoint topic holds %+v", p, cpValue)
	}
	if p.Checkpoint.Commit != pub.Stats().Through.Commit {
		t.Errorf("checkpoint commit %d, the publisher's through is %d", p.Checkpoint.Commit, pub.Stats().Through.Commit)
	}
	if p.LagEvents == nil || *p.LagEvents != 0 || p.LagEventsCapped || p.LagPositions == nil || *p.LagPositions != 0 {
		t.Errorf("publisher lag %v events (capped %v), %v positions; want 0 after catching up", p.LagEvents, p.LagEventsCapped, p.LagPositions)
	}
	d := rep.DeadLetters
	if d.Capture == nil || *d.Capture != 1 || d.Publish == nil || *d.Publish != 1 || dlRecords != 1 {
		t.Errorf("dead letters: capture %s, publish %s (topic holds %d); want 1 and 1", jsonOf(d.Capture), jsonOf(d.Publish), dlRecords)
		rs, err := db.ReadStream(ctx, d.CaptureStream, esdb.ReadStreamOptions{From: esdb.Start{}}, 10)
		if err == nil {
			for {
				ev, err := rs.Recv()
				if err != nil {
					break
				}
				t.Logf("capture dead letter: %s", ev.OriginalEvent().Data)
			}
		}
	}
	// Status wrote nothing.
	if got := lastAllPosition(t, ctx, db); got != last {
		t.Errorf("$all end moved from %d to %d during status", last, got)
	}
	if got := topicEnd(t, ctx, s, s.cpTopic); got != cpEnd {
		t.Errorf("checkpoint topic end moved from %d to %d during status", cpEnd, got)
	}

	// Rows written while capture is stopped: the slot lags.
	s.pg.Exec(t, "postgres", `INSERT INTO customers (email, full_name) SELECT 'late' || g || '@example.com', 'Late ' || g FROM generate_series(1, 50) g`)
	var nowLSN string
	query("SELECT pg_current_wal_lsn()::text", &nowLSN)
	rep = statusJSON(t, cfgPath)
	sl = rep.Slot
	if sl.ConfirmedLSN != confirmed || sl.LagBytes == nil || *sl.LagBytes < lsnDiff(t, nowLSN, confirmed) || *sl.LagBytes <= 0 {
		t.Errorf("after writes without capture: confirmed %q (was %q), lag %v bytes, want >= %d", sl.ConfirmedLSN, confirmed, sl.LagBytes, lsnDiff(t, nowLSN, confirmed))
	}
	if sl.LagSource != preflight.LagMarkerAge || sl.LagSeconds == nil || *sl.LagSeconds < 0 {
		t.Errorf("lag time %v (%s), want the progress marker's age", sl.LagSeconds, sl.LagSource)
	}
	t.Logf("figure: status after stopped capture: lag %d bytes, %.1f s (%s)", *sl.LagBytes, *sl.LagSeconds, sl.LagSource)

	// The human form names every section.
	code, out, errOut := runCLI("status", "--config", cfgPath)
	if code != 0 {
		t.Fatalf("status: exit %d\n%s%s", code, out, errOut)
	}
	t.Logf("chronicler status:\n%s", out)
	flat := strings.Join(strings.Fields(out), " ")
	for _, want := range []string{"slot status_test inactive", "confirmed LSN " + confirmed, "slot lag ", "store durable LSN " + marker, "publisher status-test-", "publisher lag 0 events", "dead letters (capture) 1 in chronicler-deadletter-status_test", "dead letters (publish) 1 in " + s.dlTopic} {
		if !strings.Contains(flat, want) {
			t.Errorf("status output lacks %q", want)
		}
	}

	// Events stored after the checkpoint are the publisher's lag (the shop
	// rules have a transaction rule: every non-system event is of
	// interest); --max-lag-events caps the count at that many.
	const stored = 3
	evs := make([]esdb.EventData, stored)
	for i := range evs {
		evs[i] = esdb.EventData{EventID: uuid.New(), EventType: "StatusLagTest", ContentType: esdb.ContentTypeJson, Data: []byte(`{}`)}
	}
	if _, err := db.AppendToStream(ctx, "statuslag-"+s.suffix, esdb.AppendToStreamOptions{}, evs...); err != nil {
		t.Fatal(err)
	}
	rep = statusJSON(t, cfgPath)
	p = rep.Publisher
	if p.LagEvents == nil || *p.LagEvents != stored || p.LagEventsCapped || p.LagPositions == nil || *p.LagPositions == 0 {
		t.Errorf("after %d events stored past the checkpoint: lag %s events (capped %v), %s positions; want %d, not capped, > 0",
			stored, jsonOf(p.LagEvents), p.LagEventsCapped, jsonOf(p.LagPositions), stored)
	}
	code, out, errOut = runCLI("status", "--json", "--max-lag-events", "2", "--config", cfgPath)
	var capped preflight.StatusReport
	if err := json.Unmarshal([]byte(out), &capped); err != nil || code != 0 {
		t.Fatalf("status --max-lag-events 2: exit %d, %v\n%s%s", code, err, out, errOut)
	}
	if p := capped.Publisher; p.LagEvents == nil || *p.LagEvents != 2 || !p.LagEventsCapped {
		t.Errorf("--max-lag-events 2 with %d events of lag: %s events (capped %v); want 2, capped", stored, jsonOf(p.LagEvents), p.LagEventsCapped)
	}
}

func lsnDiff(t *testing.T, a, b string) int64 {
	t.Helper()
	la, err := contract.ParseLSN(a)
	if err != nil {
		t.Fatal(err)
	}
	lb, err := contract.ParseLSN(b)
	if err != nil {
		t.Fatal(err)
	}
	return int64(la) - int64(lb)
}

// readLastMarker reads the durableLsn of the last progress marker.
func readLastMarker(t *testing.T, ctx context.Context, s *shopStack, stream string) string {
	t.Helper()
	db := kurrentdbtest.Client(t, s.store.URL())
	ev := lastEventOf(t, ctx, db, stream)
	m, err := contract.DecodeProgress(ev.Data)
	if err != nil {
		t.Fatal(err)
	}
	return m.DurableLSN.String()
}

// topicEnd is the high watermark of partition 0.
func topicEnd(t *testing.T, ctx context.Context, s *shopStack, topic string) int64 {
	t.Helper()
	ends, err := kadm.NewClient(s.kafka.Client(t)).ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	o, ok := ends.Lookup(topic, 0)
	if !ok || o.Err != nil {
		t.Fatalf("end offset of %s: %v", topic, o.Err)
	}
	return o.Offset
}

// lastEventOf reads the last event of a stream.
func lastEventOf(t *testing.T, ctx context.Context, db *esdb.Client, stream string) *esdb.RecordedEvent {
	t.Helper()
	rs, err := db.ReadStream(ctx, stream, esdb.ReadStreamOptions{Direction: esdb.Backwards, From: esdb.End{}}, 1)
	if err != nil {
		t.Fatalf("reading %s: %v", stream, err)
	}
	defer rs.Close()
	ev, err := rs.Recv()
	if err != nil {
		t.Fatalf("reading %s: %v", stream, err)
	}
	return ev.OriginalEvent()
}

func jsonOf(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// TestStatusUnreachableExits1: with nothing reachable, status still prints
// its report, each section's error names the server it could not read
// (host:port, never a password) and the exit code is 1.
func TestStatusUnreachableExits1(t *testing.T) {
	rules, err := filepath.Abs("../../deploy/examples/rules/shop")
	if err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(t.TempDir(), "chronicler.yaml")
	y := `postgres:
  url: postgres://chronicler:hunter2-status@127.0.0.1:1/app?sslmode=disable&connect_timeout=2
  slot: s
  publication: p
  tables: [public.customers]
store:
  url: esdb://127.0.0.1:1?tls=false
kafka:
  brokers: [127.0.0.1:1]
rules:
  paths: [` + rules + `]
`
	if err := os.WriteFile(cfg, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCLI("status", "--json", "--timeout", "3s", "--config", cfg)
	if code != 1 {
		t.Fatalf("exit %d, want 1\n%s%s", code, out, errOut)
	}
	var rep preflight.StatusReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"slot": "127.0.0.1:1/app", "store": "127.0.0.1:1", "publisher": "127.0.0.1:1", "dead_letters": "127.0.0.1:1"}
	for _, e := range rep.Errors {
		section, _, _ := strings.Cut(e, ":")
		if w, ok := want[section]; ok && strings.Contains(e, w) {
			delete(want, section)
		}
	}
	if len(want) > 0 {
		t.Errorf("no error naming %v in %q", want, rep.Errors)
	}
	if strings.Contains(out+errOut, "hunter2-status") {
		t.Errorf("the password was printed:\n%s%s", out, errOut)
	}
}

// TestStatusNeverStatesWhatItCouldNotRead: with Postgres, the store and
// Kafka all down, the text report says "unknown" with the error for the
// slot, the store, the publisher's checkpoint and both dead-letter counts,
// and never "absent", "empty" or "no checkpoint"; the JSON report has those
// sections null and names them in "unknown".
func TestStatusNeverStatesWhatItCouldNotRead(t *testing.T) {
	rules, err := filepath.Abs("../../deploy/examples/rules/shop")
	if err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(t.TempDir(), "chronicler.yaml")
	y := `postgres:
  url: postgres://chronicler@127.0.0.1:1/app?sslmode=disable&connect_timeout=2
  slot: s
  publication: p
  tables: [public.customers]
store:
  url: esdb://127.0.0.1:1?tls=false
kafka:
  brokers: [127.0.0.1:1]
rules:
  paths: [` + rules + `]
`
	if err := os.WriteFile(cfg, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCLI("status", "--timeout", "3s", "--config", cfg)
	if code != 1 {
		t.Fatalf("exit %d, want 1\n%s%s", code, out, errOut)
	}
	for _, false_ := range []string{"absent", "empty", "no checkpoint", "none (no progress marker"} {
		if strings.Contains(out, false_) {
			t.Errorf("the report states %q about a system it could not read:\n%s", false_, out)
		}
	}
	for _, k := range []string{"slot", "store", "publisher s", "dead letters (capture)", "dead letters (publish)"} {
		if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(k) + `\s+unknown: \S`).MatchString(out) {
			t.Errorf("no %q line saying unknown with the error:\n%s", k, out)
		}
	}
	code, out, errOut = runCLI("status", "--json", "--timeout", "3s", "--config", cfg)
	if code != 1 {
		t.Fatalf("--json: exit %d, want 1\n%s%s", code, out, errOut)
	}
	var rep preflight.StatusReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Slot != nil || rep.Store != nil || rep.Publisher == nil || rep.Publisher.Checkpoint != nil ||
		rep.DeadLetters.Capture != nil || rep.DeadLetters.Publish != nil {
		t.Errorf("JSON report has sections it could not read: %s", out)
	}
	for _, k := range []string{"slot", "store", "publisher", "dead_letters"} {
		if rep.Unknown[k] == "" {
			t.Errorf("unknown[%q] missing: %v", k, rep.Unknown)
		}
	}
}

// fmtSeconds prints an optional number of seconds.
func fmtSeconds(f *float64) string {
	if f == nil {
		return "unknown"
	}
	return fmt.Sprint(*f)
}
