-- 20 sessions connected and doing nothing (run-workloads.sh, waiters: the baseline of rewait.sql).
\sleep 1 s
