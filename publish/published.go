package publish

import (
	"context"
	"fmt"

	"github.com/chronicler-dev/chronicler/capture/retry"
	"github.com/chronicler-dev/chronicler/capture/store"
	"github.com/chronicler-dev/chronicler/mapping/contract"
	"github.com/chronicler-dev/chronicler/publish/kafka"
)

// MissingCheckpoint is what Run does when the checkpoint topic holds no
// checkpoint for the publisher although the store records that it has
// published before (contract.Published): the topic was deleted or emptied,
// or delivery.checkpoint_topic names another one.
type MissingCheckpoint int

const (
	// RefuseMissingCheckpoint makes Run return a *MissingCheckpointError.
	// The default.
	RefuseMissingCheckpoint MissingCheckpoint = iota
	// RestartMissingCheckpoint makes Run publish the whole history again,
	// from the start of $all (logged as a warning). Every record keeps its
	// ce_id, so consumers can drop the repeats.
	RestartMissingCheckpoint
)

// readPublished reads the publisher's record from the store (nil: it has
// none), retrying while the store does not answer, until ctx ends.
func (p *Publisher) readPublished(ctx context.Context) (*contract.Published, error) {
	stream := contract.PublisherStream(p.cfg.PublisherID)
	var backoff retry.Backoff
	for {
		ev, err := p.cfg.Store.ReadLast(ctx, stream)
		if err == nil {
			if ev == nil {
				return nil, nil
			}
			rec, err := contract.DecodePublished(ev.Data)
			if err != nil {
				return nil, fmt.Errorf("stream %s, revision %d: %w (written by Chronicler only: delete the stream if another writer put it there)", stream, ev.Revision, err)
			}
			return &rec, nil
		}
		p.cfg.Logger.Warn("reading the publisher's record from the store; retrying", "stream", stream, "err", err, "backoff", backoff.Next())
		if !backoff.Wait(ctx) {
			return nil, fmt.Errorf("reading %s: %w", stream, ctx.Err())
		}
	}
}

// writePublished appends the publisher's record: it has committed cp to
// the checkpoint topic.
func (p *Publisher) writePublished(ctx context.Context, cp kafka.Checkpoint) error {
	stream := contract.PublisherStream(p.cfg.PublisherID)
	data := contract.EncodePublished(contract.Published{Publisher: p.cfg.PublisherID, CheckpointTopic: p.cfg.CheckpointTopic, Through: cp.StorePos})
	if _, err := p.cfg.Store.AppendOne(ctx, stream, store.Any(), contract.PublishedType, data); err != nil {
		return fmt.Errorf("writing the publisher's record to %s: %w", stream, err)
	}
	return nil
}

// checkMissing applies OnMissingCheckpoint at start: the checkpoint topic
// holds none (haveCP false) and rec says the publisher has published.
func (p *Publisher) checkMissing(haveCP bool, rec *contract.Published) error {
	if haveCP || rec == nil {
		return nil
	}
	if p.cfg.OnMissingCheckpoint == RestartMissingCheckpoint {
		p.cfg.Logger.Warn("no checkpoint in the checkpoint topic although this publisher has published before: publishing the whole history again (delivery.on_missing_checkpoint: restart)",
			"publisher", p.cfg.PublisherID, "topic", p.cfg.CheckpointTopic, "recorded_topic", rec.CheckpointTopic, "recorded_through", rec.Through.Commit)
		return nil
	}
	return &MissingCheckpointError{Publisher: p.cfg.PublisherID, Topic: p.cfg.CheckpointTopic, Stream: contract.PublisherStream(p.cfg.PublisherID), Recorded: *rec}
}

// MissingCheckpointError is returned by Run when the checkpoint topic holds
// no checkpoint for the publisher although the store records that it has
// published (with RefuseMissingCheckpoint, the default): starting from the
// beginning of $all would publish the whole history again.
type MissingCheckpointError struct {
	Publisher string
	Topic     string // the checkpoint topic, as configured
	Stream    string // the store stream holding the record
	Recorded  contract.Published
}

func (e *MissingCheckpointError) Error() string {
	return fmt.Sprintf("publisher %s: checkpoint topic %s holds no checkpoint for it, but stream %s in the store records that it has published "+
		"(checkpoints in topic %s, through $all position %d when recorded): the topic was deleted or emptied, or delivery.checkpoint_topic changed, "+
		"and starting over would publish the whole history again. Restore the checkpoint (topic %s, key %s), "+
		"or start once with delivery.on_missing_checkpoint: restart to publish the whole history again (each record with its original ce_id)",
		e.Publisher, e.Topic, e.Stream, e.Recorded.CheckpointTopic, e.Recorded.Through.Commit, e.Topic, e.Publisher)
}
