\set s random(1, 100)
\set v random(0, 99)
SELECT * FROM baseline.events WHERE stream = 'read-' || :s AND version = :v;
