package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/chronicler-dev/chronicler/publish/kafka"
	"github.com/chronicler-dev/chronicler/test/stack"
)

// haPromote promotes every account event of the transfer workload: one
// integration event per source change (an account update or a good
// history insert).
const haPromote = `
promote:
  - name: balance
    from: [BalanceChanged]
    topic: {{balances}}
    key: string(event.data.aid)
    type: bank.balance.changed.v1
    value: {aid: event.data.aid, version: event.data.version, balance: event.data.balance}
  - name: move
    from: [MoneyMoved]
    topic: {{moves}}
    key: string(event.data.aid)
    type: bank.money.moved.v1
    value: {hid: event.data.hid, aid: event.data.aid, version: event.data.version}
`

// instance is one `chronicler run` process of the HA test.
type instance struct {
	name   string
	http   string   // host:port of its listener
	args   []string // more arguments of run
	cmd    *exec.Cmd
	exited chan error
	log    *os.File
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func (e *env) startInstance(in *instance, cfg string) {
	e.t.Helper()
	fmt.Fprintf(in.log, "=== start %s\n", time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(bins.chronicler, append([]string{"run", "--config", cfg}, in.args...)...)
	cmd.Env = append(os.Environ(), "CHRONICLER_HTTP_ADDR="+in.http)
	cmd.Stdout, cmd.Stderr = in.log, in.log
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	in.cmd, in.exited = cmd, make(chan error, 1)
	go func(c *exec.Cmd, ch chan error) { ch <- c.Wait() }(cmd, in.exited)
}

func (in *instance) kill() {
	if in.cmd == nil {
		return
	}
	_ = in.cmd.Process.Signal(syscall.SIGKILL)
	<-in.exited
	in.cmd = nil
}

// stop sends SIGTERM and expects exit 0 within 30s.
func (in *instance) stop(t *testing.T) {
	t.Helper()
	_ = in.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-in.exited:
		in.cmd = nil
		if err != nil {
			t.Errorf("%s: SIGTERM: %v, want exit 0", in.name, err)
		}
	case <-time.After(30 * time.Second):
		t.Errorf("%s did not stop within 30s of SIGTERM", in.name)
	}
}

// waitExit1 waits up to limit for the instance to exit with code 1 (when
// names the moment, for the messages).
func (in *instance) waitExit1(t *testing.T, limit time.Duration, when string) {
	t.Helper()
	select {
	case err := <-in.exited:
		in.cmd = nil
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 1 {
			t.Fatalf("%s exited with %v %s, want code 1", in.name, err, when)
		}
	case <-time.After(limit):
		t.Fatalf("%s still runs %s %s", in.name, limit, when)
	}
}

// readyz returns /readyz's status code and body ("" if unreachable).
func (in *instance) readyz() (int, string) { return readyz(in.http) }

// readyz returns the status code and body of /readyz at addr (0, "" if
// unreachable).
func readyz(addr string) (int, string) {
	c := http.Client{Timeout: time.Second}
	res, err := c.Get("http://" + addr + "/readyz")
	if err != nil {
		return 0, ""
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, strings.TrimSpace(string(b))
}

// waitRole polls /readyz until it answers 200 with role, and returns how
// long that took.
func (e *env) waitRole(in *instance, role string, limit time.Duration) time.Duration {
	e.t.Helper()
	began := time.Now()
	deadline := began.Add(limit)
	last := ""
	for {
		code, body := in.readyz()
		if code == 200 && body == role {
			return time.Since(began)
		}
		last = fmt.Sprintf("%d %q", code, body)
		select {
		case err := <-in.exited:
			in.cmd = nil
			e.t.Fatalf("%s exited while waiting to be %s: %v\n%s", in.name, role, err, tailFile(in.log.Name(), 40))
		default:
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("%s not %s within %s (last /readyz: %s)\n%s", in.name, role, limit, last, tailFile(in.log.Name(), 40))
		}
		time.Sleep(50 * time.Millisecond) // polling interval, with a deadline
	}
}

// newInstance prepares an instance with its own HTTP address and log.
func (e *env) newInstance(name string, args ...string) *instance {
	t := e.t
	in := &instance{name: name, http: freeAddr(t), args: args}
	f, err := os.Create(filepath.Join(e.dir, "chronicler-"+name+".log"))
	if err != nil {
		t.Fatal(err)
	}
	in.log = f
	t.Cleanup(func() {
		in.kill()
		f.Close()
		checkNoRace(t, f.Name())
		if t.Failed() {
			t.Logf("instance %s log tail:\n%s", in.name, tailFile(f.Name(), 40))
		}
	})
	return in
}

// TestHALockLost: when the active instance's lock session is killed on the
// server (as Postgres does for a partitioned or vanished host), it stops
// all work at once and exits 1 within about 1.5 x ha.keepalive; the
// standby takes over, and the store still matches the database.
func TestHALockLost(t *testing.T) {
	su := transfers()
	su.extra = "ha:\n  keepalive: 2s\n"
	e := newEnvWith(t, su)
	a, b := e.newInstance("a", "--only", "capture"), e.newInstance("b", "--only", "capture")
	e.startInstance(a, e.cfg)
	e.waitRole(a, "active", 60*time.Second)
	e.startInstance(b, e.cfg)
	e.waitRole(b, "standby", 30*time.Second)
	if err := e.workload(context.Background(), 300, 2); err != nil {
		t.Fatal(err)
	}
	e.terminateLockSession()
	began := time.Now()
	a.waitExit1(t, 15*time.Second, "after its lock session was killed (keepalive 2s)")
	t.Logf("figure: lost lock noticed and process exited %s after its session was killed (ha.keepalive 2s)", time.Since(began).Round(time.Millisecond))
	e.waitRole(b, "active", 15*time.Second)
	t.Logf("figure: standby active %s after the lock session was killed", time.Since(began).Round(time.Millisecond))
	if err := e.workload(context.Background(), 300, 2); err != nil {
		t.Fatal(err)
	}
	e.waitCaughtUp(60 * time.Second)
	e.verify(e.store.client(t))
	b.kill()
}

// writeFullConfig writes the rules (capture + promotion, topics named
// after n) and a config running both parts against k, and returns the
// config's path.
func writeFullConfig(t *testing.T, e *env, k *stack.Kafka, n string) string {
	t.Helper()
	rules := rules + strings.NewReplacer("{{balances}}", "balances-"+n, "{{moves}}", "moves-"+n).Replace(haPromote)
	if err := os.WriteFile(filepath.Join(e.dir, "rules.yaml"), []byte(rules), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(e.dir, "ha.yaml")
	src := fmt.Sprintf(`postgres:
  url: %s
  slot: %s
  publication: chaos
  tables: [public.accounts, public.history]
  heartbeat_interval: 1s
  status_interval: 250ms
store:
  url: %s
kafka:
  brokers: [%s]
  create_topics: true
  partitions: 3
  replication_factor: 1
rules:
  paths: [rules.yaml]
delivery:
  publisher_id: %s
  checkpoint_topic: cp-%s
  batch_interval: 50ms
deadletter:
  topic: dead-%s
ha:
  keepalive: 2s
shutdown:
  grace: 5s
`, e.dbURL, slot, e.store.url, strings.Join(k.Brokers, ", "), n, n, n)
	if err := os.WriteFile(cfg, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestSplitParts: `--only capture` and `--only publish` as two processes
// of one config (each active under its own lock key) deliver every source
// change to Kafka exactly once; a publish-only instance is ready without
// capturing.
func TestSplitParts(t *testing.T) {
	k := stack.StartKafka(t)
	e := newEnv(t)
	n := fmt.Sprintf("split-%d", time.Now().UnixNano())
	cfg := writeFullConfig(t, e, k, n)
	c, p := e.newInstance("capture", "--only", "capture"), e.newInstance("publish", "--only", "publish")
	e.startInstance(p, cfg)
	e.waitRole(p, "active", 60*time.Second)
	e.startInstance(c, cfg)
	e.waitRole(c, "active", 60*time.Second)
	if err := e.workload(context.Background(), 1000, 2); err != nil {
		t.Fatal(err)
	}
	e.waitCaughtUp(60 * time.Second)
	e.verify(e.store.client(t))
	checkKafka(t, e, k, "balances-"+n, "moves-"+n)
	c.stop(t)
	p.stop(t)
}

// TestHATakeover: two `chronicler run` processes with one config; the
// active one is SIGKILLed under load, twice, alternating (the killed one is
// restarted as the new standby). The standby must become active within 15s
// of each kill, the store must match the database (every change once, in
// order), and a read_committed consumer must see every source change's
// integration event exactly once, in order per key.
func TestHATakeover(t *testing.T) {
	k := stack.StartKafka(t)
	e := newEnv(t)
	n := fmt.Sprintf("ha-%d", time.Now().UnixNano())
	balances, moves := "balances-"+n, "moves-"+n
	cfg := writeFullConfig(t, e, k, n)
	insts := []*instance{e.newInstance("a"), e.newInstance("b")}
	e.startInstance(insts[0], cfg)
	e.waitRole(insts[0], "active", 60*time.Second)
	e.startInstance(insts[1], cfg)
	e.waitRole(insts[1], "standby", 30*time.Second)

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	// The workload runs in rounds until the kills are done, so both kills
	// happen under load.
	work, stopWork := e.loadInRounds(ctx)

	active, standby := insts[0], insts[1]
	var takeovers []time.Duration
	for round := 0; round < 2; round++ {
		// Let it work under load for a moment (chaos timing, not a wait
		// for a server).
		time.Sleep(1500 * time.Millisecond)
		select {
		case err := <-work:
			t.Fatalf("the workload failed before kill %d: %v", round+1, err)
		default:
		}
		active.kill()
		d := e.waitRole(standby, "active", 15*time.Second)
		takeovers = append(takeovers, d)
		t.Logf("figure: HA takeover %d: %s from SIGKILL of the active instance to the standby's /readyz \"active\"", round+1, d.Round(time.Millisecond))
		e.startInstance(active, cfg)
		e.waitRole(active, "standby", 30*time.Second)
		active, standby = standby, active
	}
	stopWork()
	if err := <-work; err != nil {
		t.Fatal(err)
	}
	e.waitCaughtUp(90 * time.Second)
	e.verify(e.store.client(t))
	checkKafka(t, e, k, balances, moves)
	for _, in := range insts {
		in.stop(t)
	}
}

// checkKafka reads both topics read_committed: one record per account
// version (balances) and per good history row (moves), each ce_id once,
// versions in order per key.
func checkKafka(t *testing.T, e *env, k *stack.Kafka, balances, moves string) {
	t.Helper()
	conn := e.conn()
	defer conn.Close(context.Background())
	wantBal := map[string]bool{} // "aid/version"
	wantMove := map[string]bool{}
	rows, err := conn.Query(context.Background(), "SELECT hid, aid, version, note FROM history")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var hid int64
		var aid, version int
		var note string
		if err := rows.Scan(&hid, &aid, &version, &note); err != nil {
			t.Fatal(err)
		}
		wantBal[fmt.Sprintf("%d/%d", aid, version)] = true
		if note != "bad" {
			wantMove[fmt.Sprint(hid)] = true
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cl := k.Client(t, kgo.ConsumeTopics(balances, moves), kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	ids := map[string]int{}
	gotBal, gotMove := map[string]int{}, map[string]int{}
	perKey := map[string][]int{} // balances: versions per account in topic order
	bad := 0
	check := func(r *kgo.Record) {
		id := ""
		for _, h := range r.Headers {
			if h.Key == kafka.HeaderID {
				id = string(h.Value)
			}
		}
		ids[id]++
		var v struct {
			Aid, Version int
			Hid          int64
		}
		if err := json.Unmarshal(r.Value, &v); err != nil {
			t.Fatalf("record %s: %v", r.Value, err)
		}
		if string(r.Key) != fmt.Sprint(v.Aid) {
			if bad++; bad < 5 {
				t.Errorf("record key %q, value %s: want the account id", r.Key, r.Value)
			}
		}
		if r.Topic == balances {
			gotBal[fmt.Sprintf("%d/%d", v.Aid, v.Version)]++
			perKey[string(r.Key)] = append(perKey[string(r.Key)], v.Version)
		} else {
			gotMove[fmt.Sprint(v.Hid)]++
		}
	}
	for len(gotBal) < len(wantBal) || len(gotMove) < len(wantMove) {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumer saw %d of %d balance and %d of %d move events before the deadline", len(gotBal), len(wantBal), len(gotMove), len(wantMove))
		}
		fs.EachRecord(check)
	}
	drain, stop := context.WithTimeout(ctx, 3*time.Second)
	for drain.Err() == nil {
		cl.PollFetches(drain).EachRecord(check)
	}
	stop()
	dups := 0
	for id, c := range ids {
		if c != 1 {
			if dups++; dups < 10 {
				t.Errorf("ce_id %s seen %d times", id, c)
			}
		}
	}
	for key, c := range gotBal {
		if !wantBal[key] {
			t.Errorf("balance event %s: no such account version in the database", key)
		} else if c != 1 {
			t.Errorf("balance event %s seen %d times", key, c)
		}
	}
	for hid, c := range gotMove {
		if !wantMove[hid] {
			t.Errorf("move event for history row %s: not a good row of the database", hid)
		} else if c != 1 {
			t.Errorf("move event for history row %s seen %d times", hid, c)
		}
	}
	for key, vs := range perKey {
		if !sort.IntsAreSorted(vs) {
			t.Errorf("account %s: versions out of order on Kafka: %v", key, vs)
		}
	}
	t.Logf("kafka: %d balance and %d move events, each once, versions in order for %d accounts; %d duplicates", len(gotBal), len(gotMove), len(perKey), dups)
}
