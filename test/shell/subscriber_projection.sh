#!/usr/bin/env bash
# everest-tail --apply as a projection (account balances over ~20 account streams) while a
# background loop appends deposits and withdrawals (some in transactions that roll back). The
# tail is killed with SIGKILL and restarted several times mid-stream (each restart waits for the
# killed one's lease to expire: 1 s). At the end the balances equal a recomputation from the
# events: nothing applied twice, nothing skipped.
set -u
ROOT=${ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
source "$ROOT/test/shell/lib.bash"
subscriber_suite sub_projection

need_tail "$WORK"

psql -X -q -d postgres -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" \
  -c "CREATE DATABASE $DB" >/dev/null || exit 1
q -d $DB >/dev/null <<'SQL' || { echo "not ok - setup"; exit 1; }
CREATE EXTENSION everest;
CREATE TABLE balances (stream text PRIMARY KEY, balance bigint NOT NULL, events bigint NOT NULL);
CREATE TABLE applied (position bigint NOT NULL);   -- no key: a duplicate must show, not fail
CREATE TABLE nap (seconds float8 NOT NULL);         -- slows the tail down while it is killed
INSERT INTO nap VALUES (0.008);
SQL

# One statement per event. The nap keeps the tail behind the appender while it is being killed,
# so that kills land inside its transactions.
APPLY="WITH e AS (SELECT \$1::jsonb AS e),
     logged AS (INSERT INTO applied (position) SELECT (e->>'position')::bigint FROM e)
INSERT INTO balances AS b (stream, balance, events)
SELECT e->>'stream',
       CASE e->>'type' WHEN 'Deposited' THEN 1 ELSE -1 END * (e->'data'->>'amount')::bigint, 1
  FROM e, (SELECT pg_sleep(seconds) FROM nap) AS nap
ON CONFLICT (stream) DO UPDATE SET balance = b.balance + excluded.balance, events = b.events + 1"

APPEND_SQL="SELECT everest.append_event('account-' || (1 + floor(random() * 20))::int,
                     CASE WHEN random() < 0.6 THEN 'Deposited' ELSE 'Withdrawn' END,
                     jsonb_build_object('amount', 1 + floor(random() * 100)::int))
              FROM generate_series(1, 1 + floor(random() * 4)::int)"
q -d $DB -c "SELECT count(*) FROM generate_series(1, 300) i,
  LATERAL everest.append_event('account-' || (1 + i % 20), CASE WHEN i % 3 = 0 THEN 'Withdrawn' ELSE 'Deposited' END,
                               jsonb_build_object('amount', i))" >/dev/null

# One psql session fed a transaction every ~20 ms (a new connection per append is too slow on
# a busy machine); every 7th transaction rolls back, leaving a gap in $all.
appender() {
  local i=0
  while [ ! -e "$WORK/stop" ]; do
    i=$((i + 1))
    if [ $((i % 7)) -eq 0 ]; then echo "BEGIN; $APPEND_SQL; ROLLBACK;"; else echo "$APPEND_SQL;"; fi
    sleep 0.02
  done | psql -X -q -d $DB >/dev/null 2>&1
}
appender &
APPENDER=$!
PIDS+=("$APPENDER")

pos() { q -d $DB -c "SELECT everest.handler_position('projection')"; }
progressed() { [ "$(pos)" -gt "$1" ]; }

resumes() { grep -c 'reading \$all after position' "$WORK/tail.err"; }
resumed() { [ "$(resumes)" -ge "$1" ]; }
kills=0 pending_kills=0 stalled=0
for round in 1 2 3 4 5 6 7 8 9; do
  "$TAIL" --handler projection --apply "$APPLY" --batch 20 --poll-ms 200 --lease-ttl 1 --quiet "dbname=$DB" \
    >>"$WORK/tail.out" 2>>"$WORK/tail.err" &
  tail_pid=$!
  PIDS+=("$tail_pid")
  # Once it has resumed from the checkpoint and committed a batch of its own, kill it at a
  # random moment.
  wait_for 15 resumed "$round"
  from=$(grep -oE 'reading \$all after position [0-9]+' "$WORK/tail.err" | tail -1 | grep -oE '[0-9]+$')
  wait_for 15 progressed "${from:-0}" || stalled=$((stalled + 1))
  sleep "0.$((RANDOM % 5 + 1))"
  behind=$(q -d $DB -c "SELECT everest.handler_position('projection') < everest.safe_position()")
  kill -9 "$tail_pid" 2>/dev/null && kills=$((kills + 1))
  wait "$tail_pid" 2>/dev/null
  [ "$behind" = t ] && pending_kills=$((pending_kills + 1))
done
touch "$WORK/stop"
wait "$APPENDER"

is "the tail made progress after every restart" "$stalled" "0"
is "the tail was killed with SIGKILL 9 times" "$kills" "9"
is "at least 5 kills landed with events still to apply" "$([ "$pending_kills" -ge 5 ] && echo yes || echo "no ($pending_kills)")" "yes"
is "every restart resumed from the stored checkpoint" "$(resumes)" "9"

# Catch up (no more naps) and stop.
q -d $DB -c "UPDATE nap SET seconds = 0"
timeout 40 "$TAIL" --handler projection --apply "$APPLY" --batch 200 --lease-ttl 1 --once --quiet "dbname=$DB" \
  >>"$WORK/tail.out" 2>>"$WORK/tail.err"
is "everest-tail --once catches up and exits 0" "$?" "0"

total=$(q -d $DB -c "SELECT count(*) FROM everest.read_all_forward(0, 2147483647)")
is "hundreds of events were appended during the kills" "$([ "$total" -ge 500 ] && echo yes || echo "no ($total)")" "yes"
is "the checkpoint is the last position" "$(pos)" \
  "$(q -d $DB -c "SELECT position FROM everest.read_all_backward(-1, 1)")"
projection_checks "$DB"
is "the balances equal a recomputation from each stream" "$(q -d $DB -c "
  SELECT count(*) FROM balances b,
    LATERAL (SELECT sum(CASE type WHEN 'Deposited' THEN 1 ELSE -1 END * (data->>'amount')::bigint) AS balance,
                    count(*) AS events
               FROM everest.read_stream_forward(b.stream, 0, 2147483647)) r
  WHERE r.balance IS DISTINCT FROM b.balance OR r.events IS DISTINCT FROM b.events")" "0"
is "the projection has the ~20 account streams" "$(q -d $DB -c "SELECT count(*) BETWEEN 15 AND 20 FROM balances")" "t"
if [ "$FAILURES" -gt 0 ]; then echo "# tail stderr:"; tail -20 "$WORK/tail.err" | sed 's/^/# /'; fi
finish
