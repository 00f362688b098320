-- One round of the balances projection, exactly as the subscriber protocol says
-- (README, "Notifications and the subscriber protocol"): read the batch ONCE, apply it, save the
-- last position of that same batch as the checkpoint, all in one transaction. Reading
-- read_handler_events a second time for the checkpoint would be wrong: under READ COMMITTED the
-- second read can see events committed in between, and the checkpoint would pass events that
-- were never applied. test/demo.sh runs it; test/shell/demo_pattern.sh runs it under concurrent
-- appends and checks the projection against a recomputation.
BEGIN;
CREATE TEMP TABLE batch ON COMMIT DROP AS
    SELECT * FROM everest.read_handler_events('balances', '$ce-account', 500);
INSERT INTO balances AS b (account, balance)
SELECT stream, sum(CASE type WHEN 'Deposited' THEN (data->>'amount')::numeric
                             WHEN 'Withdrawn' THEN -(data->>'amount')::numeric ELSE 0 END)
  FROM batch GROUP BY stream
    ON CONFLICT (account) DO UPDATE SET balance = b.balance + excluded.balance;
SELECT everest.save_handler_position('balances', max(position)) FROM batch HAVING count(*) > 0;
COMMIT;
