package kafka

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// committedRange is, per partition of topic, the first offset and the last
// stable offset (read_committed's end).
func committedRange(ctx context.Context, adm *kadm.Client, topic string) (map[int32][2]int64, error) {
	starts, err := adm.ListStartOffsets(ctx, topic)
	if err != nil {
		return nil, fmt.Errorf("listing start offsets of %s: %w", topic, err)
	}
	// End offsets with read_committed isolation are the last stable
	// offsets: reading up to them sees every decided transaction and no
	// open one.
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

// ReadCommitted reads every committed record of topic's partitions (nil:
// all of them) up to their last stable offsets with a read_committed
// consumer (no group, no commits) and hands each non-control record to f.
// opts are ClusterConfig.ClientOpts. It is the one read_committed reader:
// the writer's checkpoint, `chronicler status` and tests use it.
func ReadCommitted(ctx context.Context, opts []kgo.Opt, topic string, partitions []int32, f func(*kgo.Record)) error {
	cl, err := kgo.NewClient(opts...)
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
	rd, err := kgo.NewClient(append(append([]kgo.Opt(nil), opts...),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		// A transactional partition ends with a commit or abort marker. The
		// client hides markers (and aborted records) by default, so the last
		// visible offset would never reach the last stable offset; keeping
		// markers makes "last offset + 1 == end" a sound stop condition.
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

// Stored is a checkpoint as read back: the checkpoint, when it was written,
// and its offset in the checkpoint topic.
type Stored struct {
	Checkpoint
	Written time.Time
	Offset  int64
}

// ReadCheckpoint returns publisher id's last committed checkpoint in
// partition 0 of topic (where the Writer writes it); ok is false when there
// is none.
func ReadCheckpoint(ctx context.Context, opts []kgo.Opt, topic, id string) (cp Stored, ok bool, err error) {
	err = ReadCommitted(ctx, opts, topic, []int32{0}, func(r *kgo.Record) {
		if string(r.Key) != id {
			return
		}
		if c, w, err := DecodeCheckpoint(r.Value); err == nil {
			cp, ok = Stored{Checkpoint: c, Written: w, Offset: r.Offset}, true
		}
	})
	if err != nil {
		return Stored{}, false, fmt.Errorf("checkpoint topic %s: %w", topic, err)
	}
	return cp, ok, nil
}
