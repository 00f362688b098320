#!/usr/bin/env bash
# everest's one command: installs what is missing, builds, starts a throwaway PostgreSQL cluster
# with everest preloaded, and either shows everest at work (demo) or runs every suite (test).
#
#   test/run.sh test    (make test)   every suite; ends with "N passed, N failed"
#   test/run.sh demo    (make demo)   a guided tour on a throwaway cluster
#   test/run.sh bench [--quick]  (make bench)  everest against plain SQL, see bench/
#
# Works as root (the cluster runs as the unprivileged user "postgres") or as a user with sudo.
set -uo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
MODE=${1:-test}
export ROOT

log() { printf '\n=== %s\n' "$*"; }

# --------------------------------------------------------------------------------------------
# 1. What the build and the suites need, from Debian's packages
# --------------------------------------------------------------------------------------------
SUDO=
if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; fi
# The PostgreSQL major to build and test against (PG_MAJOR=17 ./test/run.sh test on Debian 13;
# test/pg17.sh does that in a chroot). Boost.JSON and clang's runtime differ by Debian release.
export PG_MAJOR=${PG_MAJOR:-15}
case "$(. /etc/os-release && echo "${VERSION_CODENAME:-}")" in
  trixie) BOOST_JSON=libboost-json1.83-dev CLANG_RT=libclang-rt-19-dev ;;
  *)      BOOST_JSON=libboost-json1.81-dev CLANG_RT=libclang-rt-14-dev ;;
esac
# Building, the demo and the bench need these; the suites need more (below).
PACKAGES=(make g++ "postgresql-$PG_MAJOR" "postgresql-server-dev-$PG_MAJOR" "$BOOST_JSON" libre2-dev libpq-dev)
if [ "$MODE" = test ]; then
  PACKAGES+=(clang "$CLANG_RT" "postgresql-$PG_MAJOR-pgtap" libtap-parser-sourcehandler-pgtap-perl libgtest-dev
             pgbouncer "postgresql-$PG_MAJOR-auto-failover" python3-psycopg default-jdk-headless libpostgresql-jdbc-java)
  PACKAGES+=(prometheus-postgres-exporter curl)   # test/shell/exporter.sh
  PACKAGES+=(debootstrap dpkg-dev debhelper postgresql-server-dev-all fakeroot git)   # test/shell/deb.sh
fi
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "installing ${missing[*]}"
  $SUDO apt-get update -qq || exit 1
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null || exit 1
fi
# Debian's /usr/bin/pg_config answers for the highest major installed: use this major's own.
export PG_CONFIG=/usr/lib/postgresql/$PG_MAJOR/bin/pg_config
PG_BIN=$($PG_CONFIG --bindir)
export PATH="$PG_BIN:$PATH"

# --------------------------------------------------------------------------------------------
# 2. Build and install
# --------------------------------------------------------------------------------------------
log "building everest"
make -s -j2 >/dev/null || { make; exit 1; }
$SUDO make -s install PG_CONFIG="$PG_CONFIG" >/dev/null || exit 1
log "building everest-tail"
./tools/everest-tail/build.sh >/tmp/everest-tail-build.log 2>&1 || { cat /tmp/everest-tail-build.log; exit 1; }

# --------------------------------------------------------------------------------------------
# 3. A throwaway cluster, as an unprivileged user
# --------------------------------------------------------------------------------------------
source "$ROOT/test/cluster.sh"
unset PGHOST PGPORT
cluster_start main "shared_preload_libraries = 'everest'" || exit 1
trap 'cluster_stop_all' EXIT

if [ "$MODE" = demo ]; then
  bash "$ROOT/test/demo.sh"
  exit $?
fi
if [ "$MODE" = bench ]; then
  shift
  bash "$ROOT/bench/run-workloads.sh" "$@"
  exit $?
fi

# --------------------------------------------------------------------------------------------
# 4. Every suite; each adds to PASSED and FAILED
# --------------------------------------------------------------------------------------------
# Node.js only for the test suites (the Node example); the demo and the bench do not use it.
command -v npm >/dev/null 2>&1 || { $SUDO apt-get update -qq &&
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq nodejs npm >/dev/null; } || exit 1

PASSED=0
FAILED=0
add() { PASSED=$((PASSED + $1)); FAILED=$((FAILED + $2)); printf -- '--- %s: %s passed, %s failed\n' "$3" "$1" "$2"; }

# pg_regress and isolation summaries: "All N tests passed." / "M of N tests failed."
count_regress() {
  local out=$1 name=$2 p=0 f=0 line
  while read -r line; do
    if [[ $line =~ All\ ([0-9]+)\ tests\ passed ]]; then p=$((p + BASH_REMATCH[1])); fi
    if [[ $line =~ ([0-9]+)\ of\ ([0-9]+)\ tests\ failed ]]; then
      f=$((f + BASH_REMATCH[1])); p=$((p + BASH_REMATCH[2] - BASH_REMATCH[1])); fi
  done < "$out"
  if [ $((p + f)) -eq 0 ]; then f=1; fi   # the runner itself failed
  add "$p" "$f" "$name"
}

log "C++ core unit tests (GoogleTest)"
if ./test/unit/build.sh >/tmp/everest-unit-build.log 2>&1; then
  ./build/unit_tests --gtest_brief=1 2>&1 | tee /tmp/everest-unit.log | tail -5
  up=$(grep -oE '\[  PASSED  \] [0-9]+ tests?' /tmp/everest-unit.log | grep -oE '[0-9]+' || echo 0)
  uf=$(grep -cE '^\[  FAILED  \] [A-Za-z0-9_/]+\.[A-Za-z0-9_/]+' /tmp/everest-unit.log)
  [ -z "$up$uf" ] && uf=1
  add "${up:-0}" "${uf:-0}" "unit"
else
  cat /tmp/everest-unit-build.log; add 0 1 "unit (build failed)"
fi

log "fuzz smoke: each libFuzzer target of the core for 10 s"
# One pass per target that ran to its end ("Done N runs"), one failure per target that did not.
targets=$(ls test/fuzz/fuzz_*.cpp | wc -l)
if ./test/fuzz/build.sh --run 10 >/tmp/everest-fuzz.log 2>&1; then
  grep -E '^(fuzzing|Done|stat::number_of_executed_units)' /tmp/everest-fuzz.log
  done_runs=$(grep -cE '^Done [0-9]+ runs' /tmp/everest-fuzz.log)
  add "$done_runs" "$((targets - done_runs))" "fuzz"
else
  tail -40 /tmp/everest-fuzz.log; add 0 "$targets" "fuzz"
fi

log "pg_regress suites"
make -s installcheck-regress-only >/tmp/everest-regress.log 2>&1
cat /tmp/everest-regress.log
[ -f regression.diffs ] && head -200 regression.diffs
count_regress /tmp/everest-regress.log "pg_regress"

log "isolation specs"
make -s installcheck-isolation-only >/tmp/everest-isolation.log 2>&1
cat /tmp/everest-isolation.log
[ -f output_iso/regression.diffs ] && head -200 output_iso/regression.diffs
count_regress /tmp/everest-isolation.log "isolation"

log "pgTAP suites (pg_prove)"
psql -q -X -d postgres -c "DROP DATABASE IF EXISTS everest_tap" -c "CREATE DATABASE everest_tap" >/dev/null
psql -q -X -d everest_tap -c "CREATE EXTENSION pgtap" -c "CREATE EXTENSION everest" >/dev/null
pg_prove -v -d everest_tap test/pgtap/*.sql >/tmp/everest-tap.log 2>&1
grep -E '^(not ok|# )' /tmp/everest-tap.log | head -50
tail -3 /tmp/everest-tap.log
add "$(grep -cE '^\s*ok [0-9]' /tmp/everest-tap.log)" \
    "$(( $(grep -cE '^\s*not ok [0-9]' /tmp/everest-tap.log) + $(grep -q 'Result: PASS' /tmp/everest-tap.log; echo $?) ))" "pgTAP"

log "shell suites (dump and restore, two databases, without preloading, notify, stress, crash, subscribers)"
for t in test/shell/*.sh; do
  out=/tmp/everest-$(basename "$t" .sh).log
  bash "$t" >"$out" 2>&1
  cat "$out"
  # a skip is never a pass: an "ok ... # SKIP" line counts as a failure
  sp=$(grep -E '^ok ' "$out" | grep -cv '# SKIP'); sf=$(( $(grep -cE '^not ok ' "$out") + $(grep -E '^ok ' "$out" | grep -c '# SKIP') ))
  if [ $((sp + sf)) -eq 0 ]; then sf=1; fi
  add "$sp" "$sf" "$(basename "$t")"
done

if [ "$FAILED" -ne 0 ]; then
  log "server log (last 60 lines)"
  cluster_log_tail main 60
fi
echo
echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
