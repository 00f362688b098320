#!/usr/bin/env bash
# pg_auto_failover (DESIGN.md section 9, "Failover"; docs/topologies.md): everest under Debian's
# postgresql-15-auto-failover, a monitor and two data nodes, synchronous replication, clients on
# the multi-host URI with target_session_attrs=read-write. Writers append in a loop and record
# every append whose COMMIT returned; a follower reads $all from its checkpoint in a loop; both
# reconnect through the URI. Two failovers:
#
#   round 1  `pg_autoctl perform failover`: node_a drains, node_b is promoted, node_a rejoins
#            as its secondary by itself.
#   round 2  a crash: node_b's keeper is killed and its postgres stopped with pg_ctl -m immediate
#            (`pg_autoctl stop --immediate` would stop postgres with -m fast), the monitor
#            promotes node_a; `pg_autoctl run` again on node_b and it rejoins.
#
# After each: every acknowledged append is on the new primary (same id, stream, version,
# position); the new epoch's positions are above every position a reader saw; the follower read
# every event of the new primary's $all once, in order, or got EV006 once (documented as
# conservative under synchronous replication: its checkpoint lay past lost_after, the last horizon
# the new primary had received and the unbroken run of positions stored above it; a note gives
# the numbers, not a failure), never a silent skip; a new row
# in everest.epochs; appends go on; handler checkpoints saved before are intact; the old primary,
# back as a hot standby, is gap-safe (its safe_position() <= the primary's, its $all a prefix).
# One exception, pg_auto_failover 2.0's own race (docs/topologies.md): when its monitor gives the
# old primary wait_primary during `perform failover`, that primary acknowledges writes without a
# synchronous standby until the demote timeout, and they are lost; the round then says so in a
# note, and checks that only such appends are missing.
#
# Everything lives in $CLUSTER_BASE/autofailover and is stopped on exit (KEEP=1 keeps the
# folder). pg_autoctl runs as the clusters' owner ("postgres" when root), with its XDG folders and
# unix sockets inside that folder. Takes 1.5 to 2.5 minutes on a busy 2-core machine.
set -u
ROOT=${ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
base_was_set=${CLUSTER_BASE:+yes}
source "$ROOT/test/cluster.sh"
source "$ROOT/test/shell/lib.bash"
source "$ROOT/test/shell/topology.bash"
started=$SECONDS

AF=$CLUSTER_BASE/autofailover
SOCK=$AF/sock
DB=ev_auto_failover
EPOCH=$((1 << 40))
ALL=2147483647
PGCTL=$PG_BIN/pg_ctl
KEEPER_PIDS=()
WORKER_PIDS=()

# ------------------------------------------------------------------------------------------------
# pg_autoctl, its keepers, and the clean-up
# ------------------------------------------------------------------------------------------------
# afctl ARGS: pg_autoctl as the clusters' owner, with its state, config and sockets in $AF (not in
# the owner's home) and none of the environment that points at test/run.sh's cluster "main".
AFCTL=(env -u PGPORT -u PGDATABASE -u PGUSER -u PGSERVICE PGHOST="$SOCK" PG_REGRESS_SOCK_DIR="$SOCK"
       XDG_CONFIG_HOME="$AF/config" XDG_DATA_HOME="$AF/share" XDG_RUNTIME_DIR="$AF/run" pg_autoctl)
afctl() { (cd "$AF" && as_owner "${AFCTL[@]}" "$@"); }
# keeper_start NODE: `pg_autoctl run` of NODE in the background, its output in $AF/NODE.log;
# KEEPER_PIDS gets the pid of runuser (as root) or pg_autoctl itself (exec: no shell between).
keeper_start() {
  (
    cd "$AF" || exit 1
    if [ "$(id -u)" -eq 0 ]; then exec runuser -u postgres -- "${AFCTL[@]}" run --pgdata "$AF/$1"
    else exec "${AFCTL[@]}" run --pgdata "$AF/$1"; fi
  ) >>"$AF/$1.log" 2>&1 &
  KEEPER_PIDS+=("$!")
  disown "$!"   # no "Killed" report from bash when round 2 kills it
}
# autoctl_pid PID: PID is a pg_autoctl process (a pid file's pid, not reused since).
autoctl_pid() { [ -n "$1" ] && tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | grep -qE '^([^ ]*/)?pg_autoctl'; }
# crash NODE: NODE's machine dies: its keeper (the supervisor and its services, by their pid
# files) is killed, so that nothing restarts postgres or tells the monitor, then postgres stops
# with pg_ctl -m immediate (no shutdown checkpoint, walsenders send nothing more).
crash() {
  local run="$AF/run/pg_autoctl$AF/$1" pids=() f p sem
  sem=$(sed -n 5p "$run/pg_autoctl.pid" 2>/dev/null)
  for f in pg_autoctl.pid pg_autoctl_node-active.pid pg_autoctl_postgres.pid; do
    p=$(head -1 "$run/$f" 2>/dev/null) && autoctl_pid "$p" && pids+=("$p")
  done
  # The supervisor first (nothing restarts the services then), one by one. No SIGSTOP first:
  # runuser stops itself when its child stops, and would then never reap the killed supervisor,
  # whose pid (a zombie) makes the next `pg_autoctl run` refuse to start.
  for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; done
  for p in "${pids[@]}"; do wait_for 10 eval "! kill -0 $p 2>/dev/null"; done
  as_owner "$PGCTL" -D "$AF/$1" -m immediate -w -t 30 stop >/dev/null
  # the keeper's log semaphore, which its clean exit would have removed
  [ -n "$sem" ] && as_owner ipcrm -s "$sem" 2>/dev/null
  return 0
}
af_cleanup() {
  local n p f deadline
  touch "$AF/stop_writers" "$AF/stop_followers" 2>/dev/null
  for n in node_b node_a monitor; do
    [ -d "$AF/$n" ] && afctl stop --pgdata "$AF/$n" --immediate >/dev/null 2>&1
  done
  deadline=$((SECONDS + 20))
  for p in "${KEEPER_PIDS[@]}"; do
    while kill -0 "$p" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.1; done
  done
  # What did not stop: the processes we started, by their pid files, then the postmasters.
  for f in "$AF"/run/pg_autoctl"$AF"/*/pg_autoctl*.pid; do
    [ -f "$f" ] && p=$(head -1 "$f") && autoctl_pid "$p" && kill -9 "$p" 2>/dev/null
  done
  for p in "${KEEPER_PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
  for n in node_b node_a monitor; do
    [ -f "$AF/$n/postmaster.pid" ] && as_owner "$PGCTL" -D "$AF/$n" -m immediate -w -t 20 stop >/dev/null 2>&1
  done
  for p in "${WORKER_PIDS[@]}"; do kill "$p" 2>/dev/null; done
  wait "${WORKER_PIDS[@]}" 2>/dev/null
  if [ -n "${KEEP:-}" ]; then echo "# kept $AF"; else rm -rf "$AF"; fi
  [ -n "$base_was_set" ] || rmdir "$CLUSTER_BASE" 2>/dev/null
}
trap af_cleanup EXIT
trap 'exit 130' INT TERM

if ! command -v pg_autoctl >/dev/null; then
  echo "not ok - pg_autoctl is installed (Debian package postgresql-${PG_MAJOR:-15}-auto-failover; test/run.sh installs it)"
  exit 1
fi
if [ -d "$AF" ]; then   # a previous run's folder: stop whatever it left, start afresh
  af_cleanup >/dev/null 2>&1
  rm -rf "$AF"
fi
topo_owned_dir "$AF"
for d in sock config share run; do topo_owned_dir "$AF/$d"; done
OWNER=$(as_owner id -un)
echo "# $(pg_autoctl --version 2>&1 | head -1)"

# Free ports (topo_next_port reads $CLUSTER_BASE/*/port).
next_port() { local p; p=$(topo_next_port); echo "$p" >"$AF/port"; echo "$p"; }
MON_PORT=$(next_port); A_PORT=$(next_port); B_PORT=$(next_port)
declare -A PORT=([node_a]=$A_PORT [node_b]=$B_PORT)
declare -A NAME_OF=([$A_PORT]=node_a [$B_PORT]=node_b)

# SQL on one node, through its socket.
on() { local n=$1; shift; psql -X -q -t -A -v ON_ERROR_STOP=1 -h "$SOCK" -p "${PORT[$n]}" -U "$OWNER" "$@"; }
mon() { psql -X -q -t -A -h "$SOCK" -p "$MON_PORT" -U "$OWNER" -d pg_auto_failover -c "$1"; }
# The monitor's view: "node_a:primary/primary node_b:secondary/secondary" (reported/assigned).
states() { mon "SELECT string_agg(nodename || ':' || reportedstate || '/' || goalstate, ' ' ORDER BY nodeid) FROM pgautofailover.node" 2>/dev/null; }
states_are() { [ "$(states)" = "$1" ]; }
# The same, from `pg_autoctl show state` (Name | Node | Host:Port | TLI: LSN | Connection |
# Reported State | Assigned State).
show_states() {
  afctl show state --pgdata "$AF/monitor" 2>/dev/null |
    awk -F'|' 'NR > 2 && NF >= 7 {for (i = 1; i <= NF; i++) gsub(/ /, "", $i); printf "%s%s:%s/%s", (n++ ? " " : ""), $1, $6, $7}'
}
show_state() { afctl show state --pgdata "$AF/monitor" 2>&1 | sed 's/^/#   /'; }
node_up() { on "$1" -d postgres -c "SELECT 1" >/dev/null 2>&1; }
mon_up() { mon "SELECT 1" >/dev/null 2>&1; }
preloads() { on "$1" -d postgres -c "SHOW shared_preload_libraries" 2>&1; }

# ------------------------------------------------------------------------------------------------
# 1. Setup: a monitor, node_a (primary), node_b (secondary)
# ------------------------------------------------------------------------------------------------
COMMON=(--auth trust --no-ssl --pgctl "$PGCTL")
setup_failed() { echo "not ok - setup: $1"; tail -30 "$AF/$2.log" 2>/dev/null | sed 's/^/#   /'; exit 1; }
afctl create monitor --pgdata "$AF/monitor" --pgport "$MON_PORT" --hostname 127.0.0.1 "${COMMON[@]}" \
  >"$AF/monitor.log" 2>&1 || setup_failed "pg_autoctl create monitor" monitor
cat >>"$AF/monitor/postgresql.conf" <<EOF
# the suite: small shared memory (pg_autoctl sizes it after the machine's memory)
shared_buffers = '32MB'
EOF
keeper_start monitor
wait_for 60 mon_up || setup_failed "the monitor runs" monitor
MONITOR_URI=$(afctl show uri --pgdata "$AF/monitor" --formation monitor 2>>"$AF/monitor.log")

# node_a: created alone (state single), then everest named after pg_autoctl's include, then run.
afctl create postgres --pgdata "$AF/node_a" --pgport "$A_PORT" --hostname 127.0.0.1 --listen 127.0.0.1 \
  --name node_a --formation default --monitor "$MONITOR_URI" "${COMMON[@]}" \
  >"$AF/node_a.log" 2>&1 || setup_failed "pg_autoctl create postgres (node_a)" node_a
cat >>"$AF/node_a/postgresql.conf" <<EOF
# the suite: everest, named after pg_autoctl's include of postgresql-auto-failover.conf (which sets
# shared_preload_libraries = pg_stat_statements), so that this line wins; pg_basebackup hands the
# file on to node_b. Small shared memory (pg_autoctl sizes it after the machine's memory).
shared_preload_libraries = 'pg_stat_statements,everest'
shared_buffers = '64MB'
fsync = off
EOF
keeper_start node_a
wait_for 60 node_up node_a && wait_for 60 states_are "node_a:single/single" || setup_failed "node_a runs as single (monitor: $(states))" node_a
# node_b: pg_basebackup of node_a, secondary.
afctl create postgres --pgdata "$AF/node_b" --pgport "$B_PORT" --hostname 127.0.0.1 --listen 127.0.0.1 \
  --name node_b --formation default --monitor "$MONITOR_URI" "${COMMON[@]}" \
  >"$AF/node_b.log" 2>&1 || setup_failed "pg_autoctl create postgres (node_b)" node_b
keeper_start node_b
wait_for 90 states_are "node_a:primary/primary node_b:secondary/secondary" ||
  setup_failed "node_b becomes secondary (monitor: $(states))" node_b
echo "# pg_autoctl show state after setup ($((SECONDS - started)) s):"; show_state
is "setup: pg_autoctl show state: node_a primary, node_b secondary (formation default)" \
  "$(show_states)" "node_a:primary/primary node_b:secondary/secondary"
echo "# everest $(on node_a -d postgres -c "SELECT default_version FROM pg_available_extensions WHERE name = 'everest'" 2>&1) installed"

# sync_state N: the primary N's synchronous_commit, whether it names a synchronous standby, and
# its standby's sync_state (sync, or quorum for pg_auto_failover's "ANY 1 (...)").
sync_state() {
  on "$1" -d postgres -c "SELECT current_setting('synchronous_commit') || ' ' ||
      (current_setting('synchronous_standby_names') <> '') || ' ' ||
      coalesce((SELECT string_agg(CASE WHEN sync_state IN ('sync', 'quorum') THEN 'synchronous' ELSE sync_state END, ',')
                  FROM pg_stat_replication), 'none')" 2>&1
}
sync_is() { [ "$(sync_state "$1")" = "on true synchronous" ]; }
wait_for 30 sync_is node_a
is "setup: replication is synchronous (synchronous_commit, synchronous_standby_names '$(on node_a -d postgres -c "SHOW synchronous_standby_names")', standby sync_state)" \
  "$(sync_state node_a)" "on true synchronous"
conf_order_ok() {  # everest's line comes after pg_autoctl's include in NODE's postgresql.conf
  awk '/^include .postgresql-auto-failover.conf./ {inc = NR} /^shared_preload_libraries.*everest/ {ev = NR}
       END {print (inc && ev > inc) ? "after" : "not after"}' "$AF/$1/postgresql.conf"
}
is "setup: everest is preloaded on both nodes, named after pg_autoctl's include" \
  "$(preloads node_a) $(conf_order_ok node_a) | $(preloads node_b) $(conf_order_ok node_b)" \
  "pg_stat_statements,everest after | pg_stat_statements,everest after"

on node_a -d postgres -c "CREATE DATABASE $DB" >/dev/null &&
  on node_a -d $DB -c "CREATE EXTENSION everest" >/dev/null || { echo "not ok - setup: database and extension on the primary"; exit 1; }
URI=$(afctl show uri --pgdata "$AF/monitor" --formation default 2>>"$AF/monitor.log")
# The application's URI: its database and user (pg_autoctl's names the database "postgres").
URI=$(sed -E "s|^postgres(ql)?://([^@/]*@)?|postgres://$OWNER@|; s|/postgres\?|/$DB?|" <<<"$URI")
echo "# URI: $URI"
is "setup: the formation's URI names both nodes, read-write sessions" \
  "$(grep -c "127.0.0.1:$A_PORT,127.0.0.1:$B_PORT/$DB?.*target_session_attrs=read-write" <<<"$URI")" "1"
ext_on_b() { [ "$(on node_b -d $DB -c "SELECT extversion FROM pg_extension WHERE extname = 'everest'" 2>/dev/null)" != "" ]; }
wait_for 30 ext_on_b
is "setup: the standby has the extension by replication" \
  "$(on node_b -d $DB -c "SELECT pg_is_in_recovery() || ' ' || extversion FROM pg_extension WHERE extname = 'everest'" 2>&1)" \
  "true $(on node_a -d $DB -c "SELECT extversion FROM pg_extension WHERE extname = 'everest'")"

# ------------------------------------------------------------------------------------------------
# 2. Writers and a follower, through the URI
# ------------------------------------------------------------------------------------------------
# writer W: appends one event a transaction in one psql session through the URI; after each
# COMMIT that returned, "ack PORT STREAM VERSION POSITION ID" (line-buffered, out before the next
# statement runs). A session that fails ends; the writer reconnects.
writer() {
  local w=$1 id i=0
  while [ ! -e "$AF/stop_writers" ]; do
    {
      while [ ! -e "$AF/stop_writers" ]; do
        id=$(</proc/sys/kernel/random/uuid); i=$((i + 1))
        printf '%s\n' "BEGIN;" \
          "SELECT inet_server_port() AS port, last_version AS ver, last_position AS pos FROM everest.append_event('w$w-$((i % 5))', 'Written', '{\"w\": $w, \"i\": $i}', NULL, -2, '$id') \\gset" \
          "COMMIT;" "\\echo ack :port w$w-$((i % 5)) :ver :pos $id"
        sleep 0.01
      done
    } | stdbuf -oL psql -X -q -t -A -v ON_ERROR_STOP=1 "$URI" >>"$AF/acks.$w" 2>>"$AF/writer.$w.err"
    sleep 0.2
  done
}
# follower R: reads $all from its checkpoint + 1 through the URI (a connection a read), from 0;
# "PORT POSITION ID" lines in follow.R.pos (in the order read), its checkpoint in follow.R.cp.
# EV006: the message goes to follow.R.ev006 and the follower stops (it must be rebuilt); other
# errors (no read-write node, a lost connection) are retried.
follower() {
  local r=$1 cp=0 out
  : >"$AF/follow.$r.pos"; echo 0 >"$AF/follow.$r.cp"
  while [ ! -e "$AF/stop_followers" ] && [ ! -e "$AF/stop_follower.$r" ]; do
    if ! out=$(psql -X -q -t -A -F ' ' -v ON_ERROR_STOP=1 -v VERBOSITY=verbose "$URI" \
                 -c "SELECT inet_server_port(), position, id FROM everest.read_all_forward($cp + 1, 200)" 2>"$AF/follow.$r.last_err"); then
      if grep -q 'EV006' "$AF/follow.$r.last_err"; then cp "$AF/follow.$r.last_err" "$AF/follow.$r.ev006"; return; fi
      cat "$AF/follow.$r.last_err" >>"$AF/follow.$r.err"; sleep 0.1; continue
    fi
    if [ -z "$out" ]; then sleep 0.02; continue; fi
    echo "$out" >>"$AF/follow.$r.pos"
    cp=$(tail -1 <<<"$out" | cut -d' ' -f2); echo "$cp" >"$AF/follow.$r.cp.tmp"; mv "$AF/follow.$r.cp.tmp" "$AF/follow.$r.cp"
  done
}
acks() { cat "$AF"/acks.* 2>/dev/null | grep '^ack '; }
acks_on() { acks | awk -v p="$1" '$2 == p' | wc -l; }
cp_of() { local c; c=$(cat "$AF/follow.$1.cp" 2>/dev/null); echo "${c:-0}"; }
for w in 1 2; do writer $w & WORKER_PIDS+=("$!"); done

# ------------------------------------------------------------------------------------------------
# 3 and 4. A failover, and what must hold after it
# ------------------------------------------------------------------------------------------------
# handlers_before R NODE_NEW: a handler (hR, read_handler_events then save_handler_position in one
# transaction, three times) and a handler with state (hsR), through the URI; then until the
# standby NODE_NEW received a horizon at or past both checkpoints (so they are not in the range a
# promotion records as lost).
HANDLERS=()
declare -A HANDLER_POS HANDLER_STATE
handlers_before() {
  local r=$1 n=$2 i out
  for i in 1 2 3; do
    out=$(psql -X -q -t -A -v ON_ERROR_STOP=1 "$URI" <<EOF 2>&1
BEGIN;
SELECT coalesce(max(position), everest.handler_position('h$r')) AS m FROM everest.read_handler_events('h$r', '\$all', 150) \gset
SELECT everest.save_handler_position('h$r', :m);
COMMIT;
BEGIN;
SELECT coalesce(max(position), everest.handler_position('hs$r')) AS s FROM everest.read_handler_events('hs$r', '\$all', 100) \gset
SELECT everest.save_handler_state('hs$r', :s, jsonb_build_object('round', $r, 'upto', :s, 'batch', $i));
COMMIT;
SELECT everest.handler_position('h$r') || ' ' || everest.handler_position('hs$r') || ' ' || everest.handler_state('hs$r');
EOF
    )
    out=$(tail -1 <<<"$out")
  done
  HANDLERS+=("h$r" "hs$r")
  HANDLER_POS[h$r]=$(cut -d' ' -f1 <<<"$out"); HANDLER_POS[hs$r]=$(cut -d' ' -f2 <<<"$out")
  HANDLER_STATE[h$r]=""; HANDLER_STATE[hs$r]=$(cut -d' ' -f3- <<<"$out")
  echo "# round $r: handler h$r saved at ${HANDLER_POS[h$r]}, hs$r at ${HANDLER_POS[hs$r]} with state ${HANDLER_STATE[hs$r]}"
  horizon_past() { [ "$(on "$n" -d $DB -c "SELECT everest.safe_position() >= greatest(${HANDLER_POS[h$r]:-0}, ${HANDLER_POS[hs$r]:-0})" 2>/dev/null)" = t ]; }
  wait_for 30 horizon_past
}
# last_epoch NODE: "epoch first_position lost_after system_identifier timeline".
last_epoch() {
  on "$1" -d $DB -c "SELECT epoch || ' ' || first_position || ' ' || coalesce(lost_after::text, 'null') || ' ' ||
                            system_identifier || ' ' || timeline FROM everest.epochs ORDER BY epoch DESC LIMIT 1" 2>/dev/null | grep . || echo none
}
timeline_of() {
  on "$1" -d postgres -c "SELECT ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int" 2>/dev/null
}
is_primary() { [ "$(on "$1" -d postgres -c "SELECT NOT pg_is_in_recovery()" 2>/dev/null)" = t ]; }

# lost_diagnostics R OLD T_CUT: what explains acknowledged appends missing on the new primary,
# printed only then: which node acknowledged them and when (each ack line has no time, so the
# count per port), the monitor's events since the cut (a primary sent to wait_primary runs
# without a synchronous standby: pg_auto_failover's own choice when it judges the standby
# unhealthy), OLD's keeper transitions and settings, and OLD's server log on synchronous
# replication, cancels and shutdowns.
lost_diagnostics() {
  local r=$1 old=$2 t_cut=$3 missing_ids
  missing_ids=$(comm -23 "$AF/acked.$r" "$AF/new.$r" | cut -d' ' -f2)
  echo "#   missing, by the port that acknowledged them: $(acks | grep -F -f <(echo "$missing_ids") | awk '{print $2}' | sort | uniq -c | tr '\n' ' ')"
  echo "#   the monitor's events since the cut ($(date -d "@$t_cut" +%T)):"
  mon "SELECT to_char(eventtime, 'HH24:MI:SS') || ' ' || nodename || ' ' || reportedstate || '/' || goalstate || ' ' ||
              left(description, 140) FROM pgautofailover.event
        WHERE eventtime >= to_timestamp($t_cut) - interval '30 seconds' ORDER BY eventid" 2>&1 | head -40 | sed 's/^/#     /'
  echo "#   $old's keeper:"
  grep -hE 'FSM transition|synchronous_standby_names|default_transaction_read_only|partition|ERROR|FATAL' "$AF/$old.log" |
    tail -25 | sed 's/^/#     /'
  echo "#   $old's server log:"
  cat "$AF/$old"/log/*.log "$AF/$old"/*.log 2>/dev/null |
    grep -E 'synchronous|canceling|terminating|shut|ready to accept|promot|received .* request' | tail -25 | sed 's/^/#     /'
}

# round R OLD NEW HOW: one failover from OLD to NEW (HOW: perform or crash), checks 4 and 5.
round() {
  local r=$1 old=$2 new=$3 how=$4 t0=$SECONDS
  local op=${PORT[$old]} np=${PORT[$new]} f cut_max t_cut race epoch e_no e_first e_lost e_sys e_tl epochs_before sys_before
  echo "# ---- round $r: $how, $old -> $new"
  follower "$r" & WORKER_PIDS+=("$!")
  enough() { [ "$(acks_on "$op")" -ge $((acks_before_round + 60)) ] && [ "$(cp_of "$r")" -gt 0 ] &&
             [ "$(cut -d' ' -f1 "$AF/follow.$r.pos" | grep -c "^$op\$")" -ge 50 ]; }
  acks_before_round=$(acks_on "$op")
  wait_for 60 enough
  handlers_before "$r" "$new"
  wait_for 30 sync_is "$old"
  local acked_now read_now
  acked_now=$(( $(acks_on "$op") - acks_before_round )); read_now=$(lines "$AF/follow.$r.pos")
  is "round $r: before the failover, $old is primary with a synchronous standby; writers ($acked_now acknowledged in this round) and follower ($read_now read) at work" \
    "$(sync_state "$old") $(is_primary "$old" && echo primary) $([ "$acked_now" -ge 60 ] && [ "$read_now" -ge 50 ] && echo busy)" \
    "on true synchronous primary busy"
  epochs_before=$(on "$old" -d $DB -c "SELECT count(*) || ' ' || max(epoch) FROM everest.epochs")
  sys_before=$(on "$old" -d postgres -c "SELECT system_identifier FROM pg_control_system()")
  # The cut: what every file held when the failover started.
  declare -A cut=()
  for f in "$AF"/acks.* "$AF"/follow.*.pos; do cut[$f]=$(lines "$f"); done
  cut_max=$(cat "$AF"/acks.* | awk '$1 == "ack" {print $5}'; cat "$AF"/follow.*.pos | awk '{print $2}')
  cut_max=$(sort -n <<<"$cut_max" | tail -1)

  t_cut=$(date +%s)
  echo "# round $r: failover begins $((SECONDS - t0)) s into the round"
  if [ "$how" = perform ]; then
    afctl perform failover --pgdata "$AF/monitor" --formation default --wait 120 >>"$AF/failover.$r.log" 2>&1 ||
      { echo "# pg_autoctl perform failover failed:"; tail -10 "$AF/failover.$r.log" | sed 's/^/#   /'; }
  else
    # The crash. node_b publishes its horizon at most once a second (everest.notify_min_interval_ms,
    # default 10 ms): the horizon node_a last received then trails the tip, and what the follower
    # read above it must be covered by the replicated run above it (lost_after), or be EV006.
    on "$old" -d postgres -c "ALTER SYSTEM SET everest.notify_min_interval_ms = 1000" -c "SELECT pg_reload_conf()" >/dev/null
    sleep 2
    # Quick failure detection for the crash: the monitor's health checks (its defaults take ~50 s).
    mon "ALTER SYSTEM SET pgautofailover.health_check_period = '1s'" >/dev/null
    mon "ALTER SYSTEM SET pgautofailover.health_check_timeout = '1s'" >/dev/null
    mon "ALTER SYSTEM SET pgautofailover.health_check_max_retries = 1" >/dev/null
    mon "ALTER SYSTEM SET pgautofailover.health_check_retry_delay = '500ms'" >/dev/null
    mon "ALTER SYSTEM SET pgautofailover.node_considered_unhealthy_timeout = '4s'" >/dev/null
    mon "ALTER SYSTEM SET pgautofailover.primary_demote_timeout = '4s'" >/dev/null
    mon "SELECT pg_reload_conf()" >/dev/null
    crash "$old"
  fi
  primary_with_new_events() { is_primary "$new" && [ "$(acks | awk -v p="$np" -v e="$((e_wait * EPOCH))" '$2 == p && $5 > e' | wc -l)" -ge 20 ]; }
  e_wait=$(( $(cut -d' ' -f2 <<<"$epochs_before") + 1 ))
  wait_for 150 primary_with_new_events
  echo "# round $r: $new is primary with appends in epoch $e_wait $((SECONDS - t0)) s after the round began"
  show_state
  is "round $r: $new is the primary, the writers append there" \
    "$(is_primary "$new" && echo primary) $([ "$(acks | awk -v p="$np" -v e="$((e_wait * EPOCH))" '$2 == p && $5 > e' | wc -l)" -ge 20 ] && echo appending)" \
    "primary appending"
  # The follower either read on into the new epoch or stopped at EV006.
  follower_settled() { [ -e "$AF/follow.$r.ev006" ] || [ "$(cp_of "$r")" -gt $((e_wait * EPOCH)) ]; }
  wait_for 60 follower_settled

  # Everything acknowledged so far, then the new primary's rows (the table: complete, no horizon).
  # Appends an earlier round's race lost (below) are left out: they were never on any node since.
  acks | awk '{print $5, $6, $3, $4}' | sort | grep -v -F -f <(cat "$AF/excused" 2>/dev/null; echo "^never^") >"$AF/acked.$r"
  on "$new" -d $DB -c "SELECT position || ' ' || id || ' ' || stream || ' ' || version FROM everest.events" | sort >"$AF/new.$r"
  comm -23 "$AF/acked.$r" "$AF/new.$r" >"$AF/missing.$r"
  # pg_auto_failover 2.0's race (docs/topologies.md, "pg_auto_failover"): when the old primary's
  # keeper reports while `perform failover` is under way, the monitor can assign it wait_primary
  # ("none of the standby nodes in the quorum are healthy"); its keeper then empties
  # synchronous_standby_names and, knowing no way from wait_primary to demote_timeout, keeps
  # acknowledging writes alone until the monitor's demote timeout, while the standby is already
  # promoted. Those appends are lost with the old timeline. The monitor's event table says when
  # it happened; everest cannot prevent it (a primary its HA manager made asynchronous), and what
  # it must still do is checked: every append acknowledged before the failover began, and every
  # one the new primary acknowledged, is there; only appends the old primary acknowledged after the
  # failover began are missing; the follower got EV006 rather than skipping (below).
  race=$(mon "SELECT to_char(min(eventtime), 'HH24:MI:SS') FROM pgautofailover.event
               WHERE nodename = '$old' AND goalstate = 'wait_primary' AND eventtime >= to_timestamp($t_cut) - interval '1 second'")
  if [ -n "$race" ] && [ "$how" = perform ]; then
    local old_after unexplained
    for f in "$AF"/acks.*; do tail -n +$((${cut[$f]:-0} + 1)) "$f"; done | awk -v p="$op" '$1 == "ack" && $2 == p {print $6}' | sort >"$AF/old_after.$r"
    old_after=$(lines "$AF/old_after.$r")
    unexplained=$(cut -d' ' -f2 "$AF/missing.$r" | sort | comm -23 - "$AF/old_after.$r" | wc -l | tr -d ' ')
    echo "# note: round $r: pg_auto_failover's monitor assigned $old wait_primary at $race, during the failover (its 2.0 race):" \
         "$(lines "$AF/missing.$r") appends $old acknowledged without a synchronous standby after the failover began are lost"
    lost_diagnostics "$r" "$old" "$t_cut" | head -3
    is "round $r: every append acknowledged before the failover began ($(lines "$AF/acked.$r") in all, less $old's $old_after after it) or by $new is on $new, same id, stream and version at the same position" \
      "$unexplained unexplained" "0 unexplained"
    cut -d' ' -f2 "$AF/missing.$r" >>"$AF/excused"
  else
    is "round $r: every acknowledged append ($(lines "$AF/acked.$r")) is on $new, same id, stream and version at the same position" \
      "$(lines "$AF/missing.$r") missing" "0 missing"
    if [ -s "$AF/missing.$r" ]; then
      head -5 "$AF/missing.$r" | sed 's/^/#   missing: /'
      lost_diagnostics "$r" "$old" "$t_cut"
    fi
  fi

  epoch=$(last_epoch "$new")
  read -r e_no e_first e_lost e_sys e_tl <<<"$epoch"
  local seen_max after_min after_below
  # Every position any reader or writer saw before the failover, and on the old primary since.
  seen_max=$( { echo "$cut_max"; cat "$AF"/acks.* | awk -v p="$op" '$1 == "ack" && $2 == p {print $5}';
                cat "$AF"/follow.*.pos | awk -v p="$op" '$1 == p {print $2}'; } | sort -n | tail -1)
  # Acknowledged appends on the new primary since the cut.
  for f in "$AF"/acks.*; do tail -n +$((${cut[$f]:-0} + 1)) "$f"; done | awk -v p="$np" '$1 == "ack" && $2 == p {print $5}' | sort -n >"$AF/after.$r"
  after_min=$(head -1 "$AF/after.$r"); after_below=$(awk -v e="${e_first:-0}" '$1 < e' "$AF/after.$r" | wc -l | tr -d ' ')
  is "round $r: epochs on $new: a new row (epoch $e_no after '$epochs_before'; first position e*2^40+1, lost_after set, the new timeline $e_tl, the same system)" \
    "$([ "$epoch" != none ] && [ "$e_no" = "$e_wait" ] && [ "$e_first" = $((e_no * EPOCH + 1)) ] && [ "$e_lost" != null ] &&
       [ "$e_lost" -lt "$e_first" ] && [ "$e_tl" = "$(timeline_of "$new")" ] && [ "$e_sys" = "$sys_before" ] && echo yes || echo "no ($epoch)")" "yes"
  echo "# round $r: epoch row on $new: $epoch; every position seen before: <= $seen_max"
  is "round $r: the new positions are above every position any reader or writer saw before ($seen_max): first of the epoch $e_first, first acknowledged on $new ${after_min:-none}" \
    "$([ -n "$e_first" ] && [ "${e_first:-0}" -gt "${seen_max:-0}" ] && [ -n "$after_min" ] && [ "$after_min" -gt "${seen_max:-0}" ] && echo yes || echo no) $after_below below the epoch" \
    "yes 0 below the epoch"

  # The follower.
  local fol="$AF/follow.$r.pos" fcp
  awk '{print $2, $3}' "$fol" >"$AF/fol.$r"
  fcp=$(tail -1 "$AF/fol.$r" | cut -d' ' -f1); fcp=${fcp:-0}
  on "$new" -d $DB -c "SELECT position || ' ' || id FROM everest.read_all_forward(0, $ALL) WHERE position <= $fcp" >"$AF/all_upto.$r"
  is "round $r: the follower's positions increase strictly (no repeat, no step back)" \
    "$(cut -d' ' -f1 "$AF/fol.$r" | sort -c -n -u 2>/dev/null && echo yes || echo no)" "yes"
  if [ -e "$AF/follow.$r.ev006" ]; then
    # The range the message names: this failover's, or (a follower that read events stored above
    # a hole of an earlier lost range) an earlier one; either way a row of everest.epochs.
    local msg l f in_range read_above on_new
    msg=$(tr '\n' ' ' <"$AF/follow.$r.ev006")
    l=$(sed -nE 's/.*Positions after ([0-9]+) were assigned.*/\1/p' <<<"$msg")
    f=$(sed -nE 's/.*this store continues at ([0-9]+).*/\1/p' <<<"$msg")
    in_range=$(on "$new" -d $DB -c "SELECT count(*) FROM everest.epochs WHERE lost_after = ${l:-0} AND first_position = ${f:-0}" 2>&1)
    read_above=$(awk -v l="${l:-0}" '$1 > l' "$AF/fol.$r" | wc -l | tr -d ' ')
    on_new=$(awk -v l="${l:-0}" '$1 > l' "$AF/fol.$r" | sort | comm -12 - <(cut -d' ' -f1,2 "$AF/new.$r" | sort) | wc -l | tr -d ' ')
    echo "# note: round $r: the follower got EV006 at checkpoint $fcp, range ($l, $f) (this failover: lost_after $e_lost," \
         "epoch from $e_first); it had read $read_above events past $l, $on_new of them are on $new (documented as conservative)"
    echo "#   $msg" | cut -c1-400
    if [ -n "$race" ] && [ -z "$l" ]; then
      # The follower read the old primary's lost history (above), and reached the new primary before
      # it recorded its epoch: EV006 names the checkpoint as beyond what this store assigned.
      l=$e_lost
      is "round $r: EV006 names the follower's checkpoint $fcp, read from $old's lost history, as beyond what $new assigned" \
        "$(grep -qE "position $fcp is (beyond anything this store assigned|in a range this store never completed)" <<<"$msg" &&
           [ "$fcp" -gt "${e_lost:-0}" ] && echo yes || echo "no: $msg")" "yes"
    else
    is "round $r: EV006 names a recorded lost range ($l, $f) around the follower's checkpoint $fcp" \
      "$(grep -q "position $fcp is in a range this store never completed" <<<"$msg" && [ "$in_range" = 1 ] &&
         [ "$fcp" -gt "${l:-0}" ] && [ "$fcp" -lt "${f:-0}" ] && echo yes || echo "no: $msg")" "yes"
    fi
    is "round $r: up to $l, the follower read exactly the events $new holds there, in order (no silent skip)" \
      "$(diff <(awk -v l="${l:-0}" '$1 <= l' "$AF/fol.$r") <(awk -v l="${l:-0}" '$1 <= l' "$AF/all_upto.$r") >/dev/null && echo same || echo differs)" "same"
    is "round $r: EV006 came once; after it the follower read nothing more" \
      "$(grep -c 'EV006' "$AF/follow.$r.ev006") $(awk -v c="$fcp" '$1 > c' "$AF/fol.$r" | wc -l | tr -d ' ')" "1 0"
  else
    is "round $r: the follower read on into the new epoch without error" \
      "$([ "$fcp" -gt "$((e_wait * EPOCH))" ] && echo yes || echo "no (checkpoint $fcp)")" "yes"
    is "round $r: the follower read every event of $new's \$all up to its checkpoint ($(lines "$AF/all_upto.$r")) exactly once, in order" \
      "$(diff "$AF/fol.$r" "$AF/all_upto.$r" >/dev/null && echo same || echo "differs: $(diff "$AF/fol.$r" "$AF/all_upto.$r" | grep -c '^[<>]') lines")" "same"
  fi

  # Handler checkpoints saved before (this round's and earlier ones).
  local h bad=0 desc=""
  for h in "${HANDLERS[@]}"; do
    local got want
    got=$(on "$new" -d $DB -c "SELECT everest.handler_position('$h') || ' ' || coalesce(everest.handler_state('$h')::text, '')" 2>&1)
    want="${HANDLER_POS[$h]} ${HANDLER_STATE[$h]}"
    [ "$got" = "${want% }" ] || [ "$got" = "$want" ] || { bad=$((bad + 1)); desc+=" $h: '$got' not '$want'"; }
  done
  is "round $r: handler checkpoints saved before the failover are intact on $new (${HANDLERS[*]})" "$bad$desc" "0"
  is "round $r: read_handler_events of h$r (saved at ${HANDLER_POS[h$r]}) on $new reads on without error from the next event" \
    "$(on "$new" -d $DB -v VERBOSITY=verbose -c "SELECT min(position) FROM everest.read_handler_events('h$r', '\$all', 10)" 2>&1)" \
    "$(on "$new" -d $DB -c "SELECT min(position) FROM everest.events WHERE position > ${HANDLER_POS[h$r]}")"

  # ----------------------------------------------------------------------------------------------
  # 5. The old primary back as a hot standby: gap-safe reads
  # ----------------------------------------------------------------------------------------------
  echo "# round $r: checks after the failover done $((SECONDS - t0)) s into the round"
  if [ "$how" = crash ]; then keeper_start "$old"; fi
  local want_states
  if [ "$new" = node_a ]; then want_states="node_a:primary/primary node_b:secondary/secondary"
  else want_states="node_a:secondary/secondary node_b:primary/primary"; fi
  if ! wait_for 150 states_are "$want_states"; then
    echo "# $old did not rejoin; the end of its pg_autoctl log:"; tail -15 "$AF/$old.log" | sed 's/^/#   /'
  fi
  is "round $r: $old is back as the secondary ($how; pg_autoctl show state)" "$(show_states)" "$want_states"
  echo "# round $r: $old secondary $((SECONDS - t0)) s into the round"
  old_in_epoch() { [ "$(on "$old" -d $DB -c "SELECT everest.safe_position() > $((e_wait * EPOCH))" 2>/dev/null)" = t ]; }
  wait_for 60 old_in_epoch
  is "round $r: $old is a hot standby whose horizon moved into the new epoch" \
    "$(on "$old" -d $DB -c "SELECT pg_is_in_recovery() || ' ' || (everest.safe_position() > $((e_wait * EPOCH)))" 2>&1)" "true true"
  local i s_old s_new n_old bad_safe=0 bad_prefix=0 notes=""
  for i in 1 2 3 4 5; do
    s_old=$(on "$old" -d $DB -c "SELECT everest.safe_position()")
    on "$old" -d $DB -c "SELECT position || ' ' || id FROM everest.read_all_forward(0, $ALL)" >"$AF/standby.$r"
    s_new=$(on "$new" -d $DB -c "SELECT everest.safe_position()")
    on "$new" -d $DB -c "SELECT position || ' ' || id FROM everest.read_all_forward(0, $ALL)" >"$AF/primary.$r"
    n_old=$(lines "$AF/standby.$r")
    [ -n "$s_old" ] && [ -n "$s_new" ] && [ "$s_old" -le "$s_new" ] || { bad_safe=$((bad_safe + 1)); notes+=" $s_old>$s_new"; }
    head -n "$n_old" "$AF/primary.$r" | cmp -s - "$AF/standby.$r" || bad_prefix=$((bad_prefix + 1))
    sleep 0.2
  done
  echo "# round $r: last sample: $old safe_position $s_old ($n_old events), $new $s_new ($(lines "$AF/primary.$r") events)"
  is "round $r: on $old (standby) safe_position() <= $new's, in 5 samples while the writers append" "$bad_safe$notes" "0"
  is "round $r: read_all_forward on $old returns a prefix of $new's \$all, in 5 samples" "$bad_prefix" "0"
  touch "$AF/stop_follower.$r"
  echo "# round $r took $((SECONDS - t0)) s"
}

round 1 node_a node_b perform
# The first follower has ended (stop_follower.1); the second round has its own, from 0.
round 2 node_b node_a crash

# Appends go on to the end; the writers stop; every acknowledged append is on the final primary.
touch "$AF/stop_writers" "$AF/stop_followers"
for p in "${WORKER_PIDS[@]:0:2}"; do wait "$p" 2>/dev/null; done
acks | awk '{print $5, $6, $3, $4}' | sort | grep -v -F -f <(cat "$AF/excused" 2>/dev/null; echo "^never^") >"$AF/acked.final"
[ -s "$AF/excused" ] && echo "# $(lines "$AF/excused") appends lost to pg_auto_failover's race (notes above) are left out of the end's count"
on node_a -d $DB -c "SELECT position || ' ' || id || ' ' || stream || ' ' || version FROM everest.events" | sort >"$AF/final"
is "at the end: all $(lines "$AF/acked.final") acknowledged appends are on node_a, none twice" \
  "$(comm -23 "$AF/acked.final" "$AF/final" | wc -l | tr -d ' ') missing, $(cut -d' ' -f1 "$AF/acked.final" | uniq -d | wc -l | tr -d ' ') repeated" \
  "0 missing, 0 repeated"
echo "# writers' errors (expected around each failover): $(cat "$AF"/writer.*.err 2>/dev/null | grep -cE 'ERROR|FATAL|lost') lines"
echo "# auto_failover.sh took $((SECONDS - started)) s"
if [ "$FAILURES" -gt 0 ]; then
  for f in "$AF"/follow.*.err "$AF"/writer.*.err; do
    [ -s "$f" ] && { echo "# $(basename "$f"):"; tail -3 "$f" | sed 's/^/#   /'; }
  done
fi
finish
