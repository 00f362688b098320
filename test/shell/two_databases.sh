#!/usr/bin/env bash
# Two databases in one cluster keep independent positions and horizons.
set -u
source "$(dirname "$0")/lib.bash"
fresh_db ev_db_a
fresh_db ev_db_b
q -d ev_db_a -c "CREATE EXTENSION everest" >/dev/null
q -d ev_db_b -c "CREATE EXTENSION everest" >/dev/null
q -d ev_db_a -c "SELECT everest.append_event('a-1', 'X')" >/dev/null
q -d ev_db_a -c "SELECT everest.append_event('a-1', 'X')" >/dev/null
is "each database numbers its own positions" "$(q -d ev_db_b -c "SELECT first_position FROM everest.append_event('b-1', 'X')")" "1"

# An append held open in database A holds A's horizon, not B's.
psql -X -q -d ev_db_a -c "BEGIN" -c "SELECT everest.append_event('a-2', 'held')" -c "SELECT pg_sleep(30)" >/dev/null 2>&1 &
holder=$!
for _ in $(seq 1 100); do
  [ "$(q -d ev_db_a -c "SELECT count(*) FROM everest.horizon_holders")" = 1 ] && break; sleep 0.1
done
is "A shows its holder" "$(q -d ev_db_a -c "SELECT count(*) FROM everest.horizon_holders")" "1"
is "B shows no holder" "$(q -d ev_db_b -c "SELECT count(*) FROM everest.horizon_holders")" "0"
q -d ev_db_a -c "SELECT everest.append_event('a-3', 'later')" >/dev/null
is "A's horizon stops below the append in flight" "$(q -d ev_db_a -c "SELECT everest.safe_position()")" "2"
is "A's readers do not see the later commit yet" "$(q -d ev_db_a -c "SELECT count(*) FROM everest.read_all_forward(0)")" "2"
pos=$(q -d ev_db_b -c "SELECT first_position FROM everest.append_event('b-1', 'Y')")
is "B's horizon is not held by A" "$(q -d ev_db_b -c "SELECT everest.safe_position()")" "$pos"
is "B's readers see B's commit" "$(q -d ev_db_b -c "SELECT count(*) FROM everest.read_all_forward(0)")" "2"
q -d ev_db_a -c "SELECT pg_terminate_backend(pid) FROM everest.horizon_holders" >/dev/null
wait "$holder" 2>/dev/null
is "A's horizon moves on once the holder is gone" "$(q -d ev_db_a -c "SELECT everest.safe_position() >= 4")" "t"
is "A's readers then see the later commit" "$(q -d ev_db_a -c "SELECT string_agg(stream, ',' ORDER BY position) FROM everest.read_all_forward(0)")" "a-1,a-1,a-3"
psql -X -q -d postgres -c "DROP DATABASE ev_db_a" -c "DROP DATABASE ev_db_b" >/dev/null
finish
