package preflight

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
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

// committedRange is, per partition of topic, the first offset and the last
// stable offset (read_committed's end).
func committedRange(ctx context.Context, adm *kadm.Client, topic string) (map[int32][2]int64, error) {
	starts, err := adm.ListStartOffsets(ctx, topic)
	if err != nil {
		return nil, fmt.Errorf("listing start offsets of %s: %w", topic, err)
	}
	ends, err := adm.ListCommittedOffsets(ctx, topic)
	if err != nil {
		return nil, fmt.Errorf("listing end offsets of %s: %w", topic, err)
	}
	out := map[int32][2]int64{}
	var ferr error
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err != nil {
			ferr = fmt.Errorf("topic %s partition %d: %w", topic, o.Partition, o.Err)
			return
		}
		st, _ := starts.Lookup(topic, o.Partition)
		out[o.Partition] = [2]int64{st.Offset, o.Offset}
	})
	return out, ferr
}

// readCommitted reads every committed record of topic's partitions up to
// their last stable offsets with a read_committed consumer (no group, no
// commits) and hands each non-control record to f.
func readCommitted(ctx context.Context, base []kgo.Opt, topic string, partitions []int32, f func(*kgo.Record)) error {
	cl, err := kgo.NewClient(base...)
	if err != nil {
		return err
	}
	defer cl.Close()
	ranges, err := committedRange(ctx, kadm.NewClient(cl), topic)
	if err != nil {
		return err
	}
	consume := map[int32]kgo.Offset{}
	left := map[int32]int64{} // partition → the offset to reach
	for p, r := range ranges {
		if partitions != nil && !slices.Contains(partitions, p) {
			continue
		}
		if r[1] > r[0] {
			consume[p] = kgo.NewOffset().At(r[0])
			left[p] = r[1]
		}
	}
	if len(consume) == 0 {
		return nil
	}
	rd, err := kgo.NewClient(append(append([]kgo.Opt(nil), base...),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		// Control records (commit/abort markers) are kept so that reaching
		// the last stable offset can be seen: it is often a marker.
		kgo.KeepControlRecords(),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: consume}),
	)...)
	if err != nil {
		return err
	}
	defer rd.Close()
	for len(left) > 0 {
		fs := rd.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("reading %s: %w", topic, err)
		}
		var ferr error
		fs.EachError(func(_ string, _ int32, err error) { ferr = err })
		if ferr != nil {
			return fmt.Errorf("reading %s: %w", topic, ferr)
		}
		fs.EachRecord(func(r *kgo.Record) {
			end, ok := left[r.Partition]
			if !ok || r.Offset >= end {
				return
			}
			if r.Offset+1 >= end {
				delete(left, r.Partition)
			}
			if !r.Attrs.IsControl() {
				f(r)
			}
		})
	}
	return nil
}

// readCheckpoint returns the last checkpoint of publisher id in partition 0
// of topic (where publish/kafka writes it), nil when there is none.
func readCheckpoint(ctx context.Context, base []kgo.Opt, topic, id string) (*Checkpoint, error) {
	var cp *Checkpoint
	err := readCommitted(ctx, base, topic, []int32{0}, func(r *kgo.Record) {
		if string(r.Key) != id {
			return
		}
		v, w, err := pkafka.DecodeCheckpoint(r.Value)
		if err != nil {
			return
		}
		cp = &Checkpoint{Commit: v.Commit, Prepare: v.Prepare, Written: &w, Offset: r.Offset}
		if v.Resume != nil {
			cp.Resume = &Resume{Start: v.Resume.Start, Commit: v.Resume.Commit, Prepare: v.Resume.Prepare}
		}
	})
	if err != nil {
		return nil, fmt.Errorf("checkpoint topic: %w", err)
	}
	return cp, nil
}

// countCommitted counts the committed records of every partition of topic.
func countCommitted(ctx context.Context, base []kgo.Opt, topic string) (int64, error) {
	var n int64
	err := readCommitted(ctx, base, topic, nil, func(*kgo.Record) { n++ })
	if err != nil {
		return 0, fmt.Errorf("dead-letter topic: %w", err)
	}
	return n, nil
}

// publisherLag counts the events after the checkpoint that the
// publisher's subscription delivers.
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
	db, _, err := openStore(s.cfg)
	if err != nil {
		return
	}
	var n int64
	capped := false
	err = store.Bounded(ctx, func(ctx context.Context) error {
		defer db.Close()
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
	if err != nil {
		s.fail("publisher", fmt.Errorf("counting the events after the checkpoint: %w", err))
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
