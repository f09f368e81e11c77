package publish

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/chronicler-dev/chronicler/capture/store"
	"github.com/chronicler-dev/chronicler/mapping"
	"github.com/chronicler-dev/chronicler/mapping/contract"
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
	Store     *store.Client    // required
	Rules     *mapping.RuleSet // required
	Promotion string           // the promotion rule to re-derive; required
	From      ReplayFrom
	// Topic, when set, receives the records instead of the rule's topic.
	Topic string
	Kafka kafka.ClusterConfig // required (Brokers)
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
	errs = append(errs, cfg.Kafka.Validate("kafka")...)
	if err := errors.Join(errs...); err != nil {
		return st, err
	}
	if cfg.ProgressEvery <= 0 {
		cfg.ProgressEvery = 10000
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	kopts, err := cfg.Kafka.ProducerOpts()
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
	inRange := func(ev *store.Recorded) bool {
		switch {
		case cfg.From.Start:
			return true
		case !cfg.From.Time.IsZero():
			return !ev.Created.Before(cfg.From.Time)
		default:
			return ev.Pos.Commit > cfg.From.Position
		}
	}
	var (
		outs    []output
		pending []*kgo.Record
		started bool // the time range, once entered, stays entered
		prev    contract.StoreFrom
		failed  error
	)
	produce := func() error {
		for _, r := range pending {
			if !checked[r.Topic] {
				checked[r.Topic] = true
				if err := kafka.EnsureTopics(ctx, adm, &cfg.Kafka, []string{r.Topic}); err != nil {
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
	// step handles one event of $all; false stops the read (the end, or
	// failed is set).
	step := func(ev *store.Recorded) bool {
		if ev.Pos.Commit > end {
			return false
		}
		if len(ev.Type) > 0 && ev.Type[0] == '$' {
			return true
		}
		started = started || inRange(ev)
		if outs, failed = eng.handle(ev, prev, started, started, outs[:0]); failed != nil {
			return false
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
		st.Position = ev.Pos.Commit
		prev = contract.After(ev.Pos)
		if len(pending) >= 1000 {
			if failed = produce(); failed != nil {
				return false
			}
		}
		if cfg.Progress != nil && st.Events%cfg.ProgressEvery == 0 {
			cfg.Progress(st)
		}
		return ev.Pos.Commit != end
	}
	if err := cfg.Store.ReadAll(ctx, contract.StoreFrom{Start: true}, math.MaxUint64, step); err != nil {
		return st, fmt.Errorf("reading $all after position %d: %w", st.Position, err)
	}
	if failed != nil {
		return st, failed
	}
	if err := produce(); err != nil {
		return st, err
	}
	if cfg.Progress != nil {
		cfg.Progress(st)
	}
	return st, nil
}

// lastPosition is the commit position of the last event in $all; empty
// when there is none.
func lastPosition(ctx context.Context, db *store.Client) (pos uint64, empty bool, err error) {
	ev, err := db.ReadLastAll(ctx)
	if err != nil {
		return 0, false, fmt.Errorf("reading the end of $all: %w", err)
	}
	if ev == nil {
		return 0, true, nil
	}
	return ev.Pos.Commit, false, nil
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
