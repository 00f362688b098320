-- Handler checkpoints, state and leases.
CREATE FUNCTION pg_temp.err(q text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN EXECUTE q; RETURN 'no error';
EXCEPTION WHEN OTHERS THEN RETURN SQLSTATE || ': ' || SQLERRM; END $$;

SELECT everest.handler_position('projector'), everest.handler_state('projector');
SELECT first_position AS p0 FROM everest.append_events('invoice-1', '[{"type": "A"}, {"type": "B"}]') \gset
SELECT last_position FROM everest.append_event('payment-1', 'A') \gset
SELECT everest.reset_handler('projector', :p0 - 1);
SELECT stream, version FROM everest.read_handler_events('projector');
SELECT stream, version FROM everest.read_handler_events('projector', 'invoice-1');
SELECT stream, version FROM everest.read_handler_events('projector', '$ce-payment');
SELECT stream, version FROM everest.read_handler_events('projector', '$all', 1);
-- checkpoint and state, in the caller's transaction
SELECT everest.save_handler_state('projector', :p0, '{"count": 1}');
SELECT everest.handler_position('projector') - :p0 AS rel, everest.handler_state('projector');
SELECT stream, version FROM everest.read_handler_events('projector');
BEGIN;
SELECT everest.save_handler_position('projector', :p0 + 1);
ROLLBACK;
SELECT everest.handler_position('projector') - :p0 AS rel;
-- a position that does not move forward: EV004
SELECT pg_temp.err(format($$SELECT everest.save_handler_position('projector', %s)$$, :p0));
SELECT pg_temp.err(format($$SELECT everest.save_handler_state('projector', %s, '{}')$$, :p0 - 1));
SELECT pg_temp.err($$SELECT everest.save_handler_position('newcomer', 0)$$);
-- reset rewinds on purpose and clears the state
SELECT everest.reset_handler('projector');
SELECT everest.handler_position('projector'), everest.handler_state('projector');
-- leases: one session at a time; re-entrant in the holder
SELECT everest.try_acquire_handler('projector'), everest.try_acquire_handler('projector');
SELECT locktype, objsubid, mode FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid();
SELECT everest.release_handler('projector'), everest.release_handler('projector');
