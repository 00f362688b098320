#!/usr/bin/env bash
# The Prometheus queries file (tools/prometheus/everest.yaml) with Debian's
# prometheus-postgres-exporter: the exporter runs on loopback as a role with only the monitor set
# of examples/sql/grants.sql, every documented series is scraped with the database as a label,
# and a known workload between two scrapes moves the counters by exactly what it did.
set -u
ROOT=${ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
source "$ROOT/test/shell/lib.bash"
source "$ROOT/test/shell/topology.bash"   # topo_next_port
DB=ev_exporter
MON=ev_exporter_monitor
EXPORTER=$(command -v prometheus-postgres-exporter || command -v postgres_exporter)
if [ -z "$EXPORTER" ] || ! command -v curl >/dev/null; then
  echo "not ok - prometheus-postgres-exporter and curl are installed (test/run.sh installs them)"
  exit 1
fi
WORK=$(mktemp -d /tmp/everest-exporter.XXXXXX)
EXPORTER_PID=
cleanup() {
  [ -n "$EXPORTER_PID" ] && kill "$EXPORTER_PID" 2>/dev/null && wait "$EXPORTER_PID" 2>/dev/null
  psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "DROP ROLE IF EXISTS $MON" >/dev/null 2>&1
  rm -rf "$WORK"
}
trap cleanup EXIT

fresh_db $DB 2>/dev/null
psql -X -q -d postgres -c "DROP ROLE IF EXISTS $MON" -c "CREATE ROLE $MON LOGIN" >/dev/null 2>&1
for r in reader writer subscriber admin; do
  psql -X -q -d postgres -c "DROP ROLE IF EXISTS ev_exporter_$r" -c "CREATE ROLE ev_exporter_$r" >/dev/null 2>&1
done
q -d $DB -c "CREATE EXTENSION everest" >/dev/null
q -d $DB -v reader=ev_exporter_reader -v writer=ev_exporter_writer -v subscriber=ev_exporter_subscriber \
  -v admin=ev_exporter_admin -v monitor=$MON -f "$ROOT/examples/sql/grants.sql" >/dev/null || echo "not ok - grants.sql runs"
for r in reader writer subscriber admin; do   # only the monitor set is needed from here on
  q -d $DB -c "DROP OWNED BY ev_exporter_$r" -c "DROP ROLE ev_exporter_$r" >/dev/null 2>&1
done
q -d $DB -c "SELECT everest.append_event('exp-0', 'Opened')" -c "SELECT everest.save_handler_position('exp-h', 1)" >/dev/null

PORT=$(topo_next_port)
# The server's socket directory as host; the DSN is libpq key=value.
DATA_SOURCE_NAME="host=$PGHOST port=$PGPORT user=$MON dbname=$DB sslmode=disable" \
  "$EXPORTER" --web.listen-address="127.0.0.1:$PORT" --extend.query-path="$ROOT/tools/prometheus/everest.yaml" \
  --disable-default-metrics --disable-settings-metrics >"$WORK/exporter.log" 2>&1 &
EXPORTER_PID=$!
scrape() { curl -sf "http://127.0.0.1:$PORT/metrics"; }
wait_for 20 scrape >/dev/null || { echo "not ok - the exporter answers on 127.0.0.1:$PORT"; tail "$WORK/exporter.log"; exit 1; }
# A series' value for this database: metric NAME with label database="$DB".
value() {  # value FILE NAME
  awk -v m="$2" -v d="database=\"$DB\"" '$1 ~ "^" m "\\{" && index($1, d) { printf "%.0f\n", $2; found = 1 } END { if (!found) print "missing" }' "$1"
}

scrape >"$WORK/m1"
SERIES="appends events_appended idempotent_retries reads events_read notifications ev001_conflicts ev002_rejections
        ev003_rejections ev004_rejections ev005_rejections ev006_rejections ev007_rejections horizon_holders
        oldest_holder_seconds standby standby_trail_events standby_horizon_age_seconds stats_reset_seconds"
missing=""
for s in $SERIES; do [ "$(value "$WORK/m1" "everest_$s")" = missing ] && missing="$missing $s"; done
is "every everest.stats series is scraped, labelled with the database" "${missing:-none}" "none"
is "handler lag is scraped with database, handler and member labels" \
  "$(grep -c "^everest_handler_lag{.*database=\"$DB\".*handler=\"exp-h\".*member=\"0\"" "$WORK/m1")" "1"
is "counters are typed counter" "$(grep -c '^# TYPE everest_appends counter' "$WORK/m1")" "1"
is "gauges are typed gauge" "$(grep -c '^# TYPE everest_horizon_holders gauge' "$WORK/m1")" "1"
is "the exporter reads as the monitor role without errors (no everest scrape error)" \
  "$(grep -ci "error.*everest" "$WORK/exporter.log")" "0"

# The workload: 5 appends (7 events), 3 reads (7 + 2 + 0 rows), one EV001
N=5
for i in $(seq 1 $N); do q -d $DB -c "SELECT everest.append_events('exp-$i', '[{\"type\":\"A\"}$([ $i -le 2 ] && echo ',{"type":"B"}')]')" >/dev/null; done
q -d $DB -c "SELECT count(*) FROM everest.read_all_forward(0, 7)" -c "SELECT count(*) FROM everest.read_stream_forward('exp-1')" \
  -c "SELECT count(*) FROM everest.read_stream_forward('exp-none')" >/dev/null
[ "$(sqlstate_of $DB "SELECT everest.append_event('exp-1', 'X', expected_version => 7)")" = EV001 ] || echo "not ok - setup: EV001"
wait_for 10 bash -c "curl -sf http://127.0.0.1:$PORT/metrics | grep -q '^everest_notifications{.*database=\"$DB\"} [1-9]'"
scrape >"$WORK/m2"
delta() { echo $(( $(value "$WORK/m2" "everest_$1") - $(value "$WORK/m1" "everest_$1") )); }
is "appends moved by exactly $N" "$(delta appends)" "$N"
is "events_appended moved by the batch sizes (7)" "$(delta events_appended)" "7"
is "reads moved by 3" "$(delta reads)" "3"
is "events_read moved by the rows returned (7 + 2 + 0)" "$(delta events_read)" "9"
is "ev001_conflicts moved by 1" "$(delta ev001_conflicts)" "1"
is "no other rejection moved" "$(for s in ev002_rejections ev003_rejections ev004_rejections ev005_rejections ev006_rejections ev007_rejections idempotent_retries; do delta $s; done | sort -u | tr '\n' ' ')" "0 "
is "the notifier's notifications are counted (> 0)" "$( [ "$(value "$WORK/m2" everest_notifications)" -gt 0 ] && echo yes)" "yes"
is "no session holds the horizon: horizon_holders 0, oldest_holder_seconds 0" \
  "$(value "$WORK/m2" everest_horizon_holders) $(value "$WORK/m2" everest_oldest_holder_seconds)" "0 0"
is "a primary: standby 0, trail 0" "$(value "$WORK/m2" everest_standby) $(value "$WORK/m2" everest_standby_trail_events)" "0 0"
now=$(date +%s) reset=$(value "$WORK/m2" everest_stats_reset_seconds)
is "stats_reset_seconds is a plausible Unix time (in the last day, not in the future)" \
  "$( [ "${reset%.*}" -le "$now" ] && [ "${reset%.*}" -gt $((now - 86400)) ] && echo yes)" "yes"
is "handler lag = safe_position - checkpoint" "$(grep "^everest_handler_lag{.*database=\"$DB\".*handler=\"exp-h\"" "$WORK/m2" | awk '{ print $2 + 0 }')" \
  "$(q -d $DB -c "SELECT everest.safe_position() - 1")"

kill "$EXPORTER_PID"; wait "$EXPORTER_PID" 2>/dev/null; EXPORTER_PID=
is "the exporter is stopped" "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/metrics")" "000"
finish
