\set s random(1, 100)
SELECT * FROM baseline.events WHERE stream = 'read-' || :s AND version >= 0 ORDER BY version LIMIT 100;
