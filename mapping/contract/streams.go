package contract

import "strings"

// Event types Chronicler writes for itself (beside the rules' types).
const (
	// ProgressType: a progress marker (see [Progress]).
	ProgressType = "ChroniclerProgress"
	// DeadLetterType: a change a capture rule could not map (see [DeadLetter]).
	DeadLetterType = "ChroniclerDeadLetter"
	// SnapshotProgressType: saved initial-snapshot progress (see [SnapshotState]).
	SnapshotProgressType = "ChroniclerSnapshotProgress"
)

// Stream name prefixes of Chronicler's own streams; the slot follows.
const (
	ProgressStreamPrefix   = "chronicler-progress-"
	DeadLetterStreamPrefix = "chronicler-deadletter-"
	SnapshotStreamPrefix   = "chronicler-snapshot-"
)

// ProgressStream is the stream of slot's progress markers. It is not
// configurable: the publisher finds markers by this name.
func ProgressStream(slot string) string { return ProgressStreamPrefix + slot }

// DeadLetterStream is slot's default dead-letter stream (deadletter.stream
// may name another).
func DeadLetterStream(slot string) string { return DeadLetterStreamPrefix + slot }

// SnapshotStream is the stream of slot's saved snapshot progress.
func SnapshotStream(slot string) string { return SnapshotStreamPrefix + slot }

// IsProgressMarker reports whether an event of this type in this stream is
// a progress marker.
func IsProgressMarker(stream, eventType string) bool {
	return eventType == ProgressType && strings.HasPrefix(stream, ProgressStreamPrefix)
}
