-- A subscriber caught up and waiting (run-workloads.sh, waiters): returns as soon as safe_position()
-- moves past what it was, and waits again.
SELECT everest.wait_for_position(everest.safe_position(), 1000);
