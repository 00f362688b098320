-- Every user-caused error has its SQLSTATE (DESIGN.md section 3); bad input writes nothing.
CREATE FUNCTION pg_temp.err(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN EXECUTE q; RETURN 'no error';
EXCEPTION WHEN OTHERS THEN RETURN SQLSTATE || ': ' || SQLERRM; END $$;
SELECT everest.safe_position() AS before \gset

-- 22023: event shapes, naming the element
SELECT pg_temp.err($$SELECT everest.append_events('e-1', '{"type": "A"}')$$);
SELECT pg_temp.err($$SELECT everest.append_events('e-1', '"A"')$$);
SELECT pg_temp.err($$SELECT everest.append_events('e-1', '[]')$$);
SELECT pg_temp.err($$SELECT everest.append_events('e-1', '[{"type": "A"}, 5]')$$);
SELECT pg_temp.err($$SELECT everest.append_events('e-1', '[{"type": "A"}, {"data": 1}]')$$);
SELECT pg_temp.err($$SELECT everest.append_events('e-1', '[{"type": ""}]')$$);
SELECT pg_temp.err($$SELECT everest.append_events('e-1', '[{"type": 7}]')$$);
SELECT pg_temp.err($$SELECT everest.append_events('e-1', '[{"type": "A", "extra": 1}]')$$);
SELECT pg_temp.err($$SELECT everest.append_events('e-1', '[{"type": "A", "metadata": [1]}]')$$);
SELECT pg_temp.err($$SELECT everest.append_events('e-1', '[{"type": "A", "metadata": "m"}]')$$);
SELECT pg_temp.err($$SELECT everest.append_events('e-1', '[{"type": "A", "id": 5}]')$$);
SELECT pg_temp.err($$SELECT everest.append_events('e-1', '[{"type": "A", "id": "44444444-4444-4444-8444-444444444444"}, {"type": "B", "id": "44444444-4444-4444-8444-444444444444"}]')$$);
SELECT pg_temp.err($$SELECT everest.append_event('e-1', '')$$);
SELECT pg_temp.err($$SELECT everest.append_event('e-1', 'A', metadata => '[1]')$$);
-- 22P02: malformed UUID
SELECT pg_temp.err($$SELECT everest.append_events('e-1', '[{"type": "A"}, {"type": "B", "id": "not-a-uuid"}]')$$);
SELECT pg_temp.err($$SELECT everest.append_events('e-1', '[{"type": "A", "id": "11111111-1111-4111-8111-11111111111"}]')$$);
-- 22023: expected_version
SELECT pg_temp.err($$SELECT everest.append_event('e-1', 'A', expected_version => -3)$$);
SELECT pg_temp.err($$SELECT everest.append_event('e-1', 'A', expected_version => -5)$$);
SELECT pg_temp.err($$SELECT everest.append_event('e-1', 'A', expected_version => NULL)$$);
SELECT pg_temp.err($$SELECT everest.append_events('e-1', '[{"type": "A"}]', NULL)$$);
SELECT pg_temp.err($$SELECT everest.delete_stream('e-1', -3)$$);
SELECT pg_temp.err($$SELECT everest.delete_stream('e-1', NULL)$$);
-- 22023: stream names
SELECT pg_temp.err($$SELECT everest.append_event('', 'A')$$);
SELECT pg_temp.err($$SELECT everest.append_event(repeat('n', 513), 'A')$$);
SELECT pg_temp.err($$SELECT everest.append_event('$all', 'A')$$);
SELECT pg_temp.err($$SELECT everest.append_event('$ce-e', 'A')$$);
SELECT pg_temp.err($$SELECT everest.append_events('$other', '[{"type": "A"}]')$$);
SELECT pg_temp.err($$SELECT everest.delete_stream('$all')$$);
SELECT pg_temp.err($$SELECT * FROM everest.read_stream_forward('$other')$$);
SELECT pg_temp.err($$SELECT * FROM everest.read_stream_forward('$ce-')$$);
SELECT pg_temp.err($$SELECT * FROM everest.read_stream_forward('')$$);
SELECT pg_temp.err($$SELECT everest.stream_version('$all')$$);
-- 22023: counts and starts
SELECT pg_temp.err($$SELECT * FROM everest.read_stream_forward('e-1', 0, -1)$$);
SELECT pg_temp.err($$SELECT * FROM everest.read_stream_forward('e-1', 0, NULL)$$);
SELECT pg_temp.err($$SELECT * FROM everest.read_all_forward(0, -1)$$);
SELECT pg_temp.err($$SELECT * FROM everest.read_all_backward(-1, NULL)$$);
SELECT pg_temp.err($$SELECT * FROM everest.read_handler_events('h', '$all', -1)$$);
SELECT pg_temp.err($$SELECT * FROM everest.read_stream_forward('e-1', -1)$$);
SELECT pg_temp.err($$SELECT * FROM everest.read_stream_backward('e-1', -2)$$);
SELECT pg_temp.err($$SELECT * FROM everest.read_all_forward(-1)$$);
SELECT pg_temp.err($$SELECT * FROM everest.read_event('e-1', -2)$$);
SELECT pg_temp.err($$SELECT everest.save_handler_position('h', -1)$$);
SELECT pg_temp.err($$SELECT everest.handler_position('')$$);
-- 22004: NULL where a value is required
SELECT pg_temp.err($$SELECT everest.append_events(NULL, '[{"type": "A"}]')$$);
SELECT pg_temp.err($$SELECT everest.append_events('e-1', NULL)$$);
SELECT pg_temp.err($$SELECT everest.append_event('e-1', NULL)$$);
SELECT pg_temp.err($$SELECT everest.append_event('e-1', 'A', NULL)$$);
SELECT pg_temp.err($$SELECT * FROM everest.read_event(NULL, 0)$$);
SELECT pg_temp.err($$SELECT * FROM everest.read_event('e-1', NULL)$$);
SELECT pg_temp.err($$SELECT * FROM everest.read_stream_forward(NULL)$$);
SELECT pg_temp.err($$SELECT * FROM everest.read_stream_forward('e-1', NULL)$$);
SELECT pg_temp.err($$SELECT * FROM everest.read_all_forward(NULL)$$);
SELECT pg_temp.err($$SELECT everest.stream_version(NULL)$$);
SELECT pg_temp.err($$SELECT everest.delete_stream(NULL)$$);
SELECT pg_temp.err($$SELECT everest.delete_stream('e-1', -2, NULL)$$);
SELECT pg_temp.err($$SELECT everest.handler_position(NULL)$$);
SELECT pg_temp.err($$SELECT everest.save_handler_position('h', NULL)$$);
SELECT pg_temp.err($$SELECT * FROM everest.read_handler_events('h', NULL)$$);
SELECT pg_temp.err($$SELECT everest.try_acquire_handler(NULL)$$);
-- 0A000: reads bounded by the horizon need READ COMMITTED; PREPARE after an append
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT pg_temp.err($$SELECT * FROM everest.read_all_forward()$$);
ROLLBACK;
BEGIN;
SELECT first_version FROM everest.append_event('e-2', 'A');
PREPARE TRANSACTION 'everest_test';
SELECT count(*) FROM pg_prepared_xacts;
-- 55000: a position sequence that could hand out positions out of order
ALTER SEQUENCE everest.position_seq CACHE 10;
SELECT pg_temp.err($$SELECT everest.append_event('e-3', 'A')$$);
ALTER SEQUENCE everest.position_seq CACHE 1;
-- none of the above wrote anything
SELECT everest.stream_version('e-1'), everest.stream_version('e-2'), everest.stream_version('e-3'), everest.safe_position() - :before AS drawn_positions;
SELECT count(*) FROM everest.read_all_forward(:before + 1);
