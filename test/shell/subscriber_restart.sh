#!/usr/bin/env bash
# everest-tail --apply feeds a projection while the cluster restarts under it (a fast restart,
# then an immediate stop and start: crash recovery), with events appended before, between and
# after. The same tail process reconnects each time, re-takes its lease, and the projection
# ends equal to a recomputation from the events: nothing missed, nothing applied twice.
set -u
ROOT=${ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
source "$ROOT/test/cluster.sh"
source "$ROOT/test/shell/lib.bash"
subscriber_suite sub_restart

need_tail "$WORK"

psql -X -q -d postgres -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" \
  -c "CREATE DATABASE $DB" >/dev/null || exit 1
q -d $DB >/dev/null <<'SQL' || { echo "not ok - setup"; exit 1; }
CREATE EXTENSION everest;
CREATE TABLE balances (stream text PRIMARY KEY, balance bigint NOT NULL, events bigint NOT NULL);
CREATE TABLE applied (position bigint NOT NULL);   -- no key: a duplicate must show, not fail
SQL
APPLY="WITH e AS (SELECT \$1::jsonb AS e),
     logged AS (INSERT INTO applied (position) SELECT (e->>'position')::bigint FROM e)
INSERT INTO balances AS b (stream, balance, events)
SELECT e->>'stream', CASE e->>'type' WHEN 'Deposited' THEN 1 ELSE -1 END * (e->'data'->>'amount')::bigint, 1
  FROM e
ON CONFLICT (stream) DO UPDATE SET balance = b.balance + excluded.balance, events = b.events + 1"
APPEND_SQL="SELECT everest.append_event('account-' || (1 + floor(random() * 20))::int,
                     CASE WHEN random() < 0.6 THEN 'Deposited' ELSE 'Withdrawn' END,
                     jsonb_build_object('amount', 1 + floor(random() * 100)::int))
              FROM generate_series(1, 1 + floor(random() * 4)::int)"

# Appends in one session at a time; a session that the restart ends is replaced by a new one
# (the appends it had in flight roll back or commit, either way the recomputation counts what
# was committed).
appender() {
  while [ ! -e "$WORK/stop" ]; do
    while [ ! -e "$WORK/stop" ]; do echo "$APPEND_SQL;"; sleep 0.02; done |
      psql -X -q -v ON_ERROR_STOP=1 -d $DB >/dev/null 2>&1
    sleep 0.1
  done
}
events() { q -d $DB -c "SELECT count(*) FROM everest.read_all_forward(0, 2147483647)" 2>/dev/null || echo 0; }
more_events_than() { [ "$(events)" -gt "$1" ]; }
pos() { q -d $DB -c "SELECT everest.handler_position('restart')" 2>/dev/null || echo 0; }
progressed() { [ "$(pos)" -gt "$1" ]; }
up() { psql -X -q -d $DB -c "SELECT 1" >/dev/null 2>&1; }

q -d $DB -c "$APPEND_SQL" -c "$APPEND_SQL" >/dev/null
"$TAIL" --handler restart --apply "$APPLY" --batch 50 --poll-ms 300 --quiet "dbname=$DB" \
  >"$WORK/tail.out" 2>"$WORK/tail.err" &
tail_pid=$!
PIDS+=("$tail_pid")
appender &
PIDS+=("$!")
appender_pid=$!

wait_for 20 progressed 0
is "the tail applies events before the restarts" "$(progressed 0 && echo yes)" "yes"
reconnects() { grep -c 'reconnected to database' "$WORK/tail.err"; }
reconnected() { [ "$(reconnects)" -ge "$1" ]; }
restarts=0
for mode in fast immediate; do
  n=$(events)
  wait_for 20 more_events_than $((n + 20))
  if [ $mode = fast ]; then cluster_restart main; else cluster_restart main immediate; fi
  is "the cluster restarts ($mode)" "$?" "0"
  restarts=$((restarts + 1))
  wait_for 30 up
  wait_for 30 reconnected $restarts
  before=$(pos)
  n=$(events)
  wait_for 20 more_events_than $((n + 20))
  wait_for 20 progressed "$before"
  is "the tail applies events again after the $mode restart" "$(progressed "$before" && echo yes)" "yes"
done
touch "$WORK/stop"
wait "$appender_pid"

last=$(q -d $DB -c "SELECT position FROM everest.read_all_backward(-1, 1)")
caught_up() { [ "$(pos)" = "$last" ]; }
wait_for 30 caught_up
is "the same tail process catches up with the last event" "$(pos)" "$last"
is "the tail is still running" "$(kill -0 "$tail_pid" 2>/dev/null && echo yes)" "yes"
is "it reconnected after each restart" \
  "$([ "$(grep -c 'reconnected to database' "$WORK/tail.err")" -ge 2 ] && echo yes || echo no)" "yes"
projection_checks "$DB"

kill -TERM "$tail_pid"
stopped=none
for _ in $(seq 1 50); do kill -0 "$tail_pid" 2>/dev/null || { wait "$tail_pid"; stopped=$?; break; }; sleep 0.1; done
is "the tail exits 0 on SIGTERM" "$stopped" "0"
if [ "$FAILURES" -gt 0 ]; then echo "# tail stderr:"; tail -20 "$WORK/tail.err" | sed 's/^/# /'; fi
finish
