#!/usr/bin/env bash
# The subscribers through PgBouncer in transaction mode with a pool of two server connections
# (Debian's pgbouncer 1.18, pool_mode = transaction, default_pool_size 2 for the whole suite, so
# that clients share server connections; DESIGN.md section 9): no named prepared statement or
# session state may outlive a transaction, the lease must hold across server connections
# (acquire_lease, not the session lease), waking must not depend on LISTEN (wait_for_position),
# and a runner paused past its lease must be fenced off (EV005).
#
# The acceptance test of section 9, once with everest-tail and once with the Node example: three
# runners of one handler (everest-tail --apply, then examples/node/subscriber.js --apply, each with
# --wake wait --lease-ttl 2 --poll-ms 500 --batch 20) while a psql session appends through the
# pooler (every 7th transaction rolls back). The lease holder is killed with SIGKILL three times,
# each time replaced by a fresh runner (there are always three), and once it is stopped with
# SIGSTOP inside a batch (after an --apply, before its save) for 5 s, past its 2 s lease, and then
# continued with SIGCONT: its save must fail with EV005 and roll back. Every runner has its own
# application_name (PGAPPNAME): everest.leases records it as the holder, and pg_stat_activity shows
# it on the server connection the runner uses. Every event is applied exactly once: the applied
# log (no key, so that a duplicate shows) FULL JOINed with $all has no gap and no duplicate, and
# the tails' balances equal a recomputation from the events (projection_checks).
#
# What happens during the stop depends on the projection, and the suite asserts each:
# - The tails' --apply upserts balances rows. A client inside a transaction keeps its server
#   connection, so the stopped tail pins one of the two, with the locks of the rows it updated.
#   The tail that takes the lease over reads from the same checkpoint, so its first --apply
#   updates the stopped one's first row and waits for that lock on the other server connection:
#   nothing commits until SIGCONT (the appender and the third tail queue in the pooler; a bigger
#   pool would let them run, but the taker would still wait for the row). So the suite asserts the
#   weaker property: another tail took the lease during the stop, it waits for a lock of the
#   stopped tail's open transaction, and the checkpoint stays where it was. After SIGCONT the
#   stopped tail's save fails with EV005, it rolls back, and the handler goes on (the taker,
#   having waited past its own 2 s lease, may be fenced too).
# - The Node runners' --apply only inserts into node_applied (no row that two batches update):
#   the new holder applies and saves during the stop through the one server connection left,
#   which it shares with the appender and the runners waiting for the lease; the suite asserts
#   that the checkpoint moved during the stop.
#
# How the waits are sized: a runner waiting in wait_for_position holds one pooled server
# connection for at most --poll-ms (500 ms here, less when its lease renewal is due, every TTL/3),
# and runners waiting for the lease only poll acquire_lease every --poll-ms, one short
# transaction each; so the holder's wait leaves the second server connection to the appender and
# the polls. The two kinds of runners run one after the other: two holders waiting at once would
# take both. The last part wakes two subscribers whose polling interval is a minute: each waits
# on one of the two server connections, and the append that wakes them goes to the server
# directly (through the pooler it would queue behind the waits).
#
# Also: everest-tail runs twice in a row through the pooler (no prepared statement of another
# client); two tails with the old session lease both run, and the saves' checkpoint check (EV004)
# keeps them exactly once; SIGTERM stops tails and Node subscribers with status 0, also during
# wait_for_position, and pgbouncer still runs afterwards (a subscriber stopped during
# wait_for_position cancels it with a CancelRequest on a socket of its own, and PgBouncer 1.18
# exits when such a client hangs up before the cancel was forwarded).
set -u
ROOT=${ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
source "$ROOT/test/cluster.sh"
source "$ROOT/test/shell/lib.bash"
source "$ROOT/test/shell/topology.bash"
subscriber_suite pgbouncer
topology_trap
EXAMPLE="$ROOT/examples/node"
POOL=2
TTL=2           # --lease-ttl, seconds
STOP_MS=5000    # how long the lease holder stays stopped (past TTL)

command -v pgbouncer >/dev/null || { echo "not ok - pgbouncer is installed (apt-get install pgbouncer)"; exit 1; }
command -v node >/dev/null || { echo "not ok - node is installed"; exit 1; }
[ -d "$EXAMPLE/node_modules/pg" ] || (cd "$EXAMPLE" && timeout 300 npm install --no-audit --no-fund) >"$WORK/npm.log" 2>&1 ||
  { sed 's/^/# /' "$WORK/npm.log"; echo "not ok - npm install in examples/node"; exit 1; }
need_tail "$WORK"

psql -X -q -d postgres -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" \
  -c "CREATE DATABASE $DB" >/dev/null || exit 1
q -d $DB >/dev/null <<'SQL' || { echo "not ok - setup"; exit 1; }
CREATE EXTENSION everest;
CREATE TABLE balances (stream text PRIMARY KEY, balance bigint NOT NULL, events bigint NOT NULL);
CREATE TABLE applied (position bigint NOT NULL);        -- no key: a duplicate must show, not fail
CREATE TABLE node_applied (position bigint NOT NULL);
CREATE TABLE session_applied (position bigint NOT NULL);
SQL
PGB_POOL_SIZE=$POOL pgbouncer_start pgbouncer_tx "" transaction || { echo "not ok - pgbouncer starts"; exit 1; }
PGB="host=$PGB_HOST port=$PGB_PORT dbname=$DB"
PGB_ADMIN="host=$PGB_HOST port=$PGB_PORT dbname=pgbouncer user=postgres"
is "pgbouncer answers, in transaction mode with a pool of $POOL server connections" \
  "$(psql -X -q -t -A -d "$PGB_ADMIN" -c "SHOW CONFIG" 2>&1 | grep -E '^(pool_mode|default_pool_size)\|' |
     cut -d'|' -f1,2 | sort | tr '\n' ' ')" "default_pool_size|$POOL pool_mode|transaction "

# --- everest-tail twice in a row through the pooler: the second must not meet the first's
# statements on the server connection it gets.
for run in 1 2; do
  timeout 20 "$TAIL" --handler twice-$run --once --wake wait --poll-ms 100 --quiet "$PGB" >/dev/null 2>"$WORK/twice-$run.err"
  is "everest-tail --once through the pooler, run $run: exits 0" "$?" "0"
done
is "... and neither met a prepared statement of another client" \
  "$(cat "$WORK"/twice-*.err | grep -c 'prepared statement')" "0"

APPLY="WITH e AS (SELECT \$1::jsonb AS e),
     logged AS (INSERT INTO applied (position) SELECT (e->>'position')::bigint FROM e)
INSERT INTO balances AS b (stream, balance, events)
SELECT e->>'stream', CASE e->>'type' WHEN 'Deposited' THEN 1 ELSE -1 END * (e->'data'->>'amount')::bigint, 1
  FROM e, pg_sleep(0.002)
ON CONFLICT (stream) DO UPDATE SET balance = b.balance + excluded.balance, events = b.events + 1"
NODE_APPLY="INSERT INTO node_applied (position) SELECT ((\$1::jsonb)->>'position')::bigint FROM pg_sleep(0.002)"
APPEND_SQL="SELECT everest.append_event('account-' || (1 + floor(random() * 20))::int,
                     CASE WHEN random() < 0.6 THEN 'Deposited' ELSE 'Withdrawn' END,
                     jsonb_build_object('amount', 1 + floor(random() * 100)::int))
              FROM generate_series(1, 1 + floor(random() * 4)::int)"
BURST_SQL="SELECT count(*) FROM generate_series(1, 60) i,
  LATERAL everest.append_event('account-' || (1 + floor(random() * 20))::int,
                               CASE WHEN random() < 0.6 THEN 'Deposited' ELSE 'Withdrawn' END,
                               jsonb_build_object('amount', 1 + floor(random() * 100)::int))"
appender() {  # appender STOPFILE: one psql session through the pooler, until STOPFILE exists
  local i=0
  while [ ! -e "$1" ]; do
    i=$((i + 1))
    if [ $((i % 7)) -eq 0 ]; then echo "BEGIN; $APPEND_SQL; ROLLBACK;"; else echo "$APPEND_SQL;"; fi
    sleep 0.03
  done | PGAPPNAME=appender psql -X -q -d "$PGB" >/dev/null 2>>"$WORK/appender.err"
}
pos() { q -d $DB -c "SELECT everest.handler_position('$1')"; }
progressed() { [ "$(pos "$1")" -gt "$2" ]; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }

# The runners of a phase. KIND is tail or node; each runner is named t1, t2, ... or n1, n2, ...
# (its application_name); RUNNERS lists the live ones, RUNNER_PID maps a name to its process.
declare -A RUNNER_PID
RUNNERS=()
STARTED=0
start_runner() {  # start_runner KIND
  local name
  STARTED=$((STARTED + 1))
  if [ "$1" = tail ]; then
    name=t$STARTED
    PGAPPNAME=$name "$TAIL" --handler balances --apply "$APPLY" --batch 20 --wake wait --poll-ms 500 \
      --lease-ttl $TTL --quiet "$PGB" >/dev/null 2>"$WORK/$name.err" &
  else
    name=n$STARTED
    PGAPPNAME=$name node "$EXAMPLE/subscriber.js" --handler node-balances --apply "$NODE_APPLY" --batch 20 \
      --wake wait --poll-ms 500 --lease-ttl $TTL --quiet "$PGB" >/dev/null 2>"$WORK/$name.err" &
  fi
  RUNNER_PID[$name]=$!
  PIDS+=("$!")
  RUNNERS+=("$name")
}
running() { local r; for r in "${RUNNERS[@]}"; do [ "$r" = "$1" ] && return 0; done; return 1; }
forget_runner() { local r keep=(); for r in "${RUNNERS[@]}"; do [ "$r" = "$1" ] || keep+=("$r"); done; RUNNERS=("${keep[@]}"); }
# held HANDLER [NOT]: a live runner other than NOT holds HANDLER's lease; sets HOLDER and TOKEN.
held() {
  local row
  row=$(q -d $DB -c "SELECT holder_application || ' ' || lease FROM everest.leases
                      WHERE handler = '$1' AND expires_at > clock_timestamp()")
  HOLDER=${row% *}; TOKEN=${row#* }
  [ -n "$row" ] && [ "$HOLDER" != "${2:-}" ] && running "$HOLDER"
}
# activity NAME CONDITION: how many server connections run for runner NAME with CONDITION
activity() {
  q -d $DB -c "SELECT count(*) FROM pg_stat_activity WHERE datname = '$DB' AND application_name = '$1' AND $2"
}
# applying NAME STATES: NAME's server connection is in STATES with an --apply statement as its
# latest (a batch applied in part and not saved yet)
applying() { [ "$(activity "$1" "state IN ($2) AND query LIKE '$APPLY_MARK'")" -gt 0 ]; }
settled() { [ "$(activity "$1" "state = 'active'")" = 0 ]; }
# blocked_by WAITER HOLDER: WAITER's server connection waits for a lock of HOLDER's open transaction
blocked_by() {
  [ "$(q -d $DB -c "SELECT count(*) FROM pg_stat_activity w JOIN pg_stat_activity h ON h.pid = ANY (pg_blocking_pids(w.pid))
                     WHERE w.datname = '$DB' AND w.application_name = '$1' AND h.application_name = '$2'
                       AND h.state = 'idle in transaction'")" -gt 0 ]
}
pgbouncer_alive() { local pid; pid=$(cat "$PGB_SOCKET_DIR/pgbouncer.pid" 2>/dev/null) && kill -0 "$pid" 2>/dev/null; }
# survived WHO: after WHO exited (a Node subscriber cancels its wait_for_position with a
# CancelRequest on a socket of its own), pgbouncer still runs. PgBouncer 1.18 exits with "bad
# client state" when a cancelling client hangs up before the cancel was forwarded
# (pgbouncer/pgbouncer#801): when that happened, the check fails and pgbouncer is started again
# (on another port) for the rest of the suite.
survived() {
  sleep 1   # a cancel request takes PgBouncer a few ms to forward
  if pgbouncer_alive; then is "pgbouncer survives the exit of $1" running running; return; fi
  is "pgbouncer survives the exit of $1" "died: $(grep -m1 FATAL "$PGB_SOCKET_DIR/pgbouncer.log")" running
  grep -B4 FATAL "$PGB_SOCKET_DIR/pgbouncer.log" | sed 's/^/# /'
  pgbouncer_stop pgbouncer_tx keep
  PGB_POOL_SIZE=$POOL pgbouncer_start pgbouncer_tx "" transaction || { echo "not ok - pgbouncer starts again"; exit 1; }
  PGB="host=$PGB_HOST port=$PGB_PORT dbname=$DB"
  PGB_ADMIN="host=$PGB_HOST port=$PGB_PORT dbname=pgbouncer user=postgres"
}
pools() {  # the pooler's view of the suite's database: clients active and waiting, servers active and idle
  psql -X -q -t -A -d "$PGB_ADMIN" -c "SHOW POOLS" 2>/dev/null | awk -F'|' -v db=$DB \
    '$1 == db { printf "cl_active %s cl_waiting %s sv_active %s sv_idle %s", $3, $4, $7, $10 }'
}

# kill_holder KIND HANDLER: SIGKILL of the lease holder, somewhere in its work, replaced by a fresh
# runner; true once another runner took the lease over and the handler went on.
kill_holder() {
  local victim at
  wait_for 20 held "$2" || return 1
  sleep "0.$((RANDOM % 8))"
  held "$2" || return 1
  victim=$HOLDER
  at=$(pos "$2")
  kill -9 "${RUNNER_PID[$victim]}"
  wait "${RUNNER_PID[$victim]}" 2>/dev/null
  forget_runner "$victim"
  start_runner "$1"
  echo "# SIGKILL of $victim, the lease holder, at checkpoint $at; ${RUNNERS[*]} run"
  wait_for 20 held "$2" "$victim" && wait_for 20 progressed "$2" "$at"
}

# stop_in_batch HANDLER: SIGSTOP of the lease holder while its server connection is inside a batch
# that applied events and did not save yet; sets STOPPED. 60 events appended at once (directly)
# give it full batches to be caught in; a stop that lands elsewhere (the batch ended in between)
# is undone at once, well within the lease, and tried again.
stop_in_batch() {
  local try i
  for try in $(seq 1 20); do
    wait_for 20 held "$1" || return 1
    STOPPED=$HOLDER
    q -d $DB -c "$BURST_SQL" >/dev/null
    if wait_for 5 applying "$STOPPED" "'active', 'idle in transaction'"; then
      kill -STOP "${RUNNER_PID[$STOPPED]}"
      for i in $(seq 1 10); do settled "$STOPPED" && break; sleep 0.05; done
      if applying "$STOPPED" "'idle in transaction'"; then
        echo "# $STOPPED, the lease holder, stopped inside a batch (try $try)"
        return 0
      fi
      kill -CONT "${RUNNER_PID[$STOPPED]}"
    fi
    sleep "0.$((RANDOM % 4))"
  done
  return 1
}

# chaos KIND HANDLER LOST: the acceptance test for one kind of runner, while the appender runs;
# LOST is what the stopped runner logs when its save fails with EV005.
chaos() {
  local kind=$1 handler=$2 lost=$3 kills=0 k S t0 p0 p1 token0 taker offset rest during
  RUNNERS=()
  rm -f "$WORK/stop-appending"
  appender "$WORK/stop-appending" &
  APPENDER=$!
  PIDS+=("$APPENDER")
  for k in 1 2 3; do start_runner "$kind"; done
  wait_for 20 progressed "$handler" 0
  started() {  # every runner took the lease or waits for it
    local r
    for r in "${RUNNERS[@]}"; do grep -qE 'lease on handler .* taken|waiting for the lease' "$WORK/$r.err" || return 1; done
  }
  wait_for 20 started
  is "$kind: through the pooler, one of the three runners holds the lease and the other two wait" \
    "$(for r in "${RUNNERS[@]}"; do grep -l 'lease on handler ".*" taken' "$WORK/$r.err"; done | wc -l) $(
       for r in "${RUNNERS[@]}"; do grep -l 'waiting for the lease' "$WORK/$r.err"; done | wc -l)" "1 2"
  for k in 1 2; do kill_holder "$kind" "$handler" && kills=$((kills + 1)); done

  if stop_in_batch "$handler"; then
    S=$STOPPED
    t0=$(now_ms)
    token0=$TOKEN
    p0=$(pos "$handler")
    offset=$(stat -c %s "$WORK/$S.err")
    taker=
    wait_for 15 held "$handler" "$S" && taker=$HOLDER
    is "$kind: while $S is stopped, its lease expires and another runner takes it" \
      "$([ -n "$taker" ] && [ "$TOKEN" != "$token0" ] && grep -q 'lease on handler ".*" taken' "$WORK/$taker.err" && echo yes)" "yes"
    if [ "$kind" = tail ]; then
      wait_for 15 blocked_by "${taker:-none}" "$S" && during=blocked || during="not blocked"
    else
      wait_for 15 progressed "$handler" "$p0" && during=moved || during="did not move"
    fi
    rest=$((STOP_MS - ($(now_ms) - t0)))
    [ $rest -gt 0 ] && sleep "$((rest / 1000)).$(printf '%03d' $((rest % 1000)))"
    p1=$(pos "$handler")
    echo "# $S stopped $(($(now_ms) - t0)) ms; $taker took the lease; checkpoint $p0 -> $p1; pool: $(pools)"
    if [ "$kind" = tail ]; then
      is "tail: the taker waits for a row lock of $S's open transaction, and the checkpoint stays" \
        "$during $p1" "blocked $p0"
    else
      is "node: the taker applies and saves during the stop, on the one server connection left" "$during" "moved"
    fi
    kill -CONT "${RUNNER_PID[$S]}"
    fenced() { tail -c +$((offset + 1)) "$WORK/$S.err" | grep -qF "$lost"; }
    wait_for 20 fenced
    is "$kind: continued, $S finds its save refused with EV005, rolls back and stops applying" \
      "$(tail -c +$((offset + 1)) "$WORK/$S.err" | grep -cF "$lost")" "1"
    wait_for 20 progressed "$handler" "$p1"
    is "$kind: ... and the handler goes on" "$(progressed "$handler" "$p1" && echo moved)" "moved"
  else
    echo "not ok - $kind: the lease holder could be stopped inside a batch"
    FAILURES=$((FAILURES + 1))
  fi

  kill_holder "$kind" "$handler" && kills=$((kills + 1))
  is "$kind: after each of 3 SIGKILLs of the lease holder, another runner takes the lease over and goes on" "$kills" "3"
  sleep 1
  touch "$WORK/stop-appending"
  wait "$APPENDER"
  last=$(q -d $DB -c "SELECT position FROM everest.read_all_backward(-1, 1)")
  caught_up() { [ "$(pos "$handler")" = "$last" ]; }
  wait_for 30 caught_up
  is "$kind: the runners catch up with the last event" "$(pos "$handler")" "$last"
  local status=()
  for r in "${RUNNERS[@]}"; do kill -TERM "${RUNNER_PID[$r]}"; done
  for r in "${RUNNERS[@]}"; do wait "${RUNNER_PID[$r]}"; status+=("$?"); done
  is "$kind: SIGTERM stops the three runners with status 0" "${status[*]}" "0 0 0"
  survived "the $kind runners"
}

q -d $DB -c "SELECT count(*) FROM generate_series(1, 100) i,
  LATERAL everest.append_event('account-' || (1 + i % 20), CASE WHEN i % 3 = 0 THEN 'Withdrawn' ELSE 'Deposited' END,
                               jsonb_build_object('amount', i))" >/dev/null

# --- phase 1: three everest-tail --apply runners of handler "balances"
APPLY_MARK='WITH e AS%'
STARTED=0
chaos tail balances 'lease on handler "balances" lost (save_handler_position: EV005: lease lost: '
projection_checks "$DB"

# --- phase 2: three runners of the Node example, handler "node-balances"
APPLY_MARK='INSERT INTO node_applied%'
STARTED=0
chaos node node-balances 'lease on handler "node-balances" lost (lease lost: '
is "node: every event applied exactly once" "$(q -d $DB -c "
  SELECT count(*) FROM everest.read_all_forward(0, 2147483647) e FULL JOIN node_applied a USING (position)
   WHERE e.position IS NULL OR a.position IS NULL")|$(q -d $DB -c "SELECT count(*) - count(DISTINCT position) FROM node_applied")" "0|0"

is "the appender's statements through the pooler all worked" "$(grep -c ERROR "$WORK/appender.err")" "0"
total=$(q -d $DB -c "SELECT count(*) FROM everest.read_all_forward(0, 2147483647)")
is "hundreds of events were appended through the pooler" "$([ "$total" -ge 500 ] && echo yes || echo "no ($total)")" "yes"
is "no subscriber met a prepared statement of another client" \
  "$(cat "$WORK"/t*.err "$WORK"/n*.err | grep -c 'prepared statement')" "0"

# --- the session lease (try_acquire_handler) through the pooler: an advisory lock of whichever
# server connection ran it, so both tails usually "hold" it; the saves' moved-checkpoint check
# (EV004) must still apply every event once.
for n in 1 2; do
  "$TAIL" --handler sessions --lease session --wake wait --poll-ms 200 --batch 5 --quiet \
    --apply "INSERT INTO session_applied SELECT ((\$1::jsonb)->>'position')::bigint FROM pg_sleep(0.005)" "$PGB" \
    >/dev/null 2>"$WORK/session-$n.err" &
  PIDS+=("$!")
  eval "session_${n}_pid=$!"
done
for _ in $(seq 1 100); do echo "SELECT everest.append_event('account-1', 'Deposited', '{\"amount\": 1}');"; sleep 0.02; done |
  psql -X -q -d "$PGB" >/dev/null 2>>"$WORK/appender.err"
total=$(q -d $DB -c "SELECT count(*) FROM everest.read_all_forward(0, 2147483647)")
last=$(q -d $DB -c "SELECT position FROM everest.read_all_backward(-1, 1)")
session_caught_up() { [ "$(pos sessions)" = "$last" ]; }
wait_for 30 session_caught_up
kill -TERM "$session_1_pid" "$session_2_pid"
wait "$session_1_pid" "$session_2_pid"
echo "# session leases through the pooler: $(cat "$WORK"/session-*.err | grep -c 'lease on handler "sessions" taken') of 2 tails took one;" \
  "$(cat "$WORK"/session-*.err | grep -c EV004) batches rolled back with EV004"
is "two session-lease tails through the pooler still apply every event exactly once (EV004)" "$(q -d $DB -c "
  SELECT count(*) FROM everest.read_all_forward(0, 2147483647) e FULL JOIN session_applied a USING (position)
   WHERE e.position IS NULL OR a.position IS NULL")|$(q -d $DB -c "SELECT count(*) - count(DISTINCT position) FROM session_applied")" "0|0"

# --- wait_for_position wakes subscribers through the pooler, long before their minute of polling
"$TAIL" --handler live --wake wait --poll-ms 60000 "$PGB" >"$WORK/live.out" 2>"$WORK/live.err" &
live=$!
PIDS+=("$live")
node "$EXAMPLE/subscriber.js" --handler node-live --wake wait --poll-ms 60000 --quiet \
  --apply "INSERT INTO node_applied (position) SELECT ((\$1::jsonb)->>'position')::bigint" "$PGB" \
  >/dev/null 2>"$WORK/node-live.err" &
node_live=$!
PIDS+=("$node_live")
wait_for 20 has_lines "$WORK/live.out" "$total"
node_caught_up() { [ "$(pos node-live)" = "$last" ]; }
wait_for 20 node_caught_up
applied_by_node() { q -d $DB -c "SELECT count(*) FROM node_applied"; }
node_before=$(applied_by_node)
waiting() {  # both wait in wait_for_position on a server connection
  [ "$(q -d postgres -c "SELECT count(*) FROM pg_stat_activity WHERE datname = '$DB' AND query LIKE '%wait_for_position%'
                           AND state = 'active'")" = 2 ]
}
wait_for 10 waiting
t0=$(date +%s%N)
q -d $DB -c "SELECT everest.append_event('account-1', 'Deposited', '{\"amount\": 1}')" >/dev/null
woken() { has_lines "$WORK/live.out" $((total + 1)) && [ "$(applied_by_node)" = $((node_before + 1)) ]; }
wait_for 10 woken
ms=$((($(date +%s%N) - t0) / 1000000))
is "an append wakes everest-tail --wake wait and the Node subscriber through the pooler ($ms ms)" \
  "$(lines "$WORK/live.out") $(($(applied_by_node) - node_before)) $([ $ms -lt 5000 ] && echo soon)" "$((total + 1)) 1 soon"
t0=$SECONDS
kill -TERM "$live" "$node_live"
wait "$live"; tail_status=$?
wait "$node_live"; node_status=$?
is "SIGTERM during wait_for_position: both exit 0, at once" \
  "$tail_status $node_status $([ $((SECONDS - t0)) -le 3 ] && echo soon)" "0 0 soon"
survived "subscribers stopped during wait_for_position"

if [ "$FAILURES" -gt 0 ]; then
  for f in "$WORK"/t*.err "$WORK"/n*.err "$WORK"/live.err "$WORK"/node-live.err "$WORK"/session-*.err "$WORK"/appender.err; do
    [ -s "$f" ] && { echo "# $(basename "$f"):"; tail -8 "$f" | sed 's/^/# /'; }
  done
  echo "# pgbouncer.log:"; tail -10 "$PGB_SOCKET_DIR/pgbouncer.log" | sed 's/^/# /'
fi
finish
