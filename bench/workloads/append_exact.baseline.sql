\set s random(1, 10000)
SELECT coalesce(max(version), -1) AS v FROM baseline.events WHERE stream = 'exact-' || :s \gset
INSERT INTO baseline.events (position, stream, version, id, type, data)
VALUES (nextval('baseline.position_seq'), 'exact-' || :s, :v + 1, gen_random_uuid(), 'Deposited', '{"amount": 10}');
