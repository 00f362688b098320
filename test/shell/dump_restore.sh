#!/usr/bin/env bash
# pg_dump keeps every event, stream version and handler checkpoint; a restored store continues
# at the right versions and positions.
set -u
source "$(dirname "$0")/lib.bash"
fresh_db ev_dump_src
q -d ev_dump_src -c "CREATE EXTENSION everest" >/dev/null
q -d ev_dump_src >/dev/null <<'SQL'
SELECT everest.append_events('acct-1', '[{"type":"Opened","data":{"n":1}},{"type":"Deposited","data":{"n":2},"metadata":{"m":1}}]');
SELECT everest.append_event('acct-2', 'Opened');
SELECT everest.append_event('acct-3', 'Opened');
SELECT everest.delete_stream('acct-3');
SELECT everest.append_event('gone-1', 'Opened');
SELECT everest.delete_stream('gone-1', tombstone => true);
SELECT everest.save_handler_state('projector', 2, '{"balance": 7}');
-- a group of two with different checkpoints, resized to three (floors), and a parked event
SELECT everest.resize_handler('grouped', 2);
SELECT everest.save_handler_position('grouped', 1, member => everest.stream_partition('acct-1', 2));
SELECT everest.resize_handler('grouped', 3);
SELECT everest.park_event('grouped', 2, 'poison', member => everest.stream_partition('acct-1', 3));
SELECT everest.set_event_schema('Deposited', '{"type": "object", "required": ["amount"]}');
SQL
before=$(q -d ev_dump_src -c "SELECT string_agg(format('%s|%s|%s|%s|%s|%s|%s|%s', stream, version, position, id, type, data, metadata, created_at), ';' ORDER BY position) FROM everest.read_all_forward(0, 100000)")
# The comparisons below would pass if both reads failed (two empty strings): the source must read.
is "the source store reads its events before the dump" "$(echo "$before" | tr ';' '\n' | grep -c '|')" "3"
last=$(q -d ev_dump_src -c "SELECT everest.safe_position()")

pg_dump -Fc -d ev_dump_src -f /tmp/everest_dump.$$ || echo "not ok - pg_dump failed"
fresh_db ev_dump_dst
pg_restore -d ev_dump_dst /tmp/everest_dump.$$ 2>/tmp/everest_restore.$$.log || { echo "# pg_restore:"; cat /tmp/everest_restore.$$.log; }
rm -f /tmp/everest_dump.$$ /tmp/everest_restore.$$.log

after=$(q -d ev_dump_dst -c "SELECT string_agg(format('%s|%s|%s|%s|%s|%s|%s|%s', stream, version, position, id, type, data, metadata, created_at), ';' ORDER BY position) FROM everest.read_all_forward(0, 100000)")
is "every event survives dump and restore, ids, data and times included" "$after" "$before"
is "stream versions survive" "$(q -d ev_dump_dst -c "SELECT everest.stream_version('acct-1') || ',' || everest.stream_version('acct-2') || ',' || everest.stream_version('acct-3')")" "1,0,-1"
is "handler checkpoint and state survive" "$(q -d ev_dump_dst -c "SELECT everest.handler_position('projector') || ' ' || everest.handler_state('projector')")" '2 {"balance": 7}'
is "a tombstone survives" "$(sqlstate_of ev_dump_dst "SELECT everest.append_event('gone-1', 'X')")" "EV002"
group_of() { q -d "$1" -c "SELECT (SELECT string_agg(member || ':' || members || ':' || position, ',' ORDER BY member) FROM everest.handlers WHERE handler = 'grouped')
                                || ' floors ' || (SELECT string_agg(generation || ':' || members || ':' || member || ':' || position, ',') FROM everest.handler_floors WHERE handler = 'grouped')
                                || ' parked ' || (SELECT string_agg(position || ':' || stream || ':' || reason, ',') FROM everest.parked_events WHERE handler = 'grouped')"; }
is "an event schema survives, and is enforced in the restored store" \
  "$(q -d ev_dump_dst -c "SELECT schema FROM everest.event_schemas WHERE type = 'Deposited'")|$(sqlstate_of ev_dump_dst "SELECT everest.append_event('acct-9', 'Deposited', '{}')")" \
  '{"type": "object", "required": ["amount"]}|EV007'
is "a group's members, floors and parked events survive (and there were some)" \
  "$(group_of ev_dump_dst)|$(group_of ev_dump_src | grep -c 'floors 1:2:.*parked 2:acct-1:poison')" "$(group_of ev_dump_src)|1"
is "appends continue at the next version" "$(q -d ev_dump_dst -c "SELECT first_version FROM everest.append_event('acct-1', 'Withdrawn', expected_version => 1)")" "2"
is "appends continue at a higher position" "$(q -d ev_dump_dst -c "SELECT first_position > $last FROM everest.append_event('acct-2', 'Closed')")" "t"
is "a deleted stream restarts at version 0" "$(q -d ev_dump_dst -c "SELECT first_version FROM everest.append_event('acct-3', 'Reopened', expected_version => -1)")" "0"
is "the restored events are still immutable" "$(sqlstate_of ev_dump_dst "DELETE FROM everest.events")" "0A000"
is "a retry of a stored id is still recognised" "$(q -d ev_dump_dst -c "SELECT first_version FROM everest.append_events('acct-1', (SELECT jsonb_build_array(jsonb_build_object('type', type, 'id', id)) FROM everest.read_event('acct-1', 0)), -1)")" "0"
psql -X -q -d postgres -c "DROP DATABASE ev_dump_src" -c "DROP DATABASE ev_dump_dst" >/dev/null
finish
