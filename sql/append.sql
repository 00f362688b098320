-- Appends: batches, single events, expected versions, ids and idempotent retries.
CREATE FUNCTION pg_temp.err(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN EXECUTE q; RETURN 'no error';
EXCEPTION WHEN OTHERS THEN RETURN SQLSTATE || ': ' || SQLERRM; END $$;

-- a batch: consecutive versions, increasing positions
SELECT * FROM everest.append_events('order-1',
  '[{"type": "Placed", "data": {"total": 10}},
    {"type": "Paid", "data": 10, "metadata": {"by": "card"}},
    {"type": "Shipped"}]');
-- a single event, every expected-version mode
SELECT * FROM everest.append_event('order-1', 'Delivered', '{"at": "door"}', '{"courier": 7}', 2);
SELECT * FROM everest.append_event('order-2', 'Placed', expected_version => -1);
SELECT * FROM everest.append_event('order-2', 'Paid', expected_version => -4);
SELECT * FROM everest.append_event('order-2', 'Shipped', expected_version => -2);
SELECT * FROM everest.append_event('order-2', 'Delivered', expected_version => 2);
-- wrong expected versions: EV001 naming stream, expected and actual
SELECT pg_temp.err($$SELECT everest.append_event('order-2', 'X', expected_version => 2)$$);
SELECT pg_temp.err($$SELECT everest.append_event('order-2', 'X', expected_version => -1)$$);
SELECT pg_temp.err($$SELECT everest.append_event('order-9', 'X', expected_version => -4)$$);
SELECT pg_temp.err($$SELECT everest.append_event('order-9', 'X', expected_version => 0)$$);
-- what was stored (ids and times vary, so not shown)
SELECT stream, version, position, type, data, metadata FROM everest.read_all_forward();
SELECT everest.stream_version('order-1'), everest.stream_version('order-2'), everest.stream_version('order-9');
-- given ids are kept; absent ids are generated, version 7 (time-ordered) UUIDs
SELECT * FROM everest.append_events('order-3',
  '[{"type": "Placed", "id": "11111111-1111-4111-8111-111111111111"},
    {"type": "Paid", "id": "22222222-2222-4222-8222-222222222222"}]', -1);
SELECT version, id FROM everest.read_stream_forward('order-3');
SELECT substr(id::text, 15, 1) AS uuid_version, count(*) FROM everest.read_all_forward() GROUP BY 1 ORDER BY 1;
SELECT bool_and(abs(('x' || substr(replace(id::text, '-', ''), 1, 12))::bit(48)::bigint
                    - (extract(epoch FROM now()) * 1000)::bigint) < 600000) AS starts_with_the_time
  FROM everest.read_all_forward() WHERE substr(id::text, 15, 1) = '7';
-- idempotent retry: same ids, same order, right after the expected version: same result, no write
SELECT * FROM everest.append_events('order-3',
  '[{"type": "Placed", "id": "11111111-1111-4111-8111-111111111111"},
    {"type": "Paid", "id": "22222222-2222-4222-8222-222222222222"}]', -1);
SELECT * FROM everest.append_event('order-3', 'Paid', id => '22222222-2222-4222-8222-222222222222');
SELECT * FROM everest.append_event('order-3', 'Paid', expected_version => 0, id => '22222222-2222-4222-8222-222222222222');
SELECT everest.stream_version('order-3'), everest.safe_position();
-- any other reuse of a stored id: EV003
SELECT pg_temp.err($$SELECT everest.append_event('order-4', 'Paid', id => '22222222-2222-4222-8222-222222222222')$$);
SELECT pg_temp.err($$SELECT everest.append_events('order-3', '[{"type": "Paid", "id": "22222222-2222-4222-8222-222222222222"}, {"type": "Placed", "id": "11111111-1111-4111-8111-111111111111"}]')$$);
SELECT pg_temp.err($$SELECT everest.append_events('order-3', '[{"type": "Placed", "id": "11111111-1111-4111-8111-111111111111"}, {"type": "New"}]')$$);
SELECT pg_temp.err($$SELECT everest.append_event('order-3', 'Paid', expected_version => 1, id => '22222222-2222-4222-8222-222222222222')$$);
SELECT everest.stream_version('order-3'), everest.stream_version('order-4');
-- several appends in one transaction commit or roll back together
BEGIN;
SELECT first_version FROM everest.append_event('order-5', 'Placed');
SELECT first_version FROM everest.append_event('order-6', 'Placed');
ROLLBACK;
SELECT everest.stream_version('order-5'), everest.stream_version('order-6');
BEGIN;
SELECT first_version FROM everest.append_event('order-5', 'Placed');
SAVEPOINT s;
SELECT first_version FROM everest.append_event('order-6', 'Placed');
ROLLBACK TO SAVEPOINT s;
COMMIT;
SELECT everest.stream_version('order-5'), everest.stream_version('order-6');
-- stream names: 512 bytes is the limit; case matters
SELECT first_version FROM everest.append_event(repeat('n', 512), 'X');
SELECT first_version FROM everest.append_event('Order-1', 'X');
SELECT everest.stream_version('Order-1'), everest.stream_version('order-1');
