# Throwaway PostgreSQL clusters for the demo and the suites (sourced, not run).
#
#   cluster_start NAME "extra postgresql.conf lines"   start one (PGHOST/PGPORT point at it when
#                                                      they were unset)
#   cluster_use NAME                                   point PGHOST/PGPORT at it
#   cluster_restart NAME [immediate]                   pg_ctl restart (or stop -m immediate + start)
#   cluster_stop_all                                   stop and remove every one
#
# PostgreSQL refuses to run as root; as root the clusters run as the system user "postgres"
# (created by the postgresql package), otherwise as the current user.

CLUSTER_BASE=${CLUSTER_BASE:-$(mktemp -d /tmp/everest-clusters.XXXXXX)}
chmod 755 "$CLUSTER_BASE"
CLUSTER_FIRST_PORT=${CLUSTER_FIRST_PORT:-55432}
export CLUSTER_BASE CLUSTER_FIRST_PORT   # the suites (topology.bash picks free ports above it)
PG_BIN=${PG_BIN:-$(pg_config --bindir)}
export PGUSER=postgres

as_owner() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

cluster_dir() { echo "$CLUSTER_BASE/$1"; }
cluster_port() { cat "$CLUSTER_BASE/$1/port"; }

cluster_start() {
  local name=$1 conf=${2:-} dir
  dir=$(cluster_dir "$name")
  local port=$CLUSTER_FIRST_PORT f
  for f in "$CLUSTER_BASE"/*/port; do
    [ -f "$f" ] && [ "$(cat "$f")" -ge "$port" ] && port=$(($(cat "$f") + 1))
  done
  mkdir -p "$dir"
  echo "$port" >"$dir/port"
  [ "$(id -u)" -eq 0 ] && chown -R postgres "$dir"
  as_owner "$PG_BIN/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 \
    >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log"; return 1; }
  cat >>"$dir/data/postgresql.conf" <<EOF
port = $(cluster_port "$name")
listen_addresses = ''
unix_socket_directories = '$dir'
max_connections = 60
max_prepared_transactions = 5
max_worker_processes = 16
fsync = off
log_min_messages = warning
$conf
EOF
  as_owner "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null ||
    { tail -30 "$dir/server.log"; return 1; }
  [ -n "${PGHOST:-}" ] || cluster_use "$name"
}

cluster_use() {
  export PGHOST=$(cluster_dir "$1") PGPORT=$(cluster_port "$1")
}

cluster_restart() {
  local dir
  dir=$(cluster_dir "$1")
  if [ "${2:-}" = immediate ]; then
    as_owner "$PG_BIN/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null
    as_owner "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null
  else
    as_owner "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -m fast -w -t 60 restart >/dev/null
  fi
}

cluster_log_tail() { tail -n "${2:-40}" "$(cluster_dir "$1")/server.log"; }

cluster_stop_all() {
  local d
  for d in "$CLUSTER_BASE"/*/data; do
    [ -d "$d" ] && as_owner "$PG_BIN/pg_ctl" -D "$d" -m immediate -w stop >/dev/null 2>&1
  done
  rm -rf "$CLUSTER_BASE"
}
