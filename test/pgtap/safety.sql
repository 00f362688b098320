-- everest pgTAP: search_path immunity and privileges.
--
-- 1. A schema "evil" plants functions, aggregates and operators that everest's internal queries
--    could be redirected to if they named anything without its schema; each one bumps the
--    sequence evil.calls (not transactional, so the bump survives any error handling) and
--    raises. With search_path = evil, public, pg_catalog every everest function is called; all
--    must work and evil.calls must never be bumped. A control query then shows the traps work.
-- 2. A fresh non-superuser role can neither read nor write everest's tables, nor execute its
--    functions until granted; once granted, the functions work and the tables stay closed.
--
-- $all, category and handler reads only see committed events (they stop at safe_position(),
-- and this transaction's appends are in flight), so a few events are committed first under a
-- category unique to this run, and deleted again at the end. Then the session reconnects, so
-- that everest's internal queries are prepared for the first time under the evil search_path.
SELECT 'tapsafe' || substr(md5(random()::text || clock_timestamp()::text), 1, 12) AS cat \gset
SELECT everest.safe_position() AS sp0 \gset
SELECT first_position AS pa0, last_position AS pa1
  FROM everest.append_events(:'cat' || '-1', '[{"type": "A0"}, {"type": "A1"}]') \gset
SELECT first_position AS pb0 FROM everest.append_events(:'cat' || '-2', '[{"type": "B0"}]') \gset
\connect

BEGIN;
SELECT plan(88);

SELECT set_config('tap.cat', :'cat', true) IS NOT NULL AS _ \gset
SELECT set_config('tap.sp0', :'sp0', true) IS NOT NULL AS _ \gset
SELECT set_config('tap.pa0', :'pa0', true) IS NOT NULL AS _ \gset
SELECT set_config('tap.pa1', :'pa1', true) IS NOT NULL AS _ \gset
SELECT set_config('tap.pb0', :'pb0', true) IS NOT NULL AS _ \gset

-- =============================================================================================
-- The traps
-- =============================================================================================
CREATE SCHEMA evil;
CREATE SEQUENCE evil.calls;
CREATE FUNCTION evil.trap() RETURNS void LANGUAGE plpgsql AS $f$
BEGIN
    PERFORM pg_catalog.nextval('evil.calls'::pg_catalog.regclass);
    RAISE EXCEPTION 'evil object called';
END
$f$;

DO $do$
DECLARE
    t text;
    op text;
    pair text[];
    i int := 0;
BEGIN
    -- functions everest might call by name
    EXECUTE $s$CREATE FUNCTION evil.split_part(text, text, integer) RETURNS text LANGUAGE plpgsql
                AS 'BEGIN PERFORM evil.trap(); RETURN NULL; END'$s$;
    EXECUTE $s$CREATE FUNCTION evil.now() RETURNS timestamptz LANGUAGE plpgsql
                AS 'BEGIN PERFORM evil.trap(); RETURN NULL; END'$s$;
    EXECUTE $s$CREATE FUNCTION evil.clock_timestamp() RETURNS timestamptz LANGUAGE plpgsql
                AS 'BEGIN PERFORM evil.trap(); RETURN NULL; END'$s$;
    EXECUTE $s$CREATE FUNCTION evil.nextval(regclass) RETURNS bigint LANGUAGE plpgsql
                AS 'BEGIN PERFORM evil.trap(); RETURN NULL; END'$s$;
    EXECUTE $s$CREATE FUNCTION evil.currval(regclass) RETURNS bigint LANGUAGE plpgsql
                AS 'BEGIN PERFORM evil.trap(); RETURN NULL; END'$s$;
    EXECUTE $s$CREATE FUNCTION evil.pg_sequence_last_value(regclass) RETURNS bigint LANGUAGE plpgsql
                AS 'BEGIN PERFORM evil.trap(); RETURN NULL; END'$s$;
    EXECUTE $s$CREATE FUNCTION evil.gen_random_uuid() RETURNS uuid LANGUAGE plpgsql
                AS 'BEGIN PERFORM evil.trap(); RETURN NULL; END'$s$;
    EXECUTE $s$CREATE FUNCTION evil.lower(text) RETURNS text LANGUAGE plpgsql
                AS 'BEGIN PERFORM evil.trap(); RETURN NULL; END'$s$;
    EXECUTE $s$CREATE FUNCTION evil.length(text) RETURNS integer LANGUAGE plpgsql
                AS 'BEGIN PERFORM evil.trap(); RETURN NULL; END'$s$;
    EXECUTE $s$CREATE FUNCTION evil.hashtext(text) RETURNS integer LANGUAGE plpgsql
                AS 'BEGIN PERFORM evil.trap(); RETURN NULL; END'$s$;
    EXECUTE $s$CREATE FUNCTION evil.jsonb_typeof(jsonb) RETURNS text LANGUAGE plpgsql
                AS 'BEGIN PERFORM evil.trap(); RETURN NULL; END'$s$;
    EXECUTE $s$CREATE FUNCTION evil.current_setting(text) RETURNS text LANGUAGE plpgsql
                AS 'BEGIN PERFORM evil.trap(); RETURN NULL; END'$s$;
    EXECUTE $s$CREATE FUNCTION evil.pg_notify(text, text) RETURNS void LANGUAGE plpgsql
                AS 'BEGIN PERFORM evil.trap(); END'$s$;
    EXECUTE $s$CREATE FUNCTION evil.pg_advisory_xact_lock(bigint) RETURNS void LANGUAGE plpgsql
                AS 'BEGIN PERFORM evil.trap(); END'$s$;
    EXECUTE $s$CREATE FUNCTION evil.pg_try_advisory_lock(bigint) RETURNS boolean LANGUAGE plpgsql
                AS 'BEGIN PERFORM evil.trap(); RETURN NULL; END'$s$;
    EXECUTE $s$CREATE FUNCTION evil.pg_advisory_unlock(bigint) RETURNS boolean LANGUAGE plpgsql
                AS 'BEGIN PERFORM evil.trap(); RETURN NULL; END'$s$;
    -- aggregates (the final function runs even over zero rows)
    EXECUTE $s$CREATE FUNCTION evil.agg_step(bigint, anyelement) RETURNS bigint LANGUAGE plpgsql
                AS 'BEGIN PERFORM evil.trap(); RETURN NULL; END'$s$;
    EXECUTE $s$CREATE FUNCTION evil.agg_step_star(bigint) RETURNS bigint LANGUAGE plpgsql
                AS 'BEGIN PERFORM evil.trap(); RETURN NULL; END'$s$;
    EXECUTE $s$CREATE FUNCTION evil.agg_final(bigint) RETURNS bigint LANGUAGE plpgsql
                AS 'BEGIN PERFORM evil.trap(); RETURN NULL; END'$s$;
    EXECUTE $s$CREATE AGGREGATE evil.max(bigint) (SFUNC = evil.agg_step, STYPE = bigint,
                FINALFUNC = evil.agg_final, INITCOND = '0')$s$;
    EXECUTE $s$CREATE AGGREGATE evil.min(bigint) (SFUNC = evil.agg_step, STYPE = bigint,
                FINALFUNC = evil.agg_final, INITCOND = '0')$s$;
    EXECUTE $s$CREATE AGGREGATE evil.count(*) (SFUNC = evil.agg_step_star, STYPE = bigint,
                FINALFUNC = evil.agg_final, INITCOND = '0')$s$;
    -- comparison operators for every type everest compares
    FOREACH pair SLICE 1 IN ARRAY ARRAY[['text', 'text'], ['bigint', 'bigint'], ['integer', 'integer'],
                                         ['bigint', 'integer'], ['integer', 'bigint'], ['uuid', 'uuid'],
                                         ['jsonb', 'jsonb'], ['boolean', 'boolean'], ['name', 'name'],
                                         ['timestamptz', 'timestamptz'], ['oid', 'oid']]
    LOOP
        FOREACH op IN ARRAY ARRAY['=', '<>', '<', '<=', '>', '>=']
        LOOP
            i := i + 1;
            EXECUTE format('CREATE FUNCTION evil.op_%s(%s, %s) RETURNS boolean LANGUAGE plpgsql '
                           'AS ''BEGIN PERFORM evil.trap(); RETURN NULL; END''', i, pair[1], pair[2]);
            EXECUTE format('CREATE OPERATOR evil.%s (LEFTARG = %s, RIGHTARG = %s, FUNCTION = evil.op_%s)',
                           op, pair[1], pair[2], i);
        END LOOP;
    END LOOP;
    -- arithmetic and concatenation
    EXECUTE $s$CREATE FUNCTION evil.plus(bigint, bigint) RETURNS bigint LANGUAGE plpgsql
                AS 'BEGIN PERFORM evil.trap(); RETURN NULL; END'$s$;
    EXECUTE $s$CREATE OPERATOR evil.+ (LEFTARG = bigint, RIGHTARG = bigint, FUNCTION = evil.plus)$s$;
    EXECUTE $s$CREATE OPERATOR evil.- (LEFTARG = bigint, RIGHTARG = bigint, FUNCTION = evil.plus)$s$;
    EXECUTE $s$CREATE FUNCTION evil.contains(jsonb, jsonb) RETURNS boolean LANGUAGE plpgsql
                AS 'BEGIN PERFORM evil.trap(); RETURN NULL; END'$s$;
    EXECUTE $s$CREATE OPERATOR evil.@> (LEFTARG = jsonb, RIGHTARG = jsonb, FUNCTION = evil.contains)$s$;
END
$do$;

SELECT ok((SELECT count(*) FROM pg_operator WHERE oprnamespace = 'evil'::regnamespace) >= 66,
          'the evil operators are planted');
SELECT ok(to_regprocedure('evil.split_part(text, text, integer)') IS NOT NULL
          AND to_regprocedure('evil.now()') IS NOT NULL, 'the evil functions are planted');

-- =============================================================================================
-- The calls: built here with the ordinary search_path, run under the evil one
-- =============================================================================================
CREATE TEMP TABLE calls (ord int, label text, q text, want text);
CREATE TEMP TABLE results (ord int, label text, got text);

-- Runs every call in order; a call's result is its one text value, or 'ERROR <sqlstate>: <message>'.
-- Written so that it compares nothing itself (no operator of its own could be redirected).
CREATE FUNCTION pg_temp.run_calls() RETURNS void LANGUAGE plpgsql AS $f$
DECLARE
    rec record;
    r text;
BEGIN
    FOR rec IN SELECT c.ord, c.label, c.q FROM pg_temp.calls AS c ORDER BY c.ord LOOP
        BEGIN
            EXECUTE rec.q INTO r;
        EXCEPTION WHEN OTHERS THEN
            r := pg_catalog.concat('ERROR ', SQLSTATE, ': ', SQLERRM);
        END;
        INSERT INTO pg_temp.results (ord, label, got) VALUES (rec.ord, rec.label, r);
    END LOOP;
END
$f$;

-- Values for the calls
CREATE FUNCTION pg_temp.v(k text) RETURNS text LANGUAGE sql STABLE AS $f$
    SELECT CASE k
        WHEN 's1' THEN current_setting('tap.cat') || '-1'
        WHEN 's2' THEN current_setting('tap.cat') || '-2'
        WHEN 's3' THEN current_setting('tap.cat') || '-3'
        WHEN 'ce' THEN '$ce-' || current_setting('tap.cat')
        WHEN 'h'  THEN current_setting('tap.cat') || '-handler'
        WHEN 'lease' THEN current_setting('tap.cat') || '-lease'
        WHEN 'from' THEN (current_setting('tap.sp0')::bigint + 1)::text
        ELSE current_setting('tap.' || k) END
$f$;
-- The setup events of this run, seen through a read (filtering with functions, not operators)
CREATE FUNCTION pg_temp.mine(read text) RETURNS text LANGUAGE sql STABLE AS $f$
    SELECT format('SELECT pg_catalog.string_agg(type, %L) FROM %s WHERE pg_catalog.starts_with(stream, %L)',
                  ',', read, current_setting('tap.cat') || '-')
$f$;

INSERT INTO calls (ord, label, q, want) VALUES
 (1, 'append_events to a new stream with -1',
  format($q$SELECT (first_version, last_version)::text FROM everest.append_events(%L, '[
      {"type": "N0", "id": "e1000000-0000-4000-8000-000000000001"},
      {"type": "N1", "id": "e1000000-0000-4000-8000-000000000002", "data": {"x": 1}, "metadata": {"m": 1}}]', -1)$q$,
         pg_temp.v('s3')), '(0,1)'),
 (2, 'append_events idempotent retry with -1',
  format($q$SELECT (first_version, last_version)::text FROM everest.append_events(%L, '[
      {"type": "N0", "id": "e1000000-0000-4000-8000-000000000001"},
      {"type": "N1", "id": "e1000000-0000-4000-8000-000000000002", "data": {"x": 1}, "metadata": {"m": 1}}]', -1)$q$,
         pg_temp.v('s3')), '(0,1)'),
 (3, 'append_events idempotent retry with -2',
  format($q$SELECT (first_version, last_version)::text FROM everest.append_events(%L, '[
      {"type": "N0", "id": "e1000000-0000-4000-8000-000000000001"},
      {"type": "N1", "id": "e1000000-0000-4000-8000-000000000002", "data": {"x": 1}, "metadata": {"m": 1}}]')$q$,
         pg_temp.v('s3')), '(0,1)'),
 (4, 'append_events with a wrong expected version (EV001)',
  format($q$SELECT (first_version)::text FROM everest.append_events(%L, '[{"type": "X"}]', 0)$q$,
         pg_temp.v('s3')), 'EV001'),
 (5, 'append_events reusing an id of another stream (EV003)',
  format($q$SELECT (first_version)::text FROM everest.append_events(%L, '[{"type": "X", "id": "e1000000-0000-4000-8000-000000000001"}]')$q$,
         pg_temp.v('s2')), 'EV003'),
 (6, 'append_events partial overlap (EV003)',
  format($q$SELECT (first_version)::text FROM everest.append_events(%L, '[
      {"type": "N0", "id": "e1000000-0000-4000-8000-000000000001"}, {"type": "X"}]', -1)$q$,
         pg_temp.v('s3')), 'EV003'),
 (7, 'append_events with a bad event shape (22023)',
  format($q$SELECT (first_version)::text FROM everest.append_events(%L, '[{"type": "X", "nope": 1}]')$q$,
         pg_temp.v('s3')), '22023'),
 (8, 'append_events with a malformed id (22P02)',
  format($q$SELECT (first_version)::text FROM everest.append_events(%L, '[{"type": "X", "id": "zz"}]')$q$,
         pg_temp.v('s3')), '22P02'),
 (9, 'append_events to $all (22023)',
  $q$SELECT (first_version)::text FROM everest.append_events('$all', '[{"type": "X"}]')$q$, '22023'),
 (10, 'append_event with every argument and an exact version',
  format($q$SELECT (first_version, last_version)::text FROM everest.append_event(%L, 'N2', '{"a": 1}', '{"m": 2}', 1,
         'e1000000-0000-4000-8000-000000000003')$q$, pg_temp.v('s3')), '(2,2)'),
 (11, 'append_event idempotent retry',
  format($q$SELECT (first_version, last_version)::text FROM everest.append_event(%L, 'N2', '{"a": 1}', '{"m": 2}', 1,
         'e1000000-0000-4000-8000-000000000003')$q$, pg_temp.v('s3')), '(2,2)'),
 (12, 'append_event with -4 (stream exists)',
  format($q$SELECT (first_version)::text FROM everest.append_event(%L, 'N3', expected_version => -4)$q$,
         pg_temp.v('s3')), '3'),
 (13, 'read_event',
  format($q$SELECT (type, data, metadata, id)::text FROM everest.read_event(%L, 2)$q$, pg_temp.v('s3')),
  ('N2', '{"a": 1}'::jsonb, '{"m": 2}'::jsonb, 'e1000000-0000-4000-8000-000000000003'::uuid)::text),
 (14, 'read_event -1',
  format($q$SELECT type FROM everest.read_event(%L, -1)$q$, pg_temp.v('s3')), 'N3'),
 (15, 'read_event of a missing version',
  format($q$SELECT pg_catalog.count(*)::text FROM everest.read_event(%L, 9)$q$, pg_temp.v('s3')), '0'),
 (16, 'read_stream_forward',
  format($q$SELECT pg_catalog.string_agg(pg_catalog.concat(version, type), ',') FROM everest.read_stream_forward(%L)$q$,
         pg_temp.v('s3')), '0N0,1N1,2N2,3N3'),
 (17, 'read_stream_forward from 1, max 2',
  format($q$SELECT pg_catalog.string_agg(pg_catalog.concat(version, type), ',') FROM everest.read_stream_forward(%L, 1, 2)$q$,
         pg_temp.v('s3')), '1N1,2N2'),
 (18, 'read_stream_backward',
  format($q$SELECT pg_catalog.string_agg(pg_catalog.concat(version, type), ',') FROM everest.read_stream_backward(%L)$q$,
         pg_temp.v('s3')), '3N3,2N2,1N1,0N0'),
 (19, 'read_stream_backward from 2, max 2',
  format($q$SELECT pg_catalog.string_agg(pg_catalog.concat(version, type), ',') FROM everest.read_stream_backward(%L, 2, 2)$q$,
         pg_temp.v('s3')), '2N2,1N1'),
 (20, 'read_stream_forward of a committed stream',
  format($q$SELECT pg_catalog.string_agg(pg_catalog.concat(version, type), ',') FROM everest.read_stream_forward(%L)$q$,
         pg_temp.v('s1')), '0A0,1A1'),
 (21, 'read_stream_forward max_count -1 (22023)',
  format($q$SELECT type FROM everest.read_stream_forward(%L, 0, -1)$q$, pg_temp.v('s1')), '22023'),
 (22, 'stream_version',
  format($q$SELECT everest.stream_version(%L)::text$q$, pg_temp.v('s3')), '3'),
 (23, 'stream_version of a nonexistent stream',
  $q$SELECT everest.stream_version('tapsafe-nosuchstream')::text$q$, '-1'),
 (24, 'read_all_forward',
  pg_temp.mine(format('everest.read_all_forward(%s, 1000)', pg_temp.v('from'))), 'A0,A1,B0'),
 (25, 'read_all_backward',
  pg_temp.mine('everest.read_all_backward(-1, 1000)'), 'B0,A1,A0'),
 (26, 'read_all_backward from a position',
  pg_temp.mine(format('everest.read_all_backward(%s, 1000)', pg_temp.v('pa1'))), 'A1,A0'),
 (27, 'read_stream_forward($all)',
  pg_temp.mine(format('everest.read_stream_forward(%L, %s, 1000)', '$all', pg_temp.v('from'))), 'A0,A1,B0'),
 (28, 'read_stream_forward($ce-<category>)',
  pg_temp.mine(format('everest.read_stream_forward(%L)', pg_temp.v('ce'))), 'A0,A1,B0'),
 (29, 'read_stream_backward($ce-<category>)',
  pg_temp.mine(format('everest.read_stream_backward(%L)', pg_temp.v('ce'))), 'B0,A1,A0'),
 (30, 'read_stream_forward($ce-<category>) from a position',
  pg_temp.mine(format('everest.read_stream_forward(%L, %s)', pg_temp.v('ce'), pg_temp.v('pa1'))), 'A1,B0'),
 (31, 'safe_position covers the committed events',
  format($q$SELECT pg_catalog.int8ge(everest.safe_position(), %s)::text$q$, pg_temp.v('pb0')), 'true'),
 (32, 'handler_position of an unknown handler',
  format($q$SELECT everest.handler_position(%L)::text$q$, pg_temp.v('h')), '0'),
 (33, 'handler_state of an unknown handler',
  format($q$SELECT COALESCE(everest.handler_state(%L)::text, 'NULL')$q$, pg_temp.v('h')), 'NULL'),
 (34, 'reset_handler',
  format($q$SELECT everest.reset_handler(%L, %s)::text$q$, pg_temp.v('h'), pg_temp.v('sp0')), ''),
 (35, 'read_handler_events over $all',
  pg_temp.mine(format('everest.read_handler_events(%L)', pg_temp.v('h'))), 'A0,A1,B0'),
 (36, 'read_handler_events over a stream',
  pg_temp.mine(format('everest.read_handler_events(%L, %L, 100)', pg_temp.v('h'), pg_temp.v('s1'))), 'A0,A1'),
 (37, 'save_handler_position',
  format($q$SELECT everest.save_handler_position(%L, %s)::text$q$, pg_temp.v('h'), pg_temp.v('pa0')), ''),
 (38, 'handler_position after a save',
  format($q$SELECT pg_catalog.int8eq(everest.handler_position(%L), %s)::text$q$, pg_temp.v('h'), pg_temp.v('pa0')), 'true'),
 (39, 'read_handler_events over $ce-<category>',
  pg_temp.mine(format('everest.read_handler_events(%L, %L, 100)', pg_temp.v('h'), pg_temp.v('ce'))), 'A1,B0'),
 (40, 'save_handler_state',
  format($q$SELECT everest.save_handler_state(%L, %s, '{"s": 1}')::text$q$, pg_temp.v('h'), pg_temp.v('pa1')), ''),
 (41, 'handler_state after a save',
  format($q$SELECT everest.handler_state(%L)::text$q$, pg_temp.v('h')), '{"s": 1}'),
 (42, 'save_handler_position that does not move forward (EV004)',
  format($q$SELECT everest.save_handler_position(%L, %s)::text$q$, pg_temp.v('h'), pg_temp.v('pa0')), 'EV004'),
 (43, 'save_handler_state that does not move forward (EV004)',
  format($q$SELECT everest.save_handler_state(%L, %s, '{}')::text$q$, pg_temp.v('h'), pg_temp.v('pa1')), 'EV004'),
 (44, 'try_acquire_handler',
  format($q$SELECT everest.try_acquire_handler(%L)::text$q$, pg_temp.v('lease')), 'true'),
 (45, 'try_acquire_handler again (re-entrant)',
  format($q$SELECT everest.try_acquire_handler(%L)::text$q$, pg_temp.v('lease')), 'true'),
 (46, 'release_handler',
  format($q$SELECT everest.release_handler(%L)::text$q$, pg_temp.v('lease')), 'true'),
 (47, 'in_flight_appends lists this transaction',
  $q$SELECT pg_catalog.count(*)::text FROM everest.in_flight_appends() WHERE pg_catalog.int4eq(pid, pg_catalog.pg_backend_pid())$q$, '1'),
 (48, 'horizon_holders lists this transaction',
  $q$SELECT pg_catalog.count(*)::text FROM everest.horizon_holders WHERE pg_catalog.int4eq(pid, pg_catalog.pg_backend_pid())$q$, '1'),
 (49, 'UPDATE of events is refused by the trigger (0A000)',
  $q$UPDATE everest.events SET type = 'X' WHERE false RETURNING type$q$, '0A000'),
 (50, 'delete_stream with a wrong expected version (EV001)',
  format($q$SELECT everest.delete_stream(%L, 7)::text$q$, pg_temp.v('s1')), 'EV001'),
 (51, 'delete_stream of a committed stream',
  format($q$SELECT everest.delete_stream(%L)::text$q$, pg_temp.v('s2')), '1'),
 (52, '$all after the delete',
  pg_temp.mine(format('everest.read_all_forward(%s, 1000)', pg_temp.v('from'))), 'A0,A1'),
 (53, 'delete_stream with tombstone',
  format($q$SELECT everest.delete_stream(%L, 3, true)::text$q$, pg_temp.v('s3')), '4'),
 (54, 'append to the tombstoned stream (EV002)',
  format($q$SELECT (first_version)::text FROM everest.append_event(%L, 'X')$q$, pg_temp.v('s3')), 'EV002'),
 (55, 'stream_version of the tombstoned stream',
  format($q$SELECT everest.stream_version(%L)::text$q$, pg_temp.v('s3')), '-1'),
 (56, 'read_stream_forward of the tombstoned stream',
  format($q$SELECT pg_catalog.count(*)::text FROM everest.read_stream_forward(%L)$q$, pg_temp.v('s3')), '0'),
 (57, 'delete_stream of a nonexistent stream',
  $q$SELECT everest.delete_stream('tapsafe-nosuchstream')::text$q$, '0'),
 (58, 'a reused name after delete starts at version 0',
  format($q$SELECT (first_version)::text FROM everest.append_events(%L, '[{"type": "R"}]', -1)$q$, pg_temp.v('s2')), '0'),
 (59, 'everest.stats (this transaction holds the horizon: the holders query runs too)',
  $q$SELECT (s.appends IS NOT NULL AND s.horizon_holders IS NOT NULL AND s.oldest_holder_seconds IS NOT NULL)::text FROM everest.stats AS s$q$, 'true'),
 (60, 'everest.reset_stats',
  $q$SELECT pg_catalog.concat('reset', everest.reset_stats())$q$, 'reset');

-- ---------------------------------------------------------------------------------------------
SET LOCAL search_path = evil, public, pg_catalog;
SELECT pg_temp.run_calls();
RESET search_path;
-- ---------------------------------------------------------------------------------------------

SELECT is(current_setting('search_path'), '"$user", public', 'the ordinary search_path is back for the assertions');
SELECT is((SELECT count(*) FROM results), 60::bigint, 'every call ran');
-- Expected errors are compared by SQLSTATE, results by value
SELECT is(CASE WHEN c.want ~ '^([0-9A-Z]{5})$' AND r.got LIKE 'ERROR %'
               THEN substr(r.got, 7, 5) ELSE r.got END,
          c.want, format('under the evil search_path: %s', c.label))
  FROM calls c JOIN results r USING (ord) ORDER BY ord;
SELECT is((SELECT count(*) FROM results WHERE got LIKE '%evil%'), 0::bigint, 'no call reached an evil object');
SELECT ok(NOT (SELECT is_called FROM evil.calls), 'evil.calls was never bumped: no planted object was ever called');

-- Control: the same search_path does redirect an unqualified query to the traps
TRUNCATE calls, results;
INSERT INTO calls VALUES
 (1, 'control: an unqualified text comparison', $q$SELECT ('a'::text = 'a'::text)::text$q$, NULL),
 (2, 'control: an unqualified split_part', $q$SELECT split_part('a-b', '-', 1)$q$, NULL);
SET LOCAL search_path = evil, public, pg_catalog;
SELECT pg_temp.run_calls();
RESET search_path;
SELECT is((SELECT count(*) FROM results WHERE got LIKE 'ERROR P0001: evil object called%'), 2::bigint,
          'control: under the evil search_path, unqualified names do reach the traps');
SELECT ok((SELECT is_called FROM evil.calls), 'control: and the traps bump evil.calls');

-- =============================================================================================
-- Privileges: a fresh non-superuser role
-- =============================================================================================
\set nobody :cat'_nobody'
SELECT set_config('tap.role', :'nobody', true) IS NOT NULL AS _ \gset
CREATE FUNCTION pg_temp.role() RETURNS text LANGUAGE sql STABLE AS $f$ SELECT current_setting('tap.role') $f$;
CREATE ROLE :"nobody" NOLOGIN NOSUPERUSER;

-- What the catalogs say
SELECT is((SELECT count(*) FROM pg_class c
            WHERE c.relnamespace = 'everest'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'S')
              AND (has_table_privilege(pg_temp.role(), c.oid, 'SELECT')
                   OR has_table_privilege(pg_temp.role(), c.oid, 'INSERT')
                   OR has_table_privilege(pg_temp.role(), c.oid, 'UPDATE')
                   OR has_table_privilege(pg_temp.role(), c.oid, 'DELETE')
                   OR has_table_privilege(pg_temp.role(), c.oid, 'TRUNCATE'))), 0::bigint,
          'the fresh role has no privilege on any everest table, view or sequence');
SELECT ok((SELECT count(*) FROM pg_class WHERE relnamespace = 'everest'::regnamespace AND relkind = 'r') >= 2,
          '... and everest has tables to check');
SELECT is((SELECT count(*) FROM pg_proc p WHERE p.pronamespace = 'everest'::regnamespace
              AND has_function_privilege(pg_temp.role(), p.oid, 'EXECUTE')), 0::bigint,
          'the fresh role cannot execute any everest function');
SELECT ok((SELECT count(*) FROM pg_proc WHERE pronamespace = 'everest'::regnamespace) >= 19,
          '... and everest has its functions to check');

-- What the role experiences
SET LOCAL ROLE :"nobody";
SELECT is(current_user::text, pg_temp.role(), 'now acting as the fresh role');
SELECT throws_ok('SELECT * FROM everest.events', '42501', NULL, 'the role cannot read everest.events');
SELECT throws_ok($q$INSERT INTO everest.events (position, stream, version, id, type, data)
                    VALUES (1, 'x', 0, '00000000-0000-4000-8000-000000000000', 'T', '{}')$q$,
                 '42501', NULL, 'the role cannot insert into everest.events');
SELECT throws_ok('DELETE FROM everest.events', '42501', NULL, 'the role cannot delete from everest.events');
SELECT throws_ok('SELECT * FROM everest.handlers', '42501', NULL, 'the role cannot read everest.handlers');
SELECT throws_ok($q$SELECT everest.stream_version('tapsafe-x')$q$, '42501', NULL,
                 'the role cannot call stream_version before a grant');
SELECT throws_ok($q$SELECT * FROM everest.append_event('tapsafe-x', 'T')$q$, '42501', NULL,
                 'the role cannot call append_event before a grant');
RESET role;

-- USAGE on the schema alone is not enough: the functions themselves are revoked from PUBLIC
GRANT USAGE ON SCHEMA everest TO :"nobody";
SET LOCAL ROLE :"nobody";
SELECT throws_ok($q$SELECT * FROM everest.read_stream_forward('tapsafe-x')$q$, '42501', NULL,
                 'with USAGE on the schema only, read_stream_forward is still denied');
SELECT throws_ok('SELECT * FROM everest.events', '42501', NULL,
                 'with USAGE on the schema, everest.events is still unreadable');
RESET role;

GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA everest TO :"nobody";
SET LOCAL ROLE :"nobody";
SELECT is((SELECT first_version FROM everest.append_event(pg_temp.v('s1'), 'ByRole')), 2::bigint,
          'once granted, the role can append');
SELECT results_eq(format('SELECT type FROM everest.read_stream_forward(%L)', pg_temp.v('s1')),
                  ARRAY['A0', 'A1', 'ByRole'], 'once granted, the role can read a stream');
SELECT is(everest.stream_version(pg_temp.v('s1')), 2::bigint, 'once granted, the role can call stream_version');
SELECT lives_ok('SELECT everest.safe_position()', 'once granted, the role can call safe_position');
SELECT throws_ok('SELECT * FROM everest.events', '42501', NULL,
                 'granted the functions, the role still cannot read everest.events');
SELECT throws_ok($q$UPDATE everest.events SET type = 'x'$q$, '42501', NULL,
                 'granted the functions, the role still cannot update everest.events');
SELECT throws_ok('SELECT * FROM everest.handlers', '42501', NULL,
                 'granted the functions, the role still cannot read everest.handlers');
RESET role;

SELECT * FROM finish();
ROLLBACK;

-- Remove the committed setup events again.
SELECT sum(everest.delete_stream(s)) AS cleaned FROM unnest(ARRAY[:'cat' || '-1', :'cat' || '-2']) AS s \gset
