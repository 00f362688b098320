-- everest pgTAP: delete_stream, tombstones and immutability (DESIGN.md sections 2 "Delete", 3, 6).
--
-- To show that deleted events leave $all and their category, some events must be in $all, and
-- this transaction's own appends never are before it commits (reads stop at safe_position()).
-- So a few events are committed first, under a category unique to this run, and deleted again
-- at the end. Everything else happens in the test transaction, which is rolled back.
SELECT 'tapdel' || substr(md5(random()::text || clock_timestamp()::text), 1, 12) AS cat \gset
SELECT everest.safe_position() AS sp0 \gset
SELECT first_position AS _ FROM everest.append_events(:'cat' || '-1', '[{"type": "A"}, {"type": "B"}, {"type": "C"}]') \gset
SELECT first_position AS _ FROM everest.append_events(:'cat' || '-2', '[{"type": "K"}, {"type": "L"}]') \gset
SELECT first_position AS _ FROM everest.append_events(:'cat' || '-4', '[{"type": "T"}, {"type": "U"}]') \gset

BEGIN;
SELECT plan(84);

SELECT set_config('tap.cat', :'cat', true) IS NOT NULL AS _ \gset
SELECT set_config('tap.sp0', :'sp0', true) IS NOT NULL AS _ \gset
CREATE FUNCTION pg_temp.s(n int) RETURNS text LANGUAGE sql STABLE AS
    $f$ SELECT current_setting('tap.cat') || '-' || n $f$;
CREATE FUNCTION pg_temp.sp0() RETURNS bigint LANGUAGE sql STABLE AS
    $f$ SELECT current_setting('tap.sp0')::bigint $f$;
CREATE FUNCTION pg_temp.ce() RETURNS text LANGUAGE sql STABLE AS
    $f$ SELECT '$ce-' || current_setting('tap.cat') $f$;
CREATE FUNCTION pg_temp.total_events() RETURNS bigint LANGUAGE sql AS
    $f$ SELECT count(*) FROM everest.events $f$;

-- The committed events as they were before any delete
CREATE TEMP TABLE before AS
    SELECT * FROM everest.read_all_forward(pg_temp.sp0() + 1, 1000)
     WHERE stream IN (pg_temp.s(1), pg_temp.s(2), pg_temp.s(4));
SELECT is((SELECT count(*) FROM before), 7::bigint, 'setup: 7 committed events are in $all');

-- =============================================================================================
-- delete_stream removes the stream's events everywhere and returns their number
-- =============================================================================================
SELECT is(everest.delete_stream(pg_temp.s(1)), 3::bigint, 'delete_stream returns how many events it removed');
SELECT is_empty($q$SELECT * FROM everest.read_stream_forward(pg_temp.s(1))$q$,
                'the deleted stream reads empty forward');
SELECT is_empty($q$SELECT * FROM everest.read_stream_backward(pg_temp.s(1))$q$,
                'the deleted stream reads empty backward');
SELECT is((SELECT count(*) FROM everest.read_event(pg_temp.s(1), -1)), 0::bigint,
          'read_event -1 on the deleted stream: zero rows');
SELECT is(everest.stream_version(pg_temp.s(1)), -1::bigint, 'stream_version of the deleted stream is -1');
SELECT is((SELECT count(*) FROM everest.read_all_forward(pg_temp.sp0() + 1, 1000) WHERE stream = pg_temp.s(1)),
          0::bigint, 'the deleted events are gone from $all');
SELECT is((SELECT count(*) FROM everest.read_all_forward(pg_temp.sp0() + 1, 1000)
            WHERE position IN (SELECT position FROM before WHERE stream = pg_temp.s(1))),
          0::bigint, '... no event is left at their positions');
SELECT is((SELECT count(*) FROM everest.read_all_backward(-1, 1000) WHERE stream = pg_temp.s(1)),
          0::bigint, 'the deleted events are gone from $all read backward');
SELECT is((SELECT count(*) FROM everest.read_stream_forward(pg_temp.ce()) WHERE stream = pg_temp.s(1)),
          0::bigint, 'the deleted events are gone from their category');
SELECT results_eq(
    $q$SELECT * FROM everest.read_all_forward(pg_temp.sp0() + 1, 1000) WHERE stream IN (pg_temp.s(2), pg_temp.s(4))$q$,
    $q$SELECT * FROM before WHERE stream <> pg_temp.s(1) ORDER BY position$q$,
    'the other streams'' events are untouched in $all');
SELECT results_eq(
    $q$SELECT * FROM everest.read_stream_forward(pg_temp.ce())$q$,
    $q$SELECT * FROM before WHERE stream <> pg_temp.s(1) ORDER BY position$q$,
    'the category now holds only the other streams');
SELECT is(everest.stream_version(pg_temp.s(2)), 1::bigint, 'a stream of the same category keeps its version');

-- Name reuse: version 0 again, with a new, higher position
CREATE TEMP TABLE reused AS SELECT * FROM everest.append_event(pg_temp.s(1), 'Again', expected_version => -1);
SELECT is((SELECT first_version FROM reused), 0::bigint,
          'a deleted name can be used again: -1 (no stream) succeeds, the next event has version 0');
SELECT ok((SELECT first_position FROM reused) > (SELECT max(position) FROM before),
          '... and a position higher than every deleted event''s');
SELECT results_eq($q$SELECT type FROM everest.read_stream_forward(pg_temp.s(1))$q$,
                  ARRAY['Again'], 'the reused stream holds only its new event');
SELECT is(everest.stream_version(pg_temp.s(1)), 0::bigint, 'stream_version of the reused stream is 0');

-- Deleting within a savepoint is undone by ROLLBACK TO SAVEPOINT
SAVEPOINT del;
SELECT is(everest.delete_stream(pg_temp.s(2)), 2::bigint, 'in a savepoint: delete the second stream');
ROLLBACK TO SAVEPOINT del;
SELECT results_eq($q$SELECT * FROM everest.read_stream_forward(pg_temp.s(2))$q$,
                  $q$SELECT * FROM before WHERE stream = pg_temp.s(2) ORDER BY version$q$,
                  'a delete rolled back to its savepoint leaves every event in place');

-- A stream created and deleted within this transaction
SELECT is((SELECT last_version FROM everest.append_events('tapdel-local', '[{"type": "A"}, {"type": "B"}, {"type": "C"}, {"type": "D"}]')),
          3::bigint, 'setup: tapdel-local has 4 events');
SELECT is(everest.delete_stream('tapdel-local'), 4::bigint, 'deleting it returns 4');
SELECT is(everest.stream_version('tapdel-local'), -1::bigint, 'its version is -1');
SELECT is(everest.delete_stream('tapdel-local'), 0::bigint, 'deleting it again with -2 returns 0');

-- Nonexistent streams
SELECT is(everest.delete_stream('tapdel-nosuchstream'), 0::bigint,
          'deleting a nonexistent stream with the default -2 returns 0');
SELECT is(everest.delete_stream('tapdel-nosuchstream', -2), 0::bigint,
          'deleting a nonexistent stream with -2 returns 0');
SELECT is(everest.delete_stream('tapdel-nosuchstream', -1), 0::bigint,
          'deleting a nonexistent stream with -1 (no stream) returns 0');
SELECT is(everest.stream_version('tapdel-nosuchstream'), -1::bigint, '... and it still does not exist');
SELECT is((SELECT first_version FROM everest.append_event('tapdel-nosuchstream', 'A', expected_version => -1)),
          0::bigint, '... and its name is not retired');

-- =============================================================================================
-- The expected-version check (EV001), as for appends
-- =============================================================================================
SELECT is((SELECT last_version FROM everest.append_events('tapdel-ev', '[{"type": "A"}, {"type": "B"}]')),
          1::bigint, 'setup: tapdel-ev at version 1');
SELECT throws_ok($q$SELECT everest.delete_stream('tapdel-ev', 5)$q$, 'EV001', NULL,
                 'delete with a higher expected version: EV001');
SELECT throws_ok($q$SELECT everest.delete_stream('tapdel-ev', 0)$q$, 'EV001', NULL,
                 'delete with a lower expected version: EV001');
SELECT throws_matching($q$SELECT everest.delete_stream('tapdel-ev', 0)$q$,
                       'tapdel-ev.*expected\D*\m0\M.*actual\D*\m1\M',
                       'the EV001 message names the stream, expected 0 and actual 1');
SELECT throws_ok($q$SELECT everest.delete_stream('tapdel-ev', -1)$q$, 'EV001', NULL,
                 'delete with -1 (no stream) of an existing stream: EV001');
SELECT throws_ok($q$SELECT everest.delete_stream('tapdel-nosuchstream2', -4)$q$, 'EV001', NULL,
                 'delete with -4 (stream exists) of a nonexistent stream: EV001');
SELECT throws_matching($q$SELECT everest.delete_stream('tapdel-nosuchstream2', -4)$q$,
                       'tapdel-nosuchstream2.*actual\D*-1\M',
                       'the EV001 message says actual -1 for a stream that does not exist');
SELECT throws_ok($q$SELECT everest.delete_stream('tapdel-nosuchstream2', 0)$q$, 'EV001', NULL,
                 'delete with 0 of a nonexistent stream: EV001');
SELECT throws_ok($q$SELECT everest.delete_stream('tapdel-ev', 0, true)$q$, 'EV001', NULL,
                 'a tombstone delete checks the expected version too');
SELECT is(everest.stream_version('tapdel-ev'), 1::bigint, 'failed deletes removed nothing');
SELECT is((SELECT count(*) FROM everest.read_stream_forward('tapdel-ev')), 2::bigint,
          'failed deletes removed no event');
SELECT is((SELECT first_version FROM everest.append_event('tapdel-ev', 'C', expected_version => 1)),
          2::bigint, 'failed deletes left no tombstone: the stream takes appends');
SELECT is(everest.delete_stream('tapdel-ev', 2), 3::bigint, 'delete with the exact current version succeeds');
SELECT is((SELECT last_version FROM everest.append_events('tapdel-ev4', '[{"type": "A"}]')),
          0::bigint, 'setup: tapdel-ev4 at version 0');
SELECT is(everest.delete_stream('tapdel-ev4', -4), 1::bigint, 'delete with -4 (stream exists) succeeds');

-- =============================================================================================
-- Argument errors
-- =============================================================================================
SELECT throws_ok($q$SELECT everest.delete_stream(NULL)$q$, '22004', NULL, 'delete_stream NULL stream: 22004');
SELECT throws_ok($q$SELECT everest.delete_stream('tapdel-x', NULL)$q$, '22023', NULL,
                 'delete_stream NULL expected_version: 22023');
SELECT throws_ok($q$SELECT everest.delete_stream('tapdel-x', -3)$q$, '22023', NULL,
                 'delete_stream expected_version -3: 22023');
SELECT throws_ok($q$SELECT everest.delete_stream('tapdel-x', -5)$q$, '22023', NULL,
                 'delete_stream expected_version -5: 22023');
SELECT throws_ok($q$SELECT everest.delete_stream('tapdel-x', -2, NULL)$q$, '22004', NULL,
                 'delete_stream NULL tombstone: 22004');
SELECT throws_ok($q$SELECT everest.delete_stream('$all')$q$, '22023', NULL, 'deleting $all: 22023');
SELECT throws_ok($q$SELECT everest.delete_stream(pg_temp.ce())$q$, '22023', NULL, 'deleting a $ce- stream: 22023');
SELECT throws_ok($q$SELECT everest.delete_stream('$foo')$q$, '22023', NULL, 'deleting a reserved name: 22023');
SELECT throws_ok($q$SELECT everest.delete_stream('')$q$, '22023', NULL, 'deleting an empty name: 22023');
SELECT is((SELECT count(*) FROM everest.read_all_forward(pg_temp.sp0() + 1, 1000) WHERE stream = pg_temp.s(2)),
          2::bigint, 'failed deletes of $ce- and $all removed nothing');

-- =============================================================================================
-- Tombstones
-- =============================================================================================
SELECT is(everest.delete_stream(pg_temp.s(4), -2, true), 2::bigint, 'a tombstone delete returns how many it removed');
SELECT is_empty($q$SELECT * FROM everest.read_stream_forward(pg_temp.s(4))$q$, 'a tombstoned stream reads empty');
SELECT is_empty($q$SELECT * FROM everest.read_stream_backward(pg_temp.s(4))$q$, '... backward too');
SELECT is((SELECT count(*) FROM everest.read_event(pg_temp.s(4), 0)), 0::bigint, '... and read_event finds nothing');
SELECT is(everest.stream_version(pg_temp.s(4)), -1::bigint, 'stream_version of a tombstoned stream is -1');
SELECT is((SELECT count(*) FROM everest.read_all_forward(pg_temp.sp0() + 1, 1000) WHERE stream = pg_temp.s(4)),
          0::bigint, 'the tombstoned stream''s events are gone from $all');
SELECT is((SELECT count(*) FROM everest.read_stream_forward(pg_temp.ce()) WHERE stream = pg_temp.s(4)),
          0::bigint, '... and from their category');
SELECT throws_ok($q$SELECT * FROM everest.append_events(pg_temp.s(4), '[{"type": "A"}]')$q$, 'EV002', NULL,
                 'append_events to a tombstoned stream: EV002');
SELECT throws_ok($q$SELECT * FROM everest.append_event(pg_temp.s(4), 'A')$q$, 'EV002', NULL,
                 'append_event to a tombstoned stream: EV002');
SELECT throws_ok($q$SELECT * FROM everest.append_events(pg_temp.s(4), '[{"type": "A"}]', -1)$q$, 'EV002', NULL,
                 'append with -1 (no stream) to a tombstoned stream: EV002');
SELECT throws_ok($q$SELECT * FROM everest.append_events(pg_temp.s(4), '[{"type": "A"}]', -4)$q$, 'EV002', NULL,
                 'append with -4 (stream exists) to a tombstoned stream: EV002');
SELECT throws_matching($q$SELECT * FROM everest.append_events(pg_temp.s(4), '[{"type": "A"}]')$q$,
                       current_setting('tap.cat') || '-4', 'the EV002 message names the stream');
SELECT is(everest.stream_version(pg_temp.s(4)), -1::bigint, 'refused appends wrote nothing');
SELECT is((SELECT count(*) FROM everest.read_stream_forward(pg_temp.s(4))), 0::bigint, '... the stream still reads empty');

SELECT is((SELECT first_version FROM everest.append_events('tapdel-tomb', '[{"type": "A", "id": "d0000000-0000-4000-8000-000000000001"}]')),
          0::bigint, 'setup: tapdel-tomb has one event with a known id');
SELECT is(everest.delete_stream('tapdel-tomb', 0, true), 1::bigint, 'tombstone delete with the exact version');
SELECT throws_ok($q$SELECT * FROM everest.append_events('tapdel-tomb', '[{"type": "A", "id": "d0000000-0000-4000-8000-000000000001"}]', -1)$q$,
                 'EV002', NULL, 'a retry of the deleted batch to a tombstoned stream: EV002');
SELECT is(everest.delete_stream('tapdel-tomb-new', -2, true), 0::bigint,
          'tombstoning a name that never had events returns 0');
SELECT throws_ok($q$SELECT * FROM everest.append_event('tapdel-tomb-new', 'A')$q$, 'EV002', NULL,
                 '... and retires the name: EV002');
SELECT is(everest.stream_version('tapdel-tomb-new'), -1::bigint, '... its stream_version is -1');

-- =============================================================================================
-- Immutability: nothing but delete_stream changes or removes stored events, even a superuser
-- =============================================================================================
SELECT ok((SELECT rolsuper FROM pg_roles WHERE rolname = current_user), 'these checks run as a superuser');
SELECT pg_temp.total_events() AS total \gset
SELECT throws_ok(format('UPDATE everest.events SET type = %L WHERE stream = %L', 'Hacked', pg_temp.s(2)),
                 '0A000', NULL, 'UPDATE of stored events: 0A000');
SELECT throws_ok(format('UPDATE everest.events SET data = %L WHERE stream = %L', '{"x": 1}', pg_temp.s(2)),
                 '0A000', NULL, 'UPDATE of event data: 0A000');
SELECT throws_ok(format('DELETE FROM everest.events WHERE stream = %L', pg_temp.s(2)),
                 '0A000', NULL, 'DELETE of stored events: 0A000');
SELECT throws_ok('DELETE FROM everest.events', '0A000', NULL, 'DELETE of every event: 0A000');
SELECT throws_ok('TRUNCATE everest.events', '0A000', NULL, 'TRUNCATE of the events: 0A000');
SELECT results_eq($q$SELECT * FROM everest.read_stream_forward(pg_temp.s(2))$q$,
                  $q$SELECT * FROM before WHERE stream = pg_temp.s(2) ORDER BY version$q$,
                  'the events are unchanged after every refused change');
SELECT is(pg_temp.total_events(), :total::bigint, 'no event anywhere was removed');

-- "whoever asks": also a superuser whose session skips ordinary triggers (as logical replication
-- apply workers and some restore tools do). Kept last: a change that got through stays in this
-- transaction, which is rolled back.
SET LOCAL session_replication_role = replica;
SELECT throws_ok(format('UPDATE everest.events SET type = %L WHERE stream = %L', 'Hacked', pg_temp.s(2)),
                 '0A000', NULL, 'with session_replication_role = replica, UPDATE of stored events: 0A000');
SELECT throws_ok(format('DELETE FROM everest.events WHERE stream = %L', pg_temp.s(2)),
                 '0A000', NULL, 'with session_replication_role = replica, DELETE of stored events: 0A000');
SELECT throws_ok('TRUNCATE everest.events', '0A000', NULL,
                 'with session_replication_role = replica, TRUNCATE of the events: 0A000');
RESET session_replication_role;

SELECT * FROM finish();
ROLLBACK;

-- Remove the committed setup events again.
SELECT sum(everest.delete_stream(s)) AS cleaned
  FROM unnest(ARRAY[:'cat' || '-1', :'cat' || '-2', :'cat' || '-4']) AS s \gset
