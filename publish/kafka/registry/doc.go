// Package registry is the publisher's client of a Confluent-compatible
// schema registry (Confluent Schema Registry, Apicurio Registry's ccompat
// API, Redpanda, Karapace...), part of the Kafka owner: the promotion rules'
// schemas (mapping.Schema, JSON Schema) are registered there, and the
// values of those rules are framed with their schema's id.
//
// # Subjects
//
// A rule's schema is registered under a subject named by the Strategy:
// "<topic>-value" (TopicName, the default: rules writing one topic share
// its subject and must declare the same schema), the record name
// (RecordName: the schema's "title", else the rule's integration event
// type), or "<topic>-<record name>" (TopicRecordName). With a registry,
// every rule writing a topic where some rule has a schema must have one:
// plain JSON beside framed values would break consumers' deserializers.
//
// # At start: Resolve
//
// [Client.Resolve] runs before the publisher subscribes (and before a rule
// reload is accepted). Per subject: a schema already registered there is
// looked up (its id); a new one is checked for compatibility with the
// subject's latest version under the subject's level (else the global one)
// and registered only when the registry finds it compatible, so a new
// subject starts at version 1 and a compatible change (a new optional
// field of a closed object) becomes the next version. An incompatible
// schema is an *IncompatibleError naming the rules (with where the schema
// is declared), the subject, the level, the latest version and the fields
// that differ, found by comparing the two schemas ([Differences]: fields
// removed, newly required, retyped...; registries rarely say which); the
// publisher does not start. With Config.LookupOnly nothing is registered:
// a schema not registered yet is a *NotRegisteredError.
//
// For JSON Schema, closed objects (additionalProperties: false) give the
// compatibility most producers expect: under BACKWARD, adding an optional
// field is compatible and removing a required one is not. With an open
// object (the JSON Schema default) registries judge the other way round (a
// new field may clash with what old values held; a removed field is
// accepted by the open model).
//
// # The wire format
//
// [AppendFrame] writes a value as Confluent's serializers do: the magic
// byte 0, the schema id as 4 bytes big-endian, then the JSON value
// unchanged. The record's other parts (key, CloudEvents headers,
// content-type application/json, which describes the JSON after the five
// bytes) are as without a registry.
//
// # Without a publisher: Check and Describe
//
// [Client.Check] compares every schema with what is registered and writes
// nothing: `chronicler rules check --registry URL` runs it in CI before a
// deploy, `chronicler check` before a start. [Client.Describe] lists the
// subjects and the global level (reachability).
//
// # Connection
//
// HTTP or HTTPS (Config.TLS: CA file, client certificate, server name),
// with basic (Username, Password) or bearer (Token) authentication, each
// request bounded by Config.Timeout, through franz-go's pkg/sr. Secrets are
// never in messages.
//
// # Concurrency
//
// A Client is safe for concurrent use; the ids it resolved are cached for
// its life (a subject's versions are immutable, so an id never changes).
//
// # Example
//
//	cl, err := registry.New(registry.Config{URL: "http://registry:8081"})
//	if err != nil {
//		return err // every configuration problem, joined
//	}
//	ids, err := cl.Resolve(ctx, rules) // *IncompatibleError, *RequestError, ...
//	if err != nil {
//		return err
//	}
//	value = registry.AppendFrame(nil, ids[rule], value)
package registry
