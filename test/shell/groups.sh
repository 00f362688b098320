#!/usr/bin/env bash
# Consumer groups with everest-tail (docs/groups.md, DESIGN.md section 10): --members, --types and
# --max-attempts.
#   a. four `everest-tail --apply --members 4` processes share a group while psql appenders write
#      to 1,000 streams (every 8th transaction rolls back); processes are killed with SIGKILL now
#      and then and replaced. The projection's --apply fails its transaction unless each event is
#      its stream's next version (so a duplicate, a skipped or an out-of-order apply stops that
#      process), and an applied(position) log with no key shows 0 missing and 0 duplicates.
#   b. the same, resized 4 -> 2 -> 6 from psql while the processes run: the processes follow the
#      resizes, nothing is applied twice or skipped, order is kept, and handler_status ends with
#      6 members, all caught up.
#   c. two processes on a group of four: each holds two members, and all four make progress.
#   d. --types Rare over a store where Rare is 1% of the events: exactly the Rare events are
#      applied, once, and the checkpoint reaches the store's last position (not a Rare event).
#   e. --max-attempts 3: an --apply that fails on two poison events parks them after 3 tries
#      with the error as the reason, applying every other event once; an --apply that hangs on
#      them, with the process killed (SIGKILL) there and restarted each time, parks them too
#      ("crashed or timed out"); unpark_event, and the replay by position.
# EVEREST_TAIL=/path/to/another/build runs the suite against that binary (to see it fail).
set -u
ROOT=${ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
source "$ROOT/test/shell/lib.bash"
subscriber_suite groups

need_tail "$WORK"
TAIL=${EVEREST_TAIL:-$TAIL}

psql -X -q -d postgres -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" \
  -c "CREATE DATABASE $DB" >/dev/null || exit 1
q -d $DB >/dev/null <<'SQL' || { echo "not ok - setup"; exit 1; }
CREATE EXTENSION everest;
-- The projection of tests a and b, per handler: a stream's balance and the version applied last.
-- apply_event fails (and so rolls back its batch) unless the event is the stream's next version.
CREATE TABLE projection (handler text, stream text, balance bigint NOT NULL, last_version bigint NOT NULL,
                         PRIMARY KEY (handler, stream));
CREATE TABLE applied (handler text NOT NULL, position bigint NOT NULL);   -- no key: duplicates show
CREATE FUNCTION apply_event(h text, e jsonb) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  v bigint := (e->>'version')::bigint;
  amount bigint := CASE e->>'type' WHEN 'Deposited' THEN 1 ELSE -1 END * (e->'data'->>'amount')::bigint;
  stored bigint;
BEGIN
  IF v = 0 THEN
    INSERT INTO projection VALUES (h, e->>'stream', amount, 0);   -- a second version 0 fails here
  ELSE
    UPDATE projection SET balance = balance + amount, last_version = v
     WHERE handler = h AND stream = e->>'stream' AND last_version = v - 1;
    IF NOT FOUND THEN
      SELECT last_version INTO stored FROM projection WHERE handler = h AND stream = e->>'stream';
      RAISE EXCEPTION 'out of order: % version % after version %', e->>'stream', v, coalesce(stored::text, 'none');
    END IF;
  END IF;
  INSERT INTO applied VALUES (h, (e->>'position')::bigint);
END $$;
-- Test d.
CREATE TABLE rare_applied (position bigint NOT NULL);
-- Test e: tries are counted with sequences, which a rollback or a crash does not undo.
CREATE TABLE poison_applied (handler text NOT NULL, position bigint NOT NULL);
CREATE SEQUENCE tries_pe_a; CREATE SEQUENCE tries_pe_b; CREATE SEQUENCE tries_pc_a; CREATE SEQUENCE tries_pc_b;
CREATE FUNCTION apply_poison(h text, e jsonb, hang boolean) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  IF e->'data' ? 'poison' THEN
    PERFORM nextval('tries_' || h || '_' || (e->'data'->>'poison'));
    IF hang THEN PERFORM pg_sleep(120); END IF;   -- the test kills the process here
    PERFORM 1 / 0;
  END IF;
  INSERT INTO poison_applied VALUES (h, (e->>'position')::bigint);
END $$;
SQL

# --- helpers
# start_member SLOT HANDLER [SLEEP]: an everest-tail --members 4 feeding the projection (sleeping
# SLEEP seconds per event), in PIDS and in slot_pid[HANDLER SLOT]; its log is
# $WORK/HANDLER-SLOT-N.err (N counts the processes of that slot).
declare -A slot_pid slot_gen
start_member() {
  local slot=$1 h=$2 pause=${3:-0}
  slot_gen[$h$slot]=$((${slot_gen[$h$slot]:-0} + 1))
  "$TAIL" --handler "$h" --members 4 --lease-ttl 2 --poll-ms 200 --batch 20 --quiet \
    --apply "SELECT apply_event('$h', \$1::jsonb), pg_sleep($pause)" "dbname=$DB" \
    >/dev/null 2>"$WORK/$h-$slot-${slot_gen[$h$slot]}.err" &
  slot_pid[$h$slot]=$!
  PIDS+=("$!")
}
APPEND_SQL="SELECT everest.append_event('acct-' || (random() * 999)::int,
                     CASE WHEN random() < 0.6 THEN 'Deposited' ELSE 'Withdrawn' END,
                     jsonb_build_object('amount', 1 + floor(random() * 100)::int))
              FROM generate_series(1, 1 + floor(random() * 8)::int)"
appender() {  # one psql session until $WORK/stop-appending exists; every 8th transaction rolls back
  local i=0 j
  while [ ! -e "$WORK/stop-appending" ]; do
    for j in 1 2 3; do
      i=$((i + 1))
      if [ $((i % 8)) -eq 0 ]; then echo "BEGIN; $APPEND_SQL; ROLLBACK;"; else echo "$APPEND_SQL;"; fi
    done
    sleep 0.02
  done | psql -X -q -d $DB >/dev/null 2>>"$WORK/appender.err"
}
start_appenders() {
  rm -f "$WORK/stop-appending"
  appender & PIDS+=("$!"); appender_1=$!
  appender & PIDS+=("$!"); appender_2=$!
}
stop_appenders() { touch "$WORK/stop-appending"; wait "$appender_1" "$appender_2"; }
last_position() { q -d $DB -c "SELECT coalesce(max(position), 0) FROM everest.read_all_backward(-1, 1)"; }
# caught_up HANDLER MEMBERS: the group has MEMBERS members, each at or past the last event.
caught_up() {
  [ "$(q -d $DB -c "SELECT count(*) FROM everest.handler_status
                     WHERE handler = '$1' AND members = $2 AND position >= $(last_position)")" = "$2" ]
}
# group_checks HANDLER: every acct- event applied once, in order, and the projection equals a
# recomputation from the events.
group_checks() {
  is "$1: no event was applied twice" \
    "$(q -d $DB -c "SELECT count(*) - count(DISTINCT position) FROM applied WHERE handler = '$1'")" "0"
  is "$1: no event was missed" "$(q -d $DB -c "
    SELECT count(*) FROM (SELECT position FROM everest.read_all_forward(0, 2147483647) WHERE stream LIKE 'acct-%') e
      FULL JOIN (SELECT position FROM applied WHERE handler = '$1') a USING (position)
     WHERE e.position IS NULL OR a.position IS NULL")" "0"
  is "$1: the projection equals a recomputation from the events (balance, last version)" "$(q -d $DB -c "
    SELECT count(*) FROM (
      SELECT stream, sum(CASE type WHEN 'Deposited' THEN 1 ELSE -1 END * (data->>'amount')::bigint) AS balance,
             max(version) AS last_version
        FROM everest.read_all_forward(0, 2147483647) WHERE stream LIKE 'acct-%' GROUP BY stream) r
    FULL JOIN (SELECT * FROM projection WHERE handler = '$1') p USING (stream)
    WHERE r.balance IS DISTINCT FROM p.balance OR r.last_version IS DISTINCT FROM p.last_version")" "0"
  is "$1: no process stopped on an error (an out-of-order apply would)" \
    "$(cat "$WORK/$1"-*.err | grep -c 'stopping:')" "0"
}
# stop_slots HANDLER SLOTS...: SIGTERM to the processes of those slots; their exit statuses in
# STOPPED.
stop_slots() {
  local h=$1 s st=() ; shift
  for s in "$@"; do kill -TERM "${slot_pid[$h$s]}" 2>/dev/null; done
  for s in "$@"; do wait "${slot_pid[$h$s]}"; st+=("$?"); done
  STOPPED="${st[*]}"
}

# --- a. four processes share a group of four; SIGKILL now and then
start_appenders
for s in 1 2 3 4; do start_member $s ga; done
for k in 1 2 3; do
  sleep 2.5
  s=$((RANDOM % 4 + 1))
  kill -9 "${slot_pid[ga$s]}"; wait "${slot_pid[ga$s]}" 2>/dev/null
  start_member $s ga
done
sleep 2
stop_appenders
wait_for 90 caught_up ga 4
is "a: the group of four caught up with the last event (3 processes killed and replaced)" \
  "$(caught_up ga 4 && echo yes)" "yes"
echo "# a: $(q -d $DB -c "SELECT count(*) || ' events in ' || count(DISTINCT stream) || ' streams, positions up to ' || max(position)
                          FROM everest.read_all_forward(0, 2147483647)")"
is "a: the events were spread over 1,000 streams, some appends rolled back" \
  "$(q -d $DB -c "SELECT count(DISTINCT stream) > 500, max(position) > count(*) FROM everest.read_all_forward(0, 2147483647)")" "t|t"
group_checks ga
is "a: every member is held by a running process" \
  "$(q -d $DB -c "SELECT count(lease_holder_pid) FROM everest.handler_status WHERE handler = 'ga'")" "4"
stop_slots ga 1 2 3 4
is "a: the four running processes exit 0 on SIGTERM" "$STOPPED" "0 0 0 0"
is "a: ... releasing every lease" \
  "$(q -d $DB -c "SELECT count(*) FROM everest.leases WHERE handler = 'ga' AND expires_at > clock_timestamp()")" "0"

# --- b. resized 4 -> 2 -> 6 from psql while four processes run and events keep coming
# The processes take 5 ms per event, so that they are still catching up with a's events at the
# first resize (their members then have different checkpoints: the resize keeps floors), and
# resizes meet batches in flight.
start_appenders
for s in 1 2 3 4; do start_member $s gb 0.005; done
# held_by HANDLER N: N members of the group are held.
held_by() { [ "$(q -d $DB -c "SELECT count(lease_holder_pid) FROM everest.handler_status WHERE handler = '$1'")" = "$2" ]; }
wait_for 20 held_by gb 4   # the first process made the group
resized_2=$(q -d $DB -c "SELECT everest.resize_handler('gb', 2);
                         SELECT count(*) FROM everest.handler_floors WHERE handler = 'gb'" | tail -1)
sleep 3
q -d $DB -c "SELECT everest.resize_handler('gb', 6)" >/dev/null
sleep 3
stop_appenders
wait_for 90 caught_up gb 6
is "b: handler_status shows 6 members, all caught up (lag 0)" \
  "$(q -d $DB -c "SELECT count(*), min(members), max(members), max(lag) FROM everest.handler_status WHERE handler = 'gb'")" "6|6|6|0"
is "b: the resize to 2 happened with the members at different checkpoints (floors kept)" \
  "$([ "$resized_2" -ge 1 ] && echo yes)" "yes"
is "b: the processes followed both resizes (members of the new sizes taken)" \
  "$(cat "$WORK"/gb-*.err | grep -c 'is a group of 2 members now' | awk '$1 >= 1 {print "yes"}')$(cat "$WORK"/gb-*.err | grep -c 'is a group of 6 members now' | awk '$1 >= 1 {print "yes"}')" "yesyes"
is "b: every member of the new size is held" \
  "$(q -d $DB -c "SELECT count(lease_holder_pid) FROM everest.handler_status WHERE handler = 'gb'")" "6"
group_checks gb
stop_slots gb 1 2 3 4
is "b: the processes exit 0 on SIGTERM" "$STOPPED" "0 0 0 0"

# --- c. two processes on a group of four: both hold members, all four make progress.
# A process that took every free member at once would hold all four before the second one
# connects (which would then only wait: "4"), and one that took just one would leave two members
# without a runner ("1,1": their checkpoints would not move). How the four split between the two
# ("2,2" or "1,3") depends on when the second process connects, one member per --poll-ms each.
gc_start() {  # gc_start NAME
  "$TAIL" --handler gc --members 4 --lease-ttl 6 --poll-ms 500 --batch 50 --quiet "dbname=$DB" \
    >/dev/null 2>"$WORK/gc-$1.err" &
  PIDS+=("$!")
  eval "gc_${1}_pid=$!"
}
gc_start x
wait_for 10 grep -q 'member 0 taken' "$WORK/gc-x.err"
gc_start y
holders() {
  q -d $DB -c "SELECT string_agg(n::text, ',' ORDER BY n) FROM (
                 SELECT count(*) AS n FROM everest.handler_status WHERE handler = 'gc' AND lease_holder_pid IS NOT NULL
                  GROUP BY lease_holder_pid) h"
}
shared() { case "$(holders)" in 2,2|1,3) return 0 ;; *) return 1 ;; esac; }
wait_for 10 shared
sleep 1.5   # time enough for either to take a fifth member, or the other's, if it (wrongly) could
is "c: both processes hold members, the four between them" "$(shared && echo yes || holders)" "yes"
taken_x=$(grep -c 'member [0-3] taken' "$WORK/gc-x.err") taken_y=$(grep -c 'member [0-3] taken' "$WORK/gc-y.err")
is "c: ... each says so in its log" "$([ "$taken_x" -ge 1 ] && [ "$taken_y" -ge 1 ] && [ $((taken_x + taken_y)) = 4 ] && echo yes || echo "$taken_x $taken_y")" "yes"
before=$(q -d $DB -c "SELECT string_agg(position::text, ',' ORDER BY member) FROM everest.handler_status WHERE handler = 'gc'")
q -d $DB -c "SELECT count(*) FROM generate_series(1, 200) i, everest.append_event('c-' || i, 'Noted')" >/dev/null
moved() {
  [ "$(q -d $DB -c "SELECT count(*) FROM everest.handler_status s
                      JOIN unnest(string_to_array('$before', ',')::bigint[]) WITH ORDINALITY b(position, n)
                        ON s.member = b.n - 1
                     WHERE s.handler = 'gc' AND s.position > b.position AND s.position >= $(last_position)")" = 4 ]
}
wait_for 20 moved
is "c: all four members moved past where they were, to the last event" "$(moved && echo yes)" "yes"
is "c: ... (the 200 new streams belong to all four members)" \
  "$(q -d $DB -c "SELECT count(DISTINCT everest.stream_partition('c-' || i, 4)) FROM generate_series(1, 200) i")" "4"
kill -TERM "$gc_x_pid" "$gc_y_pid"; wait "$gc_x_pid" "$gc_y_pid"

# --- d. a filtered handler: --types Rare, 1% of the events; the last event is not Rare
q -d $DB -c "SELECT count(*) FROM generate_series(1, 3000) i,
  everest.append_event('misc-' || (i % 50), CASE WHEN i % 100 = 37 THEN 'Rare' ELSE 'Common' END)" >/dev/null
timeout 60 "$TAIL" --handler gd --types Rare --batch 10 --once --quiet \
  --apply 'INSERT INTO rare_applied SELECT (($1::jsonb)->>$$position$$)::bigint' "dbname=$DB" 2>"$WORK/gd.err"
is "d: --types Rare --once exits 0" "$?" "0"
is "d: the last event of the store is not Rare" \
  "$(q -d $DB -c "SELECT type FROM everest.read_all_backward(-1, 1)")" "Common"
is "d: exactly the Rare events were applied, once each" "$(q -d $DB -c "
  SELECT count(*) FROM (SELECT position FROM everest.read_all_forward(0, 2147483647) WHERE type = 'Rare') e
    FULL JOIN rare_applied a USING (position) WHERE e.position IS NULL OR a.position IS NULL")|$(q -d $DB -c "
  SELECT count(*) - count(DISTINCT position) FROM rare_applied")" "0|0"
is "d: ... 30 of the store's events (about 1% of those appended for it)" \
  "$(q -d $DB -c "SELECT count(*), count(*) * 50 < (SELECT count(*) FROM everest.read_all_forward(0, 2147483647)) FROM rare_applied")" "30|t"
is "d: the checkpoint is the store's last position, past the other 99%" \
  "$(q -d $DB -c "SELECT everest.handler_position('gd')")" "$(last_position)"

# --- e. poison events: '$ce-poison', 40 events, batches of 10; the 11th (the first of a batch)
# and the 25th (in the middle of one) are poison a and b.
q -d $DB -c "SELECT count(*) FROM generate_series(1, 40) i, everest.append_event('poison-' || (i % 6), 'Thing',
  CASE i WHEN 11 THEN '{\"poison\": \"a\"}' WHEN 25 THEN '{\"poison\": \"b\"}' ELSE '{}' END::jsonb)" >/dev/null
poison_pos() { q -d $DB -c "SELECT position FROM everest.read_stream_forward('\$ce-poison', 0, 100) WHERE data->>'poison' = '$1'"; }
pa=$(poison_pos a); pb=$(poison_pos b)
last_poison=$(q -d $DB -c "SELECT max(position) FROM everest.read_stream_forward('\$ce-poison', 0, 100)")
# poison_checks HANDLER: every other event applied once, the checkpoint at the last one.
poison_checks() {
  is "e/$1: every other event was applied once" "$(q -d $DB -c "
    SELECT count(*) FROM (SELECT position FROM everest.read_stream_forward('\$ce-poison', 0, 100)
                           WHERE position NOT IN ($pa, $pb)) e
      FULL JOIN (SELECT position FROM poison_applied WHERE handler = '$1') a USING (position)
     WHERE e.position IS NULL OR a.position IS NULL")|$(q -d $DB -c "
    SELECT count(*) - count(DISTINCT position) FROM poison_applied WHERE handler = '$1'")" "0|0"
  is "e/$1: the checkpoint is the last event" "$(q -d $DB -c "SELECT everest.handler_position('$1')")" "$last_poison"
  is "e/$1: handler_status counts 2 parked events" \
    "$(q -d $DB -c "SELECT parked FROM everest.handler_status WHERE handler = '$1'")" "2"
}
# An --apply error (division by zero): retried, then parked with the error as the reason.
timeout 60 "$TAIL" --handler pe --source '$ce-poison' --batch 10 --max-attempts 3 --once --quiet \
  --apply 'SELECT apply_poison($$pe$$, $1::jsonb, false)' "dbname=$DB" 2>"$WORK/pe.err"
is "e/pe: an --apply that fails on two events, --max-attempts 3: exits 0" "$?" "0"
is "e/pe: both poison events are parked, with the error as the reason" \
  "$(q -d $DB -c "SELECT string_agg(position || ' ' || reason, ';' ORDER BY position) FROM everest.parked_events WHERE handler = 'pe'")" \
  "$pa 22012: division by zero;$pb 22012: division by zero"
is "e/pe: ... each after 3 tries (also the one in the middle of a batch)" \
  "$(q -d $DB -c "SELECT (SELECT last_value FROM tries_pe_a) || ',' || (SELECT last_value FROM tries_pe_b)")" "3,3"
poison_checks pe

# A crash: the --apply hangs on the poison events; the test kills the process there (SIGKILL,
# and ends its server session) and starts it again, until it exits.
crash_run() {  # prints the number of kills
  local kills=0 pid backend
  for _ in $(seq 1 14); do
    "$TAIL" --handler pc --source '$ce-poison' --batch 10 --max-attempts 3 --once --quiet --lease-ttl 1 --poll-ms 100 \
      --apply 'SELECT apply_poison($$pc$$, $1::jsonb, true)' "dbname=$DB application_name=crashy" 2>>"$WORK/pc.err" &
    pid=$!
    PIDS+=("$pid")
    hanging() { backend=$(q -d $DB -c "SELECT pid FROM pg_stat_activity WHERE application_name = 'crashy' AND wait_event = 'PgSleep'")
                [ -n "$backend" ] || ! kill -0 "$pid" 2>/dev/null; }
    wait_for 30 hanging
    if [ -z "$backend" ]; then
      kill -0 "$pid" 2>/dev/null && { kill -9 "$pid"; echo "$kills stuck"; return; }
      wait "$pid"; echo "$kills $?"; return
    fi
    kill -9 "$pid"; wait "$pid" 2>/dev/null
    q -d $DB -c "SELECT pg_terminate_backend($backend)" >/dev/null
    kills=$((kills + 1))
  done
  echo "$kills gave up"
}
is "e/pc: killed on the poison events 7 times, then done (exit 0)" "$(crash_run)" "7 0"
is "e/pc: both poison events are parked, the reason saying it crashed" \
  "$(q -d $DB -c "SELECT string_agg(position || ' ' || reason, ';' ORDER BY position) FROM everest.parked_events WHERE handler = 'pc'")" \
  "$pa attempted 3 times without completing (crashed or timed out);$pb attempted 3 times without completing (crashed or timed out)"
# The first of a batch was tried 3 times; the one in the middle of a batch also crashed the batch
# that held it, which counts against that batch's first event (it cannot know where it crashed).
is "e/pc: ... a after 3 tries, b after 3 tries alone (and the batch before)" \
  "$(q -d $DB -c "SELECT (SELECT last_value FROM tries_pc_a) || ',' || (SELECT last_value FROM tries_pc_b)")" "3,4"
poison_checks pc

# Unpark, and replay by position.
is "e: unpark_event removes the record" \
  "$(q -d $DB -c "SELECT everest.unpark_event('pe', $pa)"; q -d $DB -c "SELECT count(*) FROM everest.parked_events WHERE handler = 'pe'")" "t
1"
q -d $DB -c "INSERT INTO poison_applied SELECT 'pe', position FROM everest.read_event('\$all', $pa)" >/dev/null
is "e: the event is replayed by position (read_event('\$all', position))" \
  "$(q -d $DB -c "SELECT e.data->>'poison', count(a.*) FROM everest.read_event('\$all', $pa) e
                   JOIN poison_applied a ON a.handler = 'pe' AND a.position = e.position GROUP BY 1")" "a|1"

if [ "$FAILURES" -gt 0 ]; then
  for f in "$WORK"/*.err; do echo "# $(basename "$f"):"; grep -v 'taken\|released\|connected' "$f" | tail -6 | sed 's/^/#   /'; done
fi
finish
