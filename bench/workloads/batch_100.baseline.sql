INSERT INTO baseline.events (position, stream, version, id, type, data)
SELECT nextval('baseline.position_seq'), s.name, v - 1, gen_random_uuid(), 'T', jsonb_build_object('n', v)
  FROM (SELECT 'batch-' || pg_backend_pid() || '-' || random() AS name) s, generate_series(1, 100) v;
