-- everest pgTAP: the error contract of DESIGN.md section 3, across every function: each error a
-- user can cause has its specific SQLSTATE (never XX000), and a lower-case message without a
-- trailing period.
BEGIN;
SELECT plan(61);

-- 'ok' when q fails with SQLSTATE want and a well-formed message; otherwise what went wrong.
CREATE FUNCTION pg_temp.error_of(q text, want text) RETURNS text LANGUAGE plpgsql AS $f$
DECLARE
    state text;
    msg text;
BEGIN
    BEGIN
        EXECUTE q;
    EXCEPTION WHEN OTHERS THEN
        GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE, msg = MESSAGE_TEXT;
    END;
    IF state IS NULL THEN
        RETURN 'no error';
    ELSIF state <> want THEN
        RETURN format('SQLSTATE %s, not %s: %s', state, want, msg);
    ELSIF msg ~ '^\s*[A-Z]' THEN
        RETURN format('message starts with a capital: %s', msg);
    ELSIF msg ~ '\.\s*$' THEN
        RETURN format('message ends with a period: %s', msg);
    ELSIF msg = '' THEN
        RETURN 'empty message';
    END IF;
    RETURN 'ok';
END
$f$;

-- Fixtures
SELECT is((SELECT last_version FROM everest.append_events('taperr-s', '[
              {"type": "A", "id": "a1000000-0000-4000-8000-000000000001"}, {"type": "B"}]')),
          1::bigint, 'setup: taperr-s at version 1');
SELECT is(everest.delete_stream('taperr-tomb', -2, true), 0::bigint, 'setup: taperr-tomb is tombstoned');
SELECT lives_ok($q$SELECT everest.save_handler_position('taperr-h', 10)$q$, 'setup: handler taperr-h at 10');

CREATE TEMP TABLE cases (ord serial, label text, q text, want text);
INSERT INTO cases (label, q, want) VALUES
 -- EV001..EV004
 ('append_events wrong exact version', $q$SELECT * FROM everest.append_events('taperr-s', '[{"type": "X"}]', 5)$q$, 'EV001'),
 ('append_events -1 on an existing stream', $q$SELECT * FROM everest.append_events('taperr-s', '[{"type": "X"}]', -1)$q$, 'EV001'),
 ('append_events -4 on a new stream', $q$SELECT * FROM everest.append_events('taperr-new', '[{"type": "X"}]', -4)$q$, 'EV001'),
 ('append_event wrong exact version', $q$SELECT * FROM everest.append_event('taperr-s', 'X', expected_version => 0)$q$, 'EV001'),
 ('delete_stream wrong exact version', $q$SELECT everest.delete_stream('taperr-s', 0)$q$, 'EV001'),
 ('append_events to a tombstoned stream', $q$SELECT * FROM everest.append_events('taperr-tomb', '[{"type": "X"}]')$q$, 'EV002'),
 ('append_event to a tombstoned stream', $q$SELECT * FROM everest.append_event('taperr-tomb', 'X')$q$, 'EV002'),
 ('append_events reusing an id elsewhere', $q$SELECT * FROM everest.append_events('taperr-other', '[{"type": "A", "id": "a1000000-0000-4000-8000-000000000001"}]')$q$, 'EV003'),
 ('append_event reusing an id elsewhere', $q$SELECT * FROM everest.append_event('taperr-other', 'A', id => 'a1000000-0000-4000-8000-000000000001')$q$, 'EV003'),
 ('append_events stored id plus a new event', $q$SELECT * FROM everest.append_events('taperr-s', '[{"type": "A", "id": "a1000000-0000-4000-8000-000000000001"}, {"type": "Z"}]')$q$, 'EV003'),
 ('save_handler_position equal', $q$SELECT everest.save_handler_position('taperr-h', 10)$q$, 'EV004'),
 ('save_handler_position lower', $q$SELECT everest.save_handler_position('taperr-h', 9)$q$, 'EV004'),
 ('save_handler_state equal', $q$SELECT everest.save_handler_state('taperr-h', 10, '{}')$q$, 'EV004'),
 -- 22023: event shape
 ('events not an array', $q$SELECT * FROM everest.append_events('taperr-x', '{"type": "A"}')$q$, '22023'),
 ('events an empty array', $q$SELECT * FROM everest.append_events('taperr-x', '[]')$q$, '22023'),
 ('an event not an object', $q$SELECT * FROM everest.append_events('taperr-x', '[{"type": "A"}, "B"]')$q$, '22023'),
 ('an event without type', $q$SELECT * FROM everest.append_events('taperr-x', '[{"data": {}}]')$q$, '22023'),
 ('an event with an empty type', $q$SELECT * FROM everest.append_events('taperr-x', '[{"type": ""}]')$q$, '22023'),
 ('an event with a numeric type', $q$SELECT * FROM everest.append_events('taperr-x', '[{"type": 3}]')$q$, '22023'),
 ('an event with an unknown key', $q$SELECT * FROM everest.append_events('taperr-x', '[{"type": "A", "x": 1}]')$q$, '22023'),
 ('an event with array metadata', $q$SELECT * FROM everest.append_events('taperr-x', '[{"type": "A", "metadata": []}]')$q$, '22023'),
 ('append_event with string metadata', $q$SELECT * FROM everest.append_event('taperr-x', 'A', '{}', '"m"')$q$, '22023'),
 ('append_event with an empty type', $q$SELECT * FROM everest.append_event('taperr-x', '')$q$, '22023'),
 -- 22P02
 ('a malformed event id', $q$SELECT * FROM everest.append_events('taperr-x', '[{"type": "A", "id": "not-a-uuid"}]')$q$, '22P02'),
 -- 22023: expected_version, stream names, max_count
 ('append_events NULL expected_version', $q$SELECT * FROM everest.append_events('taperr-x', '[{"type": "A"}]', NULL)$q$, '22023'),
 ('append_events expected_version -3', $q$SELECT * FROM everest.append_events('taperr-x', '[{"type": "A"}]', -3)$q$, '22023'),
 ('append_event expected_version -5', $q$SELECT * FROM everest.append_event('taperr-x', 'A', expected_version => -5)$q$, '22023'),
 ('delete_stream NULL expected_version', $q$SELECT everest.delete_stream('taperr-x', NULL)$q$, '22023'),
 ('delete_stream expected_version -3', $q$SELECT everest.delete_stream('taperr-x', -3)$q$, '22023'),
 ('append_events to $all', $q$SELECT * FROM everest.append_events('$all', '[{"type": "A"}]')$q$, '22023'),
 ('append_events to $ce-x', $q$SELECT * FROM everest.append_events('$ce-x', '[{"type": "A"}]')$q$, '22023'),
 ('append_event to $foo', $q$SELECT * FROM everest.append_event('$foo', 'A')$q$, '22023'),
 ('delete_stream of $all', $q$SELECT everest.delete_stream('$all')$q$, '22023'),
 ('append_events to an empty name', $q$SELECT * FROM everest.append_events('', '[{"type": "A"}]')$q$, '22023'),
 ('append_events to a 513-byte name', format('SELECT * FROM everest.append_events(%L, %L)', repeat('n', 513), '[{"type": "A"}]'), '22023'),
 ('read_stream_forward max_count -1', $q$SELECT * FROM everest.read_stream_forward('taperr-s', 0, -1)$q$, '22023'),
 ('read_stream_backward max_count NULL', $q$SELECT * FROM everest.read_stream_backward('taperr-s', -1, NULL)$q$, '22023'),
 ('read_all_forward max_count -1', $q$SELECT * FROM everest.read_all_forward(0, -1)$q$, '22023'),
 ('read_all_backward max_count NULL', $q$SELECT * FROM everest.read_all_backward(-1, NULL)$q$, '22023'),
 ('read_handler_events max_count -1', $q$SELECT * FROM everest.read_handler_events('taperr-h', '$all', -1)$q$, '22023'),
 ('read_stream_forward of an empty name', $q$SELECT * FROM everest.read_stream_forward('')$q$, '22023'),
 -- 22004
 ('append_events NULL stream', $q$SELECT * FROM everest.append_events(NULL, '[{"type": "A"}]')$q$, '22004'),
 ('append_events NULL events', $q$SELECT * FROM everest.append_events('taperr-x', NULL)$q$, '22004'),
 ('append_event NULL type', $q$SELECT * FROM everest.append_event('taperr-x', NULL)$q$, '22004'),
 ('read_event NULL stream', $q$SELECT * FROM everest.read_event(NULL, 0)$q$, '22004'),
 ('read_stream_forward NULL stream', $q$SELECT * FROM everest.read_stream_forward(NULL)$q$, '22004'),
 ('stream_version NULL stream', $q$SELECT everest.stream_version(NULL)$q$, '22004'),
 ('delete_stream NULL stream', $q$SELECT everest.delete_stream(NULL)$q$, '22004'),
 ('handler_position NULL handler', $q$SELECT everest.handler_position(NULL)$q$, '22004'),
 ('save_handler_position NULL position', $q$SELECT everest.save_handler_position('taperr-h', NULL)$q$, '22004'),
 ('read_handler_events NULL source', $q$SELECT * FROM everest.read_handler_events('taperr-h', NULL)$q$, '22004'),
 -- 0A000: stored events are immutable
 ('UPDATE everest.events', $q$UPDATE everest.events SET type = 'X'$q$, '0A000'),
 ('DELETE FROM everest.events', $q$DELETE FROM everest.events$q$, '0A000'),
 ('TRUNCATE everest.events', $q$TRUNCATE everest.events$q$, '0A000');

SELECT is(pg_temp.error_of(q, want), 'ok', format('%s: %s with a lower-case message, no period', label, want))
  FROM cases ORDER BY ord;

-- Bad input wrote nothing
SELECT is(everest.stream_version('taperr-s'), 1::bigint, 'taperr-s did not move');
SELECT is((SELECT count(*) FROM everest.events WHERE stream LIKE 'taperr-%' AND stream <> 'taperr-s'), 0::bigint,
          'no other taperr- stream received an event');
SELECT is(everest.handler_position('taperr-h'), 10::bigint, 'the handler did not move');
SELECT is((SELECT count(*) FROM everest.read_stream_forward('taperr-s')), 2::bigint, 'taperr-s still has 2 events');

SELECT * FROM finish();
ROLLBACK;
