-- everest pgTAP: what keeps the promise beyond one primary with direct connections
-- (docs/topologies.md): wait_for_position, leases in a table (EV005), saves that check what
-- they were read from (EV004) and expected_position, and the published horizon.
-- Cross-session races are in test/isolation/specs/exactly_once_without_lease.spec and
-- lease_fencing.spec; standbys and poolers in test/shell/standby.sh and pgbouncer.sh.
SELECT 'taptopo' || substr(md5(random()::text || clock_timestamp()::text), 1, 12) AS h \gset
-- ten positions to save checkpoints at (a save beyond anything assigned is EV006)
SELECT last_position AS p1 FROM everest.append_events(:'h' || '-1', (SELECT jsonb_agg(jsonb_build_object('type', 'A')) FROM generate_series(1, 10))) \gset
-- three events of two types of the suite's own (h || 'B', h || 'C'), for the filters
SELECT last_position AS p2 FROM everest.append_events(:'h' || '-2', jsonb_build_array(
    jsonb_build_object('type', :'h' || 'B'), jsonb_build_object('type', :'h' || 'C'),
    jsonb_build_object('type', :'h' || 'B'))) \gset
SELECT pg_sleep(0.05) IS NULL AS _ \gset

BEGIN;
SELECT plan(82);
SELECT set_config('tap.h', :'h', true) IS NOT NULL AS _ \gset
CREATE FUNCTION pg_temp.h(suffix text DEFAULT '') RETURNS text LANGUAGE sql STABLE AS
    $f$ SELECT current_setting('tap.h') || suffix $f$;
CREATE TEMP TABLE tokens (name text PRIMARY KEY, lease uuid, member integer);
CREATE FUNCTION pg_temp.tok(n text) RETURNS uuid LANGUAGE sql STABLE AS
    $f$ SELECT lease FROM tokens WHERE name = n $f$;

-- =============================================================================================
-- wait_for_position
-- =============================================================================================
SELECT is(everest.wait_for_position(0, 0), everest.safe_position(),
          'wait_for_position returns safe_position() at once when it is past after');
SELECT is(everest.wait_for_position(everest.safe_position(), 0), everest.safe_position(),
          'timeout_ms 0: returns at once, with safe_position(), when nothing is past after');
SELECT ok((SELECT clock_timestamp() FROM everest.wait_for_position(everest.safe_position(), 200)) IS NOT NULL,
          'a wait with nothing to wake it returns at its timeout');
SELECT throws_ok($$SELECT everest.wait_for_position(NULL)$$, '22004', NULL, 'after NULL: 22004');
SELECT throws_ok($$SELECT everest.wait_for_position(0, NULL)$$, '22004', NULL, 'timeout_ms NULL: 22004');
SELECT throws_ok($$SELECT everest.wait_for_position(0, -1)$$, '22023', 'timeout_ms must be >= 0, got -1',
                 'a negative timeout: 22023');
SELECT ok(everest.safe_position() >= :p1, 'setup: the event appended before the test is below the horizon');

-- =============================================================================================
-- The horizon is published for standbys
-- =============================================================================================
SELECT ok((SELECT position FROM everest.horizon) BETWEEN :p1 AND everest.safe_position(),
          'the notifier published a horizon at or past the last append, never past safe_position()');
SELECT is((SELECT count(*) FROM everest.horizon), 1::bigint, 'everest.horizon has one row');

-- =============================================================================================
-- Leases
-- =============================================================================================
INSERT INTO tokens SELECT 'a', lease, granted_member FROM everest.acquire_lease(pg_temp.h(), '30 seconds');
SELECT is((SELECT member FROM tokens WHERE name = 'a'), 0, 'acquire_lease grants member 0 of a one-member handler');
SELECT is((SELECT count(*) FROM everest.acquire_lease(pg_temp.h())), 0::bigint,
          'a second acquire finds no free member: zero rows');
SELECT is((SELECT count(*) FROM everest.acquire_lease(pg_temp.h(), member => 0)), 0::bigint,
          '... also when it names the member');
SELECT is((SELECT holder_pid FROM everest.leases WHERE handler = pg_temp.h()), pg_backend_pid(),
          'the lease records its holder');
SELECT ok(everest.renew_lease(pg_temp.h(), pg_temp.tok('a'), '1 minute'), 'renew_lease of a live lease: true');
SELECT ok((SELECT expires_at > clock_timestamp() + interval '50 seconds' FROM everest.leases WHERE handler = pg_temp.h()),
          '... and it moves the expiry');
SELECT ok(NOT everest.renew_lease(pg_temp.h(), gen_random_uuid()), 'renew_lease of another token: false');
SELECT throws_ok($$SELECT everest.save_handler_position(pg_temp.h(), 1)$$, 'EV005',
                 format('handler "%s" member 0 is leased; a save must name the lease', pg_temp.h()),
                 'a save without a lease while the member is leased: EV005');
SELECT throws_ok($$SELECT everest.save_handler_position(pg_temp.h(), 1, lease => gen_random_uuid())$$, 'EV005',
                 format('lease lost: handler "%s" member 0 is not held by this lease', pg_temp.h()),
                 'a save with a token that is not the lease: EV005');
SELECT lives_ok($$SELECT everest.save_handler_position(pg_temp.h(), 1, lease => pg_temp.tok('a'))$$,
                'a save with the live lease');
SELECT lives_ok($$SELECT everest.save_handler_state(pg_temp.h(), 2, '{"n": 2}', lease => pg_temp.tok('a'))$$,
                'save_handler_state with the live lease');
SELECT is(everest.handler_position(pg_temp.h()), 2::bigint, '... both saved');
-- An expired lease: fenced off, and free for the next acquire.
UPDATE everest.leases SET expires_at = clock_timestamp() - interval '1 second' WHERE handler = pg_temp.h();
SELECT throws_ok($$SELECT everest.save_handler_position(pg_temp.h(), 3, lease => pg_temp.tok('a'))$$, 'EV005',
                 NULL, 'a save with an expired lease: EV005');
SELECT ok(NOT everest.renew_lease(pg_temp.h(), pg_temp.tok('a')), 'renew_lease of an expired lease: false');
SELECT lives_ok($$SELECT everest.save_handler_position(pg_temp.h(), 3)$$,
                'a save without a lease once the lease expired');
INSERT INTO tokens SELECT 'b', lease, granted_member FROM everest.acquire_lease(pg_temp.h());
SELECT ok(pg_temp.tok('b') IS NOT NULL AND pg_temp.tok('b') <> pg_temp.tok('a'), 'an expired lease can be acquired, with a new token');
SELECT ok(NOT everest.release_lease(pg_temp.h(), pg_temp.tok('a')), 'release_lease of a lease that was taken over: false');
SELECT ok(everest.release_lease(pg_temp.h(), pg_temp.tok('b')), 'release_lease of the live lease: true');
SELECT is((SELECT count(*) FROM everest.acquire_lease(pg_temp.h())), 1::bigint, '... and the member is free again');
DELETE FROM everest.leases WHERE handler = pg_temp.h();
SELECT throws_ok($$SELECT everest.acquire_lease(pg_temp.h(), member => 1)$$, '22023',
                 format('member 1 is out of range for handler "%s"', pg_temp.h()), 'acquire_lease of a member out of range: 22023');
SELECT throws_ok($$SELECT everest.acquire_lease(pg_temp.h(), '0 seconds')$$, '22023', NULL, 'a ttl of 0: 22023');
SELECT throws_ok($$SELECT everest.acquire_lease(pg_temp.h(), '1 month')$$, '22023', NULL, 'a ttl in months: 22023');
SELECT throws_ok($$SELECT everest.acquire_lease(pg_temp.h(), NULL)$$, '22004', NULL, 'a NULL ttl: 22004');
SELECT throws_ok($$SELECT everest.acquire_lease('')$$, '22023', NULL, 'an empty handler name: 22023');
SELECT throws_ok($$SELECT everest.renew_lease(pg_temp.h(), NULL)$$, '22004', NULL, 'renew_lease without a token: 22004');
SELECT throws_ok($$SELECT everest.release_lease(pg_temp.h(), NULL)$$, '22004', NULL, 'release_lease without a token: 22004');
SELECT throws_ok($$SELECT everest.save_handler_position(pg_temp.h(), 3, lease => 'not-a-token')$$, '22P02', NULL,
                 'a malformed lease token: 22P02');
SELECT throws_ok($$SELECT everest.renew_lease(pg_temp.h(), 'not-a-token')$$, '22P02', NULL, '... on renew_lease too');

-- =============================================================================================
-- Saves: member, expected_position, what this transaction read from
-- =============================================================================================
SELECT throws_ok($$SELECT everest.save_handler_position(pg_temp.h(), 4, member => 1)$$, '22023', NULL,
                 'a save for a member out of range: 22023');
SELECT throws_ok($$SELECT everest.save_handler_position(pg_temp.h(), 4, member => NULL)$$, '22004', NULL,
                 'a save with a NULL member: 22004');
SELECT throws_ok($$SELECT everest.save_handler_position(pg_temp.h(), 4, expected_position => 2)$$, 'EV004',
                 format('handler "%s" checkpoint is 3, not the expected 2', pg_temp.h()),
                 'a save whose expected_position is not the checkpoint: EV004');
SELECT lives_ok($$SELECT everest.save_handler_position(pg_temp.h(), 4, expected_position => 3)$$,
                'a save whose expected_position is the checkpoint');
SELECT throws_ok($$SELECT everest.save_handler_position(pg_temp.h(), 4, expected_position => 4)$$, 'EV004',
                 NULL, '... still must move forward');
SELECT is((SELECT count(*) FROM everest.read_handler_events(pg_temp.h())), (SELECT count(*) FROM everest.read_all_forward(5, 1000000)),
          'setup: this transaction read the handler''s events from 4');
SELECT lives_ok($$SELECT everest.save_handler_position(pg_temp.h(), 5)$$, 'a save after a read: nothing moved');
SELECT lives_ok($$SELECT everest.save_handler_position(pg_temp.h(), 6)$$, '... and a second save of its own');
SELECT lives_ok($$SELECT everest.reset_handler(pg_temp.h(), 6)$$, 'reset_handler rewinds on purpose ...');
SELECT lives_ok($$SELECT everest.save_handler_position(pg_temp.h(), 7)$$, '... and the reads before it no longer bind the transaction');
SELECT throws_ok($$SELECT everest.wait_for_position(everest.safe_position() + 1000000, 10)
                     FROM everest.append_event(pg_temp.h('-2'), 'B')$$, '55000', 'wait_for_position would wait for this session''s own append',
                 'wait_for_position with this transaction''s append in flight below after: 55000');

-- =============================================================================================
-- EV006: checkpoints this store never completed
-- =============================================================================================
SELECT is((SELECT count(*) FROM everest.read_all_forward(everest.safe_position() + 1)), 0::bigint,
          'reading from safe_position() + 1 is not an error: nothing yet');
SELECT throws_ok($$SELECT * FROM everest.read_all_forward(everest.safe_position() + 1000000)$$, 'EV006', NULL,
                 'reading $all after a checkpoint beyond anything assigned: EV006');
SELECT throws_ok(format($$SELECT * FROM everest.read_stream_forward('$ce-%s', everest.safe_position() + 1000000)$$, pg_temp.h()),
                 'EV006', NULL, '... a category too');
SELECT lives_ok($$SELECT everest.reset_handler(pg_temp.h('-far'), 9223372036854775807)$$,
                'setup: a handler checkpoint at the bigint maximum (reset_handler rewinds anywhere)');
SELECT throws_ok($$SELECT * FROM everest.read_handler_events(pg_temp.h('-far'))$$, 'EV006',
                 'position 9223372036854775807 is beyond anything this store assigned',
                 'read_handler_events from a checkpoint at the bigint maximum: EV006, not a wrap to position 1');
SELECT throws_ok($$SELECT everest.save_handler_position(pg_temp.h('-far2'), everest.safe_position() + 1000000)$$, 'EV006', NULL,
                 'saving a position beyond anything assigned: EV006');
SELECT throws_ok($$SELECT everest.save_handler_position(pg_temp.h('-far2'), 9223372036854775807)$$, 'EV006', NULL,
                 '... the bigint maximum too');
SELECT is((SELECT count(*) FROM everest.epochs WHERE lost_after IS NULL), 1::bigint,
          'the store''s first append recorded its epoch, without a lost range');
SELECT is((SELECT system_identifier FROM everest.epochs ORDER BY epoch DESC LIMIT 1),
          (SELECT system_identifier::bigint FROM pg_control_system()), '... naming this cluster');
-- =============================================================================================
-- read_handler_events' member, types and after (DESIGN.md section 10's signature; after is how a
-- reader on a standby reads from the primary's checkpoint, docs/topologies.md)
-- =============================================================================================
SELECT set_config('tap.p2', :'p2', true) IS NOT NULL AS _ \gset
CREATE FUNCTION pg_temp.taken(source text, types text[], max_count integer DEFAULT 100, after bigint DEFAULT NULL)
    RETURNS text LANGUAGE sql AS $f$
    SELECT coalesce(string_agg((position - current_setting('tap.p2')::bigint)::text || ':' ||
                               substr(type, length(current_setting('tap.h')) + 1), ',' ORDER BY position), '')
      FROM everest.read_handler_events(pg_temp.h('-t'), source, max_count, types => types, after => after) $f$;
SELECT is(pg_temp.taken('$all', ARRAY[pg_temp.h('B')]), '-2:B,0:B', 'types: $all read, only the events of that type');
SELECT is(pg_temp.taken('$ce-' || pg_temp.h(), ARRAY[pg_temp.h('B'), pg_temp.h('C')]), '-2:B,-1:C,0:B',
          'types: a category read, every listed type, in position order');
SELECT is(pg_temp.taken(pg_temp.h('-2'), ARRAY[pg_temp.h('C')]), '-1:C', 'types: a stream read');
SELECT is(pg_temp.taken('$all', ARRAY[pg_temp.h('B')], 1), '-2:B', 'max_count counts the events taken, not those passed over');
SELECT is(pg_temp.taken('$all', ARRAY[pg_temp.h('B')], 100, :p2 - 2), '0:B', 'after: the events after that position');
SELECT is(pg_temp.taken(pg_temp.h('-2'), NULL, 100, :p2 - 1), '0:B', 'after on a stream source, without types');
SELECT is(pg_temp.taken('$all', ARRAY['no such type ' || pg_temp.h()]), '', 'a type nobody appended: nothing');
SELECT throws_ok($$SELECT * FROM everest.read_handler_events(pg_temp.h('-t'), types => '{}')$$, '22023',
                 'types must not be empty', 'types: an empty array is 22023');
SELECT throws_ok($$SELECT * FROM everest.read_handler_events(pg_temp.h('-t'), types => '{A,NULL}')$$, '22004',
                 'types must not contain NULL', 'types: a NULL element is 22004');
SELECT throws_ok($$SELECT * FROM everest.read_handler_events(pg_temp.h('-t'), after => -1)$$, '22023',
                 'after must be >= 0, got -1', 'after < 0 is 22023');
SELECT throws_ok($$SELECT * FROM everest.read_handler_events(pg_temp.h('-t'), after => everest.safe_position() + 1000000)$$,
                 'EV006', NULL, 'after beyond anything assigned is EV006');
SELECT throws_ok($$SELECT * FROM everest.read_handler_events(pg_temp.h('-t'), member => 1)$$, '22023', NULL,
                 'read_handler_events of a member outside the group is 22023');
SELECT throws_ok($$SELECT * FROM everest.read_handler_events(pg_temp.h('-t'), member => NULL)$$, '22004', NULL,
                 '... a NULL member is 22004');
SELECT throws_ok($$SELECT everest.handler_position(pg_temp.h('-t'), 1)$$, '22023', NULL,
                 'handler_position of a member outside the group is 22023');
SELECT throws_ok($$SELECT everest.handler_state(pg_temp.h('-t'), NULL)$$, '22004', NULL,
                 'handler_state with a NULL member is 22004');
-- A read with after records nothing: the save's check is expected_position.
SELECT lives_ok(format($$SELECT everest.save_handler_position(pg_temp.h('-a'), %s)$$, :p2 - 2), 'setup: a checkpoint');
SELECT lives_ok($$SELECT everest.reset_handler(pg_temp.h('-a'), current_setting('tap.p2')::bigint - 2)$$,
                'setup: ... reset to the same value (a read from it earlier would now be stale)');
SELECT is((SELECT count(*) FROM everest.read_handler_events(pg_temp.h('-a'), pg_temp.h('-2'), after => :p2 - 2)), 2::bigint,
          'a read with after');
SELECT throws_ok(format($$SELECT everest.save_handler_position(pg_temp.h('-a'), %s, expected_position => %s)$$, :p2, :p2 - 1),
                 'EV004', NULL, '... then a save whose expected_position is not the stored checkpoint: EV004');
SELECT lives_ok(format($$SELECT everest.save_handler_position(pg_temp.h('-a'), %s, expected_position => %s)$$, :p2, :p2 - 2),
                '... with the checkpoint it read after: saved');

-- A lost range as a promotion records it (here by hand; test/shell/failover.sh does it for real).
SELECT everest.safe_position() AS sp \gset
INSERT INTO everest.epochs (epoch, first_position, lost_after, system_identifier, timeline)
     VALUES (7, (7::bigint << 40) + 1, :sp - 3, 0, 0);
ALTER TABLE everest.epochs SET (fillfactor = 100);  -- a relcache invalidation, as the epoch switch sends
SELECT throws_ok(format($$SELECT * FROM everest.read_all_forward(%s)$$, :sp - 1), 'EV006',
                 format('position %s is in a range this store never completed', :sp - 2),
                 'reading after a checkpoint in a lost range: EV006');
SELECT lives_ok(format($$SELECT * FROM everest.read_all_forward(%s)$$, :sp - 2),
                '... reading after the range''s start is fine');
SELECT throws_ok(format($$SELECT everest.save_handler_position(pg_temp.h('-lost'), %s)$$, :sp - 1), 'EV006', NULL,
                 'saving a position in a lost range: EV006');
SELECT lives_ok(format($$SELECT everest.reset_handler(pg_temp.h('-lost'), %s)$$, :sp - 1), 'setup: a handler inside the lost range');
SELECT throws_ok($$SELECT * FROM everest.read_handler_events(pg_temp.h('-lost'))$$, 'EV006', NULL,
                 'read_handler_events of a handler whose checkpoint is in a lost range: EV006');

SELECT * FROM finish();
ROLLBACK;
SELECT everest.delete_stream(:'h' || '-1') AS _ \gset
SELECT everest.delete_stream(:'h' || '-2') AS _ \gset
