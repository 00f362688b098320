\set s random(1, 100)
\set v random(0, 99)
SELECT * FROM everest.read_event('read-' || :s, :v);
