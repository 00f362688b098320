\set s random(1, 10000)
SELECT everest.stream_version('exact-' || :s) AS v \gset
SELECT * FROM everest.append_event('exact-' || :s, 'Deposited', '{"amount": 10}', expected_version => :v);
