package kafka

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/chronicler-dev/chronicler/capture/retry"
	"github.com/chronicler-dev/chronicler/mapping/contract"
)

// Checkpoint is the store position a publisher has published up to
// (inclusive): the $all commit and prepare positions of the last event whose
// integration events are committed ("through"), and, when the publisher
// buffers incomplete source transactions, where to re-read from to rebuild
// them (Resume).
type Checkpoint struct {
	contract.StorePos // through: {"commit":…,"prepare":…}
	// Resume, when set, is where to re-read $all from after a restart (it
	// precedes the oldest buffered, incomplete transaction). Nil: resume
	// right after StorePos.
	Resume *contract.StoreFrom `json:"resume,omitempty"`
}

// checkpointValue is the checkpoint record's JSON value.
type checkpointValue struct {
	Checkpoint
	Publisher string    `json:"publisher"`
	Written   time.Time `json:"written"`
}

// DecodeCheckpoint reads a checkpoint record's value: the checkpoint and
// when it was written. Readers other than the Writer (`chronicler status`)
// use it, so the format has one definition.
func DecodeCheckpoint(value []byte) (Checkpoint, time.Time, error) {
	var v checkpointValue
	err := json.Unmarshal(value, &v)
	return v.Checkpoint, v.Written, err
}

// Writer writes batches of records with the publisher's checkpoint.
type Writer struct {
	cfg Config
	cl  *kgo.Client
	adm *kadm.Client
	// ended is when the last transaction ended (ExactlyOnce): the next
	// begins txnGap after it at the earliest (Commit).
	ended time.Time
}

// Back-to-back transactions. A Kafka broker (before transactions v2)
// finishes a commit after EndTxn has answered: the coordinator writes the
// markers to the partitions, then the commit to its log. A transaction
// begun before that (its AddPartitionsToTxn) is refused with
// CONCURRENT_TRANSACTIONS, and franz-go retries it after a backoff (20 ms
// by default). So Commit begins a transaction txnGap after the last one
// ended at the earliest, and a refusal is retried after txnRetryBackoff.
// Measured against the test stack's broker (Kafka 3.9, idle machine),
// one-record transactions back to back: with no gap 93% were refused and a
// cycle took 23 ms at p50; with a 1 ms gap 1% (p99 18 ms); with 3 ms none
// (p50 2.1, p99 4.5 ms). The publisher's group commit (FlushWhenIdle)
// commits as soon as its queue is empty, so at a steady rate most commits
// would otherwise come too soon. Through the whole pipeline at 1,000 tx/s
// (test/bench's latency run, README "The walsender and the scheduler, and a
// faster Kafka commit") commit-to-Kafka went from p50 24.5 ms and p99 46-48
// ms (franz-go's 10 ms linger, which every commit waited out, spaced the
// transactions by accident) to p50 12-14 ms and p99 29-39 ms; the broker's
// CPU per change in that run rose from about 52 to 88-95 CPU s per million
// changes, for more and smaller transactions. Under load the batches fill
// (BatchRecords) and commits are further apart than txnGap anyway.
const (
	txnGap          = 3 * time.Millisecond
	txnRetryBackoff = 5 * time.Millisecond
)

// gapLeft is how long a transaction beginning at now waits for txnGap
// after the one that ended at ended.
func gapLeft(ended, now time.Time) time.Duration {
	return max(0, txnGap-now.Sub(ended))
}

// New connects, makes sure the checkpoint topic exists and, in ExactlyOnce
// mode, initialises the producer id, which fences older instances with the
// same publisher id (see the package doc for why this comes first).
func New(ctx context.Context, cfg Config) (*Writer, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	opts := append([]kgo.Opt{kgo.SeedBrokers(cfg.Brokers...)}, cfg.ClientOpts...)
	if cfg.Mode == ExactlyOnce {
		opts = append(opts, kgo.TransactionalID(TransactionalID(cfg.PublisherID)), kgo.ConcurrentTransactionsBackoff(txnRetryBackoff))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("kafka client: %w", err)
	}
	w := &Writer{cfg: cfg, cl: cl, adm: kadm.NewClient(cl)}
	if err := w.ensureCheckpointTopic(ctx); err != nil {
		cl.Close()
		return nil, err
	}
	if cfg.Mode == ExactlyOnce {
		id, epoch, err := cl.ProducerID(ctx)
		if err != nil {
			cl.Close()
			return nil, fmt.Errorf("initialising transactional producer %s (does the cluster support transactions? at-least-once mode does without): %w",
				TransactionalID(cfg.PublisherID), classify(err))
		}
		cfg.Logger.Info("kafka: this publisher now owns its transactional id; any older instance of it is fenced and its open transaction aborted",
			"publisher", cfg.PublisherID, "transactional_id", TransactionalID(cfg.PublisherID), "producer_id", id, "epoch", epoch)
	}
	cfg.Logger.Info("kafka writer ready", "publisher", cfg.PublisherID, "mode", cfg.Mode.String(), "checkpoint_topic", cfg.CheckpointTopic)
	return w, nil
}

// EnsureCheckpointTopic creates the checkpoint topic if it is missing, as
// New does (1 partition, compacted): after it was deleted under a running
// writer, whose next commit then writes the checkpoint again.
func (w *Writer) EnsureCheckpointTopic(ctx context.Context) error {
	return w.ensureCheckpointTopic(ctx)
}

func (w *Writer) ensureCheckpointTopic(ctx context.Context) error {
	cleanup := "compact"
	resp, err := w.adm.CreateTopic(ctx, 1, w.cfg.CheckpointReplication, map[string]*string{"cleanup.policy": &cleanup}, w.cfg.CheckpointTopic)
	if err == nil {
		err = resp.Err
	}
	if err == nil || errors.Is(err, kerr.TopicAlreadyExists) {
		return nil
	}
	if errors.Is(err, kerr.TopicAuthorizationFailed) {
		// A principal without CREATE is refused even for a topic that
		// exists: with READ on it (which it needs anyway), the metadata
		// says whether it does.
		if d, lerr := w.adm.ListTopics(ctx, w.cfg.CheckpointTopic); lerr == nil && d.Has(w.cfg.CheckpointTopic) && d[w.cfg.CheckpointTopic].Err == nil {
			return nil
		}
	}
	var ke *kerr.Error
	if !errors.As(err, &ke) {
		// No broker answered: the fix is the connection, not the topic.
		return &UnreachableError{Brokers: w.cfg.Brokers, Cause: err}
	}
	return fmt.Errorf("creating checkpoint topic %s: the broker refused: %w (create it yourself: 1 partition, cleanup.policy=compact, or grant CREATE on it)", w.cfg.CheckpointTopic, err)
}

// Checkpoint reads the publisher's last committed checkpoint with
// read_committed (ReadCheckpoint). ok is false when the publisher has never
// committed one. A checkpoint topic New has just created may be unknown to
// the broker that answers for a moment (UNKNOWN_TOPIC_OR_PARTITION): that
// is retried for a few seconds.
func (w *Writer) Checkpoint(ctx context.Context) (cp Checkpoint, ok bool, err error) {
	var backoff retry.Backoff
	for attempt := 1; ; attempt++ {
		st, ok, err := ReadCheckpoint(ctx, append([]kgo.Opt{kgo.SeedBrokers(w.cfg.Brokers...)}, w.cfg.ClientOpts...), w.cfg.CheckpointTopic, w.cfg.PublisherID)
		if err == nil || !errors.Is(err, kerr.UnknownTopicOrPartition) || attempt == 7 || !backoff.Wait(ctx) {
			return st.Checkpoint, ok, err
		}
	}
}

// EnsureTopics checks (or creates, per cluster.CreateTopics) topics with
// the writer's client (EnsureTopics).
func (w *Writer) EnsureTopics(ctx context.Context, cluster *ClusterConfig, topics []string) error {
	return EnsureTopics(ctx, w.adm, cluster, topics)
}

// Commit writes recs and then the checkpoint cp, as one transaction in
// ExactlyOnce mode, or acknowledged records first and checkpoint second in
// AtLeastOnce mode. On error nothing of this call is visible to
// read_committed readers in ExactlyOnce mode; the caller re-derives the batch
// from the store and calls Commit again (or stops, for ErrFenced).
func (w *Writer) Commit(ctx context.Context, recs []*kgo.Record, cp Checkpoint) error {
	cpRec, err := w.checkpointRecord(cp)
	if err != nil {
		return err
	}
	if w.cfg.Mode == AtLeastOnce {
		if err := w.produceAll(ctx, recs); err != nil {
			return err
		}
		return w.produceAll(ctx, []*kgo.Record{cpRec})
	}
	if d := gapLeft(w.ended, time.Now()); d > 0 {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
	}
	defer func() { w.ended = time.Now() }()
	if err := w.cl.BeginTransaction(); err != nil {
		return classify(err)
	}
	if err := w.produceAll(ctx, append(recs, cpRec)); err != nil {
		w.abort(ctx)
		return classify(err)
	}
	if err := w.cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
		// The outcome may be unknown (a transport error): aborting reloads
		// the producer id, which bumps the epoch and aborts broker-side
		// whatever is still open. The caller retries the batch.
		w.abort(ctx)
		return fmt.Errorf("committing transaction: %w", classify(err))
	}
	return nil
}

func (w *Writer) abort(ctx context.Context) {
	if err := w.cl.AbortBufferedRecords(ctx); err != nil {
		w.cfg.Logger.Warn("aborting buffered records", "err", err)
	}
	if err := w.cl.EndTransaction(ctx, kgo.TryAbort); err != nil {
		w.cfg.Logger.Warn("aborting transaction", "err", err)
	}
}

// produceAll produces recs and waits for every acknowledgement, returning
// the first error, or ctx's error when ctx ends first: franz-go cancels only
// records not yet sent with ctx, and a broker that does not answer would
// otherwise hold the caller for the whole request timeout (a graceful stop
// past its grace). The caller aborts the transaction then.
//
// recs are a whole batch, so they are flushed at once: the producer's
// linger (franz-go's default 10 ms) waits for records that will not come,
// and every commit waited it out (twice in AtLeastOnce mode), most of the
// Kafka part of test/bench's latency. Flush returns when every record's
// promise has run.
func (w *Writer) produceAll(ctx context.Context, recs []*kgo.Record) error {
	var (
		mu    sync.Mutex
		first error
	)
	for _, r := range recs {
		w.cl.Produce(ctx, r, func(r *kgo.Record, err error) {
			if err != nil {
				mu.Lock()
				if first == nil {
					first = fmt.Errorf("producing to %s: %w", r.Topic, err)
				}
				mu.Unlock()
			}
		})
	}
	if err := w.cl.Flush(ctx); err != nil {
		return err
	}
	mu.Lock()
	defer mu.Unlock()
	return first
}

func (w *Writer) checkpointRecord(cp Checkpoint) (*kgo.Record, error) {
	b, err := json.Marshal(checkpointValue{Checkpoint: cp, Publisher: w.cfg.PublisherID, Written: time.Now().UTC()})
	if err != nil {
		return nil, err
	}
	return &kgo.Record{Topic: w.cfg.CheckpointTopic, Partition: 0, Key: []byte(w.cfg.PublisherID), Value: b}, nil
}

// Close closes the client. An open transaction is left to the coordinator,
// which aborts it on timeout or when the next instance fences this one.
func (w *Writer) Close() { w.cl.Close() }
