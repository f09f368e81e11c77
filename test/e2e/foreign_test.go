package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"
)

// appendForeign appends an event without Chronicler's metadata to stream.
func appendForeign(t *testing.T, db *esdb.Client, stream string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := db.AppendToStream(ctx, stream, esdb.AppendToStreamOptions{ExpectedRevision: esdb.Any{}}, esdb.EventData{
		EventID: uuid.New(), EventType: "ForeignWrite", ContentType: esdb.ContentTypeJson, Data: []byte(`{"by":"someone else"}`),
	})
	if err != nil {
		t.Fatalf("foreign append to %s: %v", stream, err)
	}
}
