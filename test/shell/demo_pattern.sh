#!/usr/bin/env bash
# The demo's projection (examples/sql/balances_projection.sql) follows the subscriber protocol
# exactly: run round after round while writers append, it applies every event once and its
# balances equal a recomputation from the events. (The demo of 0.3.0 read read_handler_events
# twice in one transaction and could checkpoint past events it never applied.)
set -u
source "$(dirname "$0")/lib.bash"
subscriber_suite demo_pattern
q -d postgres -c "CREATE DATABASE $DB" >/dev/null
q -d $DB -c "CREATE EXTENSION everest" -c "CREATE TABLE balances (account text PRIMARY KEY, balance numeric NOT NULL DEFAULT 0)" >/dev/null
writer() {  # 4 writers, each 150 transactions of one or two events on 20 accounts
  local w=$1
  for i in $(seq 1 150); do
    echo "SELECT everest.append_events('account-' || (random() * 19)::int,
            jsonb_build_array(jsonb_build_object('type', 'Deposited', 'data', jsonb_build_object('amount', $i)),
                              jsonb_build_object('type', CASE WHEN $i % 3 = 0 THEN 'Withdrawn' ELSE 'Deposited' END,
                                                 'data', jsonb_build_object('amount', $w))));
          SELECT pg_sleep(0.01);"
  done | psql -X -q -d $DB >/dev/null 2>>"$WORK/writer.err"
}
for w in 1 2 3 4; do writer $w & PIDS+=($!); done
rounds=0
while kill -0 "${PIDS[@]}" 2>/dev/null; do
  psql -X -q -d $DB -v ON_ERROR_STOP=1 -f "$ROOT/examples/sql/balances_projection.sql" >/dev/null 2>>"$WORK/projection.err"
  rounds=$((rounds + 1))
done
wait
for _ in $(seq 1 20); do   # drain
  psql -X -q -d $DB -v ON_ERROR_STOP=1 -f "$ROOT/examples/sql/balances_projection.sql" >/dev/null 2>>"$WORK/projection.err"
done
echo "# $rounds projection rounds ran while the writers appended"
is "the projection ran rounds while the writers appended" "$([ "$rounds" -ge 5 ] && echo yes)" "yes"
is "no projection round failed" "$(wc -l <"$WORK/projection.err" | tr -d ' ')" "0"
is "the checkpoint reached the last event" \
  "$(q -d $DB -c "SELECT everest.handler_position('balances') = (SELECT max(position) FROM everest.read_stream_forward('\$ce-account', 0, 2147483647))")" "t"
is "the balances equal a recomputation from the events" "$(q -d $DB -c "
  SELECT count(*) FROM (
    SELECT stream AS account, sum(CASE type WHEN 'Deposited' THEN 1 ELSE -1 END * (data->>'amount')::numeric) AS balance
      FROM everest.read_stream_forward('\$ce-account', 0, 2147483647) GROUP BY stream) r
  FULL JOIN balances b USING (account) WHERE r.balance IS DISTINCT FROM b.balance")" "0"
finish
