#!/usr/bin/env bash
# Two everest-tail processes with one handler name: one runs, the other waits for the lease
# (acquire_lease, a 2 s time to live here). After kill -9 of the first, the second takes over
# from the stored checkpoint once the lease expired: together they print every event, and the
# events both printed are at most one batch (the one the first was printing when it died, whose
# checkpoint never committed). A tail stopped by SIGTERM releases the lease: the next one takes
# it at once. A tail stopped with SIGSTOP past its lease is fenced off: once continued, its save
# fails with EV005 (or its renewal with false), it rolls back and waits for the lease again, and
# no event is applied twice.
set -u
ROOT=${ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
source "$ROOT/test/shell/lib.bash"
subscriber_suite sub_lease
# The positions printed in a file of JSON lines (the tail prints "position" as a bare number).
positions() { grep -oE '"position":[0-9]+' "$1" | cut -d: -f2 | sort -n; }
# The same, sorted as comm wants them.
positions_text() { grep -oE '"position":[0-9]+' "$1" | cut -d: -f2 | sort; }

need_tail "$WORK"

psql -X -q -d postgres -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" \
  -c "CREATE DATABASE $DB" >/dev/null || exit 1
q -d $DB -c "CREATE EXTENSION everest" >/dev/null || { echo "not ok - setup"; exit 1; }
append() {  # append N: N events in N/5 transactions over 5 streams
  q -d $DB -c "SELECT count(*) FROM generate_series(1, $1) i,
    LATERAL everest.append_events('order-' || (i % 5), jsonb_build_array(
      jsonb_build_object('type', 'Placed', 'data', jsonb_build_object('n', i, 'note', E'tab\\there \"quoted\" \\\\ é'))))" >/dev/null
}
all_positions() { q -d $DB -c "SELECT position FROM everest.read_all_forward(0, 2147483647) ORDER BY 1"; }
BATCH=10
TTL=2
start_tail() {  # start_tail NAME
  "$TAIL" --handler shared --batch $BATCH --poll-ms 200 --lease-ttl $TTL "dbname=$DB" >"$WORK/$1.out" 2>"$WORK/$1.err" &
  PIDS+=("$!")
  eval "${1}_pid=$!"
}

append 50
start_tail a
wait_for 20 has_lines "$WORK/a.out" 50
is "the first tail prints the 50 events" "$(lines "$WORK/a.out")" "50"
start_tail b
wait_for 20 grep -q "waiting for the lease" "$WORK/b.err"
is "the second tail logs that it is waiting for the lease" "$(grep -c "waiting for the lease" "$WORK/b.err")" "1"
append 30
wait_for 20 has_lines "$WORK/a.out" 80
is "the first tail prints the next 30 events" "$(lines "$WORK/a.out")" "80"
is "the waiting tail prints nothing" "$(lines "$WORK/b.out")" "0"
is "the first tail prints valid JSON equal to the stored events" "$(q -d $DB <<SQL
CREATE TEMP TABLE printed (line text);
\copy printed FROM '$WORK/a.out' WITH (FORMAT csv, DELIMITER E'\x01', QUOTE E'\x02')
SELECT count(*) FILTER (WHERE e.position IS NULL OR p.j IS NULL
                          OR p.j IS DISTINCT FROM jsonb_build_object('stream', e.stream, 'version', e.version,
                               'position', e.position, 'id', e.id, 'type', e.type, 'data', e.data,
                               'metadata', e.metadata, 'created_at', p.j->'created_at')
                          OR (p.j->>'created_at')::timestamptz <> e.created_at)
  FROM (SELECT line::jsonb AS j FROM printed) p
  FULL JOIN everest.read_all_forward(0, 2147483647) e ON e.position = (p.j->>'position')::bigint;
SQL
)" "0"

# Kill the first tail while events keep coming, then append some more.
{ for _ in $(seq 1 40); do append 3; sleep 0.05; done; } &
appender=$!
PIDS+=("$appender")
sleep 0.5
kill -9 "$a_pid"
wait "$a_pid" 2>/dev/null
wait "$appender"
append 20
last=$(q -d $DB -c "SELECT max(position) FROM everest.read_all_forward(0, 2147483647)")
printed_last() { [ "$(positions "$WORK/b.out" | tail -1)" = "$last" ]; }
wait_for 30 printed_last
is "the second tail takes the lease" "$(grep -c 'lease on handler "shared" taken' "$WORK/b.err")" "1"
is "the lease is a row of everest.leases with a time to live" \
  "$(q -d $DB -c "SELECT count(*) FROM everest.leases WHERE handler = 'shared' AND expires_at > now()")" "1"
# Where the second one resumed: the checkpoint the first one committed last. (Reading it here
# would race with the second one, which may have moved it on already.)
resume=$(grep -oE 'reading \$all after position [0-9]+' "$WORK/b.err" | grep -oE '[0-9]+$')
is "the second tail resumes from a checkpoint the first one reached" \
  "$([ -n "$resume" ] && positions "$WORK/a.out" | grep -qx "$resume" && echo yes)" "yes"
is "the first tail printed every event up to that checkpoint" \
  "$(q -d $DB -c "SELECT position FROM everest.read_all_forward(0, 2147483647) WHERE position <= ${resume:-0}" |
     comm -23 <(sort) <(positions_text "$WORK/a.out") | wc -l)" "0"
is "the second tail's first event is the first after the checkpoint" "$(positions "$WORK/b.out" | head -1)" \
  "$(q -d $DB -c "SELECT min(position) FROM everest.read_all_forward(${resume:-0} + 1, 1)")"
is "the second tail prints the events appended after the kill, up to the last" "$(positions "$WORK/b.out" | tail -1)" "$last"
positions_text "$WORK/a.out" >"$WORK/a.pos"
positions_text "$WORK/b.out" >"$WORK/b.pos"
is "together they printed every event" "$(sort -nu "$WORK/a.pos" "$WORK/b.pos" | cmp -s - <(all_positions) && echo yes)" "yes"
is "neither printed an event twice" "$(uniq -d "$WORK/a.pos" | wc -l) $(uniq -d "$WORK/b.pos" | wc -l)" "0 0"
both=$(comm -12 "$WORK/a.pos" "$WORK/b.pos" | wc -l)
is "the events both printed are at most one batch (at-least-once)" "$([ "$both" -le $BATCH ] && echo yes || echo "no ($both)")" "yes"
is "the events both printed are after the checkpoint" \
  "$(comm -12 "$WORK/a.pos" "$WORK/b.pos" | awk -v c="${resume:-0}" '$1 <= c' | wc -l)" "0"

# The survivor stops on SIGTERM with status 0, releasing the lease: a third one takes it at once
# (well within the time to live).
start_tail c
wait_for 20 grep -q "waiting for the lease" "$WORK/c.err"
kill -TERM "$b_pid"
stopped=none
for _ in $(seq 1 50); do kill -0 "$b_pid" 2>/dev/null || { wait "$b_pid"; stopped=$?; break; }; sleep 0.1; done
is "the second tail exits 0 on SIGTERM within 5 s" "$stopped" "0"
is "... releasing its lease" "$(grep -c 'lease on handler "shared" released' "$WORK/b.err")" "1"
t0=$SECONDS
wait_for 10 grep -q 'lease on handler "shared" taken' "$WORK/c.err"
is "a waiting third tail takes the released lease at once" \
  "$(grep -c 'lease on handler "shared" taken' "$WORK/c.err") $([ $((SECONDS - t0)) -lt $TTL ] && echo soon)" "1 soon"
kill -TERM "$c_pid"; wait "$c_pid"
# Fencing: x applies slowly; SIGSTOP it (mostly inside a batch) for longer than its 1 s lease;
# y takes the lease over and applies; SIGCONT x: it must not commit what it was applying.
q -d $DB -c "CREATE TABLE fenced (position bigint NOT NULL)" >/dev/null
start_fenced() {  # start_fenced NAME
  "$TAIL" --handler fenced --batch 20 --poll-ms 100 --lease-ttl 1 --quiet \
    --apply "INSERT INTO fenced SELECT ((\$1::jsonb)->>'position')::bigint FROM pg_sleep(0.03)" "dbname=$DB" \
    >/dev/null 2>"$WORK/$1.err" &
  PIDS+=("$!")
  eval "${1}_pid=$!"
}
fenced_pos() { q -d $DB -c "SELECT everest.handler_position('fenced')"; }
fenced_progressed() { [ "$(fenced_pos)" -gt "$1" ]; }
start_fenced x
wait_for 20 fenced_progressed 0
sleep 0.2
kill -STOP "$x_pid"
start_fenced y
wait_for 20 grep -q 'lease on handler "fenced" taken' "$WORK/y.err"
before=$(fenced_pos)
wait_for 20 fenced_progressed "$before"
kill -CONT "$x_pid"
wait_for 20 grep -q 'lease on handler "fenced" lost' "$WORK/x.err"
is "a tail continued after its lease expired finds it lost (EV005 or renew false)" \
  "$(grep -c 'lease on handler "fenced" lost' "$WORK/x.err")" "1"
is "... and waits for the lease again" "$(grep -c 'waiting for the lease' "$WORK/x.err")" "1"
fenced_done() { [ "$(fenced_pos)" = "$last" ]; }
wait_for 60 fenced_done
is "the tail holding the lease applies every event" "$(fenced_pos)" "$last"
is "no event was applied twice or missed" "$(q -d $DB -c "
  SELECT count(*) FROM everest.read_all_forward(0, 2147483647) e FULL JOIN fenced f USING (position)
   WHERE e.position IS NULL OR f.position IS NULL")|$(q -d $DB -c "SELECT count(*) - count(DISTINCT position) FROM fenced")" "0|0"
kill -TERM "$x_pid" "$y_pid"; wait "$x_pid" "$y_pid"

if [ "$FAILURES" -gt 0 ]; then for f in a b c x y; do echo "# $f.err:"; tail -8 "$WORK/$f.err" | sed 's/^/# /'; done; fi
finish
