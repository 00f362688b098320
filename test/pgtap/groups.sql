-- everest pgTAP: consumer groups (DESIGN.md section 10; docs/groups.md): stream_partition and its
-- published test vectors, resize_handler and its floors, leases per member, park_event,
-- unpark_event, parked_events, handler_status, drop_handler. Races between sessions are in
-- test/isolation/specs/group_*.spec; processes in test/shell/groups.sh.
SELECT 'tapgrp' || substr(md5(random()::text || clock_timestamp()::text), 1, 10) AS g \gset
-- 48 events over 12 streams of the suite's own category, committed before the tests read them
SELECT count(*) AS _ FROM generate_series(1, 48) i,
       LATERAL everest.append_event(:'g' || '-' || (i % 12), 'T' || (i % 3), jsonb_build_object('i', i)) \gset
SELECT pg_sleep(0.05) IS NULL AS _ \gset

BEGIN;
SELECT plan(66);
SELECT set_config('tap.g', :'g', true) IS NOT NULL AS _ \gset
CREATE FUNCTION pg_temp.src() RETURNS text LANGUAGE sql STABLE AS $f$ SELECT '$ce-' || current_setting('tap.g') $f$;
CREATE FUNCTION pg_temp.h(suffix text DEFAULT '') RETURNS text LANGUAGE sql STABLE AS
    $f$ SELECT current_setting('tap.g') || '-handler' || suffix $f$;
-- what member m of a handler would read now (positions, comma-separated)
CREATE FUNCTION pg_temp.reads(h text, m integer, types text[] DEFAULT NULL) RETURNS text LANGUAGE sql AS $f$
    SELECT coalesce(string_agg(position::text, ',' ORDER BY position), '')
      FROM everest.read_handler_events(h, pg_temp.src(), 1000, member => m, types => types) $f$;
-- every position the group's members would read now, in order, once each (NULL: one read twice)
CREATE FUNCTION pg_temp.group_reads(h text) RETURNS text LANGUAGE sql AS $f$
    SELECT CASE WHEN count(*) = count(DISTINCT position) THEN coalesce(string_agg(position::text, ',' ORDER BY position), '') END
      FROM (SELECT members FROM everest.handler_status WHERE handler = h LIMIT 1) s,
           LATERAL generate_series(0, s.members - 1) m,
           LATERAL everest.read_handler_events(h, pg_temp.src(), 1000, member => m) $f$;
CREATE FUNCTION pg_temp.all_after(p bigint) RETURNS text LANGUAGE sql AS $f$
    SELECT coalesce(string_agg(position::text, ',' ORDER BY position), '')
      FROM everest.read_stream_forward(pg_temp.src(), p + 1, 1000) $f$;
CREATE TEMP TABLE firsts AS SELECT min(position) AS p0 FROM everest.read_stream_forward(pg_temp.src(), 0, 1000);

-- The vectors of docs/groups.md (and of the core's unit test, test/unit/handlers_test.cpp).
SELECT is((SELECT string_agg(everest.stream_partition(s, m)::text, ',' ORDER BY s, m)
             FROM unnest(ARRAY['account-1', 'account-2', 'account-42', 'order-7f3a', 'a', 'Ünïcødé-1']) s,
                  unnest(ARRAY[1, 2, 3, 4, 6, 7, 1024]) m),
          (SELECT string_agg(p, ',' ORDER BY s, m::integer) FROM (VALUES
             ('account-1', '1', '0'), ('account-1', '2', '0'), ('account-1', '3', '1'), ('account-1', '4', '2'),
             ('account-1', '6', '4'), ('account-1', '7', '4'), ('account-1', '1024', '598'),
             ('account-2', '1', '0'), ('account-2', '2', '1'), ('account-2', '3', '0'), ('account-2', '4', '3'),
             ('account-2', '6', '3'), ('account-2', '7', '1'), ('account-2', '1024', '163'),
             ('account-42', '1', '0'), ('account-42', '2', '1'), ('account-42', '3', '1'), ('account-42', '4', '1'),
             ('account-42', '6', '1'), ('account-42', '7', '1'), ('account-42', '1024', '645'),
             ('order-7f3a', '1', '0'), ('order-7f3a', '2', '1'), ('order-7f3a', '3', '2'), ('order-7f3a', '4', '3'),
             ('order-7f3a', '6', '5'), ('order-7f3a', '7', '0'), ('order-7f3a', '1024', '935'),
             ('a', '1', '0'), ('a', '2', '0'), ('a', '3', '1'), ('a', '4', '0'),
             ('a', '6', '4'), ('a', '7', '5'), ('a', '1024', '140'),
             ('Ünïcødé-1', '1', '0'), ('Ünïcødé-1', '2', '0'), ('Ünïcødé-1', '3', '0'), ('Ünïcødé-1', '4', '2'),
             ('Ünïcødé-1', '6', '0'), ('Ünïcødé-1', '7', '3'), ('Ünïcødé-1', '1024', '1010')) v(s, m, p)),
          'stream_partition gives the published test vectors');
SELECT is((SELECT count(DISTINCT everest.stream_partition('s-' || i, 4)) FROM generate_series(1, 1000) i), 4::bigint,
          'a thousand streams spread over every member of four');
SELECT throws_ok($$SELECT everest.stream_partition(NULL, 4)$$, '22004', 'stream must not be null', 'a NULL stream is 22004');
SELECT throws_ok($$SELECT everest.stream_partition('a', NULL)$$, '22004', 'members must not be null', 'NULL members is 22004');
SELECT throws_ok($$SELECT everest.stream_partition('a', 0)$$, '22023', 'members must be between 1 and 1024, got 0',
                 'members below 1 is 22023');
SELECT throws_ok($$SELECT everest.stream_partition('', 4)$$, '22023', 'stream name must not be empty',
                 'an empty stream name is 22023');

-- =============================================================================================
-- resize_handler: arguments
-- =============================================================================================
SELECT throws_ok($$SELECT everest.resize_handler(pg_temp.h(), 0)$$, '22023', NULL, 'resize to 0 members is 22023');
SELECT throws_ok($$SELECT everest.resize_handler(pg_temp.h(), 1025)$$, '22023', NULL, 'resize beyond 1024 members is 22023');
SELECT throws_ok($$SELECT everest.resize_handler(pg_temp.h(), NULL)$$, '22004', 'members must not be null', 'NULL members is 22004');
SELECT throws_ok($$SELECT everest.resize_handler(NULL, 2)$$, '22004', NULL, 'a NULL handler is 22004');
SELECT throws_ok($$SELECT everest.handler_position(pg_temp.h(), 1)$$, '22023', NULL, 'before a resize the group has member 0 only');
SELECT lives_ok($$SELECT everest.resize_handler(pg_temp.h(), 1)$$, 'resizing a new handler to its size changes nothing');
SELECT is((SELECT count(*) FROM everest.handlers WHERE handler = pg_temp.h()), 0::bigint, '... and writes nothing');

-- =============================================================================================
-- A group of four: each member reads its partition, all of them read everything once
-- =============================================================================================
SELECT lives_ok($$SELECT everest.resize_handler(pg_temp.h(), 4)$$, 'resize a new handler to 4 members');
SELECT is((SELECT string_agg(member || ':' || members || ':' || position, ',' ORDER BY member)
             FROM everest.handler_status WHERE handler = pg_temp.h()), '0:4:0,1:4:0,2:4:0,3:4:0',
          'four members at 0 in handler_status');
SELECT is(pg_temp.group_reads(pg_temp.h()), pg_temp.all_after(0), 'the members read every event of the source once');
SELECT is((SELECT count(*) FROM generate_series(0, 3) m,
                  LATERAL everest.read_handler_events(pg_temp.h(), pg_temp.src(), 1000, member => m) e
            WHERE everest.stream_partition(e.stream, 4) <> m), 0::bigint,
          'member m reads only streams that stream_partition(stream, 4) routes to m');
SELECT is((SELECT bool_and(versions = sorted) FROM (
             SELECT array_agg(e.version ORDER BY e.position) AS versions, array_agg(e.version ORDER BY e.version) AS sorted
               FROM generate_series(0, 3) m, LATERAL everest.read_handler_events(pg_temp.h(), pg_temp.src(), 1000, member => m) e
              GROUP BY e.stream) x), true, 'each stream comes to its member in order');
SELECT throws_ok($$SELECT * FROM everest.read_handler_events(pg_temp.h(), pg_temp.src(), 10, member => 4)$$, '22023',
                 'member 4 is out of range for handler "' || pg_temp.h() || '"', 'member 4 of a group of 4 is 22023');
SELECT throws_ok($$SELECT everest.save_handler_position(pg_temp.h(), 1, member => -1)$$, '22023', NULL,
                 'a save of member -1 is 22023');
SELECT is(pg_temp.reads(pg_temp.h(), 2, ARRAY['T1']),
          (SELECT coalesce(string_agg(position::text, ',' ORDER BY position), '') FROM everest.read_stream_forward(pg_temp.src(), 0, 1000)
            WHERE everest.stream_partition(stream, 4) = 2 AND type = 'T1'), 'types and member filter together');

-- Members 0 and 1 apply part of their events; then the group shrinks to 2 and grows to 3.
SELECT lives_ok(format($$SELECT everest.save_handler_position(%L, %s, member => 0)$$, pg_temp.h(),
                       (SELECT max(position) FROM (SELECT position FROM everest.read_handler_events(pg_temp.h(), pg_temp.src(), 5, member => 0)) x)),
                'member 0 applies 5 of its events');
SELECT lives_ok(format($$SELECT everest.save_handler_position(%L, %s, member => 1)$$, pg_temp.h(),
                       (SELECT max(position) FROM everest.read_handler_events(pg_temp.h(), pg_temp.src(), 1000, member => 1))),
                'member 1 applies all of its events');
CREATE TEMP TABLE pending AS SELECT pg_temp.group_reads(pg_temp.h()) AS positions;
SELECT lives_ok($$SELECT everest.resize_handler(pg_temp.h(), 2)$$, 'resize 4 -> 2 with different checkpoints');
SELECT is((SELECT count(DISTINCT generation) FROM everest.handler_floors WHERE handler = pg_temp.h()), 1::bigint,
          'the old checkpoints are kept as floors (one generation)');
SELECT is((SELECT string_agg(member || ':' || members || ':' || (position = (SELECT 0)), ',' ORDER BY member)
             FROM everest.handlers WHERE handler = pg_temp.h()), '0:2:true,1:2:true',
          'two members, both at the lowest old checkpoint (member 2 and 3 had none)');
SELECT is(pg_temp.group_reads(pg_temp.h()), (SELECT positions FROM pending),
          'after 4 -> 2 the group reads exactly what the old group had not applied: nothing twice, nothing skipped');
SELECT lives_ok(format($$SELECT everest.save_handler_position(%L, %s, member => 0)$$, pg_temp.h(),
                       (SELECT max(position) FROM (SELECT position FROM everest.read_handler_events(pg_temp.h(), pg_temp.src(), 3, member => 0)) x)),
                'new member 0 applies 3 events');
DELETE FROM pending;
INSERT INTO pending SELECT pg_temp.group_reads(pg_temp.h());
SELECT lives_ok($$SELECT everest.resize_handler(pg_temp.h(), 3)$$, 'resize 2 -> 3 before the floors were passed');
SELECT is((SELECT count(DISTINCT generation) FROM everest.handler_floors WHERE handler = pg_temp.h()), 2::bigint,
          'two generations of floors');
SELECT is(pg_temp.group_reads(pg_temp.h()), (SELECT positions FROM pending),
          'after 4 -> 2 -> 3 the group still reads exactly what was not applied');
-- every member catches up: the floors are passed and go
SELECT lives_ok(format($$SELECT everest.save_handler_position(%L, %s, member => %s)$$, pg_temp.h(),
                       (SELECT max(position) FROM everest.read_stream_forward(pg_temp.src(), 0, 1000)), m), 'member ' || m || ' catches up')
  FROM generate_series(0, 2) m;
SELECT is((SELECT count(*) FROM everest.handler_floors WHERE handler = pg_temp.h()), 0::bigint,
          'floors every member has passed are dropped by the saves');
SELECT is(pg_temp.group_reads(pg_temp.h()), '', 'nothing left to read');
SELECT is((SELECT min(lag) >= 0 AND count(*) = 3 FROM everest.handler_status WHERE handler = pg_temp.h()), true,
          'handler_status: three members with their lag');

-- =============================================================================================
-- Leases per member
-- =============================================================================================
CREATE TEMP TABLE leases AS SELECT * FROM everest.acquire_lease(pg_temp.h(), '1 minute');
INSERT INTO leases SELECT * FROM everest.acquire_lease(pg_temp.h(), '1 minute');
INSERT INTO leases SELECT * FROM everest.acquire_lease(pg_temp.h(), '1 minute');
SELECT is((SELECT string_agg(granted_member::text, ',' ORDER BY granted_member) FROM leases), '0,1,2',
          'acquire_lease with member NULL hands out each free member once');
SELECT is((SELECT count(*) FROM everest.acquire_lease(pg_temp.h(), '1 minute')), 0::bigint, '... then none is free');
SELECT throws_ok($$SELECT * FROM everest.acquire_lease(pg_temp.h(), '1 minute', 3)$$, '22023', NULL,
                 'acquire_lease of member 3 of a group of 3 is 22023');
SELECT is((SELECT count(*) FROM everest.handler_status WHERE handler = pg_temp.h() AND lease_holder_pid = pg_backend_pid()), 3::bigint,
          'handler_status shows who holds each member');
SELECT lives_ok($$SELECT everest.reset_handler(pg_temp.h(), 0)$$, 'reset_handler rewinds every member');
SELECT is((SELECT string_agg(position::text, ',' ORDER BY member) FROM everest.handlers WHERE handler = pg_temp.h()), '0,0,0',
          '... all three at 0');
SELECT lives_ok(format($$SELECT everest.save_handler_position(%L, %s, member => 1, lease => %L)$$, pg_temp.h(),
                       (SELECT p0 FROM firsts), (SELECT lease FROM leases WHERE granted_member = 1)),
                'a save with the member''s lease');
SELECT lives_ok($$SELECT everest.resize_handler(pg_temp.h(), 2)$$, 'resize 3 -> 2 while the members are leased');
SELECT is((SELECT count(*) FROM everest.leases WHERE handler = pg_temp.h()), 0::bigint, '... ends every lease of the group');
SELECT throws_ok(format($$SELECT everest.save_handler_position(%L, %s, member => 1, lease => %L)$$, pg_temp.h(),
                        (SELECT p0 FROM firsts) + 1, (SELECT lease FROM leases WHERE granted_member = 1)),
                 'EV005', NULL, 'a save with a lease from before the resize is EV005');

-- =============================================================================================
-- Parking a poison event
-- =============================================================================================
CREATE TEMP TABLE nexts AS
    SELECT m, (SELECT position FROM everest.read_handler_events(pg_temp.h(), '$all', 1, member => m)) AS next,
           (SELECT position FROM everest.read_handler_events(pg_temp.h(), '$all', 2, member => m) OFFSET 1) AS after_next
      FROM generate_series(0, 1) m;
SELECT throws_ok(format($$SELECT everest.park_event(%L, %s, 'boom', member => 0)$$, pg_temp.h(), (SELECT after_next FROM nexts WHERE m = 0)),
                 '22023', NULL, 'parking an event that is not the member''s next one is 22023');
SELECT throws_ok(format($$SELECT everest.park_event(%L, %s, NULL, member => 0)$$, pg_temp.h(), (SELECT next FROM nexts WHERE m = 0)),
                 '22004', 'reason must not be null', 'parking without a reason is 22004');
SELECT throws_ok(format($$SELECT everest.park_event(%L, %s, 'boom', member => 0)$$, pg_temp.h(), (SELECT next FROM nexts WHERE m = 1)),
                 '22023', NULL, 'parking another member''s event is 22023');
SELECT lives_ok(format($$SELECT everest.park_event(%L, %s, 'boom: bad data', member => 0)$$, pg_temp.h(), (SELECT next FROM nexts WHERE m = 0)),
                'park the member''s next event');
SELECT is((SELECT member || ':' || (position = (SELECT next FROM nexts WHERE m = 0)) || ':' || reason FROM everest.parked_events WHERE handler = pg_temp.h()),
          '0:true:boom: bad data', 'parked_events shows it, with the reason');
SELECT is(everest.handler_position(pg_temp.h(), 0), (SELECT next FROM nexts WHERE m = 0), '... and the checkpoint moved to it');
SELECT is((SELECT parked FROM everest.handler_status WHERE handler = pg_temp.h() AND member = 0), 1::bigint, 'handler_status counts it');
SELECT throws_ok(format($$SELECT everest.park_event(%L, %s, 'again', member => 0)$$, pg_temp.h(), (SELECT next FROM nexts WHERE m = 0)),
                 'EV004', NULL, 'parking it again does not move the checkpoint forward: EV004');
SELECT is(everest.unpark_event(pg_temp.h(), (SELECT next FROM nexts WHERE m = 0)), true, 'unpark_event removes the record');
SELECT is(everest.unpark_event(pg_temp.h(), (SELECT next FROM nexts WHERE m = 0)), false, '... once');

-- =============================================================================================
-- note_attempt: counts that survive the transactions that apply
-- =============================================================================================
SELECT is(everest.note_attempt(pg_temp.h(), 40, 1), 1, 'note_attempt: a first attempt');
SELECT is(everest.note_attempt(pg_temp.h(), 40, 1), 2, '... a second at the same position');
SELECT is(everest.note_attempt(pg_temp.h(), 41, 1), 1, '... another position starts again at 1');
SELECT throws_ok($$SELECT everest.note_attempt(pg_temp.h(), 40, 2)$$, '22023', NULL, 'note_attempt for a member outside the group is 22023');
SELECT throws_ok($$SELECT everest.note_attempt(pg_temp.h(), -1)$$, '22023', NULL, 'note_attempt at a negative position is 22023');

-- =============================================================================================
-- drop_handler
-- =============================================================================================
SELECT lives_ok(format($$SELECT everest.park_event(%L, %s, 'boom', member => 1)$$, pg_temp.h(), (SELECT next FROM nexts WHERE m = 1)),
                'park one more');
SELECT is(everest.drop_handler(pg_temp.h()), true, 'drop_handler removes a handler');
SELECT is((SELECT count(*) FROM everest.handlers WHERE handler = pg_temp.h()) + (SELECT count(*) FROM everest.parked WHERE handler = pg_temp.h())
          + (SELECT count(*) FROM everest.leases WHERE handler = pg_temp.h()) + (SELECT count(*) FROM everest.handler_floors WHERE handler = pg_temp.h())
          + (SELECT count(*) FROM everest.attempts WHERE handler = pg_temp.h()),
          0::bigint, '... its checkpoints, leases, floors, attempts and parked events');
SELECT is(everest.drop_handler(pg_temp.h()), false, 'dropping it again: false');

SELECT * FROM finish();
ROLLBACK;
SELECT count(everest.delete_stream(:'g' || '-' || i)) AS _ FROM generate_series(0, 11) i \gset
