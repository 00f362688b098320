-- everest pgTAP: handler checkpoints, state, read_handler_events and the session lease
-- (DESIGN.md section 2 "Handlers"). Cross-session lease behaviour is in the isolation specs.
--
-- read_handler_events never goes past safe_position(), and this transaction's own appends are
-- in flight until it commits, so the events it reads are committed first (below, outside the test
-- transaction) under a category unique to this run, and deleted again at the end. Handler rows
-- are only written inside the test transaction, which is rolled back.
SELECT 'taphnd' || substr(md5(random()::text || clock_timestamp()::text), 1, 12) AS cat \gset
SELECT everest.safe_position() AS sp0 \gset
SELECT first_position AS _ FROM everest.append_events(:'cat' || '-1', '[{"type": "A0"}, {"type": "A1"}]') \gset
SELECT first_position AS _ FROM everest.append_events(:'cat' || 'x-1', '[{"type": "X0"}]') \gset
SELECT first_position AS _ FROM everest.append_events(:'cat' || '-2', '[{"type": "B0"}]') \gset
SELECT first_position AS _ FROM everest.append_events(:'cat' || '-1', '[{"type": "A2"}]') \gset
SELECT first_position AS _ FROM everest.append_events(:'cat' || 'x-1', '[{"type": "X1"}]') \gset
SELECT first_position AS _ FROM everest.append_events(:'cat' || '-2', '[{"type": "B1"}, {"type": "B2"}]') \gset

BEGIN;
SELECT plan(75);

SELECT set_config('tap.cat', :'cat', true) IS NOT NULL AS _ \gset
SELECT set_config('tap.sp0', :'sp0', true) IS NOT NULL AS _ \gset
CREATE FUNCTION pg_temp.s(n int) RETURNS text LANGUAGE sql STABLE AS $f$
    SELECT CASE n WHEN 1 THEN current_setting('tap.cat') || '-1'
                  WHEN 2 THEN current_setting('tap.cat') || '-2'
                  ELSE current_setting('tap.cat') || 'x-1' END
$f$;
CREATE FUNCTION pg_temp.sp0() RETURNS bigint LANGUAGE sql STABLE AS
    $f$ SELECT current_setting('tap.sp0')::bigint $f$;
CREATE FUNCTION pg_temp.ce() RETURNS text LANGUAGE sql STABLE AS
    $f$ SELECT '$ce-' || current_setting('tap.cat') $f$;
CREATE TEMP VIEW setup_events AS
    SELECT * FROM everest.read_stream_forward(pg_temp.s(1))
    UNION ALL SELECT * FROM everest.read_stream_forward(pg_temp.s(2))
    UNION ALL SELECT * FROM everest.read_stream_forward(pg_temp.s(3));
-- The n-th setup event's position, in position order (1-based)
CREATE FUNCTION pg_temp.nth(n int) RETURNS bigint LANGUAGE sql STABLE AS
    $f$ SELECT position FROM setup_events ORDER BY position OFFSET n - 1 LIMIT 1 $f$;

SELECT is((SELECT count(*) FROM setup_events), 8::bigint, 'setup: 8 committed events');

-- =============================================================================================
-- Positions and state
-- =============================================================================================
SELECT is(everest.handler_position('taphnd-unknown'), 0::bigint, 'an unknown handler''s position is 0');
SELECT ok(everest.handler_state('taphnd-unknown') IS NULL, 'an unknown handler''s state is NULL');

SELECT lives_ok($q$SELECT everest.save_handler_position('taphnd-p', 5)$q$, 'save_handler_position on a new handler');
SELECT is(everest.handler_position('taphnd-p'), 5::bigint, 'the saved position reads back');
SELECT ok(everest.handler_state('taphnd-p') IS NULL, 'saving a position alone leaves the state NULL');
SELECT lives_ok($q$SELECT everest.save_handler_position('taphnd-p', 6)$q$, 'a greater position is accepted');
SELECT is(everest.handler_position('taphnd-p'), 6::bigint, '... and stored');
SELECT throws_ok($q$SELECT everest.save_handler_position('taphnd-p', 6)$q$, 'EV004', NULL,
                 'saving an equal position: EV004');
SELECT throws_ok($q$SELECT everest.save_handler_position('taphnd-p', 2)$q$, 'EV004', NULL,
                 'saving a lower position: EV004');
SELECT throws_matching($q$SELECT everest.save_handler_position('taphnd-p', 2)$q$, 'taphnd-p',
                       'the EV004 message names the handler');
SELECT throws_ok($q$SELECT everest.save_handler_position('taphnd-unknown', 0)$q$, 'EV004', NULL,
                 'saving position 0 for an unknown handler (whose position is 0): EV004');
SELECT is(everest.handler_position('taphnd-p'), 6::bigint, 'refused saves left the position as it was');
SELECT is(everest.handler_position('taphnd-unknown'), 0::bigint, 'a refused save did not create the handler');

SELECT lives_ok($q$SELECT everest.save_handler_state('taphnd-s', 7, '{"count": 1}')$q$,
                'save_handler_state on a new handler');
SELECT is(everest.handler_position('taphnd-s'), 7::bigint, 'save_handler_state stores the position');
SELECT is(everest.handler_state('taphnd-s'), '{"count": 1}'::jsonb, 'save_handler_state stores the state');
SELECT lives_ok($q$SELECT everest.save_handler_state('taphnd-s', 9, '[1, 2]')$q$, 'a later state is accepted');
SELECT is(everest.handler_state('taphnd-s'), '[1, 2]'::jsonb, '... and replaces the state');
SELECT throws_ok($q$SELECT everest.save_handler_state('taphnd-s', 9, '{"count": 99}')$q$, 'EV004', NULL,
                 'save_handler_state with an equal position: EV004');
SELECT throws_ok($q$SELECT everest.save_handler_state('taphnd-s', 8, '{"count": 99}')$q$, 'EV004', NULL,
                 'save_handler_state with a lower position: EV004');
SELECT is(everest.handler_state('taphnd-s'), '[1, 2]'::jsonb, 'refused state saves left the state as it was');
SELECT is(everest.handler_position('taphnd-s'), 9::bigint, '... and the position');
SELECT lives_ok($q$SELECT everest.save_handler_position('taphnd-s', 10)$q$,
                'save_handler_position on a handler with state');
SELECT is(everest.handler_state('taphnd-s'), '[1, 2]'::jsonb, 'saving a position alone keeps the state');

-- reset_handler rewinds on purpose and clears the state
SELECT lives_ok($q$SELECT everest.reset_handler('taphnd-s')$q$, 'reset_handler with the default position');
SELECT is(everest.handler_position('taphnd-s'), 0::bigint, 'reset_handler rewinds to 0 by default');
SELECT ok(everest.handler_state('taphnd-s') IS NULL, 'reset_handler clears the state');
SELECT lives_ok($q$SELECT everest.save_handler_position('taphnd-s', 1)$q$, 'after a reset, positions move forward again from 0');
SELECT lives_ok($q$SELECT everest.save_handler_state('taphnd-s', 20, '{"v": 2}')$q$, 'setup: state at 20');
SELECT lives_ok($q$SELECT everest.reset_handler('taphnd-s', 4)$q$, 'reset_handler to a given lower position');
SELECT is(everest.handler_position('taphnd-s'), 4::bigint, '... the position is the given one');
SELECT ok(everest.handler_state('taphnd-s') IS NULL, '... and the state is cleared');
SELECT throws_ok($q$SELECT everest.save_handler_position('taphnd-s', 4)$q$, 'EV004', NULL,
                 'after a reset to 4, saving 4 is EV004');
SELECT lives_ok($q$SELECT everest.reset_handler('taphnd-fresh', 12)$q$, 'reset_handler of an unknown handler');
SELECT is(everest.handler_position('taphnd-fresh'), 12::bigint, '... stores the given position');

-- Checkpoints are written in the caller's transaction
SELECT lives_ok($q$SELECT everest.save_handler_state('taphnd-tx', 10, '{"v": 1}')$q$, 'setup: taphnd-tx at 10');
CREATE TEMP TABLE projection (position bigint);
SAVEPOINT sp;
INSERT INTO projection VALUES (11);
SELECT lives_ok($q$SELECT everest.save_handler_state('taphnd-tx', 11, '{"v": 2}')$q$, 'in a savepoint: save 11');
SELECT is(everest.handler_position('taphnd-tx'), 11::bigint, 'in the savepoint the new position is visible');
ROLLBACK TO SAVEPOINT sp;
SELECT is(everest.handler_position('taphnd-tx'), 10::bigint, 'ROLLBACK TO SAVEPOINT undoes the saved position');
SELECT is(everest.handler_state('taphnd-tx'), '{"v": 1}'::jsonb, '... and the saved state');
SELECT is((SELECT count(*) FROM projection), 0::bigint, '... together with the projection''s own write');
SELECT throws_ok($q$WITH w AS (INSERT INTO projection VALUES (10) RETURNING position)
                    SELECT everest.save_handler_position('taphnd-tx', position) FROM w$q$,
                 'EV004', NULL, 'a duplicate delivery (projection write + equal checkpoint): EV004');
SELECT is((SELECT count(*) FROM projection), 0::bigint, '... and the projection write rolled back with it');
SELECT throws_ok($q$WITH r AS (SELECT everest.reset_handler('taphnd-tx', 3) AS done)
                    SELECT 1 / (SELECT count(*)::int - 1 FROM r)$q$, '22012', NULL,
                 'a statement that resets the handler and then fails');
SELECT is(everest.handler_position('taphnd-tx'), 10::bigint, 'a failed statement leaves the checkpoint as it was');

-- =============================================================================================
-- read_handler_events
-- =============================================================================================
SELECT lives_ok($q$SELECT everest.reset_handler('taphnd-r', pg_temp.sp0())$q$,
                'setup: taphnd-r just before the setup events');
SELECT results_eq(
    $q$SELECT * FROM everest.read_handler_events('taphnd-r')
        WHERE stream IN (pg_temp.s(1), pg_temp.s(2), pg_temp.s(3))$q$,
    $q$SELECT * FROM setup_events ORDER BY position$q$,
    'read_handler_events over $all (the default): every event after the checkpoint, in position order');
SELECT results_eq($q$SELECT * FROM everest.read_handler_events('taphnd-r', '$all', 1000)$q$,
                  $q$SELECT * FROM everest.read_all_forward(pg_temp.sp0() + 1, 1000)$q$,
                  'read_handler_events(h, ''$all'', n) = read_all_forward(checkpoint + 1, n)');
SELECT results_eq($q$SELECT * FROM everest.read_handler_events('taphnd-r', '$all', 3)$q$,
                  $q$SELECT * FROM everest.read_all_forward(pg_temp.sp0() + 1, 3)$q$,
                  'read_handler_events honours max_count');
SELECT is_empty($q$SELECT * FROM everest.read_handler_events('taphnd-r', '$all', 0)$q$,
                'read_handler_events with max_count 0: nothing');

SELECT lives_ok($q$SELECT everest.save_handler_position('taphnd-r', pg_temp.nth(4))$q$,
                'the handler processed the first four setup events (through B0)');
SELECT results_eq(
    $q$SELECT position FROM everest.read_handler_events('taphnd-r', '$all', 1000)
        WHERE stream IN (pg_temp.s(1), pg_temp.s(2), pg_temp.s(3))$q$,
    $q$SELECT position FROM setup_events WHERE position > pg_temp.nth(4) ORDER BY position$q$,
    '$all: only events after the checkpoint (the checkpoint itself excluded)');
SELECT ok((SELECT bool_and(position > pg_temp.nth(4)) FROM everest.read_handler_events('taphnd-r', '$all', 1000)),
          '$all: no returned position is at or below the checkpoint');
SELECT results_eq(
    $q$SELECT * FROM everest.read_handler_events('taphnd-r', pg_temp.s(1), 1000)$q$,
    $q$SELECT * FROM setup_events WHERE stream = pg_temp.s(1) AND position > pg_temp.nth(4) ORDER BY position$q$,
    'a stream source: only that stream''s events after the checkpoint');
SELECT results_eq(
    $q$SELECT type FROM everest.read_handler_events('taphnd-r', pg_temp.s(2), 1000)$q$,
    ARRAY['B1', 'B2'], 'a stream source skips its events at or before the checkpoint (B0)');
SELECT results_eq(
    $q$SELECT * FROM everest.read_handler_events('taphnd-r', pg_temp.ce(), 1000)$q$,
    $q$SELECT * FROM setup_events WHERE stream <> pg_temp.s(3) AND position > pg_temp.nth(4) ORDER BY position$q$,
    'a $ce-<category> source: the category''s events after the checkpoint, in position order');
SELECT results_eq(
    $q$SELECT type FROM everest.read_handler_events('taphnd-r', pg_temp.ce(), 2)$q$,
    ARRAY['A2', 'B1'], 'a $ce- source honours max_count');
SELECT is_empty($q$SELECT * FROM everest.read_handler_events('taphnd-r', 'taphnd-nosuchstream', 1000)$q$,
                'a nonexistent stream source: nothing');
SELECT lives_ok($q$SELECT everest.save_handler_position('taphnd-r', pg_temp.nth(8))$q$,
                'the handler processed every setup event');
SELECT is((SELECT count(*) FROM everest.read_handler_events('taphnd-r', pg_temp.ce(), 1000)), 0::bigint,
          'a handler at the end of its category reads nothing');
SELECT is_empty($q$SELECT * FROM everest.read_handler_events('taphnd-r', pg_temp.s(2), 1000)$q$,
                'a handler at the end of its stream reads nothing');
SELECT lives_ok($q$SELECT everest.reset_handler('taphnd-r', pg_temp.nth(7))$q$, 'reset_handler to re-read the last event');
SELECT results_eq($q$SELECT type FROM everest.read_handler_events('taphnd-r', pg_temp.ce(), 1000)$q$,
                  ARRAY['B2'], 'after the rewind the last event is delivered again');

-- =============================================================================================
-- Argument errors
-- =============================================================================================
SELECT throws_ok($q$SELECT everest.handler_position(NULL)$q$, '22004', NULL, 'handler_position(NULL): 22004');
SELECT throws_ok($q$SELECT everest.save_handler_position(NULL, 1)$q$, '22004', NULL,
                 'save_handler_position NULL handler: 22004');
SELECT throws_ok($q$SELECT everest.save_handler_position('taphnd-p', NULL)$q$, '22004', NULL,
                 'save_handler_position NULL position: 22004');
SELECT throws_ok($q$SELECT * FROM everest.read_handler_events('taphnd-r', '$all', -1)$q$, '22023', NULL,
                 'read_handler_events max_count -1: 22023');
SELECT throws_ok($q$SELECT * FROM everest.read_handler_events('taphnd-r', '$all', NULL)$q$, '22023', NULL,
                 'read_handler_events max_count NULL: 22023');

-- =============================================================================================
-- The session lease (this session only)
-- =============================================================================================
SELECT ok(everest.try_acquire_handler('taphnd-lease'), 'try_acquire_handler takes a free lease');
SELECT ok(everest.try_acquire_handler('taphnd-lease'), 'it is re-entrant in the same session');
SELECT ok(everest.release_handler('taphnd-lease'), 'release_handler releases it');
SELECT ok(NOT everest.release_handler('taphnd-lease'), 'one release ends the lease: a second release finds nothing');
SAVEPOINT lease;
SELECT ok(everest.try_acquire_handler('taphnd-lease'), 'the lease can be taken again, in a savepoint');
ROLLBACK TO SAVEPOINT lease;
SELECT ok(NOT everest.release_handler('taphnd-lease'),
          'a lease taken in a savepoint that rolls back is released with it (a failing statement keeps none)');

SELECT * FROM finish();
ROLLBACK;

-- Remove the committed setup events again.
SELECT sum(everest.delete_stream(s)) AS cleaned
  FROM unnest(ARRAY[:'cat' || '-1', :'cat' || '-2', :'cat' || 'x-1']) AS s \gset
