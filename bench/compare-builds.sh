#!/usr/bin/env bash
# Two builds of everest against each other, on the same workload, in the same run: "no
# measurable cost" claims (a type without a schema against the build before schemas; counters
# against a build without them) are A/B tests of builds, not of SQL.
#
#   bench/compare-builds.sh [--pairs N] [--seconds S] [--clients "1 8"] [--workload NAME] A B
#
# A and B are git revisions, optionally with make variables after a '+':
#   bench/compare-builds.sh 4599a1e e37ae08               # the schema change against its parent
#   bench/compare-builds.sh HEAD HEAD+EV_NO_STATS=1        # counters against no counters
# A build is kept in $COMPARE_WORK (default /var/tmp/everest-compare) and reused while its
# revision and variables are the same; BUILD_ONLY=1 only builds.
# Each is built in a worktree of its own and installed into a private copy of PostgreSQL 15
# (PostgreSQL finds its lib and share directories relative to its binaries, so the host's
# install is untouched), and gets a throwaway cluster of its own, configured like the test one.
# The pairs alternate (A B, B A, ...) on workloads/NAME.everest.sql; the table shows, per client
# count, the medians of tps A/B and of server CPU per transaction B/A (above 1: A is cheaper).
# Run it as root or as a user who may run PostgreSQL; it needs a quiet machine.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PAIRS=7 SECONDS_EACH=5 CLIENTS="1 8" WORKLOAD=append_any
while [ $# -gt 2 ]; do
  case $1 in
    --pairs) PAIRS=$2; shift ;;
    --seconds) SECONDS_EACH=$2; shift ;;
    --clients) CLIENTS=$2; shift ;;
    --workload) WORKLOAD=$2; shift ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
[ $# -eq 2 ] || { sed -n '2,16p' "$0"; exit 2; }
WORK=${COMPARE_WORK:-/var/tmp/everest-compare}
mkdir -p "$WORK"
PG_LIB=$(pg_config --pkglibdir)    # /usr/lib/postgresql/15/lib
PG_SHARE=$(pg_config --sharedir)   # /usr/share/postgresql/15

# build SPEC NAME: a private PostgreSQL root in $WORK/NAME/root with SPEC's everest installed
build() {  # build SPEC: sets BUILT to its folder, $WORK/<revision and variables>
  local rev=${1%%+*} vars= dir label
  [[ $1 == *+* ]] && vars=${1#*+}
  label="$(git rev-parse --short "$rev" 2>/dev/null)${vars:+ $vars}"
  dir=$WORK/build-$(echo "$label" | tr -c 'A-Za-z0-9_.\n' '_')
  BUILT=$dir
  # the same build as last time (in the same slot): kept
  [ "$(cat "$dir/label" 2>/dev/null)" = "$label" ] && [ -x "$dir/root$(dirname "$PG_LIB")/bin/postgres" ] && return 0
  rm -rf "$dir"; mkdir -p "$dir/root"
  git worktree add -f --detach "$dir/src" "$rev" >/dev/null 2>&1 || { echo "no revision $rev" >&2; return 1; }
  mkdir -p "$dir/root$(dirname "$(dirname "$PG_LIB")")" "$dir/root$(dirname "$PG_SHARE")"
  cp -a "$(dirname "$PG_LIB")" "$dir/root$(dirname "$(dirname "$PG_LIB")")/" &&
    cp -a "$PG_SHARE" "$dir/root$(dirname "$PG_SHARE")/" || return 1
  # shellcheck disable=SC2086
  (cd "$dir/src" && make -s -j2 $vars >/dev/null 2>&1 && make -s install DESTDIR="$dir/root" $vars >/dev/null 2>&1) ||
    { echo "building $1 failed" >&2; return 1; }
  git worktree remove --force "$dir/src" >/dev/null 2>&1
  echo "$label" >"$dir/label"
}
build "$1" || exit 1
A_DIR=$BUILT
build "$2" || exit 1
B_DIR=$BUILT
[ -n "${BUILD_ONLY:-}" ] && exit 0

export CLUSTER_BASE=$WORK/clusters CLUSTER_FIRST_PORT=${COMPARE_FIRST_PORT:-56732}
rm -rf "$CLUSTER_BASE"; mkdir -p "$CLUSTER_BASE"
source "$ROOT/test/cluster.sh"
trap 'cluster_stop_all' EXIT
for c in a b; do
  if [ $c = a ]; then dir=$A_DIR; else dir=$B_DIR; fi
  PG_BIN=$dir/root$(dirname "$PG_LIB")/bin cluster_start "$c" "shared_preload_libraries = 'everest'" || exit 1
  psql -X -q -h "$(cluster_dir $c)" -p "$(cluster_port $c)" -d postgres -c "CREATE DATABASE bench" || exit 1
  psql -X -q -h "$(cluster_dir $c)" -p "$(cluster_port $c)" -d bench -c "CREATE EXTENSION everest" || exit 1
done
HZ=$(getconf CLK_TCK)
pm_pid() { head -1 "$(cluster_dir "$1")/data/postmaster.pid"; }
children_ticks() { awk '{print $16 + $17}' "/proc/$(pm_pid "$1")/stat"; }
run() {  # run CLUSTER CLIENTS: "tps server-CPU-microseconds-per-transaction"
  local c0 c1 out
  c0=$(children_ticks "$1")
  out=$(pgbench -n -M prepared -c "$2" -j 2 -T "$SECONDS_EACH" -h "$(cluster_dir "$1")" -p "$(cluster_port "$1")" \
        -f "bench/workloads/$WORKLOAD.everest.sql" bench 2>/dev/null)
  sleep 0.2
  c1=$(children_ticks "$1")
  awk -v c0="$c0" -v c1="$c1" -v hz="$HZ" '
    /number of transactions actually processed/ {n = $NF + 0}
    /^tps = / && !t {t = $3}
    END {printf "%s %.1f\n", t, (n > 0 && c1 > c0) ? (c1 - c0) * 1e6 / hz / n : 0}' <<<"$out"
}
median() { sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
echo "A: $(cat "$A_DIR/label")   B: $(cat "$B_DIR/label")   workload $WORKLOAD, $PAIRS pairs of ${SECONDS_EACH}s"
printf '%-8s %10s %10s %8s %10s %10s %8s\n' clients "tps A" "tps B" "A/B" "cpu-us A" "cpu-us B" "cpu B/A"
for n in $CLIENTS; do
  run a "$n" >/dev/null; run b "$n" >/dev/null   # warm both
  ta=() tb=() ca=() cb=() r=() rc=()
  for i in $(seq 1 "$PAIRS"); do
    if [ $((i % 2)) -eq 1 ]; then x=$(run a "$n"); y=$(run b "$n"); else y=$(run b "$n"); x=$(run a "$n"); fi
    read -r xa xc <<<"$x"; read -r ya yc <<<"$y"
    ta+=("$xa"); tb+=("$ya"); ca+=("$xc"); cb+=("$yc")
    r+=("$(awk -v a="$xa" -v b="$ya" 'BEGIN {printf "%.3f", (b > 0) ? a / b : 0}')")
    rc+=("$(awk -v a="$xc" -v b="$yc" 'BEGIN {printf "%.3f", (a > 0) ? b / a : 0}')")
  done
  printf '%-8s %10.0f %10.0f %8.3f %10.1f %10.1f %8.3f   (pairs of cpu B/A: %s)\n' "$n" \
    "$(printf '%s\n' "${ta[@]}" | median)" "$(printf '%s\n' "${tb[@]}" | median)" "$(printf '%s\n' "${r[@]}" | median)" \
    "$(printf '%s\n' "${ca[@]}" | median)" "$(printf '%s\n' "${cb[@]}" | median)" "$(printf '%s\n' "${rc[@]}" | median)" \
    "$(printf '%s ' "${rc[@]}")"
done
