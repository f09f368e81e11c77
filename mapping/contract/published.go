package contract

import (
	"encoding/json"
	"fmt"
)

// Published is a publisher's record in the store (event type PublishedType
// in PublisherStream(id), the last one counts): the publisher has committed
// checkpoints to CheckpointTopic, through Through when it was written. It
// lives where the checkpoint does not, so a publisher that finds no
// checkpoint in its topic can tell a first start from a lost checkpoint
// (package publish).
type Published struct {
	Publisher       string   `json:"publisher"`
	CheckpointTopic string   `json:"checkpointTopic"`
	Through         StorePos `json:"through"`
}

// EncodePublished is the event data of a publisher's record.
func EncodePublished(p Published) []byte {
	b, _ := json.Marshal(p)
	return b
}

// DecodePublished reads a publisher's record.
func DecodePublished(data []byte) (Published, error) {
	var p Published
	if err := json.Unmarshal(data, &p); err != nil {
		return p, fmt.Errorf("publisher record: %w", err)
	}
	return p, nil
}
