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
	"github.com/chronicler-dev/chronicler/publish/kafka/registry"
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
	// Registry, when set, frames the records of a rule with a schema with
	// its id, as the live publisher does (the schema is registered if it is
	// not yet). Default nil: plain JSON.
	Registry *registry.Client
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
	if err := cfg.validate(); err != nil {
		return st, err
	}
	kopts, err := cfg.Kafka.ProducerOpts()
	if err != nil {
		return st, err
	}
	ids, err := resolveSchemas(ctx, cfg.Registry, cfg.Rules)
	if err != nil {
		return st, err
	}
	end, empty, err := lastPosition(ctx, cfg.Store)
	if err != nil || empty {
		st.End = end
		return st, err
	}
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(cfg.Kafka.Brokers...)}, kopts...)...)
	if err != nil {
		return st, fmt.Errorf("kafka client: %w", err)
	}
	defer cl.Close()
	r := &replay{cfg: &cfg, cl: cl, adm: kadm.NewClient(cl), eng: newEngine(cfg.Rules, "", cfg.Kafka.MaxRecordBytes), end: end, checked: map[string]bool{}}
	r.st.End = end
	r.eng.only, r.eng.topic, r.eng.schemaIDs = cfg.Promotion, cfg.Topic, ids
	if err := cfg.Store.ReadAll(ctx, contract.StoreFrom{Start: true}, math.MaxUint64, func(ev *store.Recorded) bool { return r.step(ctx, ev) }); err != nil {
		return r.st, fmt.Errorf("reading $all after position %d: %w", r.st.Position, err)
	}
	if r.failed != nil {
		return r.st, r.failed
	}
	if err := r.produce(ctx); err != nil {
		return r.st, err
	}
	if cfg.Progress != nil {
		cfg.Progress(r.st)
	}
	return r.st, nil
}

func (cfg *ReplayConfig) validate() error {
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
	if cfg.ProgressEvery <= 0 {
		cfg.ProgressEvery = 10000
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return errors.Join(errs...)
}

// replay is one Replay's state while it reads $all.
type replay struct {
	cfg     *ReplayConfig
	cl      *kgo.Client
	adm     *kadm.Client
	eng     *engine
	end     uint64
	st      ReplayStats
	checked map[string]bool // topics checked or created
	outs    []output
	pending []*kgo.Record
	started bool // the time range, once entered, stays entered
	prev    contract.StoreFrom
	failed  error
}

func (r *replay) inRange(ev *store.Recorded) bool {
	switch f := r.cfg.From; {
	case f.Start:
		return true
	case !f.Time.IsZero():
		return !ev.Created.Before(f.Time)
	default:
		return ev.Pos.Commit > f.Position
	}
}

// step handles one event of $all; false stops the read (the end, or
// r.failed is set).
func (r *replay) step(ctx context.Context, ev *store.Recorded) bool {
	if ev.Pos.Commit > r.end {
		return false
	}
	if len(ev.Type) > 0 && ev.Type[0] == '$' {
		return true
	}
	r.started = r.started || r.inRange(ev)
	if r.outs, r.failed = r.eng.handle(ev, r.prev, r.started, r.started, r.outs[:0]); r.failed != nil {
		return false
	}
	for _, o := range r.outs {
		if o.dead != nil {
			r.st.DeadLetters++
			r.cfg.Logger.Warn("replay: promotion failed", "stream", o.dead.Stream, "event", o.dead.EventID, "err", o.dead.Cause)
			continue
		}
		r.pending = append(r.pending, o.rec)
	}
	r.st.Events++
	r.st.Position = ev.Pos.Commit
	r.prev = contract.After(ev.Pos)
	if len(r.pending) >= 1000 {
		if r.failed = r.produce(ctx); r.failed != nil {
			return false
		}
	}
	if r.cfg.Progress != nil && r.st.Events%r.cfg.ProgressEvery == 0 {
		r.cfg.Progress(r.st)
	}
	return ev.Pos.Commit != r.end
}

// produce produces the pending records (their topics checked or created
// first) and waits for them.
func (r *replay) produce(ctx context.Context) error {
	for _, rec := range r.pending {
		if !r.checked[rec.Topic] {
			r.checked[rec.Topic] = true
			if err := kafka.EnsureTopics(ctx, r.adm, &r.cfg.Kafka, []string{rec.Topic}); err != nil {
				return err
			}
		}
	}
	if err := r.cl.ProduceSync(ctx, r.pending...).FirstErr(); err != nil {
		return fmt.Errorf("replay producing: %w", err)
	}
	r.st.Records += len(r.pending)
	r.pending = r.pending[:0]
	return nil
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
