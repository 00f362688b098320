-- everest pgTAP: event types (DESIGN.md section 11; docs/schemas.md): $et-<type> reads, gap-safe
-- like $ce-, and the length limit of event types.
SELECT 'taptype' || substr(md5(random()::text || clock_timestamp()::text), 1, 10) AS t \gset
SELECT count(*) AS _ FROM generate_series(1, 30) i,
       LATERAL everest.append_event('tt-' || i, CASE WHEN i % 3 = 0 THEN :'t' || '-Rare' ELSE :'t' || '-Common' END,
                                    jsonb_build_object('i', i)) \gset
SELECT pg_sleep(0.05) IS NULL AS _ \gset

BEGIN;
SELECT plan(13);
SELECT set_config('tap.t', :'t', true) IS NOT NULL AS _ \gset
CREATE FUNCTION pg_temp.et(suffix text) RETURNS text LANGUAGE sql STABLE AS $f$ SELECT '$et-' || current_setting('tap.t') || suffix $f$;

SELECT is((SELECT string_agg((data->>'i'), ',' ORDER BY position) FROM everest.read_stream_forward(pg_temp.et('-Rare'))),
          '3,6,9,12,15,18,21,24,27,30', '$et-<type> reads every event of that type, by position');
SELECT is((SELECT string_agg((data->>'i'), ',' ORDER BY position DESC) FROM everest.read_stream_backward(pg_temp.et('-Rare'), -1, 3)),
          '30,27,24', '... backward from the end');
SELECT is((SELECT count(*) FROM everest.read_stream_forward(pg_temp.et('-Rare'),
                  (SELECT position + 1 FROM everest.read_stream_forward(pg_temp.et('-Rare'), 0, 5) OFFSET 4), 100)), 5::bigint,
          '... forward from a position: inclusive start, like $ce-');
SELECT is((SELECT data->>'i' FROM everest.read_event(pg_temp.et('-Rare'), -1)), '30', 'read_event(''$et-...'', -1) is the last one');
SELECT is((SELECT count(*) FROM everest.read_handler_events(current_setting('tap.t') || '-h', pg_temp.et('-Common'), 100)), 20::bigint,
          'read_handler_events takes $et- as its source');
SELECT is((SELECT count(*) FROM everest.read_stream_forward(pg_temp.et('-Nothing'))), 0::bigint, 'a type nobody appended reads as empty');
SELECT is((SELECT count(*) FROM everest.read_stream_forward('$et-' || current_setting('tap.t') || '-rare')), 0::bigint,
          'types are case-sensitive');
SELECT throws_ok($$SELECT * FROM everest.read_stream_forward('$et-')$$, '22023', 'event type stream "$et-" names no type',
                 '"$et-" with no type is 22023');
SELECT throws_ok($$SELECT everest.append_event('$et-X', 'A')$$, '22023', NULL, 'appending to $et- is 22023');
SELECT throws_ok(format($$SELECT everest.append_event(%L, %L)$$, current_setting('tap.t') || '-long', repeat('t', 513)), '22023',
                 'invalid event at index 0: "type" is too long (513 bytes; the limit is 512)', 'an event type over 512 bytes is 22023');
SELECT lives_ok(format($$SELECT everest.append_event(%L, %L)$$, current_setting('tap.t') || '-long', repeat('t', 512)),
                'an event type of 512 bytes is fine');
-- gap-safe: an append of this transaction (in flight) is not visible, and holds the horizon
SELECT lives_ok(format($$SELECT everest.append_event('tt-in-flight', %L)$$, current_setting('tap.t') || '-Rare'),
                'this transaction appends one more of the type');
SELECT is((SELECT count(*) FROM everest.read_stream_forward(pg_temp.et('-Rare'))), 10::bigint,
          '$et- never goes past safe_position() (this transaction''s own append is in flight)');

SELECT * FROM finish();
ROLLBACK;
SELECT count(everest.delete_stream('tt-' || i)) AS _ FROM generate_series(1, 30) i \gset
