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
	// PublishedType: a publisher's record that it has published (see [Published]).
	PublishedType = "ChroniclerPublished"
)

// Stream name prefixes of Chronicler's own streams; the slot follows.
const (
	ProgressStreamPrefix   = "chronicler-progress-"
	DeadLetterStreamPrefix = "chronicler-deadletter-"
	SnapshotStreamPrefix   = "chronicler-snapshot-"
	// PublisherStreamPrefix is followed by the publisher id, not a slot.
	PublisherStreamPrefix = "chronicler-publisher-"
)

// ProgressStream is the stream of slot's progress markers. It is not
// configurable: the publisher finds markers by this name.
func ProgressStream(slot string) string { return ProgressStreamPrefix + slot }

// DeadLetterStream is slot's default dead-letter stream (deadletter.stream
// may name another).
func DeadLetterStream(slot string) string { return DeadLetterStreamPrefix + slot }

// SnapshotStream is the stream of slot's saved snapshot progress.
func SnapshotStream(slot string) string { return SnapshotStreamPrefix + slot }

// PublisherStream is the stream of publisher id's record ([Published]).
func PublisherStream(id string) string { return PublisherStreamPrefix + id }

// IsPublisherRecord reports whether an event of this type in this stream
// is a publisher's record ([Published]).
func IsPublisherRecord(stream, eventType string) bool {
	return eventType == PublishedType && strings.HasPrefix(stream, PublisherStreamPrefix)
}

// IsProgressMarker reports whether an event of this type in this stream is
// a progress marker.
func IsProgressMarker(stream, eventType string) bool {
	return eventType == ProgressType && strings.HasPrefix(stream, ProgressStreamPrefix)
}
