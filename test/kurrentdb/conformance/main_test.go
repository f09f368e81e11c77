package conformance_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/chronicler-dev/chronicler/test/kurrentdb"
	"github.com/google/uuid"
	"google.golang.org/grpc/status"
)

// urlEnv names a real KurrentDB to run the suite against instead of the
// in-process server.
const urlEnv = "CHRONICLER_TEST_KURRENTDB_URL"

// maxAppendEventSize is the per-event append limit the suite's server runs
// with (KurrentDB option MaxAppendEventSize, unlimited by default): start a
// real server with --max-append-event-size=1049600. It is above the 1 MiB
// append limit so that only TestMaximumAppendEventSizeAnswer meets it, and
// that test shows the event check comes before the append check.
const maxAppendEventSize = 1<<20 + 1<<10

var (
	db *esdb.Client
	// realServer is true when the suite runs against CHRONICLER_TEST_KURRENTDB_URL.
	realServer bool
	// serverURL is the esdb:// URL the suite runs against (for the raw gRPC
	// BatchAppend client, which the official Go client does not expose).
	serverURL string
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	url := os.Getenv(urlEnv)
	if url != "" {
		realServer = true
	} else {
		srv, err := kurrentdb.Start(kurrentdb.Options{MaxAppendEventSize: maxAppendEventSize})
		if err != nil {
			fmt.Fprintln(os.Stderr, "starting the in-process KurrentDB-compatible server:", err)
			return 1
		}
		defer srv.Close()
		url = srv.URL()
	}
	serverURL = url
	cfg, err := esdb.ParseConnectionString(url)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s=%q: %v\n", urlEnv, url, err)
		return 2
	}
	cfg.Logger = esdb.NoopLogging()
	db, err = esdb.NewClient(cfg)
	if err != nil {
		fmt.Fprintf(os.Stderr, "connecting to %s: %v\n", url, err)
		return 2
	}
	defer db.Close()
	stop, code := startSecure()
	if code != 0 {
		return code
	}
	defer stop()
	return m.Run()
}

// ctx is a per-test context with a generous deadline: a hung server fails
// the test instead of hanging CI.
func ctx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return c
}

// newStream returns a stream name nobody else uses, so the suite can run
// against a shared real server: <category>-<uuid without dashes>.
func newStream(category string) string {
	return category + "-" + strings.ReplaceAll(uuid.NewString(), "-", "")
}

// evs builds n JSON events of type typ with fresh ids.
func evs(n int, typ string) []esdb.EventData {
	out := make([]esdb.EventData, n)
	for i := range out {
		out[i] = esdb.EventData{
			EventID:     uuid.New(),
			EventType:   typ,
			ContentType: esdb.ContentTypeJson,
			Data:        fmt.Appendf(nil, `{"n":%d}`, i),
			Metadata:    fmt.Appendf(nil, `{"m":%d}`, i),
		}
	}
	return out
}

func appendOK(t testing.TB, stream string, exp esdb.ExpectedRevision, events ...esdb.EventData) *esdb.WriteResult {
	t.Helper()
	res, err := db.AppendToStream(ctx(t), stream, esdb.AppendToStreamOptions{ExpectedRevision: exp}, events...)
	if err != nil {
		t.Fatalf("append to %s (expected %T%v): %v", stream, exp, exp, err)
	}
	return res
}

// codeOf returns the client's error code, or -1 when err is nil or not an *esdb.Error.
func codeOf(err error) esdb.ErrorCode {
	var e *esdb.Error
	if errors.As(err, &e) {
		return e.Code()
	}
	return -1
}

// grpcCode returns the gRPC status code under a client error.
func grpcCode(err error) string {
	var e *esdb.Error
	if errors.As(err, &e) && e.Err() != nil {
		err = e.Err()
	}
	return status.Code(err).String()
}

// readStream reads a whole stream (up to count events).
func readStream(t testing.TB, stream string, opts esdb.ReadStreamOptions, count uint64) ([]*esdb.ResolvedEvent, error) {
	t.Helper()
	rs, err := db.ReadStream(ctx(t), stream, opts, count)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	var out []*esdb.ResolvedEvent
	for {
		ev, err := rs.Recv()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, ev)
	}
}

func revisions(events []*esdb.ResolvedEvent) []uint64 {
	out := make([]uint64, len(events))
	for i, e := range events {
		out[i] = e.OriginalEvent().EventNumber
	}
	return out
}

func ids(events []*esdb.ResolvedEvent) []uuid.UUID {
	out := make([]uuid.UUID, len(events))
	for i, e := range events {
		out[i] = e.OriginalEvent().EventID
	}
	return out
}

func dataIDs(events []esdb.EventData) []uuid.UUID {
	out := make([]uuid.UUID, len(events))
	for i, e := range events {
		out[i] = e.EventID
	}
	return out
}
