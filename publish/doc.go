// Package publish subscribes to the store, promotes stored low-level events
// into integration events with the mapping rules, and produces them to Kafka.
//
// Status: not built yet (see the publish issue).
package publish
