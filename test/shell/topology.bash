# Topologies for the shell suites (sourced after test/cluster.sh): hot standbys of a cluster
# started by cluster.sh, and PgBouncer in front of one. Everything started here is recorded and
# stopped by topology_stop_all (called on EXIT once topology_trap has run), which leaves the
# clusters it did not start alone (test/run.sh's "main" among them).
#
#   topology_primary_start NAME              cluster_start NAME with everest preloaded, recorded
#                                            for topology_stop_all
#   standby_start NAME PRIMARY [conf]        pg_basebackup -R of PRIMARY, hot_standby = on, its own
#                                            port and socket directory under $CLUSTER_BASE; returns
#                                            once it accepts connections and has replayed PRIMARY's
#                                            current WAL
#   standby_wait_caught_up NAME PRIMARY [S]  until NAME replayed PRIMARY's current LSN (S seconds,
#                                            default 30); false on timeout
#   pgbouncer_start NAME [CLUSTER [MODE]]    Debian's pgbouncer in front of CLUSTER (a cluster.sh
#                                            name; empty: $PGHOST/$PGPORT), pool_mode MODE
#                                            (default transaction), default_pool_size
#                                            $PGB_POOL_SIZE (default 4); listens on 127.0.0.1 and
#                                            on a socket in $CLUSTER_BASE/NAME. Sets PGB_HOST
#                                            (127.0.0.1), PGB_PORT, PGB_SOCKET_DIR. Prints nothing.
#   pgbouncer_stop NAME
#   topo_conninfo NAME [DB]                  a libpq conninfo for a cluster or a pgbouncer started here
#   topology_stop_all                        stops what was started here and removes its folders
#   topology_trap                            runs topology_stop_all on EXIT (after an EXIT trap
#                                            already set, e.g. subscriber_suite's)
#   topology_stop NAME [MODE]                pg_ctl stop -m MODE (fast, smart or immediate;
#                                            default fast) of a cluster started here; its folder
#                                            stays (topology_stop_all removes it)
#   topology_start_again NAME                pg_ctl start of a cluster stopped by topology_stop (a
#                                            standby comes back as a standby); returns once it
#                                            accepts connections
#   standby_promote NAME [S]                 SELECT pg_promote() on NAME, then until NAME is out of
#                                            recovery (S seconds, default 60); false on timeout
#   topo_timeline NAME                       the timeline primary NAME writes WAL on (a number)
#   topo_system_identifier NAME              NAME's pg_control system identifier
#   topo_session NAME DB ERRFILE             one psql session on NAME's DB for the calling (sub)shell
#                                            (a coprocess, one per shell): topo_query runs in it;
#                                            error messages (with SQLSTATE) go to ERRFILE
#   topo_query SQL                           runs SQL (one statement) in that session; ROWS = its
#                                            rows (unaligned, one line each); false with
#                                            QUERY_ERROR=1 when SQL failed, 2 when the session is gone

TOPOLOGY_CLUSTERS=()
TOPOLOGY_BOUNCERS=()

# A free port number at or above CLUSTER_FIRST_PORT: above every port file under CLUSTER_BASE
# and not bound on 127.0.0.1 (pgbouncer listens on TCP too).
topo_next_port() {
  local port=$CLUSTER_FIRST_PORT f
  for f in "$CLUSTER_BASE"/*/port; do
    [ -f "$f" ] && [ "$(cat "$f")" -ge "$port" ] && port=$(($(cat "$f") + 1))
  done
  while (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do port=$((port + 1)); done
  echo "$port"
}

topo_owned_dir() {  # topo_owned_dir DIR: creates DIR, owned by the clusters' user
  mkdir -p "$1"
  if [ "$(id -u)" -eq 0 ]; then chown postgres "$1"; fi
}

topology_primary_start() {
  cluster_start "$1" "shared_preload_libraries = 'everest'
${2:-}" || return 1
  TOPOLOGY_CLUSTERS+=("$1")
}

standby_start() {
  local name=$1 primary=$2 conf=${3:-} dir port
  dir=$(cluster_dir "$name")
  port=$(topo_next_port)
  topo_owned_dir "$dir"
  echo "$port" >"$dir/port"
  TOPOLOGY_CLUSTERS+=("$name")
  # pg_hba.conf of initdb --auth=trust allows replication over the socket.
  as_owner "$PG_BIN/pg_basebackup" -h "$(cluster_dir "$primary")" -p "$(cluster_port "$primary")" -U postgres \
    -D "$dir/data" -R -X stream -c fast >"$dir/basebackup.log" 2>&1 || { cat "$dir/basebackup.log"; return 1; }
  # postgresql.conf came with the backup (the primary's settings, everest preloaded); later
  # lines win.
  cat >>"$dir/data/postgresql.conf" <<EOF
port = $port
unix_socket_directories = '$dir'
hot_standby = on
wal_receiver_status_interval = 1s
$conf
EOF
  as_owner "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null ||
    { tail -30 "$dir/server.log"; return 1; }
  standby_wait_caught_up "$name" "$primary" 60
}

# The clusters' socket directory and port as psql options.
topo_psql() {  # topo_psql CLUSTER [psql arguments]
  local c=$1; shift
  psql -X -q -t -A -h "$(cluster_dir "$c")" -p "$(cluster_port "$c")" "$@"
}

standby_wait_caught_up() {
  local name=$1 primary=$2 seconds=${3:-30} lsn deadline
  lsn=$(topo_psql "$primary" -d postgres -c "SELECT pg_current_wal_lsn()") || return 1
  deadline=$((SECONDS + seconds))
  until [ "$(topo_psql "$name" -d postgres -c "SELECT pg_last_wal_replay_lsn() >= '$lsn'" 2>/dev/null)" = t ]; do
    [ $SECONDS -ge $deadline ] && return 1
    sleep 0.05
  done
}

pgbouncer_start() {
  local name=$1 cluster=${2:-} mode=${3:-transaction} dir host port pgb_port try
  dir=$(cluster_dir "$name")
  if [ -n "$cluster" ]; then host=$(cluster_dir "$cluster"); port=$(cluster_port "$cluster")
  else host=${PGHOST:?}; port=${PGPORT:-5432}; fi
  command -v pgbouncer >/dev/null || { echo "pgbouncer is not installed" >&2; return 1; }
  topo_owned_dir "$dir"
  TOPOLOGY_BOUNCERS+=("$name")
  for try in 1 2 3 4 5; do
    pgb_port=$(topo_next_port)
    echo "$pgb_port" >"$dir/port"
    echo '"postgres" ""' >"$dir/userlist.txt"
    cat >"$dir/pgbouncer.ini" <<EOF
[databases]
* = host=$host port=$port
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $pgb_port
unix_socket_dir = $dir
auth_type = trust
auth_file = $dir/userlist.txt
admin_users = postgres
pool_mode = $mode
default_pool_size = ${PGB_POOL_SIZE:-4}
max_client_conn = 200
server_lifetime = 3600
ignore_startup_parameters = extra_float_digits
logfile = $dir/pgbouncer.log
pidfile = $dir/pgbouncer.pid
EOF
    if [ "$(id -u)" -eq 0 ]; then chown postgres "$dir"/*; fi
    rm -f "$dir/pgbouncer.pid"
    if as_owner pgbouncer -d -q "$dir/pgbouncer.ini" >>"$dir/start.log" 2>&1; then
      # -d returns once it forked; wait until it answers.
      local i
      for i in $(seq 1 100); do
        if psql -X -q -t -A -h 127.0.0.1 -p "$pgb_port" -U postgres -d postgres -c "SELECT 1" >/dev/null 2>&1; then
          export PGB_HOST=127.0.0.1 PGB_PORT=$pgb_port PGB_SOCKET_DIR=$dir
          return 0
        fi
        [ -f "$dir/pgbouncer.pid" ] && kill -0 "$(cat "$dir/pgbouncer.pid")" 2>/dev/null || break
        sleep 0.05
      done
    fi
    pgbouncer_stop "$name" keep
  done
  tail -20 "$dir/pgbouncer.log" "$dir/start.log" >&2 2>/dev/null
  return 1
}

pgbouncer_stop() {  # pgbouncer_stop NAME [keep]: SIGINT (immediate shutdown) to the pid we started
  local dir pid i
  dir=$(cluster_dir "$1")
  if [ -f "$dir/pgbouncer.pid" ]; then
    pid=$(cat "$dir/pgbouncer.pid")
    if [ -n "$pid" ] && kill -INT "$pid" 2>/dev/null; then
      for i in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
      kill -9 "$pid" 2>/dev/null
    fi
    rm -f "$dir/pgbouncer.pid"
  fi
  [ "${2:-}" = keep ] || rm -rf "$dir"
}

topo_conninfo() {  # topo_conninfo NAME [DB]
  local dir
  dir=$(cluster_dir "$1")
  if [ -f "$dir/pgbouncer.ini" ]; then echo "host=127.0.0.1 port=$(cat "$dir/port") dbname=${2:-postgres}"
  else echo "host=$dir port=$(cat "$dir/port") dbname=${2:-postgres}"; fi
}

topology_stop_all() {
  local n d
  for n in "${TOPOLOGY_BOUNCERS[@]}"; do pgbouncer_stop "$n"; done
  TOPOLOGY_BOUNCERS=()
  for n in "${TOPOLOGY_CLUSTERS[@]}"; do
    d=$(cluster_dir "$n")
    [ -d "$d/data" ] && as_owner "$PG_BIN/pg_ctl" -D "$d/data" -m immediate -w stop >/dev/null 2>&1
    [ -n "${KEEP:-}" ] || rm -rf "$d"
  done
  TOPOLOGY_CLUSTERS=()
}

topology_trap() {
  local previous
  previous=$(trap -p EXIT | sed -E "s/^trap -- '(.*)' EXIT$/\1/")
  # shellcheck disable=SC2064
  trap "${previous:+$previous; }topology_stop_all" EXIT
}

topology_stop() {  # topology_stop NAME [MODE]
  as_owner "$PG_BIN/pg_ctl" -D "$(cluster_dir "$1")/data" -m "${2:-fast}" -w -t 60 stop >/dev/null
}

topology_start_again() {  # topology_start_again NAME
  local dir
  dir=$(cluster_dir "$1")
  as_owner "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null ||
    { tail -30 "$dir/server.log" >&2; return 1; }
}

standby_promote() {  # standby_promote NAME [S]
  local name=$1 seconds=${2:-60} deadline
  topo_psql "$name" -d postgres -c "SELECT pg_promote(true, $seconds)" >/dev/null || return 1
  deadline=$((SECONDS + seconds))
  until [ "$(topo_psql "$name" -d postgres -c "SELECT pg_is_in_recovery()" 2>/dev/null)" = f ]; do
    [ $SECONDS -ge $deadline ] && return 1
    sleep 0.05
  done
}

topo_timeline() {  # topo_timeline NAME: the timeline a primary writes WAL on now
  topo_psql "$1" -d postgres -c "
    SELECT ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int"
}

topo_system_identifier() {  # topo_system_identifier NAME
  topo_psql "$1" -d postgres -c "SELECT system_identifier FROM pg_control_system()"
}

topo_session() {  # topo_session NAME DB ERRFILE
  local name=$1 db=$2 err=$3
  coproc TOPO_PSQL { topo_psql "$name" -d "$db" -v ON_ERROR_STOP=0 -v VERBOSITY=verbose 2>>"$err"; }
}

topo_query() {  # topo_query SQL
  local line
  ROWS=()
  QUERY_ERROR=2
  [ -n "${TOPO_PSQL[1]:-}" ] || return 1
  printf '%s;\n\\echo __end__ :ERROR\n' "$1" >&"${TOPO_PSQL[1]}" 2>/dev/null || return 1
  while IFS= read -r line <&"${TOPO_PSQL[0]}"; do
    case $line in
      "__end__ false") QUERY_ERROR=0; return 0 ;;
      "__end__ true") QUERY_ERROR=1; return 1 ;;
    esac
    ROWS+=("$line")
  done
  return 1
}
