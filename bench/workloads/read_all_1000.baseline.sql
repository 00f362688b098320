\set p random(1, 9000)
SELECT * FROM baseline.events WHERE position >= :p ORDER BY position LIMIT 1000;
