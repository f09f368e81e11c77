package preflight

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/chronicler-dev/chronicler/capture/store"
	"github.com/chronicler-dev/chronicler/mapping"
	"github.com/chronicler-dev/chronicler/mapping/contract"
	"github.com/chronicler-dev/chronicler/publish"
	pkafka "github.com/chronicler-dev/chronicler/publish/kafka"
)

// readPublisher reads the publisher's checkpoint and the publish-side dead
// letters from Kafka, and counts the publisher's lag in the store.
func (s *statusReader) readPublisher(ctx context.Context) {
	ps := &PublisherStatus{ID: s.cfg.PublisherID(), CheckpointTopic: s.cfg.Delivery.CheckpointTopic}
	s.rep.Publisher = ps
	opts, err := kafkaOpts(s.cfg)
	if err != nil {
		s.fail("publisher", err)
		return
	}
	ctx, cancel := context.WithTimeout(ctx, s.opts.Timeout)
	defer cancel()
	brokers := strings.Join(s.cfg.Kafka.Brokers, ",")

	cp, err := readCheckpoint(ctx, opts, ps.CheckpointTopic, ps.ID)
	if err != nil {
		s.fail("publisher", fmt.Errorf("kafka %s: %w", brokers, err))
	} else {
		ps.Checkpoint = cp
		s.publisherLag(ctx, ps)
	}
	n, err := countCommitted(ctx, opts, s.cfg.DeadLetter.Topic)
	if err != nil {
		s.fail("dead_letters", fmt.Errorf("kafka %s: %w", brokers, err))
		return
	}
	s.rep.DeadLetters.Publish = &n
}

// readCheckpoint returns the last checkpoint of publisher id
// (kafka.ReadCheckpoint, the reader the publisher itself uses), nil when
// there is none.
func readCheckpoint(ctx context.Context, base []kgo.Opt, topic, id string) (*Checkpoint, error) {
	st, ok, err := pkafka.ReadCheckpoint(ctx, base, topic, id)
	if err != nil || !ok {
		return nil, err
	}
	cp := &Checkpoint{Commit: st.Commit, Prepare: st.Prepare, Written: &st.Written, Offset: st.Offset}
	if r := st.Resume; r != nil {
		cp.Resume = &Resume{Start: r.Start, Commit: r.Commit, Prepare: r.Prepare}
	}
	return cp, nil
}

// countCommitted counts the committed records of every partition of topic.
func countCommitted(ctx context.Context, base []kgo.Opt, topic string) (int64, error) {
	var n int64
	err := pkafka.ReadCommitted(ctx, base, topic, nil, func(*kgo.Record) { n++ })
	if err != nil {
		return 0, fmt.Errorf("dead-letter topic: %w", err)
	}
	return n, nil
}

// publisherLag counts the events after the checkpoint that the
// publisher's subscription delivers, through readStore's client.
func (s *statusReader) publisherLag(ctx context.Context, ps *PublisherStatus) {
	end := s.rep.Store
	if end == nil || s.storeFailed() {
		return
	}
	var through Position
	if ps.Checkpoint != nil {
		through = Position{Commit: ps.Checkpoint.Commit, Prepare: ps.Checkpoint.Prepare}
	}
	if end.End != nil {
		d := uint64(0)
		if end.End.Commit > through.Commit {
			d = end.End.Commit - through.Commit
		}
		ps.LagPositions = &d
	}
	match := func(*store.Recorded) bool { return true }
	if rs, err := mapping.Load(s.cfg.Rules.Paths, mapping.Options{}); err == nil {
		match = publish.MatchesInterest(rs.Interest())
	}
	db := s.db
	if db == nil {
		return
	}
	var n int64
	capped := false
	err := store.Bounded(ctx, func(ctx context.Context) error {
		from := contract.StoreFrom{Start: true}
		if ps.Checkpoint != nil {
			from = contract.After(contract.StorePos{Commit: through.Commit, Prepare: through.Prepare})
		}
		// One event more than the bound, to see that there are more.
		read := int64(0)
		return db.ReadAll(ctx, from, uint64(s.opts.MaxLagEvents)+1, func(ev *store.Recorded) bool {
			read++
			if read > s.opts.MaxLagEvents {
				capped = true
				return false
			}
			if match(ev) {
				n++
			}
			return true
		})
	})
	if errors.Is(err, store.ErrNoAnswer) {
		s.db = nil // the read may still be inside the client: not closed
	}
	if err != nil {
		s.fail("publisher_lag", fmt.Errorf("counting the events after the checkpoint: %w", err))
		return
	}
	ps.LagEvents, ps.LagEventsCapped = &n, capped
}

func (s *statusReader) storeFailed() bool {
	for _, e := range s.errs {
		var se *SectionError
		if errors.As(e, &se) && se.Section == "store" {
			return true
		}
	}
	return false
}
