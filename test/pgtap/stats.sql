-- everest pgTAP: everest.stats and reset_stats() (README, "Metrics"; docs/operations.md).
-- The counters are shared by every session of the database and are not transactional, so each
-- check compares a counter with its value at the last mark (pg_temp.mark) instead of a total.
-- The suites run one after another, so nothing else moves them in between (the notifier only
-- moves `notifications`, which is checked by test/shell/exporter.sh instead).
-- Two committed events for the handler read (a handler never reads past safe_position(), and
-- this transaction's own appends are in flight); deleted again at the end.
SELECT 'tapstats' || substr(md5(random()::text || clock_timestamp()::text), 1, 12) AS p \gset
SELECT everest.append_events(:'p' || '-committed', '[{"type":"K"},{"type":"K"}]') IS NOT NULL AS _ \gset

BEGIN;
SELECT plan(50);
SELECT set_config('tap.p', :'p', true) IS NOT NULL AS _ \gset
CREATE FUNCTION pg_temp.s(suffix text) RETURNS text LANGUAGE sql STABLE AS
  $f$ SELECT current_setting('tap.p') || '-' || suffix $f$;

CREATE TEMP TABLE mark AS SELECT * FROM everest.stats;
CREATE FUNCTION pg_temp.mark() RETURNS void LANGUAGE sql AS
  $f$ DELETE FROM mark; INSERT INTO mark SELECT * FROM everest.stats; $f$;
-- How far a counter moved since the mark.
CREATE FUNCTION pg_temp.d(col text) RETURNS bigint LANGUAGE plpgsql AS $f$
DECLARE r bigint;
BEGIN
  EXECUTE format('SELECT (SELECT %1$I FROM everest.stats) - (SELECT %1$I FROM mark)', col) INTO r;
  RETURN r;
END $f$;
-- Every counter that moved since the mark, as name=delta, in column order.
CREATE FUNCTION pg_temp.moved() RETURNS text LANGUAGE plpgsql AS $f$
DECLARE c text; r text := ''; v bigint;
BEGIN
  FOR c IN SELECT a.attname FROM pg_attribute a
            WHERE a.attrelid = 'everest.stats'::regclass AND a.attnum > 0
              AND a.atttypid = 'bigint'::regtype AND a.attname <> 'standby_trail_events'
            ORDER BY a.attnum LOOP
    v := pg_temp.d(c);
    IF v <> 0 THEN r := r || c || '=' || v || ' '; END IF;
  END LOOP;
  RETURN rtrim(r);
END $f$;

SELECT is((SELECT database::text FROM everest.stats), current_database()::text, 'one row: this database');
SELECT is((SELECT count(*) FROM everest.stats), 1::bigint, '... and only it');
SELECT ok((SELECT appends IS NOT NULL AND stats_reset IS NOT NULL FROM everest.stats),
          'the database has a slot (counters are not NULL)');

-- Appends: one per call that wrote, events by batch size
SELECT pg_temp.mark();
SELECT lives_ok(format($$SELECT everest.append_events(%L, '[{"type":"A"},{"type":"B"}]')$$, pg_temp.s('a')), 'append a batch of 2');
SELECT lives_ok(format($$SELECT everest.append_event(%L, 'C')$$, pg_temp.s('a')), 'append 1');
SELECT lives_ok(format($$SELECT everest.append_events(%L, '[{"type":"D"},{"type":"E"},{"type":"F"}]')$$, pg_temp.s('b')),
                'append a batch of 3');
SELECT is(pg_temp.d('appends'), 3::bigint, 'three appends count 3');
SELECT is(pg_temp.d('events_appended'), 6::bigint, '... and 2 + 1 + 3 events');
SELECT is(pg_temp.moved(), 'appends=3 events_appended=6', '... and nothing else moved');

-- EV001: a wrong expected version counts once and appends nothing
SELECT pg_temp.mark();
SELECT throws_ok(format($$SELECT everest.append_event(%L, 'X', expected_version => 0)$$, pg_temp.s('a')), 'EV001', NULL,
                 'a wrong expected version: EV001');
SELECT is(pg_temp.d('ev001_conflicts'), 1::bigint, 'the conflict counts 1');
SELECT is(pg_temp.moved(), 'ev001_conflicts=1', '... and is not an append');

-- An idempotent retry counts 1 and writes nothing
SELECT lives_ok(format($$SELECT everest.append_events(%L, '[{"type":"R","id":"%s"}]', -1)$$,
                       pg_temp.s('r'), gen_random_uuid()), 'an append with a client id');
SELECT pg_temp.mark();
SELECT is((SELECT first_version FROM everest.append_events(pg_temp.s('r'),
             (SELECT jsonb_build_array(jsonb_build_object('type', type, 'id', id)) FROM everest.read_event(pg_temp.s('r'), 0)), -1)),
          0::bigint, 'the same batch again: the original version');
SELECT is(pg_temp.d('idempotent_retries'), 1::bigint, 'the retry counts 1');
SELECT is(pg_temp.d('appends') || ',' || pg_temp.d('events_appended'), '0,0', '... and is no append: it wrote nothing');
SELECT is(everest.stream_version(pg_temp.s('r')), 0::bigint, '... the stream still has one event');

-- EV003: a stored id outside a retry
SELECT pg_temp.mark();
SELECT throws_ok(format($$SELECT everest.append_events(%L, %L)$$, pg_temp.s('other'),
                        (SELECT jsonb_build_array(jsonb_build_object('type', type, 'id', id)) FROM everest.read_event(pg_temp.s('r'), 0))),
                 'EV003', NULL, 'a stored id in another stream: EV003');
SELECT is(pg_temp.d('ev003_rejections'), 1::bigint, 'EV003 counts 1');

-- Reads: one per call, events by the rows returned
SELECT pg_temp.mark();
SELECT is((SELECT count(*) FROM everest.read_stream_forward(pg_temp.s('b'))), 3::bigint, 'read a stream of 3');
SELECT is((SELECT count(*) FROM everest.read_stream_backward(pg_temp.s('b'), -1, 2)), 2::bigint, 'read 2 of it backwards');
SELECT is((SELECT count(*) FROM everest.read_event(pg_temp.s('a'), 1)), 1::bigint, 'read one event');
SELECT is((SELECT count(*) FROM everest.read_stream_forward(pg_temp.s('none'))), 0::bigint, 'read a stream that does not exist');
SELECT is(pg_temp.d('reads'), 4::bigint, 'four reads count 4');
SELECT is(pg_temp.d('events_read'), 6::bigint, '... and 3 + 2 + 1 + 0 events read');
SELECT is(pg_temp.moved(), 'reads=4 events_read=6', '... and nothing else moved');
SELECT pg_temp.mark();
SELECT is((SELECT count(*) FROM everest.read_handler_events(pg_temp.s('h'), pg_temp.s('committed'), 10)), 2::bigint,
          'a handler reads a committed stream');
SELECT is(pg_temp.d('reads') || ',' || pg_temp.d('events_read'), '1,2', 'read_handler_events counts as a read of 2');

-- Rejections by SQLSTATE
SELECT pg_temp.mark();
SELECT lives_ok(format($$SELECT everest.delete_stream(%L, tombstone => true)$$, pg_temp.s('b')), 'tombstone a stream');
SELECT throws_ok(format($$SELECT everest.append_event(%L, 'X')$$, pg_temp.s('b')), 'EV002', NULL, 'append to it: EV002');
SELECT is(pg_temp.d('ev002_rejections'), 1::bigint, 'EV002 counts 1');

SELECT lives_ok(format($$SELECT everest.save_handler_position(%L, 5, expected_position => 0)$$, pg_temp.s('h4')), 'save a checkpoint at 5');
SELECT throws_ok(format($$SELECT everest.save_handler_position(%L, 3, expected_position => 5)$$, pg_temp.s('h4')), 'EV004', NULL,
                 'save a lower one: EV004');
SELECT is(pg_temp.d('ev004_rejections'), 1::bigint, 'EV004 counts 1');

SELECT lives_ok(format($$SELECT everest.acquire_lease(%L)$$, pg_temp.s('h5')), 'lease a handler');
SELECT throws_ok(format($$SELECT everest.save_handler_position(%L, 1, expected_position => 0)$$, pg_temp.s('h5')), 'EV005', NULL,
                 'save without the lease: EV005');
SELECT is(pg_temp.d('ev005_rejections'), 1::bigint, 'EV005 counts 1');

SELECT throws_ok($$SELECT * FROM everest.read_all_forward(everest.safe_position() + 1000000)$$, 'EV006', NULL,
                 'read $all after a checkpoint beyond anything assigned: EV006');
SELECT is(pg_temp.d('ev006_rejections'), 1::bigint, 'EV006 counts 1 (and the failed read is no read)');

SELECT lives_ok(format($$SELECT everest.set_event_schema(%L, '{"type": "object", "required": ["n"]}')$$, pg_temp.s('T')),
                'an event contract');
SELECT throws_ok(format($$SELECT everest.append_event(%L, %L, '{}')$$, pg_temp.s('c'), pg_temp.s('T')), 'EV007', NULL,
                 'an event that breaks it: EV007');
SELECT is(pg_temp.d('ev007_rejections'), 1::bigint, 'EV007 counts 1');
SELECT is(pg_temp.moved(),
          'ev002_rejections=1 ev004_rejections=1 ev005_rejections=1 ev006_rejections=1 ev007_rejections=1',
          'each rejection moved its own counter only (a read that fails is no read)');

-- Horizon holders: this transaction's appends are in flight
SELECT pg_sleep(0.05);
SELECT ok((SELECT horizon_holders >= 1 FROM everest.stats), 'this transaction holds the horizon: horizon_holders >= 1');
SELECT ok((SELECT oldest_holder_seconds >= extract(epoch FROM clock_timestamp() - now()) - 1
                  AND oldest_holder_seconds > 0 FROM everest.stats),
          'oldest_holder_seconds: at least as old as this transaction');
SELECT ok((SELECT standby_trail_events IS NULL AND standby_horizon_age_seconds IS NULL FROM everest.stats),
          'a primary shows no standby trail');

-- reset_stats
SELECT pg_temp.mark();
SELECT lives_ok($$SELECT everest.reset_stats()$$, 'reset_stats()');
SELECT is(pg_temp.moved() <> '', true, 'counters moved ...');
SELECT is((SELECT appends + events_appended + idempotent_retries + reads + events_read + ev001_conflicts + ev002_rejections
                  + ev003_rejections + ev004_rejections + ev005_rejections + ev006_rejections + ev007_rejections
             FROM everest.stats), 0::bigint, '... to zero');
SELECT ok((SELECT s.stats_reset > m.stats_reset AND s.stats_reset <= clock_timestamp() FROM everest.stats s, mark m),
          'stats_reset moved to the reset');

SELECT * FROM finish();
ROLLBACK;
SELECT everest.delete_stream(:'p' || '-committed') IS NOT NULL AS _ \gset
