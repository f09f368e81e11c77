package publish_test

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"

	"github.com/chronicler-dev/chronicler/mapping/contract"

	"github.com/chronicler-dev/chronicler/publish"
	"github.com/chronicler-dev/chronicler/publish/kafka"
	"github.com/chronicler-dev/chronicler/test/stack"
)

// TestDeletedCheckpointTopicRefusesToStart: the checkpoint topic deleted
// between two runs (real broker) is re-created empty at start, but the
// store records that the publisher has published: Run refuses with a
// *MissingCheckpointError naming the topic, and nothing is published
// again; with OnMissingCheckpoint restart (the way forward it names) the
// whole history is published again, on purpose.
func TestDeletedCheckpointTopicRefusesToStart(t *testing.T) {
	k := stack.StartKafka(t)
	db, n, s := startStore(t)
	exp := newExpectation()
	lsn := uint64(0)
	exp.customers(s, &lsn, 20)
	cfg := config(db, loadRulesText(t, n, perEventRulesYAML), k, n, kafka.ExactlyOnce)
	r := start(t, cfg)
	r.waitThrough(t, s.last)
	waitPublishedRecord(t, s, n.id, n.cp)
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}

	deleteTopic(t, k, n.cp)
	err := start(t, cfg).wait(t, time.Minute)
	var me *publish.MissingCheckpointError
	if !errors.As(err, &me) || me.Topic != n.cp || me.Publisher != n.id || me.Recorded.CheckpointTopic != n.cp {
		t.Fatalf("Run after the checkpoint topic was deleted: %v; want a *MissingCheckpointError naming %s", err, n.cp)
	}
	exp.check(t, readTopic(t, k, n.customers)) // each once: nothing republished

	cfg.OnMissingCheckpoint = publish.RestartMissingCheckpoint
	r = start(t, cfg)
	r.waitThrough(t, s.last)
	if st := r.p.Stats(); st.Records != 20 {
		t.Fatalf("restart published %d records; want the whole history again, 20", st.Records)
	}
	if recs := readTopic(t, k, n.customers); len(recs) != 40 {
		t.Fatalf("%d records after the restart; want 40 (the history twice)", len(recs))
	}
}

// readStream reads every event of stream (none when it does not exist).
func readStream(t *testing.T, db *esdb.Client, stream string) []*esdb.RecordedEvent {
	t.Helper()
	rs, err := db.ReadStream(context.Background(), stream, esdb.ReadStreamOptions{From: esdb.Start{}}, 1000)
	if err != nil {
		t.Fatalf("reading %s: %v", stream, err)
	}
	defer rs.Close()
	var out []*esdb.RecordedEvent
	for {
		ev, err := rs.Recv()
		if errors.Is(err, io.EOF) {
			return out
		}
		var ee *esdb.Error
		if errors.As(err, &ee) && ee.Code() == esdb.ErrorCodeResourceNotFound {
			return nil
		}
		if err != nil {
			t.Fatalf("reading %s: %v", stream, err)
		}
		out = append(out, ev.Event)
	}
}

// lastAll is the commit position of the last event of $all.
func lastAll(t *testing.T, db *esdb.Client) uint64 {
	t.Helper()
	rs, err := db.ReadAll(context.Background(), esdb.ReadAllOptions{Direction: esdb.Backwards, From: esdb.End{}}, 1)
	if err != nil {
		t.Fatalf("reading the end of $all: %v", err)
	}
	defer rs.Close()
	ev, err := rs.Recv()
	if err != nil {
		t.Fatalf("reading the end of $all: %v", err)
	}
	return ev.OriginalEvent().Position.Commit
}

// waitPublishedRecord polls until the store holds publisher id's record
// naming checkpoint topic cp (written after its first commit).
func waitPublishedRecord(t *testing.T, s *lowStore, id, cp string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		evs := readStream(t, s.db, contract.PublisherStream(id))
		if n := len(evs); n > 0 {
			rec, err := contract.DecodePublished(evs[n-1].Data)
			if err != nil || rec.CheckpointTopic != cp || rec.Publisher != id || evs[n-1].EventType != contract.PublishedType {
				t.Fatalf("publisher record %s: %+v, %v; want one naming %s", evs[n-1].Data, rec, err, cp)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no record of publisher %s in the store 30s after its first commit", id)
		}
		time.Sleep(10 * time.Millisecond) // polling interval, with a deadline
	}
}

// TestCheckpointTopicDeletedWhileRunning: the checkpoint topic deleted
// under a running publisher (real broker) is re-created and the next
// commit writes the checkpoint there: the publisher goes on, and a restart
// resumes from it; every event once.
func TestCheckpointTopicDeletedWhileRunning(t *testing.T) {
	k := stack.StartRealKafka(t) // kfake deletes topics otherwise: the publisher never got past the deletion there
	db, n, s := startStore(t)
	exp := newExpectation()
	lsn := uint64(0)
	exp.customers(s, &lsn, 20)
	cfg := config(db, loadRulesText(t, n, perEventRulesYAML), k, n, kafka.ExactlyOnce)
	r := start(t, cfg)
	r.waitThrough(t, s.last)
	deleteTopic(t, k, n.cp)
	exp.customers(s, &lsn, 20)
	r.waitThrough(t, s.last)
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	exp.customers(s, &lsn, 20)
	r = start(t, cfg)
	r.waitThrough(t, s.last)
	exp.check(t, readTopic(t, k, n.customers))
}
