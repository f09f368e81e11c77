// Command kurrentdb-footprint measures the KurrentDB-compatible server's
// memory and CPU as its store grows. It runs the server in a child process
// (itself, with -serve, which is what cmd/kurrentdb-server runs) on a data
// directory, appends events through one BatchAppend call (each request one
// event, expected revision any, as Chronicler's bulk load appends), and at
// each checkpoint prints the child's resident set, its peak, its Go heap,
// the index's mapped memory and scratch files, the server CPU per event appended and the
// share of it the garbage collector took. Then it reads every event back
// through a $all subscription from the start (catch-up, read from the log,
// not the cache) and restarts the server on the same directory (replay).
//
//	go run ./test/kurrentdb/cmd/kurrentdb-footprint -events 1000000,10000000
//
// Flags: -events (checkpoints, ascending), -per-stream (events per stream,
// consecutive: event i goes to stream i/per-stream), -data and -metadata
// (bytes per event), -inflight (requests unanswered at most), -data-dir
// (default: a temporary directory, removed afterwards), -memory (no data
// directory: the in-memory log), -cache (the server's Options.CacheSize).
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime/metrics"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/shared"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/streams"
	"github.com/google/uuid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/chronicler-dev/chronicler/test/kurrentdb"
)

func main() {
	var (
		serve     = flag.Bool("serve", false, "run the server (the child process)")
		events    = flag.String("events", "1000000,10000000", "checkpoints: stored events at which to measure, ascending")
		perStream = flag.Int("per-stream", 1, "events per stream")
		dataSize  = flag.Int("data", 200, "data bytes per event")
		metaSize  = flag.Int("metadata", 300, "custom metadata bytes per event")
		inflight  = flag.Int("inflight", 256, "BatchAppend requests unanswered at most")
		dataDir   = flag.String("data-dir", "", "the server's data directory (default: a temporary one, removed afterwards)")
		memory    = flag.Bool("memory", false, "run the server in memory (no data directory)")
		cache     = flag.Int("cache", 0, "the server's record cache in bytes (0: its default)")
		profile   = flag.String("cpuprofile", "", "write the (first) server process's CPU profile to this file")
		heapProf  = flag.String("memprofile", "", "write the (first) server process's heap profile to this file when it stops")
	)
	flag.Parse()
	if *serve {
		if err := runServer(*dataDir, *cache, *profile, *heapProf); err != nil {
			fmt.Fprintln(os.Stderr, "kurrentdb-footprint -serve:", err)
			os.Exit(1)
		}
		return
	}
	var targets []int
	for _, s := range strings.Split(*events, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n <= 0 {
			fmt.Fprintf(os.Stderr, "-events: %q is not a positive count\n", s)
			os.Exit(2)
		}
		targets = append(targets, n)
	}
	if !slices.IsSorted(targets) || *perStream <= 0 || *inflight <= 0 {
		fmt.Fprintln(os.Stderr, "-events must be ascending, -per-stream and -inflight > 0")
		os.Exit(2)
	}
	dir := *dataDir
	if dir == "" && !*memory {
		tmp, err := os.MkdirTemp("", "kurrentdb-footprint-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	}
	if *memory {
		dir = ""
	}
	r := &run{profile: *profile, heapProfile: *heapProf, targets: targets, perStream: *perStream, dataSize: *dataSize, metaSize: *metaSize, inflight: *inflight, dir: dir, cache: *cache}
	if err := r.main(); err != nil {
		fmt.Fprintln(os.Stderr, "kurrentdb-footprint:", err)
		os.Exit(1)
	}
}

// stats is what the child reports on each "stats" line of its stdin.
type stats struct {
	RSS, HWM    int64   // bytes, from /proc/self/status
	CPU         float64 // user + system seconds
	GCCPU       float64 // runtime/metrics' estimate of the GC's CPU seconds
	Allocs      uint64  // bytes allocated on the heap since start
	GCs         uint64  // completed GC cycles
	Heap        uint64  // bytes of live and unswept heap objects
	GoTotal     uint64  // all memory the Go runtime has mapped
	Footprint   kurrentdb.Footprint
	ElapsedSecs float64
}

func runServer(dir string, cache int, profile, heapProfile string) error {
	start := time.Now()
	if profile != "" {
		f, err := os.Create(profile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	srv, err := kurrentdb.Start(kurrentdb.Options{DataDir: dir, CacheSize: cache})
	if err != nil {
		return err
	}
	fmt.Printf("listening %s\n", srv.URL())
	in := bufio.NewScanner(os.Stdin)
	enc := json.NewEncoder(os.Stdout)
	for in.Scan() {
		s, err := selfStats()
		if err != nil {
			return err
		}
		s.Footprint = srv.Footprint()
		s.ElapsedSecs = time.Since(start).Seconds()
		if err := enc.Encode(s); err != nil {
			return err
		}
	}
	if heapProfile != "" {
		f, err := os.Create(heapProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
			return err
		}
	}
	return srv.Close()
}

func selfStats() (stats, error) {
	var s stats
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return s, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "VmRSS:":
			s.RSS = kb << 10
		case "VmHWM:":
			s.HWM = kb << 10
		}
	}
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return s, err
	}
	s.CPU = float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
	ms := []metrics.Sample{
		{Name: "/cpu/classes/gc/total:cpu-seconds"},
		{Name: "/memory/classes/heap/objects:bytes"},
		{Name: "/memory/classes/total:bytes"},
		{Name: "/gc/heap/allocs:bytes"},
		{Name: "/gc/cycles/total:gc-cycles"},
	}
	metrics.Read(ms)
	s.GCCPU = ms[0].Value.Float64()
	s.Heap = ms[1].Value.Uint64()
	s.GoTotal = ms[2].Value.Uint64()
	s.Allocs = ms[3].Value.Uint64()
	s.GCs = ms[4].Value.Uint64()
	return s, nil
}

// child is a running server process.
type child struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *bufio.Reader
	url   string
	addr  string
}

func (r *run) startChild() (*child, time.Duration, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, 0, err
	}
	args := []string{"-serve", "-data-dir", r.dir, "-cache", strconv.Itoa(r.cache), "-cpuprofile", r.profile, "-memprofile", r.heapProfile}
	r.profile, r.heapProfile = "", "" // the first server only
	cmd := exec.Command(exe, args...)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, 0, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, 0, err
	}
	began := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, 0, err
	}
	c := &child{cmd: cmd, stdin: stdin, out: bufio.NewReader(stdout)}
	line, err := c.out.ReadString('\n')
	if err != nil {
		_ = cmd.Process.Kill()
		return nil, 0, fmt.Errorf("the server process printed no listening line: %w", err)
	}
	url, ok := strings.CutPrefix(strings.TrimSpace(line), "listening ")
	if !ok {
		_ = cmd.Process.Kill()
		return nil, 0, fmt.Errorf("the server process printed %q", line)
	}
	c.url = url
	c.addr = strings.TrimSuffix(strings.TrimPrefix(url, "esdb://"), "?tls=false")
	return c, time.Since(began), nil
}

func (c *child) stats() (stats, error) {
	var s stats
	if _, err := io.WriteString(c.stdin, "stats\n"); err != nil {
		return s, err
	}
	line, err := c.out.ReadBytes('\n')
	if err != nil {
		return s, err
	}
	return s, json.Unmarshal(line, &s)
}

func (c *child) stop() error {
	_ = c.stdin.Close()
	return c.cmd.Wait()
}

type run struct {
	profile             string
	heapProfile         string
	targets             []int
	perStream           int
	dataSize, metaSize  int
	inflight            int
	dir                 string
	cache               int
	data, meta          []byte
	prev                stats
	prevAt              time.Time
	prevEvents, written int
}

func (r *run) main() error {
	r.data = payload(r.dataSize, `{"n":`)
	r.meta = payload(r.metaSize, `{"commitLsn":"0/16B3748","table":"public.customer","m":`)
	mode := "data directory " + r.dir
	if r.dir == "" {
		mode = "in memory"
	}
	fmt.Printf("kurrentdb-footprint: %s; one event per BatchAppend request (any), %d event(s) per stream, %d B data + %d B metadata, %d requests in flight\n",
		mode, r.perStream, r.dataSize, r.metaSize, r.inflight)
	c, _, err := r.startChild()
	if err != nil {
		return err
	}
	defer func() { _ = c.cmd.Process.Kill() }()
	conn, err := grpc.NewClient(c.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	if r.prev, err = c.stats(); err != nil {
		return err
	}
	r.prevAt = time.Now()
	fmt.Printf("\n%-14s %12s %8s %8s %8s %9s %9s %9s %10s %9s %6s %5s %10s\n", "phase", "events", "RSS MiB", "peak MiB", "heap MiB", "index MiB", "idx file", "log MiB", "CPU µs/ev", "alloc B/ev", "GC %", "GCs", "events/s")
	for _, target := range r.targets {
		if err := r.appendUpTo(conn, target); err != nil {
			return err
		}
		if err := r.report(c, "append", target, target-r.prevEvents); err != nil {
			return err
		}
		r.prevEvents = target
	}
	total := r.targets[len(r.targets)-1]
	if err := r.catchUp(c.url, total); err != nil {
		return err
	}
	if err := r.report(c, "catch-up read", total, total); err != nil {
		return err
	}
	conn.Close()
	if err := c.stop(); err != nil {
		return fmt.Errorf("stopping the server: %w", err)
	}
	if r.dir == "" {
		return nil
	}
	c2, took, err := r.startChild()
	if err != nil {
		return err
	}
	defer func() { _ = c2.cmd.Process.Kill() }()
	s, err := c2.stats()
	if err != nil {
		return err
	}
	fmt.Printf("%-14s %12d %8.0f %8.0f %8.0f %9.0f %9.0f %9.0f %10s %9s %6s %5s %10s   (replay + start %.1f s, %.1f CPU s)\n", "restart",
		s.Footprint.Records, mib(s.RSS), mib(s.HWM), mib(int64(s.Heap)), mib(int64(s.Footprint.IndexBytes)), mib(int64(s.Footprint.IndexFile)), mib(s.Footprint.LogBytes), "-", "-", "-", "-", "-",
		took.Seconds(), s.CPU)
	return c2.stop()
}

// payload is n bytes of JSON-looking text starting with prefix.
func payload(n int, prefix string) []byte {
	b := make([]byte, max(n, 0))
	copy(b, prefix)
	for i := len(prefix); i < n-1; i++ {
		b[i] = '7'
	}
	if n > 0 {
		b[n-1] = '}'
	}
	return b
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

// report prints one row: the child's figures and the CPU per event of the
// phase since the previous row.
func (r *run) report(c *child, phase string, stored, events int) error {
	s, err := c.stats()
	if err != nil {
		return err
	}
	cpu, gc := s.CPU-r.prev.CPU, s.GCCPU-r.prev.GCCPU
	wall := time.Since(r.prevAt)
	fmt.Printf("%-14s %12d %8.0f %8.0f %8.0f %9.0f %9.0f %9.0f %10.1f %9.0f %6.1f %5d %10.0f\n", phase, stored,
		mib(s.RSS), mib(s.HWM), mib(int64(s.Heap)), mib(int64(s.Footprint.IndexBytes)), mib(int64(s.Footprint.IndexFile)), mib(s.Footprint.LogBytes),
		cpu/float64(events)*1e6, float64(s.Allocs-r.prev.Allocs)/float64(events), 100*gc/max(cpu, 1e-9), s.GCs-r.prev.GCs,
		float64(events)/wall.Seconds())
	r.prev, r.prevAt = s, time.Now()
	return nil
}

// appendUpTo appends events r.written..target-1 on one BatchAppend call and
// returns once every one is acknowledged.
func (r *run) appendUpTo(conn *grpc.ClientConn, target int) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	call, err := streams.NewStreamsClient(conn).BatchAppend(ctx)
	if err != nil {
		return err
	}
	slots := make(chan struct{}, r.inflight)
	want := target - r.written
	var (
		wg   sync.WaitGroup
		fail error
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for got := 0; got < want; got++ {
			resp, err := call.Recv()
			if err != nil {
				fail = fmt.Errorf("receiving answer %d of %d: %w", got, want, err)
				cancel()
				return
			}
			if e := resp.GetError(); e != nil {
				fail = fmt.Errorf("append to %s refused: %s", resp.GetStreamIdentifier().GetStreamName(), e.GetMessage())
				cancel()
				return
			}
			<-slots
		}
	}()
	for ; r.written < target; r.written++ {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			wg.Wait()
			return fail
		}
		if err := call.Send(r.request(r.written)); err != nil {
			cancel()
			wg.Wait()
			return errors.Join(fmt.Errorf("sending: %w", err), fail)
		}
	}
	wg.Wait()
	_ = call.CloseSend()
	return fail
}

func (r *run) request(i int) *streams.BatchAppendReq {
	corr := uuid.New()
	id := uuid.New()
	return &streams.BatchAppendReq{
		CorrelationId: structured(corr),
		Options: &streams.BatchAppendReq_Options{
			StreamIdentifier:       &shared.StreamIdentifier{StreamName: []byte("customer-" + strconv.Itoa(i/r.perStream))},
			ExpectedStreamPosition: &streams.BatchAppendReq_Options_Any{Any: &emptypb.Empty{}},
		},
		ProposedMessages: []*streams.BatchAppendReq_ProposedMessage{{
			Id:             structured(id),
			Metadata:       map[string]string{"type": "customer.Touched", "content-type": "application/json"},
			CustomMetadata: r.meta,
			Data:           r.data,
		}},
		IsFinal: true,
	}
}

func structured(id uuid.UUID) *shared.UUID {
	most, least := esdb.UUIDAsInt64(id)
	return &shared.UUID{Value: &shared.UUID_Structured_{Structured: &shared.UUID_Structured{MostSignificantBits: most, LeastSignificantBits: least}}}
}

// catchUp subscribes to $all from the start and counts events until total.
func (r *run) catchUp(url string, total int) error {
	cfg, err := esdb.ParseConnectionString(url)
	if err != nil {
		return err
	}
	cfg.Logger = esdb.NoopLogging()
	db, err := esdb.NewClient(cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	sub, err := db.SubscribeToAll(context.Background(), esdb.SubscribeToAllOptions{From: esdb.Start{}})
	if err != nil {
		return err
	}
	defer sub.Close()
	for n := 0; n < total; {
		ev := sub.Recv()
		if ev.SubscriptionDropped != nil {
			return fmt.Errorf("the $all subscription dropped after %d events: %w", n, ev.SubscriptionDropped.Error)
		}
		if ev.EventAppeared != nil {
			n++
		}
	}
	return nil
}
