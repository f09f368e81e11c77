package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

var reference = filepath.Join("..", "..", "..", "deploy", "examples", "chronicler.yaml")

var noEnv = Environ(nil)

func envOf(m map[string]string) Environ {
	var e Environ
	for k, v := range m {
		e = append(e, k+"="+v)
	}
	return e
}

func TestReferenceConfigIsValid(t *testing.T) {
	cfg, err := LoadEnv(reference, All, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Postgres.Slot != "chronicler" || len(cfg.Postgres.Tables) != 4 || !strings.HasSuffix(cfg.Rules.Paths[0], filepath.Join("deploy", "examples", "rules", "pgbench")) {
		t.Fatalf("unexpected config: %+v", cfg)
	}
	// The commented defaults of the reference are the defaults of the code.
	d := Defaults()
	if cfg.Kafka.Partitions != d.Kafka.Partitions || cfg.HTTP.Addr != ":8080" || !cfg.HA.Enabled || !cfg.Rules.Reload || cfg.Delivery.Mode != "exactly_once" {
		t.Fatalf("defaults lost: %+v", cfg)
	}
}

// TestReferenceDocumentsEveryKey: every setting the code reads appears in
// the reference config (set, or commented with its default), in its section.
func TestReferenceDocumentsEveryKey(t *testing.T) {
	src, err := os.ReadFile(reference)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(src), "\n")
	keyLine := regexp.MustCompile(`^(\s*)#?\s*([a-z_]+):`)
	// Rebuild each documented path from indentation (commented lines count).
	documented := map[string]bool{}
	var stack []string
	var indents []int
	for _, l := range lines {
		m := keyLine.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		ind := len(m[1]) // a commented key is documented at its '#'
		if ind == 0 && strings.HasPrefix(l, "#") {
			continue // prose at the top
		}
		for len(indents) > 0 && indents[len(indents)-1] >= ind {
			stack, indents = stack[:len(stack)-1], indents[:len(indents)-1]
		}
		stack, indents = append(stack, m[2]), append(indents, ind)
		documented[strings.Join(stack, ".")] = true
	}
	for _, k := range Keys() {
		if !documented[k.Path] {
			t.Errorf("%s is not documented in %s", k.Path, reference)
		}
	}
}

func TestEnvNamesAreUnique(t *testing.T) {
	seen := map[string]string{}
	for _, k := range Keys() {
		if other, dup := seen[k.Env]; dup {
			t.Errorf("%s and %s share %s", other, k.Path, k.Env)
		}
		seen[k.Env] = k.Path
	}
	if len(seen) < 50 {
		t.Fatalf("only %d keys found: the walk over Config is broken", len(seen))
	}
}

// TestEveryKeyHasEnvOverride sets every setting from the environment alone
// (no file), each to a value different from its default, and reads it back.
func TestEveryKeyHasEnvOverride(t *testing.T) {
	dir := t.TempDir()
	file := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	rules := filepath.Join(dir, "rules")
	if err := os.Mkdir(rules, 0o755); err != nil {
		t.Fatal(err)
	}
	ca, cert, key := file("ca.pem", "x"), file("cert.pem", "x"), file("key.pem", "x")
	// One value per key; a key without one fails the test, so a new key
	// cannot be added without its override being tested.
	samples := map[string]string{
		"postgres.url": "postgres://u@db:5433/app", "postgres.password": "", "postgres.password_file": file("pg", "pg-secret\n"),
		"postgres.slot": "s2", "postgres.publication": "p2", "postgres.tables": "public.a, public.b",
		"postgres.add_missing_tables": "true", "postgres.on_missing_slot": "resnapshot", "postgres.need_old_values": "public.a", "postgres.failover_slot": "true", "postgres.status_interval": "2s",
		"postgres.heartbeat_interval": "20s", "snapshot.mode": "never", "snapshot.chunk_rows": "77", "snapshot.max_rows_per_second": "500",
		"store.url": "esdb://store:2113?tls=false", "store.username": "admin", "store.password": "store-secret", "store.password_file": "",
		"store.on_conflict": "reread", "store.batch_append": "false", "store.max_in_flight": "9", "store.max_pending_bytes": "1000", "store.max_batch_events": "7", "store.max_batch_bytes": "5000",
		"kafka.brokers": "k1:9092,k2:9092", "kafka.compression": "zstd", "kafka.max_record_bytes": "2000", "kafka.create_topics": "true",
		"kafka.partitions": "3", "kafka.replication_factor": "2", "kafka.tls.enabled": "true", "kafka.tls.ca_file": ca,
		"kafka.tls.cert_file": cert, "kafka.tls.key_file": key, "kafka.tls.server_name": "kafka.local", "kafka.tls.insecure_skip_verify": "true",
		"kafka.sasl.mechanism": "SCRAM-SHA-512", "kafka.sasl.username": "alice", "kafka.sasl.password": "", "kafka.sasl.password_file": file("sasl", "sasl-secret"),
		"kafka.sasl.token": "tok", "kafka.sasl.token_file": "",
		"kafka.schema_registry.url": "https://registry:8081/apis/ccompat/v7", "kafka.schema_registry.subject_strategy": "record",
		"kafka.schema_registry.lookup_only": "true", "kafka.schema_registry.username": "bob", "kafka.schema_registry.password": "",
		"kafka.schema_registry.password_file": file("srpw", "sr-secret\n"), "kafka.schema_registry.token": "", "kafka.schema_registry.token_file": "",
		"kafka.schema_registry.timeout": "3s", "kafka.schema_registry.tls.ca_file": ca, "kafka.schema_registry.tls.cert_file": cert,
		"kafka.schema_registry.tls.key_file": key, "kafka.schema_registry.tls.server_name": "registry.local", "kafka.schema_registry.tls.insecure_skip_verify": "true",
		"rules.paths": rules, "rules.reload": "false", "rules.reload_interval": "9s",
		"delivery.mode": "at_least_once", "delivery.publisher_id": "pub-1", "delivery.checkpoint_topic": "cp", "delivery.batch_records": "11",
		"delivery.batch_interval": "50ms", "delivery.max_open_transactions": "12", "delivery.on_missing_checkpoint": "restart", "deadletter.stream": "dl-x", "deadletter.topic": "dlt",
		"deadletter.on_error": "stop", "http.addr": "127.0.0.1:9999", "http.pprof": "true", "http.ready_max_lag": "1m",
		"http.tls.cert_file": cert, "http.tls.key_file": key,
		"ha.enabled": "false", "ha.lock_key": "lk", "ha.keepalive": "3s", "shutdown.grace": "40s", "log.level": "debug", "log.format": "json",
	}
	// Secrets set by their file are read into the secret itself.
	want := map[string]string{"postgres.password": "pg-secret", "kafka.sasl.password": "sasl-secret", "kafka.schema_registry.password": "sr-secret"}
	env := map[string]string{}
	for _, k := range Keys() {
		v, ok := samples[k.Path]
		if !ok {
			t.Errorf("no sample value for %s: add one", k.Path)
			continue
		}
		if v != "" {
			env[k.Env] = v
		}
	}
	cfg, err := Parse("", nil, All, envOf(env))
	if err != nil {
		t.Fatal(err)
	}
	root := reflect.ValueOf(cfg).Elem()
	def := reflect.ValueOf(Defaults())
	for _, k := range Keys() {
		exp, ok := want[k.Path]
		if !ok {
			exp = samples[k.Path]
		}
		if exp == "" {
			continue
		}
		f := root.FieldByIndex(k.field)
		got := fmt.Sprint(f.Interface())
		if f.Kind() == reflect.Slice {
			got = strings.Join(f.Interface().([]string), ",")
			exp = strings.ReplaceAll(exp, ", ", ",")
		}
		if got != exp {
			t.Errorf("%s=%q gave %s = %q", k.Env, samples[k.Path], k.Path, got)
		}
		if reflect.DeepEqual(f.Interface(), def.FieldByIndex(k.field).Interface()) {
			t.Errorf("%s: the sample equals the default, so the override is not proven", k.Path)
		}
	}
}

func TestEnvOverridesFile(t *testing.T) {
	dir := validDir(t)
	cfg, err := Parse(filepath.Join(dir, "c.yaml"), []byte(valid), All, envOf(map[string]string{"CHRONICLER_POSTGRES_SLOT": "from_env"}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Postgres.Slot != "from_env" || cfg.Postgres.Publication != "p1" {
		t.Fatalf("slot %q publication %q", cfg.Postgres.Slot, cfg.Postgres.Publication)
	}
}

// TestEnvErrorsNameTheVariable: a bad value from the environment is
// reported at the variable, not at a line of the file.
func TestEnvErrorsNameTheVariable(t *testing.T) {
	dir := validDir(t)
	_, err := Parse(filepath.Join(dir, "c.yaml"), []byte(valid), All, envOf(map[string]string{
		"CHRONICLER_KAFKA_PARTITIONS": "many", "CHRONICLER_HTTP_PPROF": "yes please", "CHRONICLER_POSTGRES_SLOT": "Bad",
	}))
	got := map[string]string{}
	for _, e := range unwrap(t, err) {
		got[e.Path] = e.Env
	}
	for path, env := range map[string]string{"kafka.partitions": "CHRONICLER_KAFKA_PARTITIONS", "http.pprof": "CHRONICLER_HTTP_PPROF", "postgres.slot": "CHRONICLER_POSTGRES_SLOT"} {
		if got[path] != env {
			t.Errorf("%s: reported at %q, want %s (all: %v)", path, got[path], env, got)
		}
	}
	if !strings.Contains(err.Error(), "CHRONICLER_KAFKA_PARTITIONS: kafka.partitions") {
		t.Errorf("message does not lead with the variable:\n%v", err)
	}
}

const valid = `postgres:
  url: postgres://u@localhost/db
  slot: s1
  publication: p1
  tables: [public.t]
store:
  url: esdb://localhost:2113?tls=false
kafka:
  brokers: [localhost:9092]
  tls:
rules:
  paths: [rules]
`

func validDir(t *testing.T) string {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "rules"), 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func unwrap(t *testing.T, err error) []*Error {
	t.Helper()
	if err == nil {
		t.Fatal("invalid config accepted")
	}
	var out []*Error
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		var ce *Error
		if !errors.As(e, &ce) {
			t.Fatalf("not a *config.Error: %T %v", e, e)
		}
		out = append(out, ce)
	}
	return out
}

func TestNullSectionKeepsDefaults(t *testing.T) {
	cfg, err := Parse(filepath.Join(validDir(t), "c.yaml"), []byte(valid), All, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Kafka.Partitions != 1 || cfg.Kafka.ReplicationFactor != -1 || cfg.Kafka.Compression != "none" {
		t.Fatalf("an empty kafka.tls section reset the kafka defaults: %+v", cfg.Kafka)
	}
}

// TestThreeMistakesAllReported is the acceptance point: a config
// with three mistakes reports all three, each at its line.
func TestThreeMistakesAllReported(t *testing.T) {
	src := strings.NewReplacer("slot: s1", "slot: S-1", "tls:", "partitions: zero", "esdb://localhost", "http://localhost").Replace(valid)
	src = strings.Replace(src, "partitions: zero", "partitions: 0", 1)
	errs := unwrap(t, func() error {
		_, err := Parse(filepath.Join(validDir(t), "c.yaml"), []byte(src), All, noEnv)
		return err
	}())
	got := map[string]int{}
	for _, e := range errs {
		got[e.Path] = e.Line
	}
	want := map[string]int{"postgres.slot": 3, "store.url": 7, "kafka.partitions": 10}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

// TestEveryErrorIsReported breaks many settings at once and expects one
// *Error per setting, each with its path and line.
func TestEveryErrorIsReported(t *testing.T) {
	dir := validDir(t)
	src := `postgres:
  url: postgres://u@localhost/db
  slot: Bad-Slot
  publication: p1
  tables: [public.t, "a.b.c"]
  status_interval: soon
snapshot: {mode: sometimes}
store:
  url: http://nope
  on_conflict: ignore
kafka:
  brokers: [nohost]
  sasl: {mechanism: KERBEROS}
rules:
  paths: [missing]
delivery:
  mode: twice
deadletter:
  on_error: shrug
http:
  addr: localhost
`
	want := map[string]int{
		"postgres.slot": 3, "postgres.tables[1]": 5, "postgres.status_interval": 6, "snapshot.mode": 7,
		"store.url": 9, "store.on_conflict": 10, "kafka.brokers[0]": 12, "kafka.sasl.mechanism": 13,
		"rules.paths[0]": 15, "delivery.mode": 17, "deadletter.on_error": 19, "http.addr": 21,
	}
	got := map[string]int{}
	_, err := Parse(filepath.Join(dir, "bad.yaml"), []byte(src), All, noEnv)
	for _, e := range unwrap(t, err) {
		got[e.Path] = e.Line
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v\nwant %v", got, want)
	}
}

// TestBadPostgresURL: a postgres.url that does not parse is one error at
// its line, with the parser's reason and without the URL's password (the
// check is capture/postgres's own, so what passes here connects).
func TestBadPostgresURL(t *testing.T) {
	src := strings.Replace(valid, "url: postgres://u@localhost/db", "url: postgres://u:url-s3cret@localhost:notaport/db", 1)
	errs := unwrap(t, func() error {
		_, err := Parse(filepath.Join(validDir(t), "c.yaml"), []byte(src), All, noEnv)
		return err
	}())
	if len(errs) != 1 || errs[0].Path != "postgres.url" || errs[0].Line != 2 || !strings.Contains(errs[0].Reason, "not a valid connection string") ||
		strings.Contains(errs[0].Error(), "s3cret") {
		t.Fatalf("got %v; want one postgres.url error at line 2 saying it is not a valid connection string, without the password", errs)
	}
}

func TestMissingRequiredSettings(t *testing.T) {
	for _, tc := range []struct {
		parts Parts
		want  []string
	}{
		{All, []string{"postgres.url", "postgres.slot", "postgres.publication", "postgres.tables", "store.url", "kafka.brokers", "rules.paths"}},
		{Parts{Capture: true}, []string{"postgres.url", "postgres.slot", "postgres.publication", "postgres.tables", "store.url", "rules.paths"}},
	} {
		_, err := Parse("empty.yaml", []byte("log: {level: info}\n"), tc.parts, noEnv)
		var paths []string
		for _, e := range unwrap(t, err) {
			paths = append(paths, e.Path)
		}
		if !reflect.DeepEqual(paths, tc.want) {
			t.Errorf("%+v: errors for %v, want %v", tc.parts, paths, tc.want)
		}
	}
}

func TestUnknownKeyIsRejected(t *testing.T) {
	if _, err := Parse("x.yaml", []byte(valid+"extra: 1\n"), All, noEnv); err == nil {
		t.Fatal("unknown key accepted")
	}
}

// TestSecretsAreNeverPrinted: passwords from the file, the environment and
// secret files reach the connection settings, and neither Redacted nor any
// error shows them.
func TestSecretsAreNeverPrinted(t *testing.T) {
	dir := validDir(t)
	pwFile := filepath.Join(dir, "pw")
	if err := os.WriteFile(pwFile, []byte("pg-s3cret'x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	src := strings.Replace(valid, "url: esdb://localhost:2113?tls=false", "url: esdb://admin:store-s3cret@localhost:2113?tls=false", 1)
	src = strings.Replace(src, "url: postgres://u@localhost/db", "url: postgres://u:url-s3cret@localhost/db\n  password_file: pw", 1)
	cfg, err := Parse(filepath.Join(dir, "c.yaml"), []byte(src), All, envOf(map[string]string{"CHRONICLER_KAFKA_SASL_PASSWORD": "sasl-s3cret", "CHRONICLER_KAFKA_SASL_MECHANISM": "PLAIN", "CHRONICLER_KAFKA_SASL_USERNAME": "u"}))
	if err != nil {
		t.Fatal(err)
	}
	pc, err := pgconn.ParseConfig(cfg.PostgresURL())
	if err != nil || pc.Password != "pg-s3cret'x" {
		t.Fatalf("password file not applied: %v %q", err, pc.Password)
	}
	kv := *cfg
	kv.Postgres.URL = "host=localhost user=u password='old' dbname=db"
	if pc, err := pgconn.ParseConfig(kv.PostgresURL()); err != nil || pc.Password != "pg-s3cret'x" {
		t.Fatalf("password file not applied to key=value form: %v", err)
	}
	if cfg.KafkaConfig().SASL.Password != "sasl-s3cret" {
		t.Fatal("SASL password from the environment not applied")
	}
	red := cfg.Redacted()
	kvRed := kv.Redacted()
	printed := fmt.Sprintf("%+v %+v %s", red, kvRed, RedactURL(cfg.PostgresURL()))
	for _, secret := range []string{"s3cret", "old"} {
		if strings.Contains(printed, secret) {
			t.Errorf("%q printed: %s", secret, printed)
		}
	}
	if cfg.Postgres.Password != "pg-s3cret'x" {
		t.Fatal("Redacted changed the original")
	}
	// Errors about a URL with a password do not show it.
	bad := strings.Replace(src, "localhost:2113?tls=false", "localhost:notaport?tls=false", 1)
	bad = strings.Replace(bad, "password_file: pw", "password_file: nothere", 1)
	_, err = Parse(filepath.Join(dir, "c.yaml"), []byte(bad), All, noEnv)
	if err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("want an error without the secret, got %v", err)
	}
	if !strings.Contains(err.Error(), "postgres.password_file: nothere") {
		t.Errorf("missing secret file not named:\n%v", err)
	}
}

func TestSecretAndItsFileConflict(t *testing.T) {
	dir := validDir(t)
	if err := os.WriteFile(filepath.Join(dir, "pw"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Parse(filepath.Join(dir, "c.yaml"), []byte(valid), All, envOf(map[string]string{"CHRONICLER_STORE_PASSWORD": "a", "CHRONICLER_STORE_PASSWORD_FILE": filepath.Join(dir, "pw")}))
	errs := unwrap(t, err)
	if len(errs) != 1 || errs[0].Path != "store.password_file" {
		t.Fatalf("got %v", err)
	}
}

func TestNoFileConfigFromEnvironment(t *testing.T) {
	dir := validDir(t)
	t.Chdir(dir) // no chronicler.yaml here
	env := envOf(map[string]string{
		"CHRONICLER_POSTGRES_URL": "postgres://u@h/db", "CHRONICLER_POSTGRES_SLOT": "s", "CHRONICLER_POSTGRES_PUBLICATION": "p",
		"CHRONICLER_POSTGRES_TABLES": "public.t", "CHRONICLER_STORE_URL": "esdb://h:2113?tls=false", "CHRONICLER_RULES_PATHS": "rules",
		"CHRONICLER_KAFKA_BROKERS": "k:9092",
	})
	cfg, err := LoadEnv("", All, env)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.File() != "" || cfg.Rules.Paths[0] != "rules" {
		t.Fatalf("%+v", cfg)
	}
	if err := os.WriteFile(DefaultFile, []byte("log: {level: nonsense}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadEnv("", All, env); err == nil || !strings.Contains(err.Error(), "chronicler.yaml:1:") {
		t.Fatalf("./chronicler.yaml not read by default: %v", err)
	}
}

// TestStoreClient: store.url, store.username and store.password are what
// the store client is made from (capture/store's TestClientConfig proves how
// they combine).
func TestStoreClient(t *testing.T) {
	c := Defaults()
	c.Store.URL, c.Store.Username, c.Store.Password = "esdb://u:p@h:2113?tls=false", "admin", "secret"
	if got := c.StoreClient(); got.URL != c.Store.URL || got.Username != "admin" || got.Password != "secret" {
		t.Fatalf("StoreClient() = %+v", got)
	}
}
