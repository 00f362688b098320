\set p random(1, 9000)
SELECT * FROM everest.read_all_forward(:p, 1000);
