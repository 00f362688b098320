#!/usr/bin/env bash
# Without shared_preload_libraries: what needs the horizon raises 55000 with a HINT naming the
# setting; stream reads, deletes and handler checkpoints still work.
set -u
source "$(dirname "$0")/lib.bash"
source "$ROOT/test/cluster.sh"
cluster_start nopreload "" >/dev/null || { echo "not ok - could not start a cluster without preloading"; exit 1; }
cluster_use nopreload
q -d postgres -c "CREATE EXTENSION everest" >/dev/null
is "append_event raises 55000" "$(sqlstate_of postgres "SELECT everest.append_event('s-1', 'X')")" "55000"
is "append_events raises 55000" "$(sqlstate_of postgres "SELECT everest.append_events('s-1', '[{\"type\": \"X\"}]')")" "55000"
is "safe_position raises 55000" "$(sqlstate_of postgres "SELECT everest.safe_position()")" "55000"
is "read_all_forward raises 55000" "$(sqlstate_of postgres "SELECT * FROM everest.read_all_forward()")" "55000"
is "category reads raise 55000" "$(sqlstate_of postgres "SELECT * FROM everest.read_stream_forward('\$ce-s')")" "55000"
is "read_handler_events raises 55000" "$(sqlstate_of postgres "SELECT * FROM everest.read_handler_events('h')")" "55000"
hint=$(psql -X -q -d postgres -c "SELECT everest.append_event('s-1', 'X')" 2>&1 | grep HINT)
is "the HINT names the setting" "$(echo "$hint" | grep -c "shared_preload_libraries")" "1"
is "stream reads work" "$(sqlstate_of postgres "SELECT * FROM everest.read_stream_forward('s-1')")" "none"
is "stream_version works" "$(q -d postgres -c "SELECT everest.stream_version('s-1')")" "-1"
is "delete_stream works" "$(q -d postgres -c "SELECT everest.delete_stream('s-1')")" "0"
is "saving a position no append assigned is EV006 (nothing is assigned without preloading)" \
  "$(sqlstate_of postgres "SELECT everest.save_handler_position('h', 5)")" "EV006"
q -d postgres -c "SELECT everest.reset_handler('h', 5)" >/dev/null
is "handler checkpoints work" "$(q -d postgres -c "SELECT everest.handler_position('h')")" "5"
is "nothing was written by the refused appends" "$(q -d postgres -c "SELECT count(*) FROM everest.events")" "0"
# Metrics live in the shared memory of the preloaded library (docs/operations.md)
is "everest.stats reads, with NULL counters and no holders" \
  "$(q -d postgres -c "SELECT (appends IS NULL AND reads IS NULL AND stats_reset IS NULL)::text || ' ' || horizon_holders FROM everest.stats")" "true 0"
is "reset_stats raises 55000" "$(sqlstate_of postgres "SELECT everest.reset_stats()")" "55000"
hint=$(psql -X -q -d postgres -c "SELECT everest.reset_stats()" 2>&1 | grep HINT)
is "... with a HINT naming the setting" "$(echo "$hint" | grep -c "shared_preload_libraries")" "1"
finish
