-- Deletes, tombstones, and immutable events.
CREATE FUNCTION pg_temp.err(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN EXECUTE q; RETURN 'no error';
EXCEPTION WHEN OTHERS THEN RETURN SQLSTATE || ': ' || SQLERRM; END $$;

SELECT last_position AS before FROM everest.append_events('user-1', '[{"type": "A"}, {"type": "B"}]') \gset
SELECT last_version FROM everest.append_event('user-2', 'A');
SELECT pg_temp.err($$SELECT everest.delete_stream('user-1', 0)$$);
SELECT everest.delete_stream('user-1', 1);
SELECT count(*) FROM everest.read_stream_forward('user-1');
SELECT count(*) FROM everest.read_all_forward(0, 100000) WHERE stream = 'user-1';
SELECT everest.stream_version('user-1');
-- the name can be used again: version 0, a higher position
SELECT first_version, first_position > :before AS higher FROM everest.append_event('user-1', 'C', expected_version => -1);
-- nothing to delete
SELECT everest.delete_stream('user-404');
SELECT pg_temp.err($$SELECT everest.delete_stream('user-404', -4)$$);
SELECT everest.delete_stream('user-404', -1);
-- tombstone: the name is retired
SELECT everest.delete_stream('user-2', -4, tombstone => true);
SELECT pg_temp.err($$SELECT everest.append_event('user-2', 'B')$$);
SELECT count(*) FROM everest.read_stream_forward('user-2');
SELECT everest.stream_version('user-2');
SELECT everest.delete_stream('user-2');
SELECT pg_temp.err($$SELECT everest.delete_stream('user-2', 0)$$);
-- stored events are immutable, for their owner too
SELECT pg_temp.err($$UPDATE everest.events SET type = 'X'$$);
SELECT pg_temp.err($$DELETE FROM everest.events$$);
SELECT pg_temp.err($$TRUNCATE everest.events$$);
SELECT count(*) > 0 AS still_there FROM everest.read_all_forward(0, 100000);
