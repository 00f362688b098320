-- everest pgTAP: the fixed SQL surface (DESIGN.md section 2: "these names and shapes are fixed,
-- so that clients and examples keep working") and the dump registration of section 6.
BEGIN;
SELECT plan(95);

SELECT has_schema('everest', 'schema everest exists');

-- =============================================================================================
-- Every function: argument names and types, result
-- =============================================================================================
CREATE TEMP TABLE surface (name text, args text, result text);
INSERT INTO surface VALUES
 ('append_events', 'stream text, events jsonb, expected_version bigint',
  'TABLE(first_version bigint, last_version bigint, first_position bigint, last_position bigint)'),
 ('append_event', 'stream text, type text, data jsonb, metadata jsonb, expected_version bigint, id uuid',
  'TABLE(first_version bigint, last_version bigint, first_position bigint, last_position bigint)'),
 ('read_event', 'stream text, version bigint', 'SETOF everest.recorded_event'),
 ('read_stream_forward', 'stream text, from_version bigint, max_count integer', 'SETOF everest.recorded_event'),
 ('read_stream_backward', 'stream text, from_version bigint, max_count integer', 'SETOF everest.recorded_event'),
 ('read_all_forward', 'from_position bigint, max_count integer', 'SETOF everest.recorded_event'),
 ('read_all_backward', 'from_position bigint, max_count integer', 'SETOF everest.recorded_event'),
 ('stream_version', 'stream text', 'bigint'),
 ('delete_stream', 'stream text, expected_version bigint, tombstone boolean', 'bigint'),
 ('safe_position', '', 'bigint'),
 ('handler_position', 'handler text, member integer', 'bigint'),
 ('handler_state', 'handler text, member integer', 'jsonb'),
 ('save_handler_position', 'handler text, "position" bigint, member integer, lease uuid, expected_position bigint', 'void'),
 ('save_handler_state', 'handler text, "position" bigint, state jsonb, member integer, lease uuid, expected_position bigint', 'void'),
 ('wait_for_position', 'after bigint, timeout_ms integer', 'bigint'),
 ('acquire_lease', 'handler text, ttl interval, member integer', 'TABLE(granted_member integer, lease uuid)'),
 ('renew_lease', 'handler text, lease uuid, ttl interval', 'boolean'),
 ('release_lease', 'handler text, lease uuid', 'boolean'),
 ('reset_handler', 'handler text, "position" bigint', 'void'),
 ('read_handler_events', 'handler text, source text, max_count integer, member integer, types text[], after bigint', 'SETOF everest.recorded_event'),
 ('try_acquire_handler', 'handler text', 'boolean'),
 ('stream_partition', 'stream text, members integer', 'integer'),
 ('resize_handler', 'handler text, members integer', 'void'),
 ('drop_handler', 'handler text', 'boolean'),
 ('park_event', 'handler text, "position" bigint, reason text, member integer, lease uuid', 'void'),
 ('unpark_event', 'handler text, "position" bigint', 'boolean'),
 ('note_attempt', 'handler text, "position" bigint, member integer', 'integer'),
 ('set_event_schema', 'type text, schema jsonb', 'void'),
 ('drop_event_schema', 'type text', 'boolean'),
 ('reset_stats', '', 'void'),
 ('stats_counters', 'OUT database name, OUT appends bigint, OUT events_appended bigint, OUT idempotent_retries bigint, '
  'OUT reads bigint, OUT events_read bigint, OUT notifications bigint, OUT ev001_conflicts bigint, OUT ev002_rejections bigint, '
  'OUT ev003_rejections bigint, OUT ev004_rejections bigint, OUT ev005_rejections bigint, OUT ev006_rejections bigint, '
  'OUT ev007_rejections bigint, OUT horizon_holders integer, OUT oldest_holder_seconds double precision, '
  'OUT standby_trail_events bigint, OUT standby_horizon_age_seconds double precision, OUT stats_reset timestamp with time zone',
  'record');

SELECT is((SELECT count(*) FROM pg_proc p WHERE p.pronamespace = 'everest'::regnamespace AND p.proname = s.name),
          1::bigint, format('everest.%s exists, without overloads', s.name))
  FROM surface s ORDER BY name;
SELECT is((SELECT pg_get_function_identity_arguments(p.oid) || ' -> ' || pg_get_function_result(p.oid)
             FROM pg_proc p WHERE p.pronamespace = 'everest'::regnamespace AND p.proname = s.name LIMIT 1),
          s.args || ' -> ' || s.result, format('everest.%s(%s) returns %s', s.name, s.args, s.result))
  FROM surface s ORDER BY name;

SELECT is((SELECT string_agg(proname::text, ',' ORDER BY proname) FROM pg_proc
            WHERE pronamespace = 'everest'::regnamespace AND proname NOT IN (SELECT name FROM surface)),
          'forbid_event_changes,in_flight_appends,notifiers,release_handler',
          'no function beyond the fixed surface but the documented utilities (the list above is complete)');

SELECT is((SELECT string_agg(attname || ' ' || format_type(atttypid, atttypmod), ', ' ORDER BY attnum)
             FROM pg_attribute
            WHERE attrelid = 'everest.recorded_event'::regclass AND attnum > 0 AND NOT attisdropped),
          'stream text, version bigint, position bigint, id uuid, type text, data jsonb, metadata jsonb, '
          'created_at timestamp with time zone',
          'everest.recorded_event has the columns of DESIGN.md, in order');

-- =============================================================================================
-- Defaults, exercised
-- =============================================================================================
SELECT is((SELECT first_version FROM everest.append_events('tapsurface-d', '[{"type": "A"}]')), 0::bigint,
          'append_events(stream, events): expected_version defaults to -2 on a new stream');
SELECT is((SELECT first_version FROM everest.append_events('tapsurface-d', '[{"type": "B"}]')), 1::bigint,
          '... and on an existing one');
SELECT is((SELECT first_version FROM everest.append_event('tapsurface-d', 'C')), 2::bigint,
          'append_event(stream, type): the other arguments default');
SELECT is((SELECT last_version FROM everest.append_events('tapsurface-big',
              (SELECT jsonb_agg(jsonb_build_object('type', 'T' || i)) FROM generate_series(0, 1000) AS i))),
          1000::bigint, 'setup: a stream of 1001 events');
SELECT is((SELECT count(*) FROM everest.read_stream_forward('tapsurface-big')), 1000::bigint,
          'read_stream_forward(stream): max_count defaults to 1000');
SELECT is((SELECT min(version) FROM everest.read_stream_forward('tapsurface-big')), 0::bigint,
          'read_stream_forward(stream): from_version defaults to 0');
SELECT is((SELECT count(*) FROM everest.read_stream_backward('tapsurface-big')), 1000::bigint,
          'read_stream_backward(stream): max_count defaults to 1000');
SELECT is((SELECT max(version) FROM everest.read_stream_backward('tapsurface-big')), 1000::bigint,
          'read_stream_backward(stream): from_version defaults to -1 (the end)');
SELECT is((SELECT count(*) FROM everest.read_all_forward()), (SELECT least(count(*), 1000) FROM everest.read_all_forward(0, 2147483647)),
          'read_all_forward() takes no argument: 1,000 events from the start');
SELECT is((SELECT count(*) FROM everest.read_all_backward()), (SELECT least(count(*), 1000) FROM everest.read_all_forward(0, 2147483647)),
          'read_all_backward() takes no argument: 1,000 events from the end');
SELECT is(everest.delete_stream('tapsurface-d'), 3::bigint, 'delete_stream(stream): -2, no tombstone by default');
SELECT is((SELECT first_version FROM everest.append_event('tapsurface-d', 'D')), 0::bigint,
          '... the name was not retired');
SELECT lives_ok($q$SELECT everest.reset_handler('tapsurface-h')$q$, 'reset_handler(handler): the position defaults');
SELECT lives_ok($q$SELECT * FROM everest.read_handler_events('tapsurface-h')$q$,
                'read_handler_events(handler): source and max_count default');

-- =============================================================================================
-- Named arguments, as clients and examples write them
-- =============================================================================================
SELECT is((SELECT first_version FROM everest.append_events(stream => 'tapsurface-n', events => '[{"type": "A"}]',
                                                           expected_version => -1)),
          0::bigint, 'append_events with named arguments');
SELECT is((SELECT first_version FROM everest.append_event(stream => 'tapsurface-n', type => 'B', data => '{"x": 1}',
                                                          metadata => '{"m": 1}', expected_version => 0,
                                                          id => 'f0000000-0000-4000-8000-000000000001')),
          1::bigint, 'append_event with named arguments');
SELECT is((SELECT type FROM everest.read_event(stream => 'tapsurface-n', version => -1)), 'B',
          'read_event(stream => ..., version => -1)');
SELECT is((SELECT count(*) FROM everest.read_stream_forward(stream => 'tapsurface-n', from_version => 1, max_count => 5)),
          1::bigint, 'read_stream_forward with named arguments');
SELECT is((SELECT count(*) FROM everest.read_stream_backward(stream => 'tapsurface-n', from_version => 0, max_count => 5)),
          1::bigint, 'read_stream_backward with named arguments');
SELECT lives_ok($q$SELECT * FROM everest.read_all_forward(from_position => 0, max_count => 1)$q$,
                'read_all_forward with named arguments');
SELECT lives_ok($q$SELECT * FROM everest.read_all_backward(from_position => -1, max_count => 1)$q$,
                'read_all_backward with named arguments');
SELECT is(everest.stream_version(stream => 'tapsurface-n'), 1::bigint, 'stream_version with a named argument');
-- POSITION is a keyword of SQL (position(a IN b)): as a named argument it must be quoted.
SELECT lives_ok($q$SELECT everest.save_handler_state(handler => 'tapsurface-h', "position" => 5, state => '{}')$q$,
                'save_handler_state with named arguments');
SELECT lives_ok($q$SELECT everest.save_handler_position(handler => 'tapsurface-h', "position" => 6)$q$,
                'save_handler_position with named arguments');
SELECT is(everest.handler_position(handler => 'tapsurface-h'), 6::bigint, 'handler_position with a named argument');
SELECT lives_ok($q$SELECT everest.reset_handler(handler => 'tapsurface-h', "position" => 1)$q$,
                'reset_handler with named arguments');
SELECT lives_ok($q$SELECT * FROM everest.read_handler_events(handler => 'tapsurface-h', source => '$all', max_count => 1)$q$,
                'read_handler_events with named arguments');
SELECT is(everest.delete_stream(stream => 'tapsurface-n', expected_version => 1, tombstone => true), 2::bigint,
          'delete_stream with named arguments');

-- =============================================================================================
-- pg_dump keeps the events: every table and sequence of everest is registered, except the
-- leases, which are transient (docs/topologies.md)
-- =============================================================================================
SELECT is((SELECT string_agg(c.relname, ',' ORDER BY c.relname) FROM pg_class c
            WHERE c.relnamespace = 'everest'::regnamespace AND c.relkind IN ('r', 'p', 'S')
              AND c.oid <> ALL (SELECT unnest(extconfig) FROM pg_extension WHERE extname = 'everest')),
          'attempts,leases', 'every table and sequence of everest but leases and attempts is registered with pg_extension_config_dump');
SELECT ok('everest.events'::regclass = ANY ((SELECT extconfig FROM pg_extension WHERE extname = 'everest')::oid[]),
          'everest.events is registered with pg_extension_config_dump');

SELECT * FROM finish();
ROLLBACK;
