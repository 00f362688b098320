#!/usr/bin/env bash
# ALTER EXTENSION everest UPDATE from 0.1.0 (sql/everest--0.1.0--0.2.0.sql) and from every later
# version up to the default (0.6.0 adds everest.stats and reset_stats): every event,
# checkpoint and tombstone survives; the upgraded objects equal a fresh install's; the pgTAP
# suites pass on the upgraded database; a session that used the store before the upgrade goes on
# using it after; what users added to everest.events (grants, indexes, publications) is kept.
set -u
source "$(dirname "$0")/lib.bash"

# Everything about the extension's objects that an upgrade could get wrong, one line each.
schema_of() {
  q -d "$1" <<'SQL'
SELECT string_agg(line, E'\n' ORDER BY line) FROM (
  SELECT 'member ' || pg_describe_object(classid, objid, objsubid) AS line
    FROM pg_depend
   WHERE refclassid = 'pg_extension'::regclass AND deptype = 'e'
     AND refobjid = (SELECT oid FROM pg_extension WHERE extname = 'everest')
  UNION ALL
  SELECT format('column %s.%s %s %s notnull=%s collation=%s default=%s', c.relname, a.attnum, a.attname,
                format_type(a.atttypid, a.atttypmod), a.attnotnull, co.collname, pg_get_expr(d.adbin, d.adrelid))
    FROM pg_class c
    JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
    LEFT JOIN pg_collation co ON co.oid = a.attcollation
    LEFT JOIN pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum
   WHERE c.relnamespace = 'everest'::regnamespace
  UNION ALL
  SELECT format('relation %s kind=%s persistence=%s acl=%s', relname, relkind, relpersistence, relacl)
    FROM pg_class WHERE relnamespace = 'everest'::regnamespace
  UNION ALL
  SELECT 'index ' || pg_get_indexdef(i.indexrelid)
    FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid WHERE c.relnamespace = 'everest'::regnamespace
  UNION ALL
  SELECT format('constraint %s %s %s', conrelid::regclass, conname, pg_get_constraintdef(oid))
    FROM pg_constraint WHERE connamespace = 'everest'::regnamespace
  UNION ALL
  SELECT format('trigger %s enabled=%s', pg_get_triggerdef(t.oid), t.tgenabled)
    FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
   WHERE c.relnamespace = 'everest'::regnamespace AND NOT t.tgisinternal
  UNION ALL
  SELECT format('function %s acl=%s body=%s', p.oid::regprocedure, p.proacl, md5(pg_get_functiondef(p.oid)))
    FROM pg_proc p WHERE p.pronamespace = 'everest'::regnamespace
  UNION ALL
  SELECT format('schema %s owner=%s acl=%s', n.nspname, n.nspowner::regrole, n.nspacl)
    FROM pg_namespace n WHERE n.nspname = 'everest'
  UNION ALL
  SELECT format('extension in %s', extnamespace::regnamespace) FROM pg_extension WHERE extname = 'everest'
  UNION ALL
  SELECT format('initial privileges %s %s', classoid::regclass, initprivs)
    FROM pg_init_privs WHERE classoid = 'pg_namespace'::regclass AND objoid = 'everest'::regnamespace
  UNION ALL
  SELECT 'dumped ' || x::regclass::text FROM pg_extension e, unnest(e.extconfig) x WHERE e.extname = 'everest'
  UNION ALL
  SELECT format('sequence %s %s %s %s %s', seqrelid::regclass, seqincrement, seqmin, seqcache, seqcycle)
    FROM pg_sequence WHERE seqrelid::regclass::text LIKE 'everest.%'
) s
SQL
}
# Every event up to a position (default: all), as one digest of all their columns.
events_upto() {  # events_upto DB [POSITION]
  q -d "$1" -c "SELECT count(*) || ' events, md5 ' || md5(string_agg(format('%s|%s|%s|%s|%s|%s|%s|%s', stream, version, position, id, type, data, metadata, created_at), ';' ORDER BY position))
                  FROM everest.read_all_forward(0, 100000) WHERE position <= ${2:-9223372036854775807}"
}
version_of() { q -d "$1" -c "SELECT extversion FROM pg_extension WHERE extname = 'everest'"; }

# --- the objects: 0.1.0 updated equals a fresh install of the default version ----------------
fresh_db ev_up_fresh 2>/dev/null
fresh_db ev_up_plain 2>/dev/null
q -d ev_up_fresh -c "CREATE EXTENSION everest" >/dev/null
q -d ev_up_plain -c "CREATE EXTENSION everest VERSION '0.1.0'" >/dev/null
is "0.1.0 can still be installed (the base of the upgrade path)" "$(version_of ev_up_plain)" "0.1.0"
q -d ev_up_plain -c "ALTER EXTENSION everest UPDATE" >/dev/null
is "ALTER EXTENSION UPDATE reaches the default version" "$(version_of ev_up_plain)" "$(version_of ev_up_fresh)"
fresh_schema=$(schema_of ev_up_fresh) plain_schema=$(schema_of ev_up_plain)
is "the upgraded objects equal a fresh install's (columns, indexes, constraints, triggers, grants, functions, pg_dump list)" \
  "$plain_schema" "$fresh_schema"
[ "$plain_schema" = "$fresh_schema" ] || diff <(echo "$fresh_schema") <(echo "$plain_schema") | sed 's/^/# /'
is "events has the column order of recorded_event" \
  "$(q -d ev_up_plain -c "SELECT string_agg(attname, ',' ORDER BY attnum) FROM pg_attribute WHERE attrelid = 'everest.events'::regclass AND attnum > 0")" \
  "stream,version,position,id,type,data,metadata,created_at"

# --- every other version's full install script, updated, equals a fresh install too ------------
# (the versions come from sql/, so a new version is covered without touching this suite)
default_version=$(version_of ev_up_fresh)
for v in $(cd "$ROOT/sql" && ls everest--*.sql | grep -vE 'everest--[0-9.]+--' | sed -E 's/everest--(.*)\.sql/\1/' | sort -V); do
  [ "$v" = 0.1.0 ] || [ "$v" = "$default_version" ] && continue
  fresh_db ev_up_step 2>/dev/null
  q -d ev_up_step -c "CREATE EXTENSION everest VERSION '$v'" >/dev/null
  q -d ev_up_step -c "ALTER EXTENSION everest UPDATE" >/dev/null
  step_schema=$(schema_of ev_up_step)
  is "$v updated to $default_version equals a fresh install" "$(version_of ev_up_step) $([ "$step_schema" = "$fresh_schema" ] && echo same)" "$default_version same"
  [ "$step_schema" = "$fresh_schema" ] || diff <(echo "$fresh_schema") <(echo "$step_schema") | sed 's/^/# /'
done
psql -X -q -d postgres -c "DROP DATABASE IF EXISTS ev_up_step" >/dev/null
is "the chain reaches 0.6.0 (everest.stats) or later" "$(q -d ev_up_plain -c "SELECT to_regclass('everest.stats') IS NOT NULL AND to_regprocedure('everest.reset_stats()') IS NOT NULL")" "t"

# --- a store with data, and things users add --------------------------------------------------
fresh_db ev_up_data 2>/dev/null
psql -X -q -d postgres -c "DROP ROLE IF EXISTS ev_up_reader" -c "CREATE ROLE ev_up_reader" >/dev/null 2>&1
q -d ev_up_data >/dev/null 2>&1 <<'SQL'
CREATE EXTENSION everest VERSION '0.1.0';
SELECT everest.append_events('acct-1', '[{"type":"Opened","data":{"n":1}},{"type":"Deposited","data":{"n":2},"metadata":{"m":1}}]');
SELECT everest.append_event('acct-2', 'Opened');
SELECT everest.append_event('acct-3', 'Opened');
SELECT everest.delete_stream('acct-3');
SELECT everest.append_event('gone-1', 'Opened');
SELECT everest.delete_stream('gone-1', tombstone => true);
SELECT everest.append_events('bulk-' || (g % 50), jsonb_build_array(jsonb_build_object('type', 'Bulk', 'data', jsonb_build_object('g', g))))
  FROM generate_series(1, 2000) g;
SELECT everest.save_handler_state('projector', 2, '{"balance": 7}');
GRANT USAGE ON SCHEMA everest TO ev_up_reader;
GRANT SELECT ON everest.events TO ev_up_reader;
GRANT EXECUTE ON FUNCTION everest.save_handler_position(text, bigint) TO ev_up_reader;
GRANT EXECUTE ON FUNCTION everest.read_handler_events(text, text, integer), everest.handler_position(text) TO ev_up_reader;
CREATE INDEX events_by_type ON everest.events (type);
CREATE PUBLICATION ev_up_pub FOR TABLE everest.events;
CREATE VIEW public.user_view AS SELECT stream, position FROM everest.events;
SQL
before=$(events_upto ev_up_data)
last=$(q -d ev_up_data -c "SELECT everest.safe_position()")

is "a view of the user's on everest.events stops the upgrade, with the dependency error" \
  "$(sqlstate_of ev_up_data "ALTER EXTENSION everest UPDATE")" "2BP01"
is "... and leaves 0.1.0 as it was" "$(version_of ev_up_data)" "0.1.0"
is "... with every event" "$(events_upto ev_up_data)" "$before"
q -d ev_up_data -c "DROP VIEW public.user_view" >/dev/null

# A session that appended and read before the upgrade goes on after it (cached relation OIDs,
# column numbers and plans must follow the new table). The upgrade runs from another connection.
session=$(q -d ev_up_data 2>&1 <<SQL
SELECT 'before ' || first_version FROM everest.append_event('acct-2', 'Touched', expected_version => 0);
SELECT 'read ' || count(*) FROM everest.read_all_forward(0, 100000);
\! psql -X -q -d ev_up_data -c 'ALTER EXTENSION everest UPDATE'
SELECT 'after ' || first_version || ' ' || (first_position > $last) FROM everest.append_event('acct-2', 'Touched', expected_version => 1);
SELECT 'read ' || count(*) FROM everest.read_all_forward(0, 100000);
SELECT 'stream ' || string_agg(type, ',' ORDER BY version) FROM everest.read_stream_forward('acct-2');
SQL
)
is "the upgrade succeeds once the view is gone" "$(version_of ev_up_data)" "$(version_of ev_up_fresh)"
is "a session from before the upgrade appends and reads across it" "$(echo "$session" | tr '\n' '|')" \
  "before 1|read 2004|after 2 true|read 2005|stream Opened,Touched,Touched|"
after=$(events_upto ev_up_data "$last")
is "every event survives the upgrade: ids, data, metadata, positions and times" "$after" "$before"
is "stream versions survive" "$(q -d ev_up_data -c "SELECT everest.stream_version('acct-1') || ',' || everest.stream_version('acct-3') || ',' || everest.stream_version('bulk-7')")" "1,-1,39"
is "handler checkpoint and state survive" "$(q -d ev_up_data -c "SELECT everest.handler_position('projector') || ' ' || everest.handler_state('projector')")" '2 {"balance": 7}'
is "a tombstone survives" "$(sqlstate_of ev_up_data "SELECT everest.append_event('gone-1', 'X')")" "EV002"
is "the upgraded events are immutable" "$(sqlstate_of ev_up_data "UPDATE everest.events SET type = 'X'")" "0A000"
is "... and cannot be truncated" "$(sqlstate_of ev_up_data "TRUNCATE everest.events")" "0A000"
is "wrong expected versions still fail" "$(sqlstate_of ev_up_data "SELECT everest.append_event('acct-1', 'X', expected_version => 0)")" "EV001"
is "a retry of an event stored before the upgrade is recognised" \
  "$(q -d ev_up_data -c "SELECT first_version FROM everest.append_events('acct-1', (SELECT jsonb_build_array(jsonb_build_object('type', type, 'id', id)) FROM everest.read_event('acct-1', 0)), -1)")" "0"
is "a reused id is still refused" \
  "$(sqlstate_of ev_up_data "SELECT everest.append_events('other-1', (SELECT jsonb_build_array(jsonb_build_object('type', type, 'id', id)) FROM everest.read_event('acct-1', 0)))")" "EV003"
is "categories read as before" "$(q -d ev_up_data -c "SELECT count(*) FROM everest.read_stream_forward('\$ce-bulk', 0, 100000)")" "2000"
is "the user's grant on everest.events is kept" "$(q -d ev_up_data -c "SELECT has_table_privilege('ev_up_reader', 'everest.events', 'SELECT')")" "t"
is "the EXECUTE grant on save_handler_position survives its replacement (0.4.0's new arguments)" \
  "$(q -d ev_up_data -c "SELECT has_function_privilege('ev_up_reader', 'everest.save_handler_position(text, bigint, integer, uuid, bigint)', 'EXECUTE')")" "t"
is "the EXECUTE grants on read_handler_events and handler_position survive their replacement (0.5.0's new arguments)" \
  "$(q -d ev_up_data -c "SELECT has_function_privilege('ev_up_reader', 'everest.read_handler_events(text, text, integer, integer, text[], bigint)', 'EXECUTE')
                            AND has_function_privilege('ev_up_reader', 'everest.handler_position(text, integer)', 'EXECUTE')
                            AND NOT has_function_privilege('ev_up_reader', 'everest.handler_state(text, integer)', 'EXECUTE')")" "t"
is "old calls of the replaced functions keep working" \
  "$(q -d ev_up_data -c "SELECT everest.save_handler_position('projector', 3)" -c "SELECT everest.save_handler_state('projector', 4, '{}')" -c "SELECT everest.handler_position('projector')" \
       -c "SELECT count(*) FROM everest.read_handler_events('projector', '\$all', 10)" | tail -2 | tr '\n' ' ')" "4 10 "
is "a handler saved before the upgrade is member 0 of a group of one" \
  "$(q -d ev_up_data -c "SELECT string_agg(member || ':' || members || ':' || position, ',') FROM everest.handlers WHERE handler = 'projector'")" "0:1:4"
is "... and the upgraded store resizes it into a group that reads on from there" \
  "$(q -d ev_up_data -c "SELECT everest.resize_handler('projector', 3)" -c "SELECT string_agg(DISTINCT position::text, ',') FROM everest.handlers WHERE handler = 'projector'" | tail -1)" "4"
is "the upgraded store takes event schemas and enforces them" \
  "$(q -d ev_up_data -c "SELECT everest.set_event_schema('Opened', '{\"type\": \"object\", \"required\": [\"owner\"]}')" >/dev/null; sqlstate_of ev_up_data "SELECT everest.append_event('acct-9', 'Opened', '{}')")" "EV007"
is "... and reads \$et- streams" "$(q -d ev_up_data -c "SELECT count(*) > 0 FROM everest.read_stream_forward('\$et-Opened')")" "t"
is "the upgraded store counts appends in everest.stats" \
  "$(q -d ev_up_data -c "SELECT appends FROM everest.stats" -c "SELECT everest.append_event('acct-stats', 'StatsCheck')" -c "SELECT appends FROM everest.stats" | awk 'NR == 1 { a = $1 } END { print $1 - a }')" "1"
is "... and nobody but the owner may read or reset them: nothing granted to PUBLIC" \
  "$(q -d ev_up_data -c "SELECT has_table_privilege('ev_up_reader', 'everest.stats', 'SELECT') OR has_function_privilege('ev_up_reader', 'everest.reset_stats()', 'EXECUTE') OR has_function_privilege('ev_up_reader', 'everest.stats_counters()', 'EXECUTE')")" "f"
is "the user's index on everest.events is rebuilt" "$(q -d ev_up_data -c "SELECT indexdef FROM pg_indexes WHERE indexname = 'events_by_type'")" \
  "CREATE INDEX events_by_type ON everest.events USING btree (type)"
is "the publication still has everest.events" "$(q -d ev_up_data -c "SELECT string_agg(pubname, ',') FROM pg_publication_tables WHERE schemaname = 'everest' AND tablename = 'events'")" "ev_up_pub"
is "pg_dump's list names the new table and nothing that is gone" \
  "$(q -d ev_up_data -c "SELECT count(*) FILTER (WHERE x = 'everest.events'::regclass) || ',' || count(*) FILTER (WHERE NOT EXISTS (SELECT 1 FROM pg_class WHERE oid = x)) FROM pg_extension, unnest(extconfig) x WHERE extname = 'everest'")" "1,0"

# pg_dump of the upgraded store keeps the events
pg_dump -Fc -d ev_up_data -f /tmp/everest_up_dump.$$ 2>/dev/null || echo "# pg_dump failed"
fresh_db ev_up_restored 2>/dev/null
pg_restore -d ev_up_restored /tmp/everest_up_dump.$$ 2>/dev/null
rm -f /tmp/everest_up_dump.$$
is "a dump of the upgraded store restores every event" "$(events_upto ev_up_restored)" "$(events_upto ev_up_data)"

# The behaviour suites, run on the upgraded database.
q -d ev_up_plain -c "CREATE EXTENSION IF NOT EXISTS pgtap" >/dev/null
if out=$(cd "$ROOT" && pg_prove -d ev_up_plain test/pgtap/*.sql 2>&1); then
  is "the pgTAP suites pass on an upgraded database" "pass" "pass"
else
  is "the pgTAP suites pass on an upgraded database" "fail" "pass"
  echo "$out" | tail -20 | sed 's/^/# /'
fi

psql -X -q -d postgres -c "DROP DATABASE ev_up_fresh" -c "DROP DATABASE ev_up_plain" \
  -c "DROP DATABASE ev_up_data" -c "DROP DATABASE ev_up_restored" -c "DROP ROLE ev_up_reader" >/dev/null
finish
