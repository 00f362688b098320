#!/usr/bin/env bash
# The subscribers reading on a hot standby (DESIGN.md sections 9 and 10): everest-tail and the
# Node example with --read-from STANDBY read the events there (read_handler_events(..., after =>
# the checkpoint read on the primary)) and wake with wait_for_position there, while leases,
# --apply and the checkpoint saves (with expected_position) go to the primary.
#   1. While four psql writers append on the primary (some transactions roll back, some are held
#      open so that positions commit out of order) and the standby is restarted under them, an
#      everest-tail --apply and a Node subscriber (one handler each, table leases) apply every
#      event exactly once into tables without a unique key, and their checkpoints end at the last
#      position.
#   2. The reads really happen on the standby: with its replay paused, both checkpoints stop
#      while the primary's safe_position() moves on, without an error; after
#      pg_wal_replay_resume() they catch up, nothing missed.
#   3. Exactly once without a lease, read elsewhere: two everest-tail --read-from --lease session
#      and a Node subscriber likewise, on one handler, through PgBouncer in transaction mode (so
#      that all "hold" the session lease: nothing fences them), race for the same batches; only
#      the save's expected_position (EV004) keeps each event applied once.
set -u
ROOT=${ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
source "$ROOT/test/cluster.sh"
source "$ROOT/test/shell/lib.bash"
source "$ROOT/test/shell/topology.bash"
subscriber_suite sub_standby
topology_trap
EXAMPLE="$ROOT/examples/node"
PRIMARY=substandby_primary
STANDBY=substandby_replica
WRITERS=4
TXS=80   # transactions per writer

command -v node >/dev/null || { echo "not ok - node is installed"; exit 1; }
command -v pgbouncer >/dev/null || { echo "not ok - pgbouncer is installed (apt-get install pgbouncer)"; exit 1; }
[ -d "$EXAMPLE/node_modules/pg" ] || (cd "$EXAMPLE" && timeout 300 npm install --no-audit --no-fund) >"$WORK/npm.log" 2>&1 ||
  { sed 's/^/# /' "$WORK/npm.log"; echo "not ok - npm install in examples/node"; exit 1; }
need_tail "$WORK"

topology_primary_start $PRIMARY >"$WORK/primary.log" 2>&1 || { cat "$WORK/primary.log"; echo "not ok - a primary starts"; exit 1; }
cluster_use $PRIMARY   # psql, q and subscriber_suite's cleanup talk to the primary from here on
q -d postgres -c "CREATE DATABASE $DB" >/dev/null || { echo "not ok - setup"; exit 1; }
q -d $DB >/dev/null <<'SQL' || { echo "not ok - setup"; exit 1; }
CREATE EXTENSION everest;
CREATE TABLE applied (position bigint NOT NULL);        -- no key: a duplicate must show, not fail
CREATE TABLE node_applied (position bigint NOT NULL);
CREATE TABLE race_applied (position bigint NOT NULL);
SELECT count(*) FROM generate_series(1, 40) i, LATERAL everest.append_event('account-' || i % 7, 'Opened');
SQL
standby_start $STANDBY $PRIMARY >"$WORK/standby.log" 2>&1 || { cat "$WORK/standby.log"; echo "not ok - a hot standby starts"; exit 1; }
PRI="$(topo_conninfo $PRIMARY $DB)"
SB="$(topo_conninfo $STANDBY $DB)"
sb() { topo_psql $STANDBY -d $DB "$@"; }
is "the standby is a hot standby in recovery" "$(sb -c "SELECT pg_is_in_recovery()")" "t"

"$TAIL" --handler h --read-from >/dev/null 2>&1; is "everest-tail: --read-from without a value is a usage error (status 2)" "$?" "2"
"$TAIL" --help | grep -q -- '--read-from READER_CONNINFO'; is "everest-tail --help shows --read-from" "$?" "0"
node "$EXAMPLE/subscriber.js" --help | grep -q -- '--read-from READER_CONNECTION'; is "subscriber.js --help shows --read-from" "$?" "0"

pos() { q -d $DB -c "SELECT everest.handler_position('$1')"; }
last_position() { q -d $DB -c "SELECT coalesce(max(position), 0) FROM everest.read_all_forward(0, 2147483647)"; }
# exactly_once TABLE: "missing|duplicates" of TABLE against every event on the primary.
exactly_once() {
  echo "$(q -d $DB -c "SELECT count(*) FROM everest.read_all_forward(0, 2147483647) e FULL JOIN $1 a USING (position)
                        WHERE e.position IS NULL OR a.position IS NULL")|$(q -d $DB -c "SELECT count(*) - count(DISTINCT position) FROM $1")"
}

# --- 1. an everest-tail and a Node subscriber read on the standby while writers append
writer() {  # writer N: TXS transactions in one session on the primary
  local i r sql
  for ((i = 0; i < TXS; i++)); do
    r=$((RANDOM % 10))
    sql="SELECT everest.append_event(s, 'E', jsonb_build_object('w', $1, 'i', $i))
           FROM (SELECT 'account-' || (1 + floor(random() * 10))::int AS s) s, generate_series(1, 1 + floor(random() * 3)::int)"
    if [ $r -lt 5 ]; then echo "$sql;"
    elif [ $r -lt 8 ]; then echo "BEGIN; $sql; SELECT pg_sleep(random() * 0.15); COMMIT;"   # held open: commits out of order
    else echo "BEGIN; $sql; SELECT pg_sleep(random() * 0.05); ROLLBACK;"; fi
  done | psql -X -q -d $DB >/dev/null 2>>"$WORK/writer.err"
}
"$TAIL" --handler tail-h --apply "INSERT INTO applied (position) SELECT ((\$1::jsonb)->>'position')::bigint" \
  --batch 20 --poll-ms 500 --lease-ttl 5 --quiet --read-from "$SB" "$PRI" >/dev/null 2>"$WORK/tail.err" &
tail_pid=$!
PIDS+=("$tail_pid")
node "$EXAMPLE/subscriber.js" --handler node-h --apply "INSERT INTO node_applied (position) SELECT ((\$1::jsonb)->>'position')::bigint" \
  --batch 25 --poll-ms 500 --lease-ttl 5 --quiet --read-from "$SB" "$PRI" >/dev/null 2>"$WORK/node.err" &
node_pid=$!
PIDS+=("$node_pid")
writer_pids=()
for w in $(seq 1 $WRITERS); do writer "$w" & writer_pids+=("$!"); PIDS+=("$!"); done
progressed() { [ "$(pos "$1")" -gt "$2" ]; }
wait_for 20 progressed tail-h 0
wait_for 20 progressed node-h 0
is "both subscribers started applying" "$(progressed tail-h 0 && progressed node-h 0 && echo yes)" "yes"
is "everest-tail reads on the standby (its connection is there)" \
  "$(sb -c "SELECT count(*) > 0 FROM pg_stat_activity WHERE application_name = 'everest-tail' AND datname = '$DB'")" "t"
is "with the default --wake listen, everest-tail says once that it waits on the reader" \
  "$(grep -c 'waking with wait_for_position on the reader' "$WORK/tail.err")" "1"

# The standby goes away and comes back under them: the lost reader is a lost connection.
sleep 1
topology_stop $STANDBY fast
sleep 0.5
topology_start_again $STANDBY || echo "# the standby did not start again"
wait_for 20 grep -q 'reconnected to database' "$WORK/tail.err"
wait_for 20 grep -q 'reconnected$' "$WORK/node.err"
wait "${writer_pids[@]}"
is "after the standby restarted, both reconnected" \
  "$(grep -q 'reconnected to database' "$WORK/tail.err" && echo yes) $(grep -q 'reconnected$' "$WORK/node.err" && echo yes)" "yes yes"
last=$(last_position)
caught_up() { [ "$(pos tail-h)" = "$1" ] && [ "$(pos node-h)" = "$1" ]; }
wait_for 30 caught_up "$last"
is "... and both checkpoints end at the last position" "$(pos tail-h) $(pos node-h)" "$last $last"
is "the writers' transactions all worked" "$(grep -c ERROR "$WORK/writer.err")" "0"
total=$(q -d $DB -c "SELECT count(*) FROM everest.read_all_forward(0, 2147483647)")
is "the writers appended hundreds of events, with gaps (rolled back)" \
  "$([ "$total" -ge 300 ] && [ "$last" -gt "$total" ] && echo yes || echo "no ($total events, last $last)")" "yes"
is "everest-tail applied every event exactly once (missing|duplicates)" "$(exactly_once applied)" "0|0"
is "the Node subscriber applied every event exactly once (missing|duplicates)" "$(exactly_once node_applied)" "0|0"

# --- 2. paused replay: the checkpoints stop while the primary moves on, then catch up
tail_log=$(lines "$WORK/tail.err"); node_log=$(lines "$WORK/node.err")
sb -c "SELECT pg_wal_replay_pause()" >/dev/null
paused() { [ "$(sb -c "SELECT pg_get_wal_replay_pause_state()")" = paused ]; }
wait_for 10 paused
cp=$last
q -d $DB -c "SELECT count(*) FROM generate_series(1, 30) i, LATERAL everest.append_event('account-' || i % 5, 'Paused')" >/dev/null
new_last=$(last_position)
primary_moved() { [ "$(q -d $DB -c "SELECT everest.safe_position()")" -ge "$new_last" ]; }
wait_for 10 primary_moved
# Both wait in wait_for_position on the standby (where else could they wait?).
waiting_on_standby() {
  [ "$(sb -c "SELECT count(*) FROM pg_stat_activity WHERE datname = '$DB' AND state = 'active'
                AND query LIKE '%wait_for_position%' AND pid <> pg_backend_pid()")" -ge 2 ]
}
wait_for 10 waiting_on_standby
is "with replay paused, both subscribers wait in wait_for_position on the standby" "$(waiting_on_standby && echo yes)" "yes"
sleep 1.5   # several of their 500 ms waits
is "... and their checkpoints stay while the primary's safe_position() moved on to the new events" \
  "$(pos tail-h) $(pos node-h) $(primary_moved && echo moved)" "$cp $cp moved"
is "... without an error or a reconnect (alive, nothing logged)" \
  "$(kill -0 "$tail_pid" "$node_pid" && echo alive) $(($(lines "$WORK/tail.err") - tail_log)) $(($(lines "$WORK/node.err") - node_log))" "alive 0 0"
# A checkpoint ahead of what the paused standby has: an empty read, not an error.
q -d $DB -c "SELECT everest.save_handler_position('ahead', $new_last)" >/dev/null
timeout 20 "$TAIL" --handler ahead --once --read-from "$SB" "$PRI" >"$WORK/ahead.out" 2>"$WORK/ahead.err"
tail_status=$?
timeout 20 node "$EXAMPLE/subscriber.js" --handler ahead --once --read-from "$SB" "$PRI" >>"$WORK/ahead.out" 2>>"$WORK/ahead.err"
is "a checkpoint ahead of the paused standby: --once reads nothing and exits 0 (everest-tail, Node)" \
  "$tail_status $? $(lines "$WORK/ahead.out") $(pos ahead)" "0 0 0 $new_last"
sb -c "SELECT pg_wal_replay_resume()" >/dev/null
wait_for 30 caught_up "$new_last"
is "after pg_wal_replay_resume() both catch up with the primary" "$(pos tail-h) $(pos node-h)" "$new_last $new_last"
is "... everest-tail applied every event exactly once" "$(exactly_once applied)" "0|0"
is "... the Node subscriber applied every event exactly once" "$(exactly_once node_applied)" "0|0"
kill -TERM "$tail_pid" "$node_pid"
wait "$tail_pid"; tail_status=$?
wait "$node_pid"; node_status=$?
is "SIGTERM stops both with status 0" "$tail_status $node_status" "0 0"

# --- 3. two everest-tail --read-from with the session lease through PgBouncer: nothing fences
# them, only the save's expected_position.
PGB_POOL_SIZE=4 pgbouncer_start substandby_pgb $PRIMARY transaction || { echo "not ok - pgbouncer starts"; exit 1; }
PGB="host=$PGB_HOST port=$PGB_PORT dbname=$DB"
start_racer() {  # start_racer NAME
  "$TAIL" --handler race --lease session --batch 50 --poll-ms 200 --quiet \
    --apply "INSERT INTO race_applied (position) SELECT ((\$1::jsonb)->>'position')::bigint FROM pg_sleep(0.002)" \
    --read-from "$SB" "$PGB" >/dev/null 2>"$WORK/$1.err" &
  PIDS+=("$!")
  eval "${1}_pid=$!"
}
reading() { grep -q 'reading \$all after position' "$WORK/$1.err"; }
start_racer race1
wait_for 20 reading race1
start_racer race2
wait_for 20 reading race2
node "$EXAMPLE/subscriber.js" --handler race --lease session --batch 50 --poll-ms 200 --quiet \
  --apply "INSERT INTO race_applied (position) SELECT ((\$1::jsonb)->>'position')::bigint FROM pg_sleep(0.002)" \
  --read-from "$SB" "$PGB" >/dev/null 2>"$WORK/race3.err" &
race3_pid=$!
PIDS+=("$race3_pid")
wait_for 20 reading race3
is "two tails and a Node subscriber run the handler: the session lease through the pooler fences nothing" \
  "$(reading race1 && reading race2 && reading race3 && echo all)" "all"
race_writer() {  # autocommit appends on the primary, one to three events each
  local i
  for ((i = 0; i < 120; i++)); do
    echo "SELECT everest.append_event('order-' || (1 + floor(random() * 5))::int, 'R') FROM generate_series(1, 1 + floor(random() * 3)::int);"
    echo "SELECT pg_sleep(0.02);"
  done | psql -X -q -d $DB >/dev/null 2>>"$WORK/writer.err"
}
race_pids=()
for w in 1 2; do race_writer & race_pids+=("$!"); PIDS+=("$!"); done
wait "${race_pids[@]}"
last=$(last_position)
race_done() { [ "$(pos race)" = "$last" ]; }
wait_for 30 race_done
is "the racers' checkpoint ends at the last position" "$(pos race)" "$last"
kill -TERM "$race1_pid" "$race2_pid" "$race3_pid"
wait "$race1_pid"; s1=$?
wait "$race2_pid"; s2=$?
wait "$race3_pid"; s3=$?
is "... and they stop with status 0" "$s1 $s2 $s3" "0 0 0"
moved() { grep -c 'moved by another process (EV004)' "$WORK/$1.err"; }
echo "# racing subscribers: $(moved race1), $(moved race2) and $(moved race3) (Node) batches rolled back with EV004"
is "the racers raced for the same batches (saves of the tails and of the Node subscriber failed with EV004)" \
  "$([ $(($(moved race1) + $(moved race2))) -ge 1 ] && echo tails) $([ "$(moved race3)" -ge 1 ] && echo node)" "tails node"
is "three unfenced subscribers reading on the standby applied every event exactly once (missing|duplicates)" \
  "$(exactly_once race_applied)" "0|0"

if [ "$FAILURES" -gt 0 ]; then
  for f in writer tail node ahead race1 race2 race3; do [ -s "$WORK/$f.err" ] && { echo "# $f.err:"; tail -8 "$WORK/$f.err" | sed 's/^/# /'; }; done
  echo "# standby log:"; tail -10 "$(cluster_dir $STANDBY)/server.log" | sed 's/^/# /'
fi
finish
