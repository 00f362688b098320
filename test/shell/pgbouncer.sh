#!/usr/bin/env bash
# The subscribers through PgBouncer in transaction mode (Debian's pgbouncer, default_pool_size 4;
# DESIGN.md section 9): no named prepared statement or session state may outlive a transaction,
# the lease must hold across server connections (acquire_lease, not the session lease), and
# waking must not depend on LISTEN (wait_for_position). While a psql session appends through the
# pooler (every 7th transaction rolls back), two everest-tail --apply processes of one handler
# feed a balances projection (the lease holder is killed with SIGKILL halfway) and the Node
# example feeds another: each applies every event exactly once. everest-tail runs twice in a row
# through the pooler; two tails with the old session lease both run, and the saves' checkpoint
# check keeps them exactly once; wait_for_position wakes an everest-tail and a Node subscriber
# whose polling interval is a minute.
set -u
ROOT=${ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
source "$ROOT/test/cluster.sh"
source "$ROOT/test/shell/lib.bash"
source "$ROOT/test/shell/topology.bash"
subscriber_suite pgbouncer
topology_trap
EXAMPLE="$ROOT/examples/node"

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
PGB_POOL_SIZE=4 pgbouncer_start pgbouncer_tx "" transaction || { echo "not ok - pgbouncer starts"; exit 1; }
PGB="host=$PGB_HOST port=$PGB_PORT dbname=$DB"
is "pgbouncer answers, in transaction mode" \
  "$(psql -X -q -t -A -d "host=$PGB_HOST port=$PGB_PORT dbname=pgbouncer user=postgres" -c "SHOW CONFIG" 2>&1 |
     grep -E '^pool_mode\|' | cut -d'|' -f2)" "transaction"

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
APPEND_SQL="SELECT everest.append_event('account-' || (1 + floor(random() * 20))::int,
                     CASE WHEN random() < 0.6 THEN 'Deposited' ELSE 'Withdrawn' END,
                     jsonb_build_object('amount', 1 + floor(random() * 100)::int))
              FROM generate_series(1, 1 + floor(random() * 4)::int)"
appender() {  # one psql session through the pooler
  local i=0
  while [ ! -e "$WORK/stop-appending" ]; do
    i=$((i + 1))
    if [ $((i % 7)) -eq 0 ]; then echo "BEGIN; $APPEND_SQL; ROLLBACK;"; else echo "$APPEND_SQL;"; fi
    sleep 0.03
  done | psql -X -q -d "$PGB" >/dev/null 2>"$WORK/appender.err"
}
start_tail() {  # start_tail NAME
  "$TAIL" --handler balances --apply "$APPLY" --batch 20 --wake wait --poll-ms 500 --lease-ttl 2 --quiet "$PGB" \
    >/dev/null 2>"$WORK/$1.err" &
  PIDS+=("$!")
  eval "${1}_pid=$!"
}
pos() { q -d $DB -c "SELECT everest.handler_position('$1')"; }
progressed() { [ "$(pos "$1")" -gt "$2" ]; }

q -d $DB -c "SELECT count(*) FROM generate_series(1, 100) i,
  LATERAL everest.append_event('account-' || (1 + i % 20), CASE WHEN i % 3 = 0 THEN 'Withdrawn' ELSE 'Deposited' END,
                               jsonb_build_object('amount', i))" >/dev/null
appender &
appender_pid=$!
PIDS+=("$appender_pid")
start_tail a
start_tail b
node "$EXAMPLE/subscriber.js" --handler node-balances --wake wait --poll-ms 500 --lease-ttl 2 --batch 25 --quiet \
  --apply "INSERT INTO node_applied (position) SELECT ((\$1::jsonb)->>'position')::bigint" "$PGB" \
  >/dev/null 2>"$WORK/node.err" &
node_pid=$!
PIDS+=("$node_pid")
wait_for 20 progressed balances 0
wait_for 20 progressed node-balances 0
both_started() { grep -q 'reading \$all' "$WORK/a.err" && grep -q 'reading \$all' "$WORK/b.err" ||
                 { grep -q 'waiting for the lease' "$WORK/a.err" || grep -q 'waiting for the lease' "$WORK/b.err"; }; }
wait_for 20 both_started
holders=$(grep -l 'lease on handler "balances" taken' "$WORK/a.err" "$WORK/b.err" | wc -l)
is "through the pooler, one of the two tails holds the lease and the other waits" \
  "$holders $(cat "$WORK/a.err" "$WORK/b.err" | grep -c 'waiting for the lease')" "1 1"
sleep 3
if grep -q 'lease on handler "balances" taken' "$WORK/a.err"; then holder=a; other=b; else holder=b; other=a; fi
before=$(pos balances)
holder_pid=$(eval echo "\$${holder}_pid")
kill -9 "$holder_pid"
wait "$holder_pid" 2>/dev/null
wait_for 20 grep -q 'lease on handler "balances" taken' "$WORK/$other.err"
wait_for 20 progressed balances "$before"
is "after kill -9 of the holder, the other tail takes the lease over and goes on" \
  "$(grep -c 'lease on handler "balances" taken' "$WORK/$other.err") $(progressed balances "$before" && echo moved)" "1 moved"
sleep 3
touch "$WORK/stop-appending"
wait "$appender_pid"
is "the appender's statements through the pooler all worked" "$(grep -c ERROR "$WORK/appender.err")" "0"

last=$(q -d $DB -c "SELECT position FROM everest.read_all_backward(-1, 1)")
caught_up() { [ "$(pos balances)" = "$last" ] && [ "$(pos node-balances)" = "$last" ]; }
wait_for 30 caught_up
is "the tails and the Node subscriber catch up with the last event" "$(pos balances) $(pos node-balances)" "$last $last"
total=$(q -d $DB -c "SELECT count(*) FROM everest.read_all_forward(0, 2147483647)")
is "hundreds of events were appended through the pooler" "$([ "$total" -ge 300 ] && echo yes || echo "no ($total)")" "yes"
projection_checks "$DB"
is "the Node subscriber through the pooler applied every event exactly once" "$(q -d $DB -c "
  SELECT count(*) FROM everest.read_all_forward(0, 2147483647) e FULL JOIN node_applied a USING (position)
   WHERE e.position IS NULL OR a.position IS NULL")|$(q -d $DB -c "SELECT count(*) - count(DISTINCT position) FROM node_applied")" "0|0"
is "no subscriber met a prepared statement of another client" \
  "$(cat "$WORK"/a.err "$WORK"/b.err "$WORK"/node.err | grep -c 'prepared statement')" "0"
kill -TERM "$(eval echo "\$${other}_pid")" "$node_pid"
wait "$(eval echo "\$${other}_pid")"; tail_status=$?
wait "$node_pid"; node_status=$?
is "SIGTERM stops the tail and the Node subscriber with status 0" "$tail_status $node_status" "0 0"

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

if [ "$FAILURES" -gt 0 ]; then
  for f in a b node live node-live appender; do [ -s "$WORK/$f.err" ] && { echo "# $f.err:"; tail -8 "$WORK/$f.err" | sed 's/^/# /'; }; done
  echo "# pgbouncer.log:"; tail -10 "$PGB_SOCKET_DIR/pgbouncer.log" | sed 's/^/# /'
fi
finish
