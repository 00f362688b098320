-- Functions are immune to search_path: objects planted in a schema searched first are never used.
CREATE SCHEMA evil;
CREATE TABLE evil.calls (what text);
CREATE FUNCTION evil.trap_text(a text, b text) RETURNS boolean LANGUAGE plpgsql AS
  $$BEGIN INSERT INTO evil.calls VALUES ('text ='); RETURN a::text OPERATOR(pg_catalog.=) b::text; END$$;
CREATE FUNCTION evil.trap_int8(a bigint, b bigint) RETURNS boolean LANGUAGE plpgsql AS
  $$BEGIN INSERT INTO evil.calls VALUES ('bigint op'); RETURN true; END$$;
CREATE FUNCTION evil.trap_uuid(a uuid, b uuid) RETURNS boolean LANGUAGE plpgsql AS
  $$BEGIN INSERT INTO evil.calls VALUES ('uuid ='); RETURN true; END$$;
CREATE OPERATOR evil.= (LEFTARG = text, RIGHTARG = text, FUNCTION = evil.trap_text);
CREATE OPERATOR evil.= (LEFTARG = bigint, RIGHTARG = bigint, FUNCTION = evil.trap_int8);
CREATE OPERATOR evil.>= (LEFTARG = bigint, RIGHTARG = bigint, FUNCTION = evil.trap_int8);
CREATE OPERATOR evil.<= (LEFTARG = bigint, RIGHTARG = bigint, FUNCTION = evil.trap_int8);
CREATE OPERATOR evil.< (LEFTARG = bigint, RIGHTARG = bigint, FUNCTION = evil.trap_int8);
CREATE OPERATOR evil.= (LEFTARG = uuid, RIGHTARG = uuid, FUNCTION = evil.trap_uuid);
CREATE FUNCTION evil.split_part(text, text, integer) RETURNS text LANGUAGE plpgsql AS
  $$BEGIN INSERT INTO evil.calls VALUES ('split_part'); RETURN 'x'; END$$;
CREATE FUNCTION evil.now() RETURNS timestamptz LANGUAGE plpgsql AS
  $$BEGIN INSERT INTO evil.calls VALUES ('now'); RETURN '2000-01-01'; END$$;
CREATE FUNCTION evil.nextval(regclass) RETURNS bigint LANGUAGE plpgsql AS
  $$BEGIN INSERT INTO evil.calls VALUES ('nextval'); RETURN 1; END$$;
CREATE TABLE evil.events (LIKE everest.events);
CREATE TABLE evil.tombstones (LIKE everest.tombstones);
SET search_path = evil, pg_catalog, public;

SELECT first_version FROM everest.append_events('trap-1', '[{"type": "A", "id": "33333333-3333-4333-8333-333333333333"}, {"type": "B"}]', -1);
SELECT first_version FROM everest.append_event('trap-1', 'C', expected_version => 1);
SELECT first_version FROM everest.append_events('trap-1', '[{"type": "A", "id": "33333333-3333-4333-8333-333333333333"}]', -1);
SELECT count(*) FROM everest.read_stream_forward('trap-1');
SELECT count(*) FROM everest.read_stream_backward('trap-1');
SELECT count(*) >= 3 FROM everest.read_all_forward();
SELECT count(*) >= 3 FROM everest.read_all_backward();
SELECT count(*) FROM everest.read_stream_forward('$ce-trap', 0);
SELECT count(*) FROM everest.read_event('trap-1', 1);
SELECT everest.stream_version('trap-1');
SELECT everest.save_handler_state('trap-h', 1, '{}');
SELECT everest.save_handler_position('trap-h', 2);
SELECT everest.handler_position('trap-h'), everest.handler_state('trap-h');
SELECT count(*) >= 0 FROM everest.read_handler_events('trap-h', '$ce-trap');
SELECT count(*) >= 0 FROM everest.read_handler_events('trap-h', 'trap-1');
SELECT everest.reset_handler('trap-h');
SELECT everest.delete_stream('trap-1', 2);
SELECT everest.safe_position() > 0;
SELECT count(*) FROM everest.horizon_holders;
SELECT everest.try_acquire_handler('trap-h');
SELECT everest.release_handler('trap-h');
RESET search_path;
SELECT count(*) AS planted_calls FROM evil.calls;
SELECT count(*) AS planted_rows FROM evil.events;
DROP SCHEMA evil CASCADE;
