-- everest pgTAP: reads (DESIGN.md section 2 "Read").
--
-- $all and $ce-<category> reads never go past safe_position(), and this transaction's own
-- appends are in flight until it commits, so they cannot show in $all or a category here.
-- The events read through $all and categories are therefore committed first (below, outside the
-- test transaction) under a category name unique to this run, and deleted again at the end.
-- All $all checks are relative to those events' positions: positions are global to the database.
SELECT 'tapread' || substr(md5(random()::text || clock_timestamp()::text), 1, 12) AS cat \gset
SELECT everest.safe_position() AS sp0 \gset
-- Category :cat holds :cat-1 (5 events), :cat-2-x (2) and :cat (2, no dash); :catx-1 is another
-- category. The appends interleave so that category order differs from stream order.
SELECT first_position AS _ FROM everest.append_events(:'cat' || '-1', '[{"type": "A0"}, {"type": "A1", "data": {"n": 1}}]') \gset
SELECT first_position AS _ FROM everest.append_events(:'cat' || '-2-x', '[{"type": "B0", "metadata": {"m": true}}]') \gset
SELECT first_position AS _ FROM everest.append_events(:'cat', '[{"type": "C0"}]') \gset
SELECT first_position AS _ FROM everest.append_events(:'cat' || 'x-1', '[{"type": "X0"}]') \gset
SELECT first_position AS _ FROM everest.append_events(:'cat' || '-1', '[{"type": "A2"}, {"type": "A3"}, {"type": "A4"}]') \gset
SELECT first_position AS _ FROM everest.append_events(:'cat' || '-2-x', '[{"type": "B1"}]') \gset
SELECT first_position AS _ FROM everest.append_events(:'cat', '[{"type": "C1"}]') \gset
-- One event whose data is stored out of line (TOAST): 128 kB of hex digits, in category :catbig.
SELECT string_agg(md5(i::text), '') AS blob FROM generate_series(1, 4000) i \gset
SELECT first_position AS big_position FROM everest.append_events(:'cat' || 'big-1',
    jsonb_build_array(jsonb_build_object('type', 'Big', 'data', jsonb_build_object('blob', :'blob')))) \gset

BEGIN;
SELECT plan(116);

SELECT set_config('tap.cat', :'cat', true) IS NOT NULL AS _ \gset
SELECT set_config('tap.sp0', :'sp0', true) IS NOT NULL AS _ \gset
SELECT set_config('tap.blob_md5', md5(:'blob'), true) IS NOT NULL AS _ \gset
SELECT set_config('tap.big_position', :'big_position', true) IS NOT NULL AS _ \gset
-- s1 = cat-1, s2 = cat-2-x, s3 = cat, sx = catx-1 (another category)
CREATE FUNCTION pg_temp.s(n int) RETURNS text LANGUAGE sql STABLE AS $f$
    SELECT CASE n WHEN 1 THEN current_setting('tap.cat') || '-1'
                  WHEN 2 THEN current_setting('tap.cat') || '-2-x'
                  WHEN 3 THEN current_setting('tap.cat')
                  ELSE current_setting('tap.cat') || 'x-1' END
$f$;
CREATE FUNCTION pg_temp.ce() RETURNS text LANGUAGE sql STABLE AS
    $f$ SELECT '$ce-' || current_setting('tap.cat') $f$;
CREATE FUNCTION pg_temp.sp0() RETURNS bigint LANGUAGE sql STABLE AS
    $f$ SELECT current_setting('tap.sp0')::bigint $f$;
-- Position of version v of stream n, read through the stream
CREATE FUNCTION pg_temp.pos(n int, v bigint) RETURNS bigint LANGUAGE sql STABLE AS
    $f$ SELECT position FROM everest.read_event(pg_temp.s(n), v) $f$;
-- Every setup event, read stream by stream
CREATE TEMP VIEW setup_events AS
    SELECT * FROM everest.read_stream_forward(pg_temp.s(1))
    UNION ALL SELECT * FROM everest.read_stream_forward(pg_temp.s(2))
    UNION ALL SELECT * FROM everest.read_stream_forward(pg_temp.s(3))
    UNION ALL SELECT * FROM everest.read_stream_forward(pg_temp.s(4));
CREATE TEMP VIEW category_events AS
    SELECT * FROM setup_events WHERE stream <> pg_temp.s(4);

SELECT is((SELECT count(*) FROM setup_events), 10::bigint, 'setup: 10 committed events');
SELECT ok((SELECT min(position) > pg_temp.sp0() FROM setup_events),
          'setup: every setup position is above the safe_position() taken before');
SELECT ok(everest.safe_position() >= (SELECT max(position) FROM setup_events),
          'safe_position() covers the committed setup events');

-- =============================================================================================
-- read_stream_forward / read_stream_backward on a regular stream
-- =============================================================================================
SELECT results_eq($q$SELECT version FROM everest.read_stream_forward(pg_temp.s(1))$q$,
                  ARRAY[0, 1, 2, 3, 4]::bigint[], 'forward with defaults: every event, ascending');
SELECT results_eq($q$SELECT type FROM everest.read_stream_forward(pg_temp.s(1))$q$,
                  ARRAY['A0', 'A1', 'A2', 'A3', 'A4'], 'forward: the events in append order');
SELECT results_eq($q$SELECT version FROM everest.read_stream_forward(pg_temp.s(1), 2)$q$,
                  ARRAY[2, 3, 4]::bigint[], 'forward from 2: the start is inclusive');
SELECT results_eq($q$SELECT version FROM everest.read_stream_forward(pg_temp.s(1), 2, 2)$q$,
                  ARRAY[2, 3]::bigint[], 'forward from 2, max_count 2');
SELECT results_eq($q$SELECT version FROM everest.read_stream_forward(pg_temp.s(1), 0, 1)$q$,
                  ARRAY[0]::bigint[], 'forward from 0, max_count 1');
SELECT results_eq($q$SELECT version FROM everest.read_stream_forward(pg_temp.s(1), 4)$q$,
                  ARRAY[4]::bigint[], 'forward from the last version');
SELECT is_empty($q$SELECT * FROM everest.read_stream_forward(pg_temp.s(1), 5)$q$,
                'forward from past the end: nothing');
SELECT is_empty($q$SELECT * FROM everest.read_stream_forward(pg_temp.s(1), 0, 0)$q$,
                'forward with max_count 0: nothing');
SELECT results_eq($q$SELECT version FROM everest.read_stream_forward(pg_temp.s(1), 0, 1000)$q$,
                  ARRAY[0, 1, 2, 3, 4]::bigint[], 'forward with a max_count above the size');
SELECT results_eq($q$SELECT version FROM everest.read_stream_forward(pg_temp.s(1), max_count => 3)$q$,
                  ARRAY[0, 1, 2]::bigint[], 'forward, named max_count with the default start');

SELECT results_eq($q$SELECT version FROM everest.read_stream_backward(pg_temp.s(1))$q$,
                  ARRAY[4, 3, 2, 1, 0]::bigint[], 'backward with defaults: from the end, descending');
SELECT results_eq($q$SELECT version FROM everest.read_stream_backward(pg_temp.s(1), -1)$q$,
                  ARRAY[4, 3, 2, 1, 0]::bigint[], 'backward from -1 = from the end');
SELECT results_eq($q$SELECT version FROM everest.read_stream_backward(pg_temp.s(1), 2)$q$,
                  ARRAY[2, 1, 0]::bigint[], 'backward from 2: the start is inclusive');
SELECT results_eq($q$SELECT version FROM everest.read_stream_backward(pg_temp.s(1), 3, 2)$q$,
                  ARRAY[3, 2]::bigint[], 'backward from 3, max_count 2');
SELECT results_eq($q$SELECT version FROM everest.read_stream_backward(pg_temp.s(1), -1, 1)$q$,
                  ARRAY[4]::bigint[], 'backward from the end, max_count 1: the last event');
SELECT results_eq($q$SELECT version FROM everest.read_stream_backward(pg_temp.s(1), 0)$q$,
                  ARRAY[0]::bigint[], 'backward from 0: the first event only');
SELECT results_eq($q$SELECT version FROM everest.read_stream_backward(pg_temp.s(1), 100)$q$,
                  ARRAY[4, 3, 2, 1, 0]::bigint[], 'backward from past the end: every event');
SELECT is_empty($q$SELECT * FROM everest.read_stream_backward(pg_temp.s(1), -1, 0)$q$,
                'backward with max_count 0: nothing');

SELECT results_eq($q$SELECT * FROM everest.read_stream_backward(pg_temp.s(1))$q$,
                  $q$SELECT * FROM everest.read_stream_forward(pg_temp.s(1)) ORDER BY version DESC$q$,
                  'backward returns the same rows as forward, reversed');
SELECT is((SELECT data FROM everest.read_stream_forward(pg_temp.s(1), 1, 1)), '{"n": 1}'::jsonb,
          'data is read back');
SELECT is((SELECT metadata FROM everest.read_stream_forward(pg_temp.s(2), 0, 1)), '{"m": true}'::jsonb,
          'metadata is read back');
SELECT ok((SELECT bool_and(stream = pg_temp.s(1)) FROM everest.read_stream_forward(pg_temp.s(1))),
          'a stream read returns only that stream''s events');
SELECT ok((SELECT bool_and(position > prev) FROM (
              SELECT position, lag(position) OVER (ORDER BY version) AS prev
                FROM everest.read_stream_forward(pg_temp.s(1))) t WHERE prev IS NOT NULL),
          'positions increase with versions');
SELECT is((SELECT count(*) FROM everest.read_stream_forward(pg_temp.s(3))), 2::bigint,
          'a stream whose name has no dash reads normally');

-- A stream that does not exist reads as empty
SELECT is_empty($q$SELECT * FROM everest.read_stream_forward('tapread-nosuchstream')$q$,
                'forward on a nonexistent stream: empty, no error');
SELECT is_empty($q$SELECT * FROM everest.read_stream_backward('tapread-nosuchstream')$q$,
                'backward on a nonexistent stream: empty, no error');
SELECT is_empty($q$SELECT * FROM everest.read_stream_forward(upper(pg_temp.s(1)))$q$,
                'names are case-sensitive: the upper-case name does not exist');

-- =============================================================================================
-- read_event
-- =============================================================================================
SELECT results_eq($q$SELECT * FROM everest.read_event(pg_temp.s(1), 3)$q$,
                  $q$SELECT * FROM everest.read_stream_forward(pg_temp.s(1), 3, 1)$q$,
                  'read_event returns the event at that version');
SELECT is((SELECT type FROM everest.read_event(pg_temp.s(1), 0)), 'A0', 'read_event version 0');
SELECT results_eq($q$SELECT * FROM everest.read_event(pg_temp.s(1), -1)$q$,
                  $q$SELECT * FROM everest.read_stream_backward(pg_temp.s(1), -1, 1)$q$,
                  'read_event with version -1: the last event');
SELECT is((SELECT version FROM everest.read_event(pg_temp.s(1), -1)), 4::bigint,
          'read_event -1 has the stream''s last version');
SELECT is((SELECT count(*) FROM everest.read_event(pg_temp.s(1), 5)), 0::bigint,
          'read_event past the end: zero rows');
SELECT is((SELECT count(*) FROM everest.read_event('tapread-nosuchstream', 0)), 0::bigint,
          'read_event on a nonexistent stream: zero rows');
SELECT is((SELECT count(*) FROM everest.read_event('tapread-nosuchstream', -1)), 0::bigint,
          'read_event -1 on a nonexistent stream: zero rows');

-- =============================================================================================
-- stream_version
-- =============================================================================================
SELECT is(everest.stream_version(pg_temp.s(1)), 4::bigint, 'stream_version of a 5-event stream is 4');
SELECT is(everest.stream_version(pg_temp.s(2)), 1::bigint, 'stream_version of a 2-event stream is 1');
SELECT is(everest.stream_version(pg_temp.s(3)), 1::bigint, 'stream_version of a name without dash');
SELECT is(everest.stream_version('tapread-nosuchstream'), -1::bigint, 'stream_version of a nonexistent stream is -1');

-- =============================================================================================
-- $all: relative to the setup events
-- =============================================================================================
SELECT results_eq(
    $q$SELECT * FROM everest.read_all_forward(pg_temp.sp0() + 1, 1000)
        WHERE stream IN (pg_temp.s(1), pg_temp.s(2), pg_temp.s(3), pg_temp.s(4))$q$,
    $q$SELECT * FROM setup_events ORDER BY position$q$,
    'read_all_forward holds every setup event, whole rows, in position order');
SELECT ok((SELECT bool_and(position > prev) FROM (
              SELECT position, lag(position) OVER () AS prev
                FROM everest.read_all_forward(pg_temp.sp0() + 1, 1000)) t WHERE prev IS NOT NULL),
          'read_all_forward: positions strictly ascending');
SELECT ok((SELECT bool_and(position < prev) FROM (
              SELECT position, lag(position) OVER () AS prev
                FROM everest.read_all_backward(-1, 50)) t WHERE prev IS NOT NULL),
          'read_all_backward: positions strictly descending');
SELECT results_eq(
    $q$SELECT position FROM everest.read_all_forward((SELECT min(position) FROM setup_events), 1)$q$,
    $q$SELECT min(position) FROM setup_events$q$,
    'read_all_forward: the start position is inclusive');
SELECT results_eq(
    $q$SELECT position FROM everest.read_all_forward((SELECT min(position) FROM setup_events), 3)$q$,
    $q$SELECT position FROM setup_events ORDER BY position LIMIT 3$q$,
    'read_all_forward(p, 3): the three events from p');
SELECT results_eq(
    $q$SELECT position FROM everest.read_all_forward(pg_temp.pos(1, 2), 4)$q$,
    $q$SELECT position FROM setup_events WHERE position >= pg_temp.pos(1, 2) ORDER BY position LIMIT 4$q$,
    'read_all_forward from the middle of the setup events');
SELECT is_empty($q$SELECT * FROM everest.read_all_forward(pg_temp.sp0() + 1, 0)$q$,
                'read_all_forward with max_count 0: nothing');
SELECT results_eq(
    $q$SELECT position FROM everest.read_all_backward((SELECT max(position) FROM setup_events), 3)$q$,
    $q$SELECT position FROM setup_events ORDER BY position DESC LIMIT 3$q$,
    'read_all_backward(p, 3): p inclusive, descending');
SELECT results_eq(
    $q$SELECT position FROM everest.read_all_backward(pg_temp.pos(1, 2), 2)$q$,
    $q$SELECT position FROM setup_events WHERE position <= pg_temp.pos(1, 2) ORDER BY position DESC LIMIT 2$q$,
    'read_all_backward from the middle of the setup events');
SELECT results_eq(
    $q$SELECT * FROM everest.read_all_backward((SELECT max(position) FROM setup_events), 10)$q$,
    $q$SELECT * FROM setup_events ORDER BY position DESC$q$,
    'read_all_backward: whole rows of the setup events, descending');
SELECT is_empty($q$SELECT * FROM everest.read_all_backward(-1, 0)$q$,
                'read_all_backward with max_count 0: nothing');
SELECT ok((SELECT position BETWEEN (SELECT max(position) FROM setup_events) AND everest.safe_position()
             FROM everest.read_all_backward(-1, 1)),
          'read_all_backward(-1, 1): the latest event, at or after the setup, not past safe_position()');
SELECT ok((SELECT max(position) <= everest.safe_position() FROM everest.read_all_forward(pg_temp.sp0() + 1, 1000)),
          'read_all_forward does not go past safe_position()');
SELECT is_empty(format('SELECT * FROM everest.read_all_forward(%s, 10)', everest.safe_position() + 1),
                'read_all_forward from past safe_position(): nothing');
SELECT results_eq(
    $q$SELECT * FROM everest.read_all_forward(pg_temp.sp0() + 1, 5)$q$,
    $q$SELECT * FROM everest.read_all_forward(from_position => pg_temp.sp0() + 1, max_count => 5)$q$,
    'read_all_forward takes named arguments');

-- read_all_* equals read_stream_*('$all', ...)
SELECT results_eq($q$SELECT * FROM everest.read_all_forward(pg_temp.sp0() + 1, 7)$q$,
                  $q$SELECT * FROM everest.read_stream_forward('$all', pg_temp.sp0() + 1, 7)$q$,
                  'read_all_forward(p, 7) = read_stream_forward(''$all'', p, 7)');
SELECT results_eq($q$SELECT * FROM everest.read_all_forward(pg_temp.pos(2, 0), 3)$q$,
                  $q$SELECT * FROM everest.read_stream_forward('$all', pg_temp.pos(2, 0), 3)$q$,
                  'read_all_forward(p, 3) = read_stream_forward(''$all'', p, 3) from the middle');
SELECT results_eq($q$SELECT * FROM everest.read_all_forward(pg_temp.sp0() + 1, 0)$q$,
                  $q$SELECT * FROM everest.read_stream_forward('$all', pg_temp.sp0() + 1, 0)$q$,
                  'read_all_forward(p, 0) = read_stream_forward(''$all'', p, 0)');
SELECT results_eq($q$SELECT * FROM everest.read_all_forward(0, 1000)$q$,
                  $q$SELECT * FROM everest.read_stream_forward('$all', 0, 1000)$q$,
                  'read_all_forward(0, 1000) = read_stream_forward(''$all'', 0, 1000)');
SELECT results_eq($q$SELECT * FROM everest.read_all_backward(-1, 6)$q$,
                  $q$SELECT * FROM everest.read_stream_backward('$all', -1, 6)$q$,
                  'read_all_backward(-1, 6) = read_stream_backward(''$all'', -1, 6)');
SELECT results_eq($q$SELECT * FROM everest.read_all_backward(pg_temp.pos(1, 3), 4)$q$,
                  $q$SELECT * FROM everest.read_stream_backward('$all', pg_temp.pos(1, 3), 4)$q$,
                  'read_all_backward(p, 4) = read_stream_backward(''$all'', p, 4)');

-- =============================================================================================
-- $ce-<category>
-- =============================================================================================
SELECT results_eq(
    $q$SELECT * FROM everest.read_stream_forward(pg_temp.ce(), pg_temp.sp0() + 1)$q$,
    $q$SELECT * FROM category_events ORDER BY position$q$,
    '$ce-<category> forward: every event of the category, whole rows, in position order');
SELECT results_eq(
    $q$SELECT type FROM everest.read_stream_forward(pg_temp.ce(), pg_temp.sp0() + 1)$q$,
    ARRAY['A0', 'A1', 'B0', 'C0', 'A2', 'A3', 'A4', 'B1', 'C1'],
    '$ce-<category> interleaves the category''s streams by position');
SELECT results_eq(
    $q$SELECT * FROM everest.read_stream_forward(pg_temp.ce())$q$,
    $q$SELECT * FROM category_events ORDER BY position$q$,
    '$ce-<category> forward with defaults (from 0)');
SELECT is((SELECT count(*) FROM everest.read_stream_forward(pg_temp.ce()) WHERE stream = pg_temp.s(3)),
          2::bigint, 'a stream named without dash belongs to the category of its whole name');
SELECT is((SELECT count(*) FROM everest.read_stream_forward(pg_temp.ce()) WHERE stream = pg_temp.s(2)),
          2::bigint, 'the category is the part before the first dash (cat-2-x is in cat)');
SELECT is((SELECT count(*) FROM everest.read_stream_forward(pg_temp.ce()) WHERE stream = pg_temp.s(4)),
          0::bigint, 'a category that merely starts with the same letters is another category');
SELECT results_eq(
    $q$SELECT stream FROM everest.read_stream_forward('$ce-' || current_setting('tap.cat') || 'x')$q$,
    ARRAY[current_setting('tap.cat') || 'x-1'],
    '$ce-<cat>x holds only its own stream');
SELECT results_eq(
    $q$SELECT position FROM everest.read_stream_forward(pg_temp.ce(), pg_temp.pos(3, 0), 3)$q$,
    $q$SELECT position FROM category_events WHERE position >= pg_temp.pos(3, 0) ORDER BY position LIMIT 3$q$,
    '$ce- forward from a position: inclusive, at most max_count');
SELECT results_eq(
    $q$SELECT * FROM everest.read_stream_backward(pg_temp.ce())$q$,
    $q$SELECT * FROM category_events ORDER BY position DESC$q$,
    '$ce- backward from -1: every event, descending');
SELECT results_eq(
    $q$SELECT position FROM everest.read_stream_backward(pg_temp.ce(), pg_temp.pos(1, 2), 3)$q$,
    $q$SELECT position FROM category_events WHERE position <= pg_temp.pos(1, 2) ORDER BY position DESC LIMIT 3$q$,
    '$ce- backward from a position: inclusive, descending, at most max_count');
SELECT is_empty($q$SELECT * FROM everest.read_stream_forward(pg_temp.ce(), 0, 0)$q$,
                '$ce- with max_count 0: nothing');
SELECT is_empty($q$SELECT * FROM everest.read_stream_forward('$ce-tapreadnosuchcategory')$q$,
                'a category without streams reads as empty');
SELECT is_empty($q$SELECT * FROM everest.read_stream_forward(pg_temp.ce(), (SELECT max(position) + 1 FROM category_events))$q$,
                '$ce- forward from past its last event: nothing');

-- =============================================================================================
-- Argument errors
-- =============================================================================================
SELECT throws_ok($q$SELECT * FROM everest.read_stream_forward('tapread-x', 0, -1)$q$, '22023', NULL,
                 'read_stream_forward max_count -1: 22023');
SELECT throws_ok($q$SELECT * FROM everest.read_stream_forward('tapread-x', 0, NULL)$q$, '22023', NULL,
                 'read_stream_forward max_count NULL: 22023');
SELECT throws_ok($q$SELECT * FROM everest.read_stream_backward('tapread-x', -1, -1)$q$, '22023', NULL,
                 'read_stream_backward max_count -1: 22023');
SELECT throws_ok($q$SELECT * FROM everest.read_stream_backward('tapread-x', -1, NULL)$q$, '22023', NULL,
                 'read_stream_backward max_count NULL: 22023');
SELECT throws_ok($q$SELECT * FROM everest.read_all_forward(0, -1)$q$, '22023', NULL,
                 'read_all_forward max_count -1: 22023');
SELECT throws_ok($q$SELECT * FROM everest.read_all_forward(0, NULL)$q$, '22023', NULL,
                 'read_all_forward max_count NULL: 22023');
SELECT throws_ok($q$SELECT * FROM everest.read_all_backward(-1, -5)$q$, '22023', NULL,
                 'read_all_backward max_count -5: 22023');
SELECT throws_ok($q$SELECT * FROM everest.read_all_backward(-1, NULL)$q$, '22023', NULL,
                 'read_all_backward max_count NULL: 22023');
SELECT throws_ok($q$SELECT * FROM everest.read_stream_forward('$all', 0, -1)$q$, '22023', NULL,
                 'read_stream_forward($all) max_count -1: 22023');
SELECT throws_ok($q$SELECT * FROM everest.read_stream_forward('$ce-tapread', 0, -1)$q$, '22023', NULL,
                 'read_stream_forward($ce-) max_count -1: 22023');
SELECT throws_ok($q$SELECT * FROM everest.read_stream_backward('$ce-tapread', -1, NULL)$q$, '22023', NULL,
                 'read_stream_backward($ce-) max_count NULL: 22023');
SELECT throws_ok($q$SELECT * FROM everest.read_stream_forward('tapread-nosuchstream', 0, -1)$q$, '22023', NULL,
                 'max_count -1 on a nonexistent stream: 22023 all the same');
SELECT throws_ok($q$SELECT * FROM everest.read_stream_forward(NULL)$q$, '22004', NULL,
                 'read_stream_forward NULL stream: 22004');
SELECT throws_ok($q$SELECT * FROM everest.read_stream_backward(NULL)$q$, '22004', NULL,
                 'read_stream_backward NULL stream: 22004');
SELECT throws_ok($q$SELECT * FROM everest.read_event(NULL, 0)$q$, '22004', NULL,
                 'read_event NULL stream: 22004');
SELECT throws_ok($q$SELECT everest.stream_version(NULL)$q$, '22004', NULL,
                 'stream_version NULL stream: 22004');
SELECT throws_ok($q$SELECT * FROM everest.read_stream_forward('', 0)$q$, '22023', NULL,
                 'read_stream_forward empty stream name: 22023');
SELECT throws_ok(format('SELECT * FROM everest.read_stream_forward(%L)', repeat('r', 513)), '22023', NULL,
                 'read_stream_forward 513-byte stream name: 22023');

-- =============================================================================================
-- Result sets alive at the same time. A read's result lives in a context reused from read to
-- read (src/pg/read.c, ev_init_result); these would show another read's rows, or crash, if a
-- read reused it while an earlier result was still being consumed.
-- =============================================================================================
SELECT results_eq(
    $q$SELECT a.type || b.type FROM everest.read_stream_forward(pg_temp.s(1)) a
        CROSS JOIN everest.read_stream_forward(pg_temp.s(2)) b ORDER BY 1$q$,
    ARRAY['A0B0', 'A0B1', 'A1B0', 'A1B1', 'A2B0', 'A2B1', 'A3B0', 'A3B1', 'A4B0', 'A4B1'],
    'two reads in one query: both results intact');
SELECT results_eq(
    $q$SELECT e.type, (SELECT string_agg(o.type, ',') FROM everest.read_stream_forward(pg_temp.s(2)) o)
        FROM everest.read_stream_forward(pg_temp.s(1)) e$q$,
    $q$VALUES ('A0', 'B0,B1'), ('A1', 'B0,B1'), ('A2', 'B0,B1'), ('A3', 'B0,B1'), ('A4', 'B0,B1')$q$,
    'a read per row of another read: the outer result intact');
SELECT results_eq(
    $q$SELECT n, e.type FROM (VALUES (3), (1), (2)) s(n),
        LATERAL everest.read_stream_forward(pg_temp.s(n)) e ORDER BY n, e.version$q$,
    $q$VALUES (1, 'A0'), (1, 'A1'), (1, 'A2'), (1, 'A3'), (1, 'A4'), (2, 'B0'), (2, 'B1'),
              (3, 'C0'), (3, 'C1')$q$,
    'a read called again per outer row (LATERAL): every result intact');
DECLARE held CURSOR FOR SELECT type FROM everest.read_stream_forward(pg_temp.s(1));
SELECT results_eq($q$FETCH 2 FROM held$q$, ARRAY['A0', 'A1'], 'a cursor over a read: first rows');
SELECT results_eq($q$SELECT type FROM everest.read_all_forward(pg_temp.sp0() + 1, 1000)
                     WHERE stream = pg_temp.s(2)$q$,
                  ARRAY['B0', 'B1'], '... another read while the cursor is open');
SELECT results_eq($q$SELECT type FROM everest.read_stream_forward(pg_temp.s(3))$q$,
                  ARRAY['C0', 'C1'], '... and one more');
SELECT results_eq($q$FETCH ALL FROM held$q$, ARRAY['A2', 'A3', 'A4'],
                  '... the cursor''s rows are intact after it');
CLOSE held;
SELECT throws_ok($q$SELECT 1 / (version - 2) FROM everest.read_stream_forward(pg_temp.s(1))$q$, '22012', NULL,
                 'an error while a read''s result is consumed');
SELECT results_eq($q$SELECT type FROM everest.read_stream_backward(pg_temp.s(1), -1, 2)$q$,
                  ARRAY['A4', 'A3'], '... and the next read is right');
SELECT cmp_ok((SELECT total_bytes FROM pg_backend_memory_contexts WHERE name = 'everest read results'),
              '<=', 1024 * 1024 + 64 * 1024::bigint,
              'the reused read-result context keeps no more than its first block between reads');

-- =============================================================================================
-- Data stored out of line (TOAST) reads back whole, whichever way it is read
-- =============================================================================================
SELECT is((SELECT md5(data->>'blob') FROM everest.read_stream_forward(current_setting('tap.cat') || 'big-1')),
          current_setting('tap.blob_md5'), '128 kB of data reads back whole from its stream');
SELECT is((SELECT md5(data->>'blob') FROM everest.read_all_forward(current_setting('tap.big_position')::bigint, 1)),
          current_setting('tap.blob_md5'), '... from $all');
SELECT is((SELECT md5(data->>'blob') FROM everest.read_event(current_setting('tap.cat') || 'big-1', 0)),
          current_setting('tap.blob_md5'), '... and by read_event');

-- =============================================================================================
-- This transaction's own appends: visible in their stream at once, in $all only once committed
-- =============================================================================================
CREATE TEMP TABLE own AS SELECT * FROM everest.append_events(pg_temp.s(1), '[{"type": "A5"}]', 4);
SELECT results_eq($q$SELECT version FROM everest.read_stream_forward(pg_temp.s(1), 5)$q$,
                  ARRAY[5]::bigint[], 'an uncommitted append shows in its own stream read');
SELECT is(everest.stream_version(pg_temp.s(1)), 5::bigint, '... and in stream_version');
SELECT ok(everest.safe_position() < (SELECT first_position FROM own),
          'safe_position() stays below this transaction''s in-flight position');
SELECT is_empty($q$SELECT * FROM everest.read_all_forward((SELECT first_position FROM own), 10)$q$,
                '$all does not show an uncommitted append (it never goes past safe_position())');
SELECT is((SELECT count(*) FROM everest.read_stream_forward(pg_temp.ce()) WHERE type = 'A5'), 0::bigint,
          '$ce- does not show an uncommitted append');
SELECT is_empty($q$SELECT * FROM everest.read_event('$all', (SELECT first_position FROM own))$q$,
                'read_event of $all at an uncommitted append''s position: zero rows');
SELECT results_eq($q$SELECT stream, version FROM everest.read_event('$all', pg_temp.pos(2, 1))$q$,
                  $q$SELECT pg_temp.s(2), 1::bigint$q$, 'read_event of $all at a committed position: that event');
SELECT is_empty($q$SELECT * FROM everest.read_event('$all', pg_temp.pos(2, 1) + 1000000)$q$,
                'read_event of $all past safe_position(): zero rows');
SELECT is_empty($q$SELECT * FROM everest.read_event('$ce-' || current_setting('tap.cat') || 'x', pg_temp.pos(2, 1))$q$,
                'read_event of a category at a position of another category: zero rows');
SELECT results_eq(
    $q$SELECT * FROM everest.read_all_forward(pg_temp.sp0() + 1, 1000)
        WHERE stream IN (pg_temp.s(1), pg_temp.s(2), pg_temp.s(3), pg_temp.s(4))$q$,
    $q$SELECT * FROM setup_events WHERE type <> 'A5' ORDER BY position$q$,
    'the committed events are still all there in $all');

SELECT * FROM finish();
ROLLBACK;

-- Remove the committed setup events again.
SELECT sum(everest.delete_stream(s)) AS cleaned
  FROM unnest(ARRAY[:'cat' || '-1', :'cat' || '-2-x', :'cat', :'cat' || 'x-1', :'cat' || 'big-1']) AS s \gset
