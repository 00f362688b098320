#!/usr/bin/env bash
# Least privilege (docs/security.md): the grant sets of examples/sql/grants.sql give each role
# exactly its set. A reader cannot append, a writer cannot delete or tombstone, a subscriber
# cannot rewind a handler, and nobody can touch the tables directly; the admin set can.
set -u
source "$(dirname "$0")/lib.bash"
DB=ev_privileges
fresh_db $DB 2>/dev/null
for r in ev_priv_reader ev_priv_writer ev_priv_subscriber ev_priv_admin ev_priv_monitor ev_priv_none; do
  psql -X -q -d postgres -c "DROP ROLE IF EXISTS $r" -c "CREATE ROLE $r LOGIN" >/dev/null 2>&1
done
q -d $DB -c "CREATE EXTENSION everest" >/dev/null
q -d $DB -v reader=ev_priv_reader -v writer=ev_priv_writer -v subscriber=ev_priv_subscriber -v admin=ev_priv_admin -v monitor=ev_priv_monitor \
  -f "$ROOT/examples/sql/grants.sql" >/dev/null || echo "not ok - examples/sql/grants.sql runs"
q -d $DB -c "SELECT everest.append_events('acct-1', '[{\"type\":\"Opened\"},{\"type\":\"Deposited\"}]')" >/dev/null
as() { local role=$1; shift; PGUSER=$role sqlstate_of $DB "$@"; }

is "reader: reads a stream" "$(as ev_priv_reader "SELECT * FROM everest.read_stream_forward('acct-1')")" "none"
is "reader: reads \$all" "$(as ev_priv_reader "SELECT * FROM everest.read_all_forward()")" "none"
is "reader: waits" "$(as ev_priv_reader "SELECT everest.wait_for_position(0, 0)")" "none"
is "reader: cannot append (42501)" "$(as ev_priv_reader "SELECT everest.append_event('acct-1', 'X')")" "42501"
is "reader: cannot save a checkpoint" "$(as ev_priv_reader "SELECT everest.save_handler_position('h', 1)")" "42501"
is "writer: appends" "$(as ev_priv_writer "SELECT everest.append_event('acct-1', 'Deposited', expected_version => 1)")" "none"
is "writer: cannot delete a stream" "$(as ev_priv_writer "SELECT everest.delete_stream('acct-1')")" "42501"
is "writer: cannot tombstone one" "$(as ev_priv_writer "SELECT everest.delete_stream('acct-1', tombstone => true)")" "42501"
is "writer: cannot read \$all (that is the reader set)" "$(as ev_priv_writer "SELECT * FROM everest.read_all_forward()")" "42501"
is "subscriber: reads its events and saves" \
  "$(as ev_priv_subscriber "SELECT everest.save_handler_position('h', max(position)) FROM everest.read_handler_events('h')")" "none"
is "subscriber: takes a lease" "$(as ev_priv_subscriber "SELECT * FROM everest.acquire_lease('h2')")" "none"
is "subscriber: cannot rewind a handler" "$(as ev_priv_subscriber "SELECT everest.reset_handler('h', 0)")" "42501"
is "subscriber: cannot append" "$(as ev_priv_subscriber "SELECT everest.append_event('acct-1', 'X')")" "42501"
is "subscriber: counts an attempt" "$(as ev_priv_subscriber "SELECT everest.note_attempt('h', 1)")" "none"
is "subscriber: cannot resize a group" "$(as ev_priv_subscriber "SELECT everest.resize_handler('h', 2)")" "42501"
is "subscriber: cannot drop a handler" "$(as ev_priv_subscriber "SELECT everest.drop_handler('h')")" "42501"
is "subscriber: cannot see handler_status" "$(as ev_priv_subscriber "SELECT * FROM everest.handler_status")" "42501"
is "admin: rewinds a handler" "$(as ev_priv_admin "SELECT everest.reset_handler('h', 0)")" "none"
is "admin: resizes a group" "$(as ev_priv_admin "SELECT everest.resize_handler('h-admin', 2)")" "none"
is "admin: sees handler_status and parked_events" "$(as ev_priv_admin "SELECT * FROM everest.handler_status, everest.parked_events")" "none"
is "writer: cannot set an event schema" "$(as ev_priv_writer "SELECT everest.set_event_schema('X', '{}')")" "42501"
is "writer: reads the event contracts" "$(as ev_priv_writer "SELECT * FROM everest.event_schemas")" "none"
is "admin: sets and drops an event schema" "$(as ev_priv_admin "SELECT everest.set_event_schema('ev-priv-X', '{}'), everest.drop_event_schema('ev-priv-X')")" "none"
is "admin: unparks and drops" "$(as ev_priv_admin "SELECT everest.unpark_event('h-admin', 1), everest.drop_handler('h-admin')")" "none"
is "admin: sees who holds the horizon" "$(as ev_priv_admin "SELECT * FROM everest.horizon_holders")" "none"
is "admin: deletes a stream" "$(as ev_priv_admin "SELECT everest.delete_stream('acct-1')")" "none"
for r in ev_priv_reader ev_priv_writer ev_priv_subscriber ev_priv_admin; do
  is "$r: no direct access to everest.events" "$(as $r "SELECT * FROM everest.events")" "42501"
  is "$r: no direct access to everest.handlers" "$(as $r "UPDATE everest.handlers SET position = 0")" "42501"
done
# Metrics (README, "Metrics"): the admin and monitor sets read everest.stats, only admin resets
is "admin: reads everest.stats" "$(as ev_priv_admin "SELECT * FROM everest.stats")" "none"
is "admin: resets the counters" "$(as ev_priv_admin "SELECT everest.reset_stats()")" "none"
is "monitor: reads everest.stats" "$(as ev_priv_monitor "SELECT * FROM everest.stats")" "none"
is "monitor: reads handler_status" "$(as ev_priv_monitor "SELECT * FROM everest.handler_status")" "none"
is "monitor: cannot reset the counters (42501)" "$(as ev_priv_monitor "SELECT everest.reset_stats()")" "42501"
is "monitor: cannot append" "$(as ev_priv_monitor "SELECT everest.append_event('acct-1', 'X')")" "42501"
is "monitor: cannot read events" "$(as ev_priv_monitor "SELECT * FROM everest.read_all_forward()")" "42501"
for r in ev_priv_reader ev_priv_writer ev_priv_subscriber; do
  is "$r: cannot reset the counters (42501)" "$(as $r "SELECT everest.reset_stats()")" "42501"
  is "$r: cannot read everest.stats (42501)" "$(as $r "SELECT * FROM everest.stats")" "42501"
  is "$r: cannot call stats_counters() (42501)" "$(as $r "SELECT * FROM everest.stats_counters()")" "42501"
done
is "a role without a set cannot read everest.stats" "$(as ev_priv_none "SELECT * FROM everest.stats")" "42501"
is "a role without a set cannot reset the counters" "$(as ev_priv_none "SELECT everest.reset_stats()")" "42501"
is "a role without a set cannot even see the schema's functions" "$(as ev_priv_none "SELECT everest.safe_position()")" "42501"
psql -X -q -d postgres -c "DROP DATABASE $DB WITH (FORCE)" >/dev/null
for r in ev_priv_reader ev_priv_writer ev_priv_subscriber ev_priv_admin ev_priv_monitor ev_priv_none; do
  psql -X -q -d postgres -c "DROP ROLE IF EXISTS $r" >/dev/null 2>&1
done
finish
