#!/usr/bin/env bash
# everest-tail's command line: JSON output, --source filters, --once, --from-start, --apply and
# its errors (fatal ones stop it with status 1 and apply nothing; transient ones are retried),
# EV004 from a checkpoint moved by someone else, notifications, --wake wait (wait_for_position),
# the lease released on exit, SIGTERM and usage errors.
set -u
ROOT=${ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
source "$ROOT/test/shell/lib.bash"
subscriber_suite sub_cli
# tail_once HANDLER [OPTIONS...]: runs everest-tail --once (20 s at most); stdout in
# $WORK/out, stderr in $WORK/err; prints the exit status.
tail_once() {
  local h=$1; shift
  timeout 20 "$TAIL" --handler "$h" --once --poll-ms 100 "$@" "dbname=$DB" >"$WORK/out" 2>"$WORK/err"
  echo $?
}
# sleeping QUERY: another session is running QUERY.
sleeping() {
  [ "$(q -d $DB -c "SELECT count(*) FROM pg_stat_activity WHERE query = 'SELECT $1' AND pid <> pg_backend_pid()")" = 1 ]
}
field() { grep -oE "\"$1\":(\"[^\"]*\"|[0-9]+)" "$WORK/out" | cut -d: -f2- | tr -d '"' | paste -sd, -; }

need_tail "$WORK"

psql -X -q -d postgres -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" \
  -c "CREATE DATABASE $DB" >/dev/null || exit 1
q -d $DB >/dev/null <<'SQL' || { echo "not ok - setup"; exit 1; }
CREATE EXTENSION everest;
CREATE TABLE seen (event jsonb);
CREATE TABLE ticks (n int);
CREATE TABLE locked (id int PRIMARY KEY);
INSERT INTO locked VALUES (1);
SELECT everest.append_event('order-1', 'Placed', '{"total": 10}');
SELECT everest.append_event('user-1', 'Joined', '"a string"', '{"by": "admin"}');
SELECT everest.append_event('order-2', E'Odd "type"\\ \n\t\u0001 ✓', '[1, 2.5, null, true, {"k": "\\u00e9\\n"}]');
SELECT everest.append_event('order-1', 'Paid', 'null');
SQL

# --- usage
"$TAIL" >/dev/null 2>&1; is "no --handler is a usage error (status 2)" "$?" "2"
"$TAIL" --handler h --batch 0 >/dev/null 2>&1; is "--batch 0 is a usage error" "$?" "2"
"$TAIL" --handler h --bogus >/dev/null 2>&1; is "an unknown option is a usage error" "$?" "2"
"$TAIL" --help | grep -q '^usage: everest-tail'; is "--help prints the usage" "$?" "0"
"$TAIL" --handler h --wake sometimes >/dev/null 2>&1; is "--wake other than listen or wait is a usage error" "$?" "2"
"$TAIL" --handler h --lease-ttl 0 >/dev/null 2>&1; is "--lease-ttl 0 is a usage error" "$?" "2"

# --- output
is "--once exits 0 when caught up" "$(tail_once all)" "0"
is "every event is printed, in position order" "$(field position)" "1,2,3,4"
is "the output is valid JSON, equal to the stored events" "$(q -d $DB <<SQL
CREATE TEMP TABLE printed (line text);
\\copy printed FROM '$WORK/out' WITH (FORMAT csv, DELIMITER E'\x01', QUOTE E'\x02')
SELECT count(*) FILTER (WHERE e.position IS NULL OR p.j IS NULL
                          OR p.j IS DISTINCT FROM jsonb_build_object('stream', e.stream, 'version', e.version,
                               'position', e.position, 'id', e.id, 'type', e.type, 'data', e.data,
                               'metadata', e.metadata, 'created_at', p.j->'created_at')
                          OR (p.j->>'created_at')::timestamptz <> e.created_at)
  FROM (SELECT line::jsonb AS j FROM printed) p
  FULL JOIN everest.read_all_forward(0, 100) e ON e.position = (p.j->>'position')::bigint;
SQL
)" "0"
is "created_at is ISO 8601 in UTC" "$(grep -cE '"created_at":"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}Z"' "$WORK/out")" "4"
is "control characters are escaped, one event per line" "$(grep -c 'Odd \\"type\\"\\\\ \\n\\t\\u0001 ✓' "$WORK/out")" "1"
is "the checkpoint is saved" "$(q -d $DB -c "SELECT everest.handler_position('all')")" "4"
is "--once releases its lease on the way out" \
  "$(q -d $DB -c "SELECT count(*) FROM everest.leases WHERE handler = 'all' AND expires_at > now()"; grep -c 'lease on handler "all" released' "$WORK/err")" "0
1"
is "a second --once prints nothing" "$(tail_once all; lines "$WORK/out")" "0
0"
is "--from-start prints everything again" "$(tail_once all --from-start >/dev/null; field position)" "1,2,3,4"
is "--source STREAM" "$(tail_once s1 --source order-1 >/dev/null; field position)" "1,4"
is "--source \$ce-CATEGORY" "$(tail_once c1 --source '$ce-order' >/dev/null; field position)" "1,3,4"
is "a filtered handler's checkpoint is its last event" "$(q -d $DB -c "SELECT everest.handler_position('c1')")" "4"
is "--batch 1 reads one event per transaction" "$(tail_once b1 --batch 1 >/dev/null; field position)" "1,2,3,4"
is "--quiet prints nothing" "$(tail_once quiet --quiet; lines "$WORK/out")" "0
0"

# --- --apply
is "--apply passes each event as \$1" "$(tail_once ap --quiet --apply 'INSERT INTO seen VALUES ($1)')" "0"
is "the applied events equal the stored ones" "$(q -d $DB -c "
  SELECT count(*) FROM seen s FULL JOIN everest.read_all_forward(0, 100) e ON (s.event->>'position')::bigint = e.position
   WHERE s.event IS NULL OR e.position IS NULL OR s.event->'data' <> e.data OR s.event->>'type' <> e.type")" "0"
is "--apply without \$1 works (text parameter)" "$(tail_once tk --quiet --apply 'INSERT INTO ticks VALUES (1)'; q -d $DB -c "SELECT count(*) FROM ticks")" "0
4"
is "a bad --apply statement stops it with status 1" "$(tail_once bad --apply 'INSERT INTO nowhere VALUES ($1)')" "1"
is "... saying why" "$(grep -c 'apply statement.*42P01' "$WORK/err")" "1"
is "... before taking the checkpoint anywhere" "$(q -d $DB -c "SELECT everest.handler_position('bad')")" "0"
q -d $DB -c "TRUNCATE seen"
is "an --apply that fails at one event stops with status 1" \
  "$(tail_once div --apply "INSERT INTO seen SELECT \$1::jsonb WHERE 1 / ((\$1::jsonb->>'position')::int - 3) IS NOT NULL")" "1"
is "... naming the position" "$(grep -c 'apply failed at position 3: 22012' "$WORK/err")" "1"
is "... nothing of the failed batch is applied or printed" "$(q -d $DB -c "SELECT count(*) FROM seen"; lines "$WORK/out")" "0
0"
is "... and the checkpoint stays" "$(q -d $DB -c "SELECT everest.handler_position('div')")" "0"
is "with --batch 1 the events before it are applied" \
  "$(tail_once div --batch 1 --apply "INSERT INTO seen SELECT \$1::jsonb WHERE 1 / ((\$1::jsonb->>'position')::int - 3) IS NOT NULL" >/dev/null
     q -d $DB -c "SELECT everest.handler_position('div'), count(*) FROM seen")" "2|2"

# A transient error (a lock timeout here) is rolled back and retried until it passes.
psql -X -q -d $DB -c "BEGIN" -c "SELECT * FROM locked FOR UPDATE" -c "SELECT pg_sleep(1.5)" -c "COMMIT" >/dev/null &
holder=$!
PIDS+=("$holder")
wait_for 10 sleeping 'pg_sleep(1.5)'
timeout 20 "$TAIL" --handler lk --once --quiet --apply 'UPDATE locked SET id = id WHERE $1 IS NOT NULL' \
  "dbname=$DB options=-clock_timeout=200ms" >"$WORK/out" 2>"$WORK/err"
is "a transient error is retried: exits 0" "$?" "0"
is "... after logging the retry" "$([ "$(grep -c '55P03.*retrying in' "$WORK/err")" -ge 1 ] && echo yes)" "yes"
is "... and the checkpoint moves" "$(q -d $DB -c "SELECT everest.handler_position('lk')")" "4"
wait "$holder"

# EV004: someone else moves the checkpoint while the tail holds a batch: it rolls back, reads
# again, and neither prints nor applies that batch.
q -d $DB -c "TRUNCATE seen"
psql -X -q -d $DB -c "BEGIN" -c "SELECT everest.save_handler_position('ev', 4)" -c "SELECT pg_sleep(1)" -c "COMMIT" >/dev/null &
holder=$!
PIDS+=("$holder")
wait_for 10 sleeping 'pg_sleep(1)'
is "a checkpoint moved by another process: exits 0" "$(tail_once ev --apply 'INSERT INTO seen VALUES ($1)')" "0"
is "... logging EV004" "$(grep -c 'EV004' "$WORK/err")" "1"
is "... printing and applying nothing" "$(lines "$WORK/out"; q -d $DB -c "SELECT count(*) FROM seen")" "0
0"
wait "$holder"

# --- waiting: a notification wakes the tail long before its polling interval; SIGTERM stops it.
"$TAIL" --handler live --poll-ms 60000 "dbname=$DB" >"$WORK/live.out" 2>"$WORK/live.err" &
live=$!
PIDS+=("$live")
wait_for 10 has_lines "$WORK/live.out" 4
wait_for 10 grep -q 'reading \$all after position' "$WORK/live.err"
sleep 0.3   # into its wait
q -d $DB -c "SELECT everest.append_event('order-3', 'Placed')" >/dev/null
wait_for 10 has_lines "$WORK/live.out" 5
is "a notification wakes it before the 60 s polling interval" "$(lines "$WORK/live.out")" "5"
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
t0=$(cpu_ticks "$live")
sleep 2
is "waiting costs no CPU (no busy loop)" "$([ $(($(cpu_ticks "$live") - t0)) -le 5 ] && echo yes)" "yes"
kill -TERM "$live"
stopped=none
for _ in $(seq 1 30); do kill -0 "$live" 2>/dev/null || { wait "$live"; stopped=$?; break; }; sleep 0.1; done
is "SIGTERM while waiting: exits 0 within 3 s" "$stopped" "0"
is "... and logs it" "$(grep -c 'stopped by signal' "$WORK/live.err")" "1"

# SIGTERM in the middle of a batch finishes it (and commits it) first; a second signal cancels
# the batch instead, rolling it back. Either way the exit status is 0.
SLOW='INSERT INTO seen SELECT $1::jsonb FROM pg_sleep(0.4)'
q -d $DB -c "TRUNCATE seen"
in_batch() { [ "$(q -d $DB -c "SELECT count(*) FROM pg_stat_activity WHERE query = '$SLOW'")" = 1 ]; }
stop_after() {  # stop_after SIGNALS HANDLER: prints the exit status
  "$TAIL" --handler "$2" --quiet --apply "$SLOW" "dbname=$DB" >/dev/null 2>"$WORK/err" &
  local pid=$! i
  PIDS+=("$pid")
  wait_for 10 in_batch
  for ((i = 0; i < $1; i++)); do kill -TERM "$pid"; sleep 0.1; done
  for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  wait "$pid"
  echo $?
}
is "SIGTERM during a batch: exits 0" "$(stop_after 1 slow1)" "0"
is "... after committing the batch" "$(q -d $DB -c "SELECT everest.handler_position('slow1'), count(*) FROM seen")" "5|5"
q -d $DB -c "TRUNCATE seen"
is "two SIGTERMs during a batch: exits 0" "$(stop_after 2 slow2)" "0"
is "... having rolled the batch back" "$(q -d $DB -c "SELECT everest.handler_position('slow2'), count(*) FROM seen")" "0|0"

# --wake wait: wait_for_position wakes it long before the polling interval, costs no CPU, and
# SIGTERM cancels the wait.
"$TAIL" --handler live-wait --wake wait --poll-ms 60000 "dbname=$DB" >"$WORK/wait.out" 2>"$WORK/wait.err" &
waiter=$!
PIDS+=("$waiter")
wait_for 10 has_lines "$WORK/wait.out" 5
wait_for 10 sleeping 'everest.wait_for_position($1, $2)'
q -d $DB -c "SELECT everest.append_event('order-3', 'Shipped')" >/dev/null
wait_for 10 has_lines "$WORK/wait.out" 6
is "--wake wait: an append wakes it before the 60 s polling interval" "$(lines "$WORK/wait.out")" "6"
t0=$(cpu_ticks "$waiter")
sleep 2
is "... waiting costs no CPU" "$([ $(($(cpu_ticks "$waiter") - t0)) -le 5 ] && echo yes)" "yes"
wait_for 10 sleeping 'everest.wait_for_position($1, $2)'
kill -TERM "$waiter"
stopped=none
for _ in $(seq 1 30); do kill -0 "$waiter" 2>/dev/null || { wait "$waiter"; stopped=$?; break; }; sleep 0.1; done
is "... SIGTERM cancels the wait: exits 0 within 3 s" "$stopped" "0"

# Unreachable server: it keeps retrying with backoff, and SIGTERM still stops it.
"$TAIL" --handler nowhere "host=/nonexistent port=1" >/dev/null 2>"$WORK/gone.err" &
gone=$!
PIDS+=("$gone")
tried_4_times() { [ "$(grep -c 'cannot connect' "$WORK/gone.err")" -ge 4 ]; }
wait_for 10 tried_4_times
is "without a server it retries with a growing delay" \
  "$(grep -oE 'retrying in [0-9]+ ms' "$WORK/gone.err" | head -4 | grep -oE '[0-9]+' | paste -sd, -)" "100,200,400,800"
kill -TERM "$gone"
stopped=none
for _ in $(seq 1 30); do kill -0 "$gone" 2>/dev/null || { wait "$gone"; stopped=$?; break; }; sleep 0.1; done
is "... and SIGTERM stops it with status 0" "$stopped" "0"

if [ "$FAILURES" -gt 0 ]; then echo "# last stderr:"; sed 's/^/# /' "$WORK/err"; fi
finish
