#!/usr/bin/env bash
# A hot standby of a preloaded primary (DESIGN.md section 9). On the primary, four writers
# append: some in autocommit, some in transactions held open for random short times, some that
# roll back. On the standby, followers read as subscribers do: read_all_forward(checkpoint + 1),
# read_stream_forward('$ce-account', ...) and read_handler_events (whose checkpoint is saved on
# the primary), each advancing to the last position it got. When the writers stop and the
# standby has caught up, every follower saw every event of the primary exactly once. Also:
# safe_position() on the standby never passes the primary's, writes and LISTEN fail with 25006,
# wait_for_position wakes on the standby, and paused replay returns fewer events, never an error;
# the standby's horizon moves on when the primary has no worker slot free for a notifier.
set -u
ROOT=${ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
source "$ROOT/test/cluster.sh"
source "$ROOT/test/shell/lib.bash"
source "$ROOT/test/shell/topology.bash"
subscriber_suite standby
topology_trap

PRIMARY=standby_primary
STANDBY=standby_replica
WRITERS=4
TXS=250   # transactions per writer

topology_primary_start $PRIMARY >"$WORK/primary.log" 2>&1 || { cat "$WORK/primary.log"; echo "not ok - a primary starts"; exit 1; }
cluster_use $PRIMARY   # psql, q and subscriber_suite's cleanup talk to the primary from here on
q -d postgres -c "CREATE DATABASE $DB" >/dev/null || { echo "not ok - setup"; exit 1; }
q -d $DB >/dev/null <<'SQL' || { echo "not ok - setup"; exit 1; }
CREATE EXTENSION everest;
SELECT everest.append_event('account-0', 'Opened');
SQL
standby_start $STANDBY $PRIMARY >"$WORK/standby.log" 2>&1 || { cat "$WORK/standby.log"; echo "not ok - a hot standby starts"; exit 1; }
is "the standby is a hot standby in recovery" "$(topo_psql $STANDBY -d $DB -c "SELECT pg_is_in_recovery()")" "t"
is "everest on the standby is the primary's version" \
  "$(topo_psql $STANDBY -d $DB -c "SELECT extversion FROM pg_extension WHERE extname = 'everest'")" \
  "$(q -d $DB -c "SELECT extversion FROM pg_extension WHERE extname = 'everest'")"
SB="$(topo_conninfo $STANDBY $DB)"
sb() { topo_psql $STANDBY -d $DB "$@"; }

# --- writes and LISTEN on the standby: PostgreSQL's read-only error
is "an append on the standby fails with 25006" "$(sqlstate_of "$SB" "SELECT everest.append_event('x-1', 'X')")" "25006"
is "a save on the standby fails with 25006" "$(sqlstate_of "$SB" "SELECT everest.save_handler_position('h', 1)")" "25006"
is "LISTEN on the standby fails with 25006" "$(sqlstate_of "$SB" "LISTEN everest")" "25006"

# --- followers on the standby while the writers run on the primary
writer() {  # writer N: TXS transactions in one session
  local i r sql
  for ((i = 0; i < TXS; i++)); do
    r=$((RANDOM % 10))
    # One stream per transaction (appends to several streams in random order can deadlock).
    sql="SELECT everest.append_event(s, 'E', jsonb_build_object('w', $1, 'i', $i))
           FROM (SELECT CASE WHEN random() < 0.5 THEN 'account-' ELSE 'order-' END || (1 + floor(random() * 10))::int AS s) s,
                generate_series(1, 1 + floor(random() * 3)::int)"
    if [ $r -lt 5 ]; then echo "$sql;"
    elif [ $r -lt 8 ]; then echo "BEGIN; $sql; SELECT pg_sleep(random() * 0.08); COMMIT;"
    else echo "BEGIN; $sql; SELECT pg_sleep(random() * 0.04); ROLLBACK;"; fi
  done | psql -X -q -d $DB >/dev/null 2>>"$WORK/writer.err"
}
# One psql session on the standby per follower (a coprocess): sb_query SQL sets ROWS to the
# rows of SQL, one column each; false when the session is gone. Errors go to $SB_ERR.
sb_session() {
  SB_ERR=$1
  coproc SBPSQL { sb -v ON_ERROR_STOP=0 2>>"$SB_ERR"; }
}
sb_query() {
  local line
  ROWS=()
  printf '%s;\n\\echo __end__\n' "$1" >&"${SBPSQL[1]}" || return 1
  while IFS= read -r line <&"${SBPSQL[0]}"; do
    [ "$line" = __end__ ] && return 0
    ROWS+=("$line")
  done
  return 1
}
# follow NAME SQL: SQL (with %s for the checkpoint) returns positions on the standby; each
# batch is recorded in NAME.pos and the checkpoint moves to its last position.
follow() {
  local name=$1 sql=$2 cp=0
  : >"$WORK/$name.pos"
  echo 0 >"$WORK/$name.cp"
  sb_session "$WORK/$name.err"
  while [ ! -e "$WORK/stop" ]; do
    sb_query "$(printf "$sql" "$cp")" || { echo "session lost" >>"$WORK/$name.err"; return; }
    if [ ${#ROWS[@]} -gt 0 ]; then
      printf '%s\n' "${ROWS[@]}" >>"$WORK/$name.pos"
      cp=${ROWS[-1]}
      echo "$cp" >"$WORK/$name.cp"
    else
      sleep 0.005
    fi
  done
}
# The handler's checkpoint is saved on the primary; the next read waits until the standby has
# replayed it (a subscriber that reads on a standby and writes on the primary).
follow_handler() {
  local last
  : >"$WORK/handler.pos"
  echo 0 >"$WORK/handler.cp"
  sb_session "$WORK/handler.err"
  while [ ! -e "$WORK/stop" ]; do
    sb_query "SELECT position FROM everest.read_handler_events('standby-h', '\$all', 100)" ||
      { echo "session lost" >>"$WORK/handler.err"; return; }
    if [ ${#ROWS[@]} -eq 0 ]; then sleep 0.005; continue; fi
    printf '%s\n' "${ROWS[@]}" >>"$WORK/handler.pos"
    last=${ROWS[-1]}
    q -d $DB -c "SELECT everest.save_handler_position('standby-h', $last)" >/dev/null 2>>"$WORK/handler.err"
    while [ ! -e "$WORK/stop" ]; do
      sb_query "SELECT everest.handler_position('standby-h') >= $last" || break
      [ "${ROWS[0]:-}" = t ] && break
      sleep 0.005
    done
    echo "$last" >"$WORK/handler.cp"
  done
}
# Samples of (standby's safe_position(), then the primary's): the standby's must never be
# higher than the primary's taken after it.
sample_horizons() {
  local s p
  while [ ! -e "$WORK/stop" ]; do
    s=$(sb -c "SELECT everest.safe_position()" 2>/dev/null) && p=$(q -d $DB -c "SELECT everest.safe_position()" 2>/dev/null) &&
      echo "$s $p" >>"$WORK/horizons"
    sleep 0.02
  done
}

follow all "SELECT position FROM everest.read_all_forward(%s + 1, 100)" &
PIDS+=("$!")
follow ce "SELECT position FROM everest.read_stream_forward('\$ce-account', %s + 1, 100)" &
PIDS+=("$!")
follow_handler &
PIDS+=("$!")
sample_horizons &
PIDS+=("$!")
writer_pids=()
for w in $(seq 1 $WRITERS); do writer "$w" & writer_pids+=("$!"); PIDS+=("$!"); done
started=$SECONDS
wait "${writer_pids[@]}"
echo "# writers ran for $((SECONDS - started)) s"

standby_wait_caught_up $STANDBY $PRIMARY 30
is "the standby catches up with the primary" "$?" "0"
last_all=$(q -d $DB -c "SELECT max(position) FROM everest.read_all_forward(0, 2147483647)")
last_ce=$(q -d $DB -c "SELECT coalesce(max(position), 0) FROM everest.read_stream_forward('\$ce-account', 0, 2147483647)")
at_least() { local cp; cp=$(cat "$WORK/$1.cp" 2>/dev/null); [ "${cp:-0}" -ge "$2" ]; }
wait_for 30 at_least all "$last_all"
wait_for 30 at_least ce "$last_ce"
wait_for 30 at_least handler "$last_all"
touch "$WORK/stop"
for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done

total=$(q -d $DB -c "SELECT count(*) FROM everest.read_all_forward(0, 2147483647)")
is "the writers' transactions all worked" "$(grep -c ERROR "$WORK/writer.err")" "0"
is "the writers appended hundreds of events" "$([ "$total" -ge 500 ] && echo yes || echo "no ($total)")" "yes"
q -d $DB -c "SELECT position FROM everest.read_all_forward(0, 2147483647)" | sort >"$WORK/all.expected"
q -d $DB -c "SELECT position FROM everest.read_stream_forward('\$ce-account', 0, 2147483647)" | sort >"$WORK/ce.expected"
for f in all ce handler; do
  exp=$WORK/$([ $f = handler ] && echo all || echo $f).expected
  sort "$WORK/$f.pos" >"$WORK/$f.sorted"
  missed=$(comm -23 "$exp" <(sort -u "$WORK/$f.sorted") | wc -l)
  echo "# $f follower on the standby: missed $missed of $(wc -l <"$exp") events"
  is "the $f follower on the standby missed no event" "$missed" "0"
  is "the $f follower on the standby saw no event twice and none that is not on the primary" \
    "$(uniq -d "$WORK/$f.sorted" | wc -l) $(comm -13 "$exp" <(sort -u "$WORK/$f.sorted") | wc -l)" "0 0"
  is "the $f follower's reads never failed" "$(cat "$WORK/$f.err" 2>/dev/null | grep -c .)" "0"
done
samples=$(lines "$WORK/horizons")
above=$(awk '$1 > $2' "$WORK/horizons" | wc -l)
echo "# safe_position(): $above of $samples samples on the standby were above the primary's"
is "safe_position() on the standby is never above the primary's ($samples samples)" \
  "$([ "$samples" -ge 5 ] && echo "$above" || echo "only $samples samples")" "0"

# --- wait_for_position on the standby wakes when the primary appends
if [ "$(sb -c "SELECT count(*) FROM pg_proc WHERE proname = 'wait_for_position' AND pronamespace = 'everest'::regnamespace")" = 1 ]; then
  sp=$(sb -c "SELECT everest.safe_position()")
  is "wait_for_position(safe_position(), 0) on the standby returns at once" \
    "$(sb -c "SELECT everest.wait_for_position($sp, 0) = $sp")" "t"
  t0=$(date +%s%N)
  sb -c "SELECT everest.wait_for_position($sp, 10000)" >"$WORK/woken" 2>&1 &
  waiter=$!
  PIDS+=("$waiter")
  sleep 0.5
  q -d $DB -c "SELECT everest.append_event('account-1', 'Woken')" >/dev/null
  wait "$waiter"
  ms=$((($(date +%s%N) - t0) / 1000000))
  is "wait_for_position on the standby returns a position past the one it waited after" \
    "$([ "$(cat "$WORK/woken")" -gt "$sp" ] 2>/dev/null && echo yes || echo "no ($(head -c 200 "$WORK/woken"))")" "yes"
  is "... woken by the primary's append, before its 10 s timeout ($ms ms)" "$([ $ms -ge 450 ] && [ $ms -lt 5000 ] && echo yes)" "yes"
else
  echo "not ok - wait_for_position on the standby (everest $(sb -c "SELECT extversion FROM pg_extension WHERE extname = 'everest'") has no wait_for_position)"
fi

# --- paused replay: fewer events, never an error; all of them after resume
standby_wait_caught_up $STANDBY $PRIMARY 30
sb -c "SELECT pg_wal_replay_pause()" >/dev/null
before=$(q -d $DB -c "SELECT count(*) FROM everest.read_all_forward(0, 2147483647)")
q -d $DB -c "SELECT count(*) FROM generate_series(1, 30) i, LATERAL everest.append_event('account-' || i % 5, 'Paused')" >/dev/null
after=$((before + 30))
is "the primary has 30 more events" "$(q -d $DB -c "SELECT count(*) FROM everest.read_all_forward(0, 2147483647)")" "$after"
sleep 0.3
paused_errors=0
for _ in 1 2 3 4 5; do
  n=$(sb -c "SELECT count(*) FROM everest.read_all_forward(0, 2147483647)") || paused_errors=$((paused_errors + 1))
  sb -c "SELECT count(*) FROM everest.read_handler_events('standby-paused', '\$ce-account', 100000)" >/dev/null ||
    paused_errors=$((paused_errors + 1))
  sleep 0.05
done
is "with replay paused, reads on the standby never fail" "$paused_errors" "0"
is "... and return fewer events than the primary has" "$([ "${n:-0}" -lt "$after" ] && echo yes || echo "no (${n:-?} of $after)")" "yes"
sb -c "SELECT pg_wal_replay_resume()" >/dev/null
standby_wait_caught_up $STANDBY $PRIMARY 30
all_there() { [ "$(sb -c "SELECT count(*) FROM everest.read_all_forward(0, 2147483647)")" = "$after" ]; }
wait_for 20 all_there
is "after resume, the standby returns every event" "$(sb -c "SELECT count(*) FROM everest.read_all_forward(0, 2147483647)")" "$after"

# --- no background worker slot free on the primary (max_worker_processes = 1, which the logical
# replication launcher takes), so no notifier: the standby's horizon must still move on.
BUSY=standby_busy_primary
topology_primary_start $BUSY "max_worker_processes = 1" >"$WORK/busy.log" 2>&1 &&
  topo_psql $BUSY -d postgres -c "CREATE DATABASE $DB" >/dev/null &&
  topo_psql $BUSY -d $DB -c "CREATE EXTENSION everest" >/dev/null &&
  standby_start standby_busy_replica $BUSY >>"$WORK/busy.log" 2>&1 || { cat "$WORK/busy.log"; echo "not ok - a second primary and standby start"; }
topo_psql $BUSY -d $DB -c "SELECT count(*) FROM generate_series(1, 20) i, LATERAL everest.append_event('account-' || i, 'Busy')" >/dev/null
standby_wait_caught_up standby_busy_replica $BUSY 30
busy_events() { topo_psql standby_busy_replica -d $DB -c "SELECT count(*) FROM everest.read_all_forward(0, 2147483647)"; }
busy_all() { [ "$(busy_events)" = 20 ]; }
wait_for 10 busy_all
is "with no worker slot free for a notifier on the primary, the standby still returns every event" "$(busy_events)" "20"

if [ "$FAILURES" -gt 0 ]; then
  for f in writer all ce handler; do [ -s "$WORK/$f.err" ] && { echo "# $f.err:"; tail -5 "$WORK/$f.err" | sed 's/^/# /'; }; done
  echo "# standby log:"; tail -10 "$(cluster_dir $STANDBY)/server.log" | sed 's/^/# /'
fi
finish
