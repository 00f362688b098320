#!/usr/bin/env bash
# Runs each workload interleaved with its plain-SQL baseline (A, B, A, B, ...) on the cluster
# PGHOST/PGPORT point at, and prints a table: workload, clients, everest tps, baseline tps, and
# the median of the per-pair ratios. Called by `make bench` (test/run.sh bench) after set-up.
#   bench/run-workloads.sh [--quick] [--pairs N] [--seconds S] [--only NAME] [--large]
# --large adds the long ones (about 6 more minutes): append cost with 10 million events stored
# against an empty store, and backend memory across 1 million appends in one session.
set -uo pipefail
cd "$(dirname "$0")"
# Pairs are short and many, in alternating order (A B, B A, ...): on this noisy 2-core VM the
# throughput drifts within seconds, and a median of many pairs is steadier than one of three long
# ones.
PAIRS=7 SECONDS_EACH=3 ONLY= LARGE=
while [ $# -gt 0 ]; do
  case $1 in
    --quick) PAIRS=3 SECONDS_EACH=2 ;;
    --pairs) PAIRS=$2; shift ;;
    --seconds) SECONDS_EACH=$2; shift ;;
    --only) ONLY=$2; shift ;;
    --large) LARGE=1 ;;
  esac
  shift
done
DB=everest_bench
OUT=${BENCH_OUT:-results.md}
# workload clients
WORKLOADS="append_any:1 append_any:8 append_exact:8 batch_100:4 read_stream_100:8 read_all_1000:4 read_event:8 append_schema:1 append_schema:8 batch_schema:4 read_type_1000:4"

psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB" >/dev/null
psql -X -q -d $DB -f setup.sql >/dev/null || exit 1

# Server CPU: backends are the postmaster's children, so the CPU time of the ones a pgbench run
# started shows in the postmaster's reaped-children times (cutime + cstime) once they exit. Per
# transaction it is a second, steadier ratio than tps on this noisy machine: it does not depend
# on how the scheduler shares 2 cores between pgbench and the server.
PM_PID=$(head -1 "$(psql -X -t -A -d postgres -c 'SHOW data_directory')/postmaster.pid" 2>/dev/null)
HZ=$(getconf CLK_TCK)
children_ticks() { [ -n "$PM_PID" ] && awk '{print $16 + $17}' "/proc/$PM_PID/stat" 2>/dev/null; }
run() {  # run SCRIPT CLIENTS: prints "tps server-CPU-microseconds-per-transaction"
  local c0 c1 out
  c0=$(children_ticks)
  out=$(pgbench -n -M prepared -c "$2" -j 2 -T "$SECONDS_EACH" -f "workloads/$1" $DB 2>/dev/null)
  sleep 0.2  # the backends exit and are reaped
  c1=$(children_ticks)
  awk -v c0="${c0:-0}" -v c1="${c1:-0}" -v hz="$HZ" '
    /number of transactions actually processed/ {n = $NF + 0}
    /^tps = / && !t {t = $3}
    END {printf "%s %.1f\n", t, (n > 0 && c1 > c0) ? (c1 - c0) * 1e6 / hz / n : 0}' <<<"$out"
}
tps() { run "$@" | cut -d' ' -f1; }  # tps SCRIPT CLIENTS
mkdir -p ../build
median() { sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }

{
  echo "| workload | clients | everest tps | baseline tps | ratio (median of $PAIRS pairs) | server CPU µs/txn, everest | baseline | CPU ratio, baseline / everest (median) |"
  echo "|---|---|---|---|---|---|---|---|"
} >"$OUT.tmp"
printf '%-16s %7s %10s %10s %7s %11s %11s %9s\n' workload clients everest baseline ratio "cpu-us ev" "cpu-us base" "cpu ratio"
for w in $WORKLOADS; do
  name=${w%%:*} clients=${w##*:}
  [ -n "$ONLY" ] && [ "$ONLY" != "$name" ] && continue
  ev=() base=() ratios=() ev_cpu=() base_cpu=() cpu_ratios=()
  for i in $(seq 1 "$PAIRS"); do
    if [ $((i % 2)) -eq 1 ]; then
      a=$(run "$name.everest.sql" "$clients"); b=$(run "$name.baseline.sql" "$clients")
    else
      b=$(run "$name.baseline.sql" "$clients"); a=$(run "$name.everest.sql" "$clients")
    fi
    read -r a a_cpu <<<"$a"; read -r b b_cpu <<<"$b"
    ev+=("$a"); base+=("$b"); ev_cpu+=("$a_cpu"); base_cpu+=("$b_cpu")
    ratios+=("$(awk -v a="${a:-0}" -v b="${b:-0}" 'BEGIN {printf "%.3f", (b > 0) ? a / b : 0}')")
    cpu_ratios+=("$(awk -v a="${a_cpu:-0}" -v b="${b_cpu:-0}" 'BEGIN {printf "%.3f", (a > 0) ? b / a : 0}')")
  done
  m_ev=$(printf '%s\n' "${ev[@]}" | median); m_base=$(printf '%s\n' "${base[@]}" | median)
  m_ratio=$(printf '%s\n' "${ratios[@]}" | median)
  m_ev_cpu=$(printf '%s\n' "${ev_cpu[@]}" | median); m_base_cpu=$(printf '%s\n' "${base_cpu[@]}" | median)
  m_cpu_ratio=$(printf '%s\n' "${cpu_ratios[@]}" | median)
  printf '%-16s %7s %10.0f %10.0f %7.2f %11.1f %11.1f %9.2f\n' "$name" "$clients" "$m_ev" "$m_base" "$m_ratio" \
    "$m_ev_cpu" "$m_base_cpu" "$m_cpu_ratio"
  printf '| %s | %s | %.0f | %.0f | %.2f | %.1f | %.1f | %.2f |\n' "$name" "$clients" "$m_ev" "$m_base" "$m_ratio" \
    "$m_ev_cpu" "$m_base_cpu" "$m_cpu_ratio" >>"$OUT.tmp"
done

# wait_for_position: 8 clients appending while 20 sessions re-wait as soon as they return (A)
# against the same appends with 20 sessions connected and idle (B; WAITERS_B=none: no sessions).
# The waiters' own server CPU counts against the appends: server CPU per append, B / A.
live_ticks() {  # "/proc/PID/stat ticks" of every live process of the server, in one read
  local p files=()
  for p in $PM_PID $(pgrep -P "$PM_PID"); do files+=("/proc/$p/stat"); done
  awk '{print FILENAME, $14 + $15}' "${files[@]}" 2>/dev/null
}
# run_waiters SCRIPT: "appends/s server-CPU-microseconds-per-append". 20 sessions run SCRIPT
# (rewait.sql, or idle.sql: connected, doing nothing) while 8 clients append. The CPU is sampled
# from the live server processes in a window in which every connection is up, so that the
# set-up of the 20 connections (paid by any 20 clients, waiting or not) is not counted, and the
# appends in the window are counted by the positions they took.
WAITERS_A=${WAITERS_A:-rewait.sql} WAITERS_B=${WAITERS_B:-idle.sql}
run_waiters() {
  local wp= ap c0 c1 p0 p1 t0 t1
  if [ "$1" != none ]; then
    pgbench -n -c 20 -j 1 -T $((SECONDS_EACH + 5)) -f "workloads/$1" $DB >/dev/null 2>&1 &
    wp=$!
  fi
  sleep 1
  pgbench -n -M prepared -c 8 -j 2 -T $((SECONDS_EACH + 3)) -f workloads/append_any.everest.sql $DB >/dev/null 2>&1 &
  ap=$!
  sleep 1
  p0=$(psql -X -At -d $DB -c 'SELECT everest.safe_position()'); c0=$(live_ticks); t0=$(date +%s.%N)
  sleep "$SECONDS_EACH"
  p1=$(psql -X -At -d $DB -c 'SELECT everest.safe_position()'); c1=$(live_ticks); t1=$(date +%s.%N)
  wait $ap $wp
  # the processes alive at both ends (those that start or exit inside the window are few and
  # short: the two psql sessions that read the positions)
  awk -v p0="$p0" -v p1="$p1" -v t0="$t0" -v t1="$t1" -v hz="$HZ" '
    FNR == NR {c0[$1] = $2; next}
    ($1 in c0) {d += $2 - c0[$1]}
    END {n = p1 - p0; printf "%.0f %.1f\n", n / (t1 - t0), (n > 0) ? d * 1e6 / hz / n : 0}' <(echo "$c0") <(echo "$c1")
}
if [ -z "$ONLY" ] || [ "$ONLY" = waiters ]; then
  ev=() base=() ratios=() ev_cpu=() base_cpu=() cpu_ratios=()
  for i in $(seq 1 "$PAIRS"); do
    if [ $((i % 2)) -eq 1 ]; then a=$(run_waiters "$WAITERS_A"); b=$(run_waiters "$WAITERS_B"); else b=$(run_waiters "$WAITERS_B"); a=$(run_waiters "$WAITERS_A"); fi
    read -r a a_cpu <<<"$a"; read -r b b_cpu <<<"$b"
    ev+=("$a"); base+=("$b"); ev_cpu+=("$a_cpu"); base_cpu+=("$b_cpu")
    ratios+=("$(awk -v a="${a:-0}" -v b="${b:-0}" 'BEGIN {printf "%.3f", (b > 0) ? a / b : 0}')")
    cpu_ratios+=("$(awk -v a="${a_cpu:-0}" -v b="${b_cpu:-0}" 'BEGIN {printf "%.3f", (a > 0) ? b / a : 0}')")
  done
  m_ev=$(printf '%s\n' "${ev[@]}" | median); m_base=$(printf '%s\n' "${base[@]}" | median)
  m_ratio=$(printf '%s\n' "${ratios[@]}" | median)
  m_ev_cpu=$(printf '%s\n' "${ev_cpu[@]}" | median); m_base_cpu=$(printf '%s\n' "${base_cpu[@]}" | median)
  m_cpu_ratio=$(printf '%s\n' "${cpu_ratios[@]}" | median)
  printf '%-16s %7s %10.0f %10.0f %7.2f %11.1f %11.1f %9.2f   (20 re-waiting sessions / 20 idle)\n' append_waiters 8 \
    "$m_ev" "$m_base" "$m_ratio" "$m_ev_cpu" "$m_base_cpu" "$m_cpu_ratio"
  printf '| append_any with 20 sessions re-waiting in wait_for_position vs 20 idle | 8 | %.0f | %.0f | %.2f | %.1f | %.1f | %.2f |\n' \
    "$m_ev" "$m_base" "$m_ratio" "$m_ev_cpu" "$m_base_cpu" "$m_cpu_ratio" >>"$OUT.tmp"
fi

# Notifications: 8 clients appending with a listener connected, notifications on (A) against
# off (B); then the latency from an append's commit to the notification covering it.
notify() {
  psql -X -q -d postgres -c "ALTER SYSTEM SET everest.notify = $1" -c "SELECT pg_reload_conf()" >/dev/null
  sleep 0.3
}
if [ -z "$ONLY" ] || [ "$ONLY" = notify ]; then
  psql -X -q -d $DB -c "LISTEN everest" -c "SELECT pg_sleep(100000)" >/dev/null 2>&1 &
  listener=$!
  on=() off=() ratios=()
  for i in $(seq 1 "$PAIRS"); do
    if [ $((i % 2)) -eq 1 ]; then
      notify on; a=$(tps append_any.everest.sql 8); notify off; b=$(tps append_any.everest.sql 8)
    else
      notify off; b=$(tps append_any.everest.sql 8); notify on; a=$(tps append_any.everest.sql 8)
    fi
    on+=("$a"); off+=("$b")
    ratios+=("$(awk -v a="${a:-0}" -v b="${b:-0}" 'BEGIN {printf "%.3f", (b > 0) ? a / b : 0}')")
  done
  kill "$listener" 2>/dev/null
  psql -X -q -d postgres -c "ALTER SYSTEM RESET everest.notify" -c "SELECT pg_reload_conf()" >/dev/null
  m_on=$(printf '%s\n' "${on[@]}" | median); m_off=$(printf '%s\n' "${off[@]}" | median)
  m_ratio=$(printf '%s\n' "${ratios[@]}" | median)
  printf '%-16s %7s %12.0f %12.0f %8.2f   (notify on / off)\n' "append_notify" 8 "$m_on" "$m_off" "$m_ratio"
  printf '| append_any, notify on vs off (listener connected) | 8 | %.0f | %.0f | %.2f | | | |\n' "$m_on" "$m_off" "$m_ratio" >>"$OUT.tmp"

  g++ -std=c++17 -O2 -I"$(pg_config --includedir)" notify_latency.cpp -o ../build/notify_latency -lpq -pthread &&
    latency=$(../build/notify_latency --rate 1000 --seconds 10 "dbname=$DB" | tail -1)
  wait_latency=$(../build/notify_latency --rate 1000 --seconds 10 --wait "dbname=$DB" | tail -1)
  echo "notification $latency (1000 appends/s)"
  echo "wait_for_position $wait_latency (1000 appends/s)"
  { echo; echo "Notification $latency, at 1,000 appends/s (bench/notify_latency.cpp).";
    echo "wait_for_position (commit to return) $wait_latency, at 1,000 appends/s (notify_latency --wait)."; } >>"$OUT.tmp"
fi
{
  echo
  echo "Machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(. /etc/os-release; echo "$PRETTY_NAME");"
  echo "$(psql -X -t -A -d postgres -c 'SELECT version()' | cut -d, -f1);"
  echo "settings: $(psql -X -t -A -d postgres -c "SELECT string_agg(name || '=' || setting, ', ') FROM pg_settings WHERE name IN ('fsync','synchronous_commit','shared_buffers','max_connections','shared_preload_libraries')");"
  echo "pgbench -M prepared -j 2, ${SECONDS_EACH}s per run, $PAIRS everest/baseline pairs interleaved (alternating which goes first); $(date -u +%Y-%m-%d)."
} >>"$OUT.tmp"
# Subscriber catch-up: events per second applied with a checkpoint per batch of 500.
if [ -z "$ONLY" ] || [ "$ONLY" = catchup ]; then
  psql -X -q -d $DB -f catchup.sql >/dev/null
  psql -X -q -d $DB -c "SELECT count(*) FROM (SELECT everest.append_events('catchup-' || s,
      (SELECT jsonb_agg(jsonb_build_object('type', 'T', 'data', jsonb_build_object('n', v)))
         FROM generate_series(1, 100) v)) FROM generate_series(1, 900) s) x" >/dev/null
  psql -X -q -d $DB -c "SELECT everest.reset_handler('bench-catchup')" >/dev/null
  total=$(psql -X -t -A -d $DB -c "SELECT count(*) FROM everest.read_all_forward(0, 100000000)")
  start=$(date +%s.%N)
  psql -X -q -d $DB -c "CALL everest_bench_catchup('bench-catchup')" >/dev/null
  end=$(date +%s.%N)
  rate=$(awk -v n="$total" -v a="$start" -v b="$end" 'BEGIN {printf "%.0f", n / (b - a)}')
  echo "subscriber catch-up in the server: $total events at $rate events/s (batches of 500, checkpoint per batch)"
  echo "Subscriber catch-up inside the server: $total events at $rate events/s, batches of 500 from \$all, each applied (a counter row) and checkpointed in its own transaction (bench/catchup.sql)." >>"$OUT.tmp"
  if [ -x ../build/everest-tail ]; then
    start=$(date +%s.%N)
    ../build/everest-tail --handler bench-tail --source '$all' --once --from-start --batch 500 "dbname=$DB" >/dev/null 2>&1
    end=$(date +%s.%N)
    rate=$(awk -v n="$total" -v a="$start" -v b="$end" 'BEGIN {printf "%.0f", n / (b - a)}')
    echo "subscriber catch-up with everest-tail: $rate events/s"
    echo "Subscriber catch-up over the wire, build/everest-tail printing every event as JSON (to /dev/null), batches of 500 with a checkpoint each: $rate events/s." >>"$OUT.tmp"
  fi
fi

if [ -n "$LARGE" ] || [ "$ONLY" = store_size ]; then
  # Append cost with 10 million events stored, against an empty store, interleaved.
  psql -X -q -d postgres -c "DROP DATABASE IF EXISTS everest_bench_big" -c "CREATE DATABASE everest_bench_big" \
    -c "DROP DATABASE IF EXISTS everest_bench_empty" -c "CREATE DATABASE everest_bench_empty" >/dev/null
  psql -X -q -d everest_bench_empty -c "CREATE EXTENSION everest" >/dev/null
  psql -X -q -d everest_bench_big -c "CREATE EXTENSION everest" \
    -c "INSERT INTO everest.events (position, stream, version, id, type, data)
        SELECT i, 'big-' || (i % 100000), i / 100000, gen_random_uuid(), 'Loaded', '{\"amount\": 10}'
          FROM generate_series(1, 10000000) i" \
    -c "SELECT setval('everest.position_seq', 10000000)" -c "VACUUM ANALYZE everest.events" >/dev/null
  big=() empty=() ratios=()
  for _ in $(seq 1 "$PAIRS"); do
    a=$(DB=everest_bench_big; pgbench -n -M prepared -c 8 -j 2 -T "$SECONDS_EACH" -f workloads/append_any.everest.sql everest_bench_big 2>/dev/null | grep -oE 'tps = [0-9.]+' | cut -d' ' -f3)
    b=$(pgbench -n -M prepared -c 8 -j 2 -T "$SECONDS_EACH" -f workloads/append_any.everest.sql everest_bench_empty 2>/dev/null | grep -oE 'tps = [0-9.]+' | cut -d' ' -f3)
    big+=("$a"); empty+=("$b")
    ratios+=("$(awk -v a="${a:-0}" -v b="${b:-0}" 'BEGIN {printf "%.3f", (a > 0) ? b / a : 0}')")
  done
  m_ratio=$(printf '%s\n' "${ratios[@]}" | median)
  echo "append cost with 10M events stored / empty store: $m_ratio (tps $(printf '%s\n' "${big[@]}" | median) vs $(printf '%s\n' "${empty[@]}" | median))"
  echo "Append cost with 10,000,000 events stored, relative to an empty store (8 clients, time per append): $m_ratio." >>"$OUT.tmp"
  psql -X -q -d postgres -c "DROP DATABASE everest_bench_big" -c "DROP DATABASE everest_bench_empty" >/dev/null
fi

if [ -n "$LARGE" ] || [ "$ONLY" = memory ]; then
  # Backend memory across 1 million single-event appends in one session (one per transaction).
  mem=$( { echo "SELECT 'before', sum(total_bytes) FROM pg_backend_memory_contexts;"
           echo '\o /dev/null'
           awk 'BEGIN { for (i = 1; i <= 1000000; i++)
                          printf "SELECT everest.append_event(\x27memory-%d\x27, \x27Tick\x27);\n", i % 10000 }'
           echo '\o'
           echo "SELECT 'after', sum(total_bytes) FROM pg_backend_memory_contexts;"; } |
         psql -X -q -t -A -F ' ' -d $DB)
  b=$(echo "$mem" | awk '$1 == "before" {print $2}'); a=$(echo "$mem" | awk '$1 == "after" {print $2}')
  growth=$(awk -v a="${a:-0}" -v b="${b:-0}" 'BEGIN {printf "%.2f", (a - b) / 1048576}')
  echo "backend memory after 1,000,000 appends in one session: grew ${growth} MB ($b -> $a bytes)"
  echo "Backend memory (pg_backend_memory_contexts) after 1,000,000 appends in one session: grew ${growth} MB." >>"$OUT.tmp"
fi
mv "$OUT.tmp" "$OUT"
echo "table written to bench/$OUT"
