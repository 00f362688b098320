#!/usr/bin/env bash
# Consumer groups, type filters and poison events with the Node.js example subscriber
# (examples/node, docs/groups.md).
#  a. Three processes share a handler with --members 4 (lease time to live 2 s) while psql
#     appenders write to 300 streams, some of their transactions rolled back. The projection keeps
#     each stream's last applied version and its apply statement fails when an event's version is
#     not that + 1 (an event applied twice or out of order stops the subscriber), beside a log of
#     applied positions with no unique key. Mid-run one process is killed with SIGKILL and a
#     replacement started, then the group is resized 4 -> 2 from psql. At the end: no event missing
#     or applied twice, every stream at its last version, handler_status with 2 members caught up.
#  b. A handler with --types Rare (1% of the events) applies exactly the Rare events and its
#     checkpoint reaches the store's last position, although the last events are not Rare.
#  c. --max-attempts 3: an event whose apply fails is parked after 3 attempts with the error as
#     the reason, the others of its category are applied once; an event that crashes the process
#     is parked, by the processes that follow, once 3 attempts ended without completing.
set -u
ROOT=${ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
source "$ROOT/test/shell/lib.bash"
subscriber_suite groups_node
EXAMPLE="$ROOT/examples/node"

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "not ok - node groups (cannot run: node and npm are not installed)"
  exit 0
fi
if [ ! -d "$EXAMPLE/node_modules/pg" ]; then
  (cd "$EXAMPLE" && timeout 300 npm install --no-audit --no-fund) >"$WORK/npm.log" 2>&1 ||
    { sed 's/^/# /' "$WORK/npm.log"; echo "not ok - npm install in examples/node"; exit 1; }
fi
is "the example's dependencies are installed" "$(cd "$EXAMPLE" && node -e "require('pg'); require('./subscriber'); console.log('yes')")" "yes"

psql -X -q -d postgres -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" \
  -c "CREATE DATABASE $DB" >/dev/null || exit 1
q -d $DB >/dev/null <<'SQL' || { echo "not ok - setup"; exit 1; }
CREATE EXTENSION everest;
-- a: each stream's last applied version; the applied positions, with no key (a duplicate shows).
CREATE TABLE projection (stream text PRIMARY KEY, last_version bigint NOT NULL);
CREATE TABLE applied (position bigint NOT NULL);
-- Fails unless the event is its stream's next: version 0 inserts (a duplicate violates the key),
-- version v updates the row at v - 1 (re-checked on the latest row version under concurrency).
CREATE FUNCTION apply_event(e jsonb) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  s text := e->>'stream';
  v bigint := (e->>'version')::bigint;
BEGIN
  IF v = 0 THEN
    INSERT INTO projection (stream, last_version) VALUES (s, 0);
  ELSE
    UPDATE projection SET last_version = v WHERE stream = s AND last_version = v - 1;
    IF NOT FOUND THEN
      RAISE EXCEPTION 'stream % version % is not the next one (last applied: %)', s, v,
        (SELECT last_version FROM projection WHERE stream = s);
    END IF;
  END IF;
  INSERT INTO applied (position) VALUES ((e->>'position')::bigint);
  PERFORM pg_sleep(0.0005);   -- keeps the batches busy enough to be cut by a kill or a resize
END $$;
-- b
CREATE TABLE rare_applied (position bigint NOT NULL, type text NOT NULL);
-- c: tries counts every call (sequences do not roll back); a poison event raises.
CREATE SEQUENCE tries;
CREATE TABLE poison_applied (position bigint NOT NULL);
CREATE FUNCTION apply_poison(e jsonb) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  IF (e->'data'->>'poison')::boolean THEN
    PERFORM nextval('tries');
    RAISE EXCEPTION 'poison event % refused', e->>'position';
  END IF;
  INSERT INTO poison_applied (position) VALUES ((e->>'position')::bigint);
END $$;
SQL

APPEND_SQL="SELECT everest.append_event('acct-' || (1 + floor(random() * 300))::int,
                     CASE WHEN random() < 0.01 THEN 'Rare' ELSE 'Common' END, jsonb_build_object('n', i))
              FROM generate_series(1, 1 + floor(random() * 5)::int) i"
appender() {  # every fifth transaction rolls back
  local i=0
  while [ ! -e "$WORK/stop-appending" ] && [ ! -e "$WORK/stop" ]; do
    i=$((i + 1))
    if [ $((i % 5)) -eq 0 ]; then echo "BEGIN; $APPEND_SQL; ROLLBACK;"; else echo "$APPEND_SQL;"; fi
    sleep 0.01
  done | psql -X -q -v ON_ERROR_STOP=1 -d $DB >/dev/null 2>>"$WORK/appender.err"
}
start_member() {  # start_member NAME: a subscriber of the group "grp" (application_name NAME)
  PGAPPNAME=$1 node "$EXAMPLE/subscriber.js" --handler grp --members 4 --lease-ttl 2 --poll-ms 200 --batch 20 \
    --quiet --apply 'SELECT apply_event($1::jsonb)' "dbname=$DB" >>"$WORK/$1.out" 2>>"$WORK/$1.err" &
  PIDS+=("$!")
  eval "${1}_pid=$!"
}
# Members of "grp" with a live lease (whoever holds them), and those held by application $1.
leased() { q -d $DB -c "SELECT count(*) FROM everest.handler_status WHERE handler = 'grp' AND lease_expires_at IS NOT NULL"; }
leased_by() { q -d $DB -c "SELECT count(*) FROM everest.handler_status WHERE handler = 'grp' AND lease_holder_application = '$1'"; }
positions() { q -d $DB -c "SELECT string_agg(member || ':' || position, ' ' ORDER BY member) FROM everest.handler_status WHERE handler = 'grp'"; }
# Every member in the snapshot $1 (from positions) has moved past it, and the group has $2 members.
all_moved() {
  [ "$(q -d $DB -c "SELECT count(*) FROM everest.handler_status WHERE handler = 'grp'")" = "$2" ] || return 1
  local now m p
  now=" $(positions) "
  for mp in $1; do
    m=${mp%%:*}; p=${mp#*:}
    [[ "$now" =~ \ $m:([0-9]+)\  ]] || return 1
    [ "${BASH_REMATCH[1]}" -gt "$p" ] || return 1
  done
}
all_leased() { [ "$(leased)" = "$1" ]; }

# A backlog (with a few Rare events), then appenders, three members and the filtered handler.
q -d $DB -c "SELECT count(*) FROM generate_series(1, 600) i,
  LATERAL everest.append_event('acct-' || (1 + i % 300), CASE WHEN i % 97 = 0 THEN 'Rare' ELSE 'Common' END,
                               jsonb_build_object('n', i))" >/dev/null
appender & PIDS+=("$!"); appender1=$!
appender & PIDS+=("$!"); appender2=$!
start_member p1
start_member p2
start_member p3
node "$EXAMPLE/subscriber.js" --handler rare --types Rare --poll-ms 200 --batch 20 --quiet \
  --apply "INSERT INTO rare_applied SELECT ((\$1::jsonb)->>'position')::bigint, (\$1::jsonb)->>'type'" \
  "dbname=$DB" >"$WORK/rare.out" 2>"$WORK/rare.err" &
PIDS+=("$!"); rare_pid=$!

wait_for 30 all_moved "0:0 1:0 2:0 3:0" 4
wait_for 10 all_leased 4
is "three processes with --members 4 make a group of 4 whose members all have a lease and progress" \
  "$(leased) $(all_moved "0:0 1:0 2:0 3:0" 4 && echo moving)" "4 moving"
echo "# members held: p1 $(leased_by p1), p2 $(leased_by p2), p3 $(leased_by p3)"

# SIGKILL the process that holds the most members, mid-run; a replacement starts.
victim=p1
for p in p2 p3; do [ "$(leased_by $p)" -gt "$(leased_by $victim)" ] && victim=$p; done
sleep 2
before=$(positions)
kill -9 "$(eval echo "\$${victim}_pid")" 2>/dev/null
wait "$(eval echo "\$${victim}_pid")" 2>/dev/null
start_member p4
taken_over() { all_leased 4 && [ "$(leased_by $victim)" = 0 ] && all_moved "$before" 4; }
wait_for 30 taken_over
is "after kill -9 of $victim, the others and a replacement take its members over and all 4 go on" \
  "$(leased) $(leased_by $victim) $(all_moved "$before" 4 && echo moving)" "4 0 moving"

# Resize 4 -> 2 while it runs: every lease ends; the processes take members of the new size.
sleep 2
q -d $DB -c "SELECT everest.resize_handler('grp', 2)" >/dev/null
start=$(q -d $DB -c "SELECT min(position) FROM everest.handler_status WHERE handler = 'grp'")
resized() { all_leased 2 && all_moved "0:$start 1:$start" 2; }
wait_for 30 resized
is "after resize_handler('grp', 2) mid-run the processes run the 2 members of the new group" \
  "$(q -d $DB -c "SELECT count(*) || ' ' || max(members) FROM everest.handler_status WHERE handler = 'grp'") $(leased) $(resized && echo moving)" \
  "2 2 2 moving"
sleep 1
touch "$WORK/stop-appending"
wait "$appender1" "$appender2"
# The last event is not Rare, so the filtered handler has to move past what it does not take.
q -d $DB -c "SELECT everest.append_event('acct-1', 'Common')" >/dev/null
last=$(q -d $DB -c "SELECT max(position) FROM everest.read_all_forward(0, 2147483647)")
caught_up() { [ "$(q -d $DB -c "SELECT count(*) FILTER (WHERE position >= $last AND lag = 0) FROM everest.handler_status WHERE handler = 'grp'")" = 2 ]; }
wait_for 30 caught_up
is "handler_status ends with 2 members, both caught up (position = safe_position(), lag 0)" \
  "$(q -d $DB -c "SELECT count(*) || ' ' || count(*) FILTER (WHERE position >= $last AND lag = 0) FROM everest.handler_status WHERE handler = 'grp'")" "2 2"
is "no event was missed and none applied twice (missing|duplicates)" "$(q -d $DB -c "
  SELECT (SELECT count(*) FROM everest.read_all_forward(0, 2147483647) e FULL JOIN (SELECT DISTINCT position FROM applied) a
            USING (position) WHERE e.position IS NULL OR a.position IS NULL)
         || '|' || (SELECT count(*) - count(DISTINCT position) FROM applied)")" "0|0"
is "every stream's projection is at its last version" "$(q -d $DB -c "
  SELECT count(*) FROM (SELECT stream, max(version) AS v FROM everest.read_all_forward(0, 2147483647) GROUP BY stream) e
    FULL JOIN projection p USING (stream) WHERE e.v IS DISTINCT FROM p.last_version")" "0"
alive=0
for p in p1 p2 p3 p4; do [ "$p" != "$victim" ] && kill -0 "$(eval echo "\$${p}_pid")" 2>/dev/null && alive=$((alive + 1)); done
is "no subscriber of the group stopped on an apply error (3 still running)" "$alive" "3"
echo "# the test wrote $(q -d $DB -c "SELECT count(*) FROM everest.read_all_forward(0, 2147483647)") events" \
  "over $(q -d $DB -c "SELECT count(DISTINCT stream) FROM everest.read_all_forward(0, 2147483647)") streams;" \
  "$(cat "$WORK"/p*.err | grep -c ' lost (') leases lost, $(cat "$WORK"/p*.err | grep -c 'EV004') EV004"

# b. The filtered handler.
rare_done() { [ "$(q -d $DB -c "SELECT everest.handler_position('rare')")" = "$last" ]; }
wait_for 30 rare_done
is "--types Rare applied exactly the Rare events (Rare events|missing or extra|duplicates|other types)" "$(q -d $DB -c "
  SELECT (SELECT count(*) >= 10 FROM everest.read_all_forward(0, 2147483647) WHERE type = 'Rare')
         || '|' || (SELECT count(*) FROM (SELECT position FROM everest.read_all_forward(0, 2147483647) WHERE type = 'Rare') e
                      FULL JOIN (SELECT DISTINCT position FROM rare_applied) a USING (position)
                     WHERE e.position IS NULL OR a.position IS NULL)
         || '|' || (SELECT count(*) - count(DISTINCT position) FROM rare_applied)
         || '|' || (SELECT count(*) FROM rare_applied WHERE type <> 'Rare')")" "true|0|0|0"
is "... and its checkpoint reaches the store's last position (a Common event)" \
  "$(q -d $DB -c "SELECT everest.handler_position('rare') || ' ' || (SELECT type FROM everest.read_all_backward(-1, 1))")" "$last Common"

# Stopping: SIGTERM, status 0, every lease released.
stopped=""
for p in p1 p2 p3 p4; do
  [ "$p" = "$victim" ] && continue
  pid=$(eval echo "\$${p}_pid")
  kill -TERM "$pid" 2>/dev/null
  for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  wait "$pid"; stopped="$stopped $?"
done
is "SIGTERM stops the three with status 0 and they release every lease" "$stopped $(leased)" " 0 0 0 0"
kill -TERM "$rare_pid" 2>/dev/null; wait "$rare_pid"

# c. Poison: category poison, 30 events over 3 streams between as many of another category;
# the 13th fails to apply (the reader of $ce-poison saves up to the event before it, then parks it).
q -d $DB -c "SELECT count(*) FROM generate_series(1, 60) i,
  LATERAL everest.append_event(CASE WHEN i % 2 = 0 THEN 'filler-1' ELSE 'poison-' || (i % 3) END, 'Thing',
                               jsonb_build_object('poison', i = 25))" >/dev/null
poison=$(q -d $DB -c "SELECT position FROM everest.read_stream_forward('\$ce-poison', 0, 1000) WHERE (data->>'poison')::boolean")
timeout 60 node "$EXAMPLE/subscriber.js" --handler poison --source '$ce-poison' --max-attempts 3 --batch 10 --once --quiet \
  --lease-ttl 5 --apply 'SELECT apply_poison($1::jsonb)' "dbname=$DB" >"$WORK/poison.out" 2>"$WORK/poison.err"
is "--max-attempts 3 --once goes past a failing event and exits 0" "$?" "0"
is "... having parked it after 3 attempts, with the error as the reason (parked|attempts|reason)" \
  "$(q -d $DB -c "SELECT string_agg(position::text, ','), (SELECT last_value FROM tries), string_agg(reason, ',')
                  FROM everest.parked_events WHERE handler = 'poison'" -F'|')" "$poison|3|poison event $poison refused"
is "... and applied every other event of the category once (missing|duplicates|checkpoint at the last)" "$(q -d $DB -c "
  SELECT (SELECT count(*) FROM (SELECT position FROM everest.read_stream_forward('\$ce-poison', 0, 1000) WHERE position <> $poison) e
            FULL JOIN (SELECT DISTINCT position FROM poison_applied) a USING (position) WHERE e.position IS NULL OR a.position IS NULL)
         || '|' || (SELECT count(*) - count(DISTINCT position) FROM poison_applied)
         || '|' || (everest.handler_position('poison') = (SELECT max(position) FROM everest.read_stream_forward('\$ce-poison', 0, 1000)))")" \
  "0|0|true"

# An event that crashes the process (the library's apply exits): the counts survive the crashes
# (note_attempt), and the process after the third crash parks it without trying again.
cat >"$WORK/crash.js" <<'JS'
const fs = require('fs');
const { subscribe } = require(process.env.EXAMPLE + '/subscriber.js');
subscribe({
  connection: { database: process.env.DB }, handler: 'crash', source: '$ce-crash', batchSize: 10,
  once: true, maxAttempts: 3, leaseTtl: 1, pollMs: 100,
  apply: async (client, event) => {
    if (event.data.crash) { fs.appendFileSync(process.env.WORK + '/crashes', `${event.position}\n`); process.exit(7); }
    await client.query('INSERT INTO poison_applied (position) VALUES ($1)', [event.position]);
  },
}).done.then(() => process.exit(0), () => process.exit(1));
JS
export EXAMPLE DB WORK
q -d $DB -c "SELECT count(*) FROM generate_series(1, 5) i, LATERAL everest.append_event('crash-1', 'Thing')" >/dev/null
timeout 30 node "$WORK/crash.js" 2>>"$WORK/crash.err"
q -d $DB -c "SELECT count(*) FROM generate_series(1, 8) i,
  LATERAL everest.append_event('crash-' || (i % 2), 'Thing', jsonb_build_object('crash', i = 1))" >/dev/null
crash=$(q -d $DB -c "SELECT position FROM everest.read_stream_forward('\$ce-crash', 0, 1000) WHERE (data->>'crash')::boolean")
runs=""
for _ in $(seq 1 8); do
  timeout 30 node "$WORK/crash.js" 2>>"$WORK/crash.err"; status=$?
  runs="$runs $status"
  [ "$status" = 7 ] || break
done
is "an event that crashes the process: 3 runs crash on it, the fourth parks it and exits 0" "$runs" " 7 7 7 0"
is "... with the reason that the attempts did not complete (parked|reason|crashes at it)" \
  "$(q -d $DB -c "SELECT string_agg(position::text, ','), string_agg(reason, ',') FROM everest.parked_events WHERE handler = 'crash'" -F'|')|$(sort -u "$WORK/crashes" 2>/dev/null | tr '\n' ' ')$(lines "$WORK/crashes")" \
  "$crash|attempted 3 times without completing (crashed or timed out)|$crash 3"
is "... and every other event of the category is applied once (missing|duplicates)" "$(q -d $DB -c "
  SELECT (SELECT count(*) FROM (SELECT position FROM everest.read_stream_forward('\$ce-crash', 0, 1000) WHERE position <> $crash) e
            LEFT JOIN (SELECT DISTINCT position FROM poison_applied) a USING (position) WHERE a.position IS NULL)
         || '|' || (SELECT count(*) - count(DISTINCT position) FROM poison_applied)")" "0|0"

if [ "$FAILURES" -gt 0 ]; then
  for f in p1 p2 p3 p4 rare poison crash appender; do
    [ -s "$WORK/$f.err" ] && { echo "# $f.err:"; tail -12 "$WORK/$f.err" | sed 's/^/# /'; }
  done
fi
finish
