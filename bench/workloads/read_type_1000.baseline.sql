\set p random(1, 5000)
SELECT * FROM baseline.events WHERE type = 'T' AND position >= :p ORDER BY position LIMIT 1000;
