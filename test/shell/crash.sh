#!/usr/bin/env bash
# Interrupted appends (DESIGN.md section 4): "backend crashes and server restarts must never
# stall safe_position(), and must never let it pass an in-flight append".
#
# While build/everest-stress --interruptions runs all along (writers appending in random
# transactions, followers reading $all from their checkpoints and reconnecting after each
# interruption), a "victim" session appends in an open transaction, and then:
#   kill9      its backend gets SIGKILL: the postmaster ends every backend, reinitialises shared
#              memory and recovers (crash recovery), the writers reconnect;
#   terminate  pg_terminate_backend() ends it while it is idle in its transaction;
#   timeout    a statement_timeout fires inside its transaction, which sits aborted until its
#              ROLLBACK (the horizon must be free already then);
#   restart    the cluster is restarted (pg_ctl restart -m fast, test/cluster.sh).
# After each: the victim's event is invisible, every event readable before is still there,
# safe_position() reaches a new append's position and a reader gets that event, and positions
# are above every position drawn before. At the end the stress program checks that its followers,
# whose checkpoints lived through all of it, saw every committed event once, in order, and no
# rolled-back one.
#
#   PGHOST/PGPORT/PGUSER: the preloaded cluster; ROOT: the repository (optional);
#   CLUSTER_BASE: test/cluster.sh's base directory, the cluster being "main" (without it, the
#   parent of PGHOST when PGHOST/data is a data directory; else the restart part is skipped).
set -u
ROOT=${ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
# Self-contained helpers (the same conventions as test/shell/lib.bash).
FAILURES=0
q() { psql -X -q -t -A -v ON_ERROR_STOP=1 "$@"; }
fresh_db() { psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $1 WITH (FORCE)" -c "CREATE DATABASE $1" >/dev/null 2>&1; }
finish() { exit $((FAILURES > 0)); }

DB=ev_crash
BIN="$ROOT/build/everest-stress"
TMP=$(mktemp -d /tmp/everest-crash.XXXXXX)
chmod 755 "$TMP"
WRITERS_PID=
VICTIM_PIDS=()

cleanup() {
  local p
  for p in "${VICTIM_PIDS[@]}" $WRITERS_PID; do kill "$p" 2>/dev/null; done
  wait 2>/dev/null
  rm -rf "$TMP"
}
trap cleanup EXIT

pass() { echo "ok - $1"; }
fail() {
  echo "not ok - $1"
  [ -n "${2:-}" ] && echo "#   $2"
  FAILURES=$((FAILURES + 1))
}
check() {  # check DESCRIPTION COMMAND...
  local d=$1; shift
  if "$@"; then pass "$d"; else fail "$d"; fi
}
# Runs COMMAND every 0.1 s until it succeeds or SECONDS seconds have passed.
wait_until() {  # wait_until SECONDS COMMAND...
  local n=$(($1 * 10)); shift
  until "$@"; do
    n=$((n - 1)); [ "$n" -le 0 ] && return 1
    sleep 0.1
  done
}
sql() { psql -X -q -t -A -v ON_ERROR_STOP=1 -d "$DB" -c "$1" 2>>"$TMP/sql-errors.log"; }
# Several statements (-c ...) on one connection, one transaction each; one line per result.
sqlm() { psql -X -q -t -A -v ON_ERROR_STOP=1 -d "$DB" "$@" 2>>"$TMP/sql-errors.log"; }
server_up() { psql -X -q -t -A -d "$DB" -c "SELECT 1" >/dev/null 2>&1; }
gone() { ! kill -0 "$1" 2>/dev/null; }
is_num() { [[ $1 =~ ^-?[0-9]+$ ]]; }
gt() { is_num "$1" && is_num "$2" && [ "$1" -gt "$2" ]; }
lt() { is_num "$1" && is_num "$2" && [ "$1" -lt "$2" ]; }
ge() { is_num "$1" && is_num "$2" && [ "$1" -ge "$2" ]; }
eq() { [ "$1" = "$2" ]; }

# The last position drawn from everest.position_seq (where the append path draws them).
last_drawn() { sql "SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM everest.position_seq"; }
safe_position() { sql "SELECT everest.safe_position()"; }

# --------------------------------------------------------------------------------------------
# The cluster's directory for test/cluster.sh's cluster_restart
# --------------------------------------------------------------------------------------------
CAN_RESTART=no
if [ -z "${CLUSTER_BASE:-}" ] && [ -n "${PGHOST:-}" ] && [ "$(basename "$PGHOST")" = main ] && [ -d "$PGHOST/data" ]; then
  CLUSTER_BASE=$(dirname "$PGHOST")
fi
if [ -n "${CLUSTER_BASE:-}" ] && [ -d "$CLUSTER_BASE/main/data" ]; then
  export CLUSTER_BASE
  source "$ROOT/test/cluster.sh"
  CAN_RESTART=yes
fi

# --------------------------------------------------------------------------------------------
# A fresh database, and writers and followers in the background all along
# --------------------------------------------------------------------------------------------
if [ ! -x "$BIN" ] || [ "$ROOT/test/stress/stress.cpp" -nt "$BIN" ] || [ "$ROOT/test/stress/build.sh" -nt "$BIN" ]; then
  bash "$ROOT/test/stress/build.sh" >"$TMP/build.log" 2>&1 || { cat "$TMP/build.log"; echo "not ok - the stress program builds"; exit 1; }
fi
fresh_db "$DB" 2>/dev/null
q -d "$DB" -c "CREATE EXTENSION everest" >/dev/null || { echo "not ok - CREATE EXTENSION everest"; exit 1; }

"$BIN" --dbname "$DB" --interruptions --writers 3 --followers 2 --streams 20 --sorted-streams \
  --stream-prefix bg --seconds 50 --catchup-seconds 20 >"$TMP/stress.log" 2>&1 &
WRITERS_PID=$!
wait_until 10 eval 'gt "$(sql "SELECT count(*) FROM everest.read_all_forward(1, 1000)")" 20' ||
  fail "background writers are appending" "$(cat "$TMP/stress.log")"

# A helper the victims run through psql's \! to sit idle until the test says go.
cat >"$TMP/await.sh" <<'EOF'
i=0
while [ ! -e "$1" ] && [ -d "$(dirname "$1")" ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
EOF

# Starts a victim: BEGIN, an append of token victim-NAME (its position goes to $TMP/pos-NAME),
# then per MODE: "sleep" (pg_sleep), "idle" (idle in transaction until $TMP/go-NAME exists),
# "timeout" (idle until go-NAME, then a statement_timeout fires; aborted until go2-NAME).
start_victim() {  # start_victim NAME MODE
  local name=$1 mode=$2 f="$TMP/victim-$1.sql"
  {
    echo "BEGIN;"
    echo "SELECT last_position AS pos FROM everest.append_event('victim-$name', 'T', '{\"token\": \"victim-$name\"}') \\gset"
    echo "\\o $TMP/pos-$name"
    echo "\\qecho :pos"
    echo "\\o"
    case $mode in
      sleep) echo "SELECT pg_sleep(30);" ;;
      idle) echo "\\! sh $TMP/await.sh $TMP/go-$name" ;;
      timeout)
        echo "\\! sh $TMP/await.sh $TMP/go-$name"
        echo "SET LOCAL statement_timeout = 50;"
        echo "SELECT pg_sleep(5);"
        echo "\\! sh $TMP/await.sh $TMP/go2-$name" ;;
    esac
    echo "ROLLBACK;"
  } >"$f"
  PGAPPNAME="ev_victim_$name" psql -X -d "$DB" -f "$f" >"$TMP/victim-$name.log" 2>&1 &
  VICTIM_PID=$!
  VICTIM_PIDS+=("$VICTIM_PID")
  VPOS=; VBACKEND=
  if wait_until 10 test -s "$TMP/pos-$name"; then
    VPOS=$(tr -d ' \n' <"$TMP/pos-$name")
    VBACKEND=$(sql "SELECT pid FROM pg_stat_activity WHERE application_name = 'ev_victim_$name'")
  fi
  if is_num "$VPOS" && is_num "$VBACKEND"; then
    pass "$name: a session appended (position $VPOS, backend $VBACKEND) and holds its transaction open"
  else
    fail "$name: a session appended and holds its transaction open" "$(cat "$TMP/victim-$name.log")"
  fi
}

# What is true while the victim's append is in flight; records what is needed afterwards.
before_interruption() {  # before_interruption NAME
  local name=$1 r
  # One connection, one transaction per -c: the victim's slot and the horizon; a committed
  # canary; what $all shows; the last position drawn. All of it must survive the interruption.
  mapfile -t r < <(sqlm \
    -c "SELECT coalesce((SELECT position FROM everest.in_flight_appends() WHERE pid = ${VBACKEND:-0}), 0) || ' ' || everest.safe_position()" \
    -c "SELECT last_position FROM everest.append_event('canary-$name', 'T', '{\"token\": \"canary-$name\"}')" \
    -c "SELECT count(*) || ' ' || coalesce(max(position), 0) FROM everest.read_all_forward(1, 100000000)" \
    -c "SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM everest.position_seq")
  local held safe
  read -r held safe <<<"${r[0]:-}"
  CANARY=${r[1]:-}
  read -r BEFORE_COUNT BEFORE_MAX <<<"${r[2]:-}"
  DRAWN_BEFORE=${r[3]:-}
  if eq "$held" "$VPOS" && lt "$safe" "$VPOS"; then
    pass "$name: the append in flight holds the horizon (in_flight_appends shows $held, safe_position $safe)"
  else
    fail "$name: the append in flight holds the horizon" "in_flight_appends: '$held', safe_position: '$safe', position: '$VPOS'"
  fi
}

# The checks after the victim was interrupted (and the server is up).
after_interruption() {  # after_interruption NAME
  local name=$1 r held p
  mapfile -t r < <(sqlm \
    -c "SELECT count(*) FROM everest.in_flight_appends() WHERE pid = ${VBACKEND:-0}" \
    -c "SELECT last_position FROM everest.append_event('after-$name', 'T', '{\"token\": \"after-$name\"}')")
  held=${r[0]:-}; p=${r[1]:-}
  check "$name: the interrupted session no longer holds the horizon" eq "$held" 0

  # The horizon must reach the new append, and a reader must get it.
  if is_num "$p" && wait_until 10 eval 'ge "$(safe_position)" "$p"'; then
    pass "$name: safe_position() is not stuck: it reaches a new append's position ($p)"
  else
    fail "$name: safe_position() is not stuck: it reaches a new append's position" \
      "new position '$p', safe_position '$(safe_position)'; in flight: $(sql "SELECT string_agg(pid || ':' || position, ' ') FROM everest.in_flight_appends()")"
  fi
  mapfile -t r < <(sqlm \
    -c "SELECT coalesce((SELECT data->>'token' FROM everest.read_all_forward(${p:-0}, 1)), '-')" \
    -c "SELECT count(*) FROM everest.read_all_forward(1, 100000000) WHERE data->>'token' = 'victim-$name'" \
    -c "SELECT count(*) FROM everest.read_stream_forward('victim-$name')" \
    -c "SELECT count(*) FROM everest.read_all_forward(1, 100000000) WHERE position <= ${BEFORE_MAX:-0}" \
    -c "SELECT count(*) FROM everest.read_all_forward(${CANARY:-0}, 1) WHERE data->>'token' = 'canary-$name'")
  check "$name: a reader of \$all gets the new event" eq "${r[0]:-}" "after-$name"
  if gt "$p" "$DRAWN_BEFORE" && gt "$p" "$VPOS"; then
    pass "$name: positions go on above every position drawn before ($p > $DRAWN_BEFORE)"
  else
    fail "$name: positions go on above every position drawn before" "new '$p', drawn before '$DRAWN_BEFORE', victim '$VPOS'"
  fi
  if eq "${r[1]:-}" 0 && eq "${r[2]:-}" 0; then
    pass "$name: the interrupted append is not visible, in \$all or in its stream"
  else
    fail "$name: the interrupted append is not visible" "\$all: '${r[1]:-}', stream: '${r[2]:-}'"
  fi
  if is_num "${BEFORE_COUNT:-}" && eq "${r[3]:-}" "$BEFORE_COUNT" && eq "${r[4]:-}" 1; then
    pass "$name: every event readable before is still readable (${r[3]} up to position $BEFORE_MAX, and the canary)"
  else
    fail "$name: every event readable before is still readable" \
      "before: ${BEFORE_COUNT:-?} up to ${BEFORE_MAX:-?}; now: '${r[3]:-}'; canary at ${CANARY:-?}: '${r[4]:-}'"
  fi
}

# --------------------------------------------------------------------------------------------
# 1. SIGKILL of the appending backend: crash recovery of the whole cluster
# --------------------------------------------------------------------------------------------
start_victim kill9 sleep
before_interruption kill9
# A sentinel session: it ends when the postmaster ends every backend.
PGAPPNAME=ev_sentinel psql -X -q -d "$DB" -c "SELECT pg_sleep(60)" >/dev/null 2>&1 &
SENTINEL=$!
VICTIM_PIDS+=("$SENTINEL")
wait_until 5 eval 'eq "$(sql "SELECT count(*) FROM pg_stat_activity WHERE application_name = '"'ev_sentinel'"'")" 1'
if is_num "$VBACKEND" && kill -9 "$VBACKEND"; then
  pass "kill9: SIGKILL sent to backend $VBACKEND in the middle of its append transaction"
else
  fail "kill9: SIGKILL sent to the appending backend"
fi
# The postmaster ends every other backend (the sentinel's too), then recovers.
if wait_until 20 gone "$SENTINEL" && wait_until 30 server_up; then
  pass "kill9: the postmaster restarted every backend and the server accepts connections again"
else
  fail "kill9: the server recovers from the crash" "sentinel still running or no connection"
fi
wait_until 10 gone "$VICTIM_PID"
after_interruption kill9

# --------------------------------------------------------------------------------------------
# 2. pg_terminate_backend of a session idle in its append transaction
# --------------------------------------------------------------------------------------------
start_victim terminate idle
before_interruption terminate
check "terminate: pg_terminate_backend($VBACKEND) succeeds" \
  eq "$(sql "SELECT pg_terminate_backend(${VBACKEND:-0}, 10000)")" t
touch "$TMP/go-terminate"
wait_until 10 gone "$VICTIM_PID"
after_interruption terminate

# --------------------------------------------------------------------------------------------
# 3. A statement_timeout inside the append transaction
# --------------------------------------------------------------------------------------------
start_victim timeout timeout
before_interruption timeout
touch "$TMP/go-timeout"
if wait_until 10 eval '[ "$(sql "SELECT state FROM pg_stat_activity WHERE application_name = '"'ev_victim_timeout'"'")" = "idle in transaction (aborted)" ]' &&
   grep -q 'statement timeout' "$TMP/victim-timeout.log"; then
  pass "timeout: the statement_timeout fired; the session sits in its aborted transaction"
else
  fail "timeout: the statement_timeout fired; the session sits in its aborted transaction" "$(cat "$TMP/victim-timeout.log")"
fi
# The horizon must be free already, before the client's ROLLBACK.
after_interruption timeout
touch "$TMP/go2-timeout"
if wait_until 10 gone "$VICTIM_PID" && grep -q '^ROLLBACK' "$TMP/victim-timeout.log"; then
  pass "timeout: the client's ROLLBACK ends the session's transaction"
else
  fail "timeout: the client's ROLLBACK ends the session's transaction" "$(cat "$TMP/victim-timeout.log")"
fi
check "timeout: nothing holds the horizon after the ROLLBACK" \
  eq "$(sql "SELECT count(*) FROM everest.in_flight_appends() WHERE pid = ${VBACKEND:-0}")" 0

# --------------------------------------------------------------------------------------------
# 4. pg_ctl restart (fast) with an append in flight
# --------------------------------------------------------------------------------------------
if [ "$CAN_RESTART" = yes ]; then
  start_victim restart sleep
  before_interruption restart
  if cluster_restart main && wait_until 30 server_up; then
    pass "restart: the cluster restarted (pg_ctl restart -m fast) with an append in flight"
  else
    fail "restart: the cluster restarted with an append in flight" "$(cluster_log_tail main 20)"
    wait_until 30 server_up
  fi
  wait_until 10 gone "$VICTIM_PID"
  after_interruption restart
else
  echo "not ok - restart: pg_ctl restart with an append in flight (cannot run: no CLUSTER_BASE/main/data)"
fi

# --------------------------------------------------------------------------------------------
# 5. The stress program: its followers lived through every interruption and missed nothing
# --------------------------------------------------------------------------------------------
kill -TERM "$WRITERS_PID" 2>/dev/null
if wait_until 40 gone "$WRITERS_PID"; then
  wait "$WRITERS_PID"
  rc=$?
  WRITERS_PID=
  grep -vE '^(ok |not ok |1\.\.|# [0-9]+ passed|#   )' "$TMP/stress.log" | cut -c1-300
  sed -n 's/^\(not \)\{0,1\}ok - /&interrupted stress: /p; /^#   /p' "$TMP/stress.log"
  FAILURES=$((FAILURES + $(grep -c '^not ok ' "$TMP/stress.log")))
  if [ "$rc" -ne 0 ] && ! grep -q '^not ok ' "$TMP/stress.log"; then
    fail "interrupted stress: everest-stress finished (exit status $rc)"
  fi
else
  fail "interrupted stress: everest-stress finished after SIGTERM" "$(tail -5 "$TMP/stress.log")"
fi
count=$(sql "SELECT count(*) FROM everest.read_all_forward(1, 100000000) WHERE data->>'token' LIKE 'victim-%'")
check "no interrupted append is visible at the end" eq "$count" 0
wait_until 10 eval '[ "$(sql "SELECT count(*) FROM everest.in_flight_appends()")" = 0 ]'
safe=$(safe_position); drawn=$(last_drawn)
if is_num "$safe" && eq "$safe" "$drawn"; then
  pass "with nothing in flight, safe_position() is the last drawn position ($safe)"
else
  fail "with nothing in flight, safe_position() is the last drawn position" "safe '$safe', drawn '$drawn'"
fi
count=$(sql "SELECT count(*) FROM (SELECT position, lag(position) OVER (ORDER BY ordinality) AS prev FROM everest.read_all_forward(1, 100000000) WITH ORDINALITY) s WHERE prev >= position")
check "\$all reads in strictly increasing position order" eq "$count" 0

if [ -s "$TMP/sql-errors.log" ]; then
  echo "# psql errors on the way (some are expected while the server restarts):"
  sort "$TMP/sql-errors.log" | uniq -c | sort -rn | head -5 | sed 's/^/#   /'
fi
psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1
finish
