package publish

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/chronicler-dev/chronicler/mapping"
	"github.com/chronicler-dev/chronicler/publish/kafka"
)

// ReplayFrom is where a replay's range starts: the start of $all, after a
// commit position, or at the first event stored at or after a time.
type ReplayFrom struct {
	Start    bool
	Position uint64    // exclusive: events with a greater commit position
	Time     time.Time // events created at or after Time
}

// ReplayConfig configures Replay.
type ReplayConfig struct {
	Store     *esdb.Client     // required
	Rules     *mapping.RuleSet // required
	Promotion string           // the promotion rule to re-derive; required
	From      ReplayFrom
	// Topic, when set, receives the records instead of the rule's topic.
	Topic string
	Kafka KafkaConfig // required (Brokers)
	// Progress, when set, is called about every ProgressEvery events and at
	// the end.
	Progress      func(ReplayStats)
	ProgressEvery int // default 10000
	Logger        *slog.Logger
}

// ReplayStats is a replay's progress.
type ReplayStats struct {
	Events      int    // stored events read
	Records     int    // records produced
	DeadLetters int    // outputs that failed (counted and logged, not produced)
	Position    uint64 // commit position of the last event read
	End         uint64 // commit position of the last event when the replay started
}

// Replay re-derives one promotion rule's integration events from stored
// history into a topic. It reads $all from the start (so transactions that
// begin before the range are complete), produces the outputs of events in
// the range (per-event rules: the event is in the range; transaction rules:
// the completing progress marker is), up to the last event stored when it
// started, and returns. Records are byte-equal (key, value, headers) to the
// live publisher's. It uses its own idempotent producer, at least once,
// and never touches any publisher's checkpoint: a replay interrupted and
// run again may produce records twice, with equal ce_id.
func Replay(ctx context.Context, cfg ReplayConfig) (ReplayStats, error) {
	var st ReplayStats
	var errs []error
	if cfg.Store == nil {
		errs = append(errs, errors.New("replay: a KurrentDB client is required"))
	}
	if cfg.Rules == nil {
		errs = append(errs, errors.New("replay: rules are required"))
	} else if !slices.Contains(cfg.Rules.PromotionRules(), cfg.Promotion) {
		errs = append(errs, fmt.Errorf("replay --promotion %q: %w; the rule files have %v", cfg.Promotion, ErrUnknownPromotion, cfg.Rules.PromotionRules()))
	}
	errs = append(errs, cfg.Kafka.validate("kafka")...)
	if err := errors.Join(errs...); err != nil {
		return st, err
	}
	if cfg.ProgressEvery <= 0 {
		cfg.ProgressEvery = 10000
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	kopts, err := cfg.Kafka.clientOpts()
	if err != nil {
		return st, err
	}
	end, empty, err := lastPosition(ctx, cfg.Store)
	if err != nil {
		return st, err
	}
	st.End = end
	if empty {
		return st, nil
	}
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(cfg.Kafka.Brokers...)}, kopts...)...)
	if err != nil {
		return st, fmt.Errorf("kafka client: %w", err)
	}
	defer cl.Close()

	eng := newEngine(cfg.Rules, "", cfg.Kafka.MaxRecordBytes)
	eng.only, eng.topic = cfg.Promotion, cfg.Topic
	checked := map[string]bool{}
	adm := kadm.NewClient(cl)
	inRange := func(ev *esdb.RecordedEvent) bool {
		switch {
		case cfg.From.Start:
			return true
		case !cfg.From.Time.IsZero():
			return !ev.CreatedDate.Before(cfg.From.Time)
		default:
			return ev.Position.Commit > cfg.From.Position
		}
	}
	rs, err := cfg.Store.ReadAll(ctx, esdb.ReadAllOptions{From: esdb.Start{}}, ^uint64(0)>>1)
	if err != nil {
		return st, fmt.Errorf("reading $all: %w", err)
	}
	defer rs.Close()
	var (
		outs    []output
		pending []*kgo.Record
		started bool // the time range, once entered, stays entered
	)
	produce := func() error {
		for _, r := range pending {
			if !checked[r.Topic] {
				checked[r.Topic] = true
				if err := ensureTopics(ctx, adm, &cfg.Kafka, []string{r.Topic}); err != nil {
					return err
				}
			}
		}
		if err := cl.ProduceSync(ctx, pending...).FirstErr(); err != nil {
			return fmt.Errorf("replay producing: %w", err)
		}
		st.Records += len(pending)
		pending = pending[:0]
		return nil
	}
	var prev kafka.Resume
	for {
		re, err := rs.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return st, fmt.Errorf("reading $all after position %d: %w", st.Position, err)
		}
		ev := re.OriginalEvent()
		if ev.Position.Commit > end {
			break
		}
		if len(ev.EventType) > 0 && ev.EventType[0] == '$' {
			continue
		}
		started = started || inRange(ev)
		outs, err = eng.handle(ev, prev, started, started, outs[:0])
		if err != nil {
			return st, err
		}
		for _, o := range outs {
			if o.dead != nil {
				st.DeadLetters++
				cfg.Logger.Warn("replay: promotion failed", "stream", o.dead.Stream, "event", o.dead.EventID, "err", o.dead.Cause)
				continue
			}
			pending = append(pending, o.rec)
		}
		st.Events++
		st.Position = ev.Position.Commit
		prev = kafka.Resume{Commit: ev.Position.Commit, Prepare: ev.Position.Prepare}
		if len(pending) >= 1000 {
			if err := produce(); err != nil {
				return st, err
			}
		}
		if cfg.Progress != nil && st.Events%cfg.ProgressEvery == 0 {
			cfg.Progress(st)
		}
		if ev.Position.Commit == end {
			break
		}
	}
	if err := produce(); err != nil {
		return st, err
	}
	if cfg.Progress != nil {
		cfg.Progress(st)
	}
	return st, nil
}

// lastPosition is the commit position of the last event in $all.
func lastPosition(ctx context.Context, db *esdb.Client) (uint64, bool, error) {
	rs, err := db.ReadAll(ctx, esdb.ReadAllOptions{Direction: esdb.Backwards, From: esdb.End{}}, 1)
	if err != nil {
		return 0, false, fmt.Errorf("reading the end of $all: %w", err)
	}
	defer rs.Close()
	re, err := rs.Recv()
	if errors.Is(err, io.EOF) {
		return 0, true, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("reading the end of $all: %w", err)
	}
	return re.OriginalEvent().Position.Commit, false, nil
}

// ParseReplayFrom parses the replay command's --from: "start", a commit
// position (decimal), or an RFC 3339 time.
func ParseReplayFrom(s string) (ReplayFrom, error) {
	if s == "start" {
		return ReplayFrom{Start: true}, nil
	}
	if p, err := strconv.ParseUint(s, 10, 64); err == nil {
		return ReplayFrom{Position: p}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return ReplayFrom{Time: t}, nil
	}
	return ReplayFrom{}, fmt.Errorf("--from %q: want start, a commit position (e.g. 123456) or an RFC 3339 time (e.g. 2025-01-31T00:00:00Z)", s)
}
