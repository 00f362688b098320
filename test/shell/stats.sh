#!/usr/bin/env bash
# everest.stats across sessions and nodes (README, "Metrics"; docs/operations.md): a session
# holding an append open shows as a horizon holder, with the age of its transaction, to another
# session; the holder is gone once it commits. On a hot standby, a committed event above a
# position still in flight on the primary is replayed but not readable: standby_trail_events
# counts it, and drops back to 0 when the primary's horizon passes it. Counters are per database,
# in 128 slots: the 129th database is not counted, and a dropped database's slot is reused.
set -u
ROOT=${ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
source "$ROOT/test/cluster.sh"
source "$ROOT/test/shell/lib.bash"
source "$ROOT/test/shell/topology.bash"
subscriber_suite stats
topology_trap
PRIMARY=stats_primary
STANDBY=stats_replica

topology_primary_start $PRIMARY >"$WORK/primary.log" 2>&1 || { cat "$WORK/primary.log"; echo "not ok - a primary starts"; exit 1; }
cluster_use $PRIMARY
q -d postgres -c "CREATE DATABASE $DB" -c "CREATE DATABASE ${DB}_other" >/dev/null || { echo "not ok - setup"; exit 1; }
q -d $DB -c "CREATE EXTENSION everest" -c "SELECT everest.append_event('s-0', 'Opened')" >/dev/null
q -d ${DB}_other -c "CREATE EXTENSION everest" >/dev/null
stat() { q -d "${2:-$DB}" -c "SELECT $1 FROM everest.stats"; }

# --- horizon holders, seen from another session
is "nobody holds the horizon" "$(stat "horizon_holders || ' ' || oldest_holder_seconds")" "0 0"
psql -X -q -d $DB -c "BEGIN" -c "SELECT everest.append_event('s-held', 'Held')" -c "SELECT pg_sleep(4)" -c "COMMIT" \
  >"$WORK/holder.log" 2>&1 &
HOLDER=$!
PIDS+=("$HOLDER")
wait_for 10 bash -c "[ \"\$(psql -X -q -t -A -d $DB -c 'SELECT horizon_holders FROM everest.stats')\" = 1 ]" ||
  echo "not ok - the held append shows up"
is "a session holding an append open is a horizon holder" "$(stat horizon_holders)" "1"
sleep 1.5
is "oldest_holder_seconds: at least the 1.5 s it has been holding" "$(stat "(oldest_holder_seconds >= 1.5 AND oldest_holder_seconds < 30)::text")" "true"
is "... which agrees with pg_stat_activity's xact_start of the holder" \
  "$(q -d $DB -c "SELECT abs(s.oldest_holder_seconds - extract(epoch FROM clock_timestamp() - a.xact_start)) < 1
                    FROM everest.stats s, everest.horizon_holders h JOIN pg_stat_activity a USING (pid)")" "t"
is "another database does not see this one's holder" "$(stat horizon_holders ${DB}_other)" "0"
wait "$HOLDER"
is "once it commits, nobody holds the horizon" "$(stat "horizon_holders || ' ' || oldest_holder_seconds")" "0 0"

# --- counters are per database
before=$(stat appends ${DB}_other)
q -d $DB -c "SELECT everest.append_event('s-1', 'A')" >/dev/null
is "an append in one database does not move another's counters" "$(stat appends ${DB}_other)" "$before"
is "the primary shows no standby trail" "$(stat "(standby_trail_events IS NULL AND standby_horizon_age_seconds IS NULL)::text")" "true"

# --- a standby
standby_start $STANDBY $PRIMARY >"$WORK/standby.log" 2>&1 || { cat "$WORK/standby.log"; echo "not ok - a hot standby starts"; exit 1; }
sb() { topo_psql $STANDBY -d $DB -c "SELECT $1 FROM everest.stats"; }
is "a caught-up standby trails by 0 events" "$(sb standby_trail_events)" "0"
is "... and shows how old the horizon it reads is" "$(sb "(standby_horizon_age_seconds >= 0)::text")" "true"
# A position in flight on the primary (held open), and a later one committed
psql -X -q -d $DB -c "BEGIN" -c "SELECT everest.append_event('s-low', 'Held')" -c "SELECT pg_sleep(3)" -c "COMMIT" \
  >"$WORK/holder2.log" 2>&1 &
HOLDER=$!
PIDS+=("$HOLDER")
wait_for 10 bash -c "[ \"\$(psql -X -q -t -A -d $DB -c 'SELECT horizon_holders FROM everest.stats')\" = 1 ]" ||
  echo "not ok - the held append shows up"
q -d $DB -c "SELECT everest.append_event('s-high', 'Committed')" >/dev/null
standby_wait_caught_up $STANDBY $PRIMARY 30 || echo "not ok - the standby catches up"
is "the standby replayed the committed event but may not read it yet: it trails by 2 positions (in flight + committed)" \
  "$(sb standby_trail_events)" "2"
is "... and reads none of them" "$(topo_psql $STANDBY -d $DB -c "SELECT count(*) FROM everest.read_all_forward(0, 1000) WHERE stream IN ('s-low', 's-high')")" "0"
wait "$HOLDER"
# No later append: the notifier stayed while the holder held (3 s, longer than it idles) and
# publishes the holder's commit (it used to leave after 2 s, and the standby waited for the next
# append).
wait_for 10 bash -c "[ \"\$(psql -X -q -t -A -h $(cluster_dir $STANDBY) -p $(cluster_port $STANDBY) -d $DB -c 'SELECT standby_trail_events FROM everest.stats')\" = 0 ]"
is "once the primary's horizon passes them, the standby trails by 0 again" "$(sb standby_trail_events)" "0"
is "... and reads both" "$(topo_psql $STANDBY -d $DB -c "SELECT count(*) FROM everest.read_all_forward(0, 1000) WHERE stream IN ('s-low', 's-high')")" "2"

# --- 128 slots (EV_STATS_SLOTS): this primary counts $DB and ${DB}_other so far
topology_stop $STANDBY   # spares it replaying 128 database copies
q -d postgres -c "CREATE DATABASE ${DB}_tmpl" >/dev/null
q -d ${DB}_tmpl -c "CREATE EXTENSION everest" >/dev/null   # never used: claims no slot
for i in $(seq 1 127); do echo "CREATE DATABASE ${DB}_s$i TEMPLATE ${DB}_tmpl;"; done | q -d postgres >/dev/null
counted=0
for i in $(seq 1 126); do
  [ "$(q -d ${DB}_s$i -c "SELECT appends IS NOT NULL FROM everest.stats")" = t ] && counted=$((counted + 1))
done
is "128 databases are counted (2 + 126 more)" "$counted" "126"
is "the 129th database is not counted: NULL counters" "$(stat "(appends IS NULL AND stats_reset IS NULL)::text" ${DB}_s127)" "true"
is "... its appends still work" "$(sqlstate_of ${DB}_s127 "SELECT everest.append_event('x-1', 'A')")" "none"
is "... reset_stats says why (55000)" "$(sqlstate_of ${DB}_s127 "SELECT everest.reset_stats()")" "55000"
is "the server log says so once" "$(grep -c 'all 128 statistics slots are taken' "$(cluster_dir $PRIMARY)/server.log")" "1"
q -d postgres -c "DROP DATABASE ${DB}_other WITH (FORCE)" >/dev/null
is "a dropped database's slot goes to the next database that needs one, with fresh counters" \
  "$(q -d ${DB}_s127 -c "SELECT everest.append_event('x-2', 'A')" -c "SELECT appends FROM everest.stats" | tail -1)" "1"
is "... and the counted databases keep theirs" "$(stat "appends IS NOT NULL" ${DB}_s1)" "t"
for i in $(seq 1 127); do echo "DROP DATABASE ${DB}_s$i;"; done | q -d postgres >/dev/null
q -d postgres -c "DROP DATABASE ${DB}_tmpl" >/dev/null
finish
