\set s random(1, 10000)
INSERT INTO baseline.events (position, stream, version, id, type, data)
VALUES (nextval('baseline.position_seq'), 'bench-' || :s, nextval('baseline.position_seq'), gen_random_uuid(), 'Deposited', '{"amount": 10}');
