# Helpers for the shell suites (sourced). Each check prints "ok - ..." or "not ok - ...";
# test/run.sh counts those lines. PGHOST, PGPORT and PGUSER point at the preloaded cluster.
ROOT=${ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
FAILURES=0
q() { psql -X -q -t -A -v ON_ERROR_STOP=1 "$@"; }
is() {  # is DESCRIPTION ACTUAL EXPECTED
  if [ "$2" = "$3" ]; then echo "ok - $1"; else echo "not ok - $1 (got '$2', expected '$3')"; FAILURES=$((FAILURES + 1)); fi
}
# The SQLSTATE a statement fails with ("none" when it succeeds).
sqlstate_of() {  # sqlstate_of DB SQL
  local out
  out=$(psql -X -q -t -A -v ON_ERROR_STOP=1 -v VERBOSITY=verbose -d "$1" -c "\\set VERBOSITY verbose" -c "$2" 2>&1 >/dev/null) && { echo none; return; }
  echo "$out" | grep -oE 'ERROR:  [0-9A-Z]{5}' | head -1 | cut -c9-
}
fresh_db() { psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $1" -c "CREATE DATABASE $1" >/dev/null; }
finish() { exit $((FAILURES > 0)); }
# wait_for SECONDS COMMAND...: until COMMAND succeeds; false on timeout.
wait_for() {
  local deadline=$((SECONDS + $1)); shift
  until "$@"; do [ $SECONDS -ge $deadline ] && return 1; sleep 0.05; done
}
# need_tail LOGDIR: sets TAIL to build/everest-tail, building it when missing or stale.
need_tail() {
  TAIL="$ROOT/build/everest-tail"
  if [ ! -x "$TAIL" ] || [ "$ROOT/tools/everest-tail/everest_tail.cpp" -nt "$TAIL" ]; then
    "$ROOT/tools/everest-tail/build.sh" >"$1/build.log" 2>&1 ||
      { cat "$1/build.log"; echo "not ok - everest-tail builds"; exit 1; }
  fi
}
lines() { if [ -f "$1" ]; then wc -l <"$1" | tr -d ' '; else echo 0; fi; }
has_lines() { [ "$(lines "$1")" -ge "$2" ]; }
# projection_checks DB: the balances projection in DB (tables applied and balances, fed by a
# subscriber) applied every event of $all exactly once and equals a recomputation from them.
projection_checks() {
  is "no event was applied twice" "$(q -d "$1" -c "SELECT count(*) - count(DISTINCT position) FROM applied")" "0"
  is "no event was missed" "$(q -d "$1" -c "
    SELECT count(*) FROM everest.read_all_forward(0, 2147483647) e
      FULL JOIN applied a USING (position) WHERE e.position IS NULL OR a.position IS NULL")" "0"
  is "the balances equal a recomputation from the events" "$(q -d "$1" -c "
    SELECT count(*) FROM (
      SELECT stream, sum(CASE type WHEN 'Deposited' THEN 1 ELSE -1 END * (data->>'amount')::bigint) AS balance,
             count(*) AS events
        FROM everest.read_all_forward(0, 2147483647) GROUP BY stream) r
    FULL JOIN balances b USING (stream)
    WHERE r.balance IS DISTINCT FROM b.balance OR r.events IS DISTINCT FROM b.events")" "0"
}
# subscriber_suite NAME: the frame of the subscriber suites. DB=ev_NAME, a scratch folder WORK,
# and PIDS, the processes to kill; on exit, $WORK/stop is touched (loops watching it end), the
# PIDS are killed, DB is dropped (retried while a restarted server comes up) and WORK removed
# (kept with KEEP=1).
subscriber_suite() {
  DB=ev_$1
  WORK=$(mktemp -d "/tmp/everest-${1//_/-}.XXXXXX")
  PIDS=()
  trap subscriber_suite_cleanup EXIT
}
subscriber_suite_cleanup() {
  local p
  touch "$WORK/stop"
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
  wait 2>/dev/null
  for _ in $(seq 1 50); do
    psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 && break
    sleep 0.2
  done
  if [ -n "${KEEP:-}" ]; then echo "# kept $WORK"; else rm -rf "$WORK"; fi
}
