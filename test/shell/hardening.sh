#!/usr/bin/env bash
# Hardening (issue 11) that needs more than one session or a server setting:
#   - session leases: bounded per session, released when the transaction that took them rolls back
#   - a slot never holds the $all horizon past its transaction, even when recording fails
#   - everest.horizon_idle_timeout ends a session idle in a transaction that holds the horizon,
#     and an application role cannot raise it; horizon_holders is readable with the README grants
#   - a large batch can be cancelled
set -u
source "$(dirname "$0")/lib.bash"
source "$ROOT/test/cluster.sh"
qs() { psql -X -q -t -A "$@"; }   # like q, but goes on after an error
DB=ev_hardening
fresh_db $DB 2>/dev/null
q -d $DB -c "CREATE EXTENSION everest" >/dev/null
psql -X -q -d postgres -c "DROP ROLE IF EXISTS ev_hard_app" -c "CREATE ROLE ev_hard_app LOGIN" >/dev/null
q -d $DB >/dev/null <<'SQL'
GRANT USAGE ON SCHEMA everest TO ev_hard_app;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA everest TO ev_hard_app;
GRANT SELECT ON everest.horizon_holders TO ev_hard_app;
SQL
app() { PGUSER=ev_hard_app "$@"; }
leases_of_session='(SELECT count(*) FROM pg_locks WHERE locktype = '"'advisory'"' AND objsubid = 3 AND pid = pg_backend_pid())'

# --- session leases ------------------------------------------------------------------------------
out=$(qs -d $DB 2>&1 <<SQL
DO \$\$ BEGIN PERFORM everest.try_acquire_handler('h-' || g) FROM generate_series(1, 1000) g; END \$\$;
SELECT 'after the failed statement ' || $leases_of_session;
SELECT count(*) FILTER (WHERE everest.try_acquire_handler('k-' || g)) FROM generate_series(1, 3) g;
SELECT 'kept after commit ' || $leases_of_session;
BEGIN;
SELECT everest.try_acquire_handler('r-1');
SELECT 1 / 0;
ROLLBACK;
SELECT 'after a rollback ' || $leases_of_session;
BEGIN;
SELECT everest.try_acquire_handler('s-1');
SAVEPOINT a;
SELECT everest.try_acquire_handler('s-2');
ROLLBACK TO a;
COMMIT;
SELECT 'after a savepoint rollback ' || $leases_of_session || ' ' || everest.release_handler('s-1') || ' ' || everest.release_handler('s-2');
SQL
)
is "1,000 session leases in one statement stop at the limit (54000)" "$(echo "$out" | grep -c 'holds 64 handler leases')" "1"
is "... and the failed statement leaves none behind" "$(echo "$out" | grep -o 'after the failed statement [0-9]*')" "after the failed statement 0"
is "leases of a committed transaction are kept (session leases)" "$(echo "$out" | grep -o 'kept after commit [0-9]*')" "kept after commit 3"
is "a lease taken in a transaction that rolls back is released" "$(echo "$out" | grep -o 'after a rollback [0-9]*')" "after a rollback 3"
is "a lease taken in a subtransaction that rolls back is released, the others stay" \
  "$(echo "$out" | grep -o 'after a savepoint rollback .*')" "after a savepoint rollback 4 true false"

# --- a failure right after the slot was published ------------------------------------------------
out=$(qs -d $DB 2>&1 <<'SQL'
SET everest.debug_fail_tracker = on;
SELECT everest.append_event('fail-1', 'A');
RESET everest.debug_fail_tracker;
SELECT 'holding ' || count(*) FROM everest.in_flight_appends() WHERE pid = pg_backend_pid();
\! psql -X -q -t -A -d ev_hardening -c "SELECT 'others see ' || count(*) FROM everest.in_flight_appends()"
SQL
)
is "an injected failure after publishing the slot fails the append" "$(echo "$out" | grep -c 'injected failure')" "1"
is "... and the slot does not outlive the transaction (this session)" "$(echo "$out" | grep -o 'holding [0-9]*')" "holding 0"
is "... (another session)" "$(echo "$out" | grep -o 'others see [0-9]*')" "others see 0"
is "... and the session appends afterwards" "$(q -d $DB -c "SELECT first_version FROM everest.append_event('fail-1', 'B')")" "0"

# --- everest.horizon_idle_timeout ----------------------------------------------------------------
is "an application role cannot set everest.horizon_idle_timeout" \
  "$(app sqlstate_of $DB "SET everest.horizon_idle_timeout = 0")" "55P02"
is "horizon_holders is readable with the README's grants" "$(app sqlstate_of $DB "SELECT * FROM everest.horizon_holders")" "none"
psql -X -q -d postgres -c "ALTER SYSTEM SET everest.horizon_idle_timeout = '1s'" -c "SELECT pg_reload_conf()" >/dev/null
WORK=$(mktemp -d /tmp/everest-hardening.XXXXXX)
mkfifo "$WORK/in"
# A session that appends and then sits idle in its transaction.
app psql -X -q -t -A -d $DB <"$WORK/in" >"$WORK/out" 2>&1 &
holder=$!
exec 7>"$WORK/in"
echo "BEGIN; SELECT 'appended ' || first_position FROM everest.append_event('idle-1', 'A');" >&7
wait_for 20 grep -q appended "$WORK/out"
is "an idle appender holds the horizon" "$(q -d $DB -c "SELECT count(*) FROM everest.horizon_holders")" "1"
wait_for 30 test "$(q -d $DB -c "SELECT count(*) FROM everest.horizon_holders")" = 0
is "... until everest.horizon_idle_timeout ends its session" "$(q -d $DB -c "SELECT count(*) FROM everest.horizon_holders")" "0"
echo "SELECT 'still alive';" >&7
exec 7>&-
wait $holder 2>/dev/null
is "... whose transaction is gone (the event was never committed)" \
  "$(q -d $DB -c "SELECT count(*) FROM everest.read_stream_forward('idle-1')")" "0"
is "... and the server log says why" "$(grep -c 'idle in a transaction that holds the \$all horizon' "$(cluster_dir main)/server.log" 2>/dev/null | tr -d ' ' | sed 's/^[1-9][0-9]*$/yes/')" "yes"
psql -X -q -d postgres -c "ALTER SYSTEM RESET everest.horizon_idle_timeout" -c "SELECT pg_reload_conf()" >/dev/null
rm -rf "$WORK"

# --- a large batch can be cancelled --------------------------------------------------------------
before=$(q -d $DB -c "SELECT count(*) FROM everest.read_all_forward(0, 2147483647)")
is "a 300,000-event batch stops at statement_timeout (57014)" \
  "$(sqlstate_of $DB "SET statement_timeout = '300ms'; SELECT everest.append_events('big-1', (SELECT jsonb_agg(jsonb_build_object('type', 'T', 'data', jsonb_build_object('i', g))) FROM generate_series(1, 300000) g))")" "57014"
is "... writing nothing" "$(q -d $DB -c "SELECT count(*) FROM everest.read_all_forward(0, 2147483647)")" "$before"
is "... and holding nothing" "$(q -d $DB -c "SELECT count(*) FROM everest.in_flight_appends()")" "0"
is "a batch of 1,000 takes 1,000 consecutive positions (drawn in one step)" \
  "$(q -d $DB -c "SELECT last_position - first_position FROM everest.append_events('big-2', (SELECT jsonb_agg(jsonb_build_object('type', 'T')) FROM generate_series(1, 1000)))")" "999"
is "... and the next append continues after them" \
  "$(q -d $DB -c "SELECT first_position = (SELECT max(position) + 1 FROM everest.read_stream_forward('big-2', 0, 2000)) FROM everest.append_event('big-3', 'T')")" "t"

psql -X -q -d postgres -c "DROP DATABASE $DB WITH (FORCE)" -c "DROP ROLE ev_hard_app" >/dev/null
finish
