\set s random(1, 10000)
SELECT * FROM everest.append_event('bench-' || :s, 'Deposited', '{"amount": 10}');
