-- A subscriber catching up: batches of 500 from $all, each applied (counted into a table) and
-- checkpointed in its own transaction. CALL everest_bench_catchup('h') returns when caught up.
CREATE TABLE IF NOT EXISTS bench_projection (n bigint NOT NULL);
CREATE OR REPLACE PROCEDURE everest_bench_catchup(h text) LANGUAGE plpgsql AS $$
DECLARE last bigint; applied bigint;
BEGIN
  LOOP
    SELECT max(position), count(*) INTO last, applied FROM everest.read_handler_events(h, '$all', 500);
    EXIT WHEN applied = 0;
    INSERT INTO bench_projection VALUES (applied);
    PERFORM everest.save_handler_position(h, last);
    COMMIT;
  END LOOP;
END $$;
