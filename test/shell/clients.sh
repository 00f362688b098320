#!/usr/bin/env bash
# The README's "Calling everest from your language", tried for real: examples/clients' programs for
# psycopg 3, JDBC and node-postgres, each against a fresh database of a cluster that listens on
# 127.0.0.1 (pgjdbc has no Unix sockets). Each program appends (jsonb passed the driver's safe
# way), appends with named arguments, reads versions and positions as 64-bit integers, catches
# EV001, 22P02 and 22004 by SQLSTATE, saves a handler checkpoint with the quoted named argument
# "position", and shows a naive way failing (a JS array, a Python list, Json, setString without
# ::jsonb). Every line it prints is compared here, then the database it wrote. A missing runtime
# is a failure, never a skip.
set -u
ROOT=${ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
source "$ROOT/test/cluster.sh"
source "$ROOT/test/shell/lib.bash"
source "$ROOT/test/shell/topology.bash"
WORK=$(mktemp -d /tmp/everest-clients.XXXXXX)
trap '[ -n "${KEEP:-}" ] && echo "# kept $WORK" || rm -rf "$WORK"' EXIT
topology_trap
EXAMPLES="$ROOT/examples/clients"
PYTHON=/usr/bin/python3   # Debian's, which has python3-psycopg (a pyenv python3 on PATH would not)
JDBC_JAR=/usr/share/java/postgresql.jar

# A cluster of our own on 127.0.0.1, on a port that nothing listens on.
PORT=$(topo_next_port)
topology_primary_start clients "listen_addresses = '127.0.0.1'
port = $PORT" >"$WORK/cluster.log" 2>&1 || { cat "$WORK/cluster.log"; echo "not ok - a cluster on 127.0.0.1 starts"; exit 1; }
echo "$PORT" >"$(cluster_dir clients)/port"   # the line above overrides cluster_start's choice
tcp() { psql -X -q -t -A -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PORT" -U postgres "$@"; }
new_db() {  # new_db NAME: a fresh database with the extension
  tcp -d postgres -c "CREATE DATABASE $1" >/dev/null &&
    tcp -d "$1" -c "CREATE EXTENSION everest" >/dev/null
}

# Every program prints these lines, then its own about types and pitfalls.
COMMON='append_events: versions 0..1, positions 1..2
append_event (named arguments): version 2, position 3
read_stream_forward: 0@1 1@2 2@3
wrong expected_version: EV001 wrong expected version for stream "account-1": expected 1, actual 2
malformed id: 22P02 invalid event at index 0: invalid input syntax for type uuid: "not-a-uuid"
null stream: 22004 stream must not be null
unquoted position =>: 42601 syntax error at or near "=>"
save_handler_position("position" => 2): handler_position 2
read_handler_events after 2: 3; saved 3 in the same transaction'
EXPECTED_python="$COMMON
read_all_forward: positions 1 2 3 as int
pitfall: a list without Jsonb: ProgrammingError cannot adapt type 'dict'
pitfall: Json instead of Jsonb: 42883 function everest.append_events(unknown, json) does not exist"
EXPECTED_java="$COMMON
read_all_forward: positions 1 2 3 as Long
pitfall: setString without ::jsonb: 42883 function everest.append_events(character varying, character varying) does not exist"
EXPECTED_node="$COMMON
read_all_forward: positions 1 2 3 as string, exact as Number
pitfall: a JS array without JSON.stringify: 22P02 invalid input syntax for type json"

# check_client LANG COMMAND...: runs COMMAND (against database ev_clients_LANG, through the
# environment or its argument), compares its output line by line, then the database.
check_client() {
  local lang=$1 db=ev_clients_$1 rc i expected label want got
  shift
  new_db "$db" || { echo "not ok - $lang: a fresh database"; FAILURES=$((FAILURES + 1)); return; }
  PGHOST=127.0.0.1 PGPORT=$PORT PGDATABASE=$db PGUSER=postgres timeout 60 "$@" >"$WORK/$lang.out" 2>"$WORK/$lang.err"
  rc=$?
  is "$lang: the example exits 0" "$rc" "0"
  [ "$rc" -eq 0 ] || sed "s/^/# $lang: /" "$WORK/$lang.err"
  expected="EXPECTED_$lang"
  mapfile -t want <<<"${!expected}"
  mapfile -t got <"$WORK/$lang.out"
  is "$lang: it prints ${#want[@]} lines" "${#got[@]}" "${#want[@]}"
  for i in "${!want[@]}"; do
    label=${want[$i]%%: *}
    [ "$label" = pitfall ] && { label=${want[$i]#pitfall: }; label="pitfall: ${label%%: *}"; }
    is "$lang: $label" "${got[$i]:-}" "${want[$i]}"
  done
  is "$lang: the stream it wrote (versions, types, data as JSON objects)" "$(tcp -d "$db" -c "
    SELECT everest.stream_version('account-1'), string_agg(format('%s %s %s %s', version, type, jsonb_typeof(data), data),
                                                          ', ' ORDER BY version)
      FROM everest.read_stream_forward('account-1')")" \
    '2|0 Opened object {"owner": "Ada"}, 1 Deposited object {"amount": 100}, 2 Withdrawn object {"amount": 30}'
  is "$lang: the failed calls wrote nothing, the handler is at 3" "$(tcp -d "$db" -c "
    SELECT (SELECT count(*) FROM everest.read_all_forward(0, 100)), everest.handler_position('example')")" "3|3"
}

# psycopg 3
if [ -x "$PYTHON" ] && "$PYTHON" -c 'import psycopg' 2>/dev/null; then
  is "python: psycopg 3 is installed (python3-psycopg)" "$("$PYTHON" -c 'import psycopg; print(psycopg.__version__[0])')" "3"
  check_client python "$PYTHON" "$EXAMPLES/python/everest_example.py"
else
  echo "not ok - python: psycopg 3 is installed (python3-psycopg for $PYTHON)"; FAILURES=$((FAILURES + 1))
fi

# JDBC, as a single-file source program (needs a JDK: the source launcher compiles it)
if command -v java >/dev/null && java --list-modules 2>/dev/null | grep -q '^jdk.compiler@' && [ -f "$JDBC_JAR" ]; then
  echo "ok - java: a JDK and pgjdbc are installed (default-jdk-headless, libpostgresql-jdbc-java)"
  check_client java java -cp "$JDBC_JAR" "$EXAMPLES/java/EverestExample.java"
else
  echo "not ok - java: a JDK and pgjdbc are installed (default-jdk-headless, libpostgresql-jdbc-java)"
  FAILURES=$((FAILURES + 1))
fi

# node-postgres, the version examples/node pins
NODE_EXAMPLE="$ROOT/examples/node"
if command -v node >/dev/null && command -v npm >/dev/null; then
  if [ ! -d "$NODE_EXAMPLE/node_modules/pg" ]; then
    (cd "$NODE_EXAMPLE" && timeout 300 npm install --no-audit --no-fund) >"$WORK/npm.log" 2>&1 ||
      sed 's/^/# /' "$WORK/npm.log"
  fi
  is "node: node-postgres is installed (node, npm install in examples/node)" \
    "$(cd "$EXAMPLES/node" && node -e "require('../../node/node_modules/pg'); console.log('yes')" 2>&1)" "yes"
  # node takes a URL here; python and java above took PGHOST, PGPORT, PGDATABASE and PGUSER.
  check_client node node "$EXAMPLES/node/everest_example.js" "postgresql://postgres@127.0.0.1:$PORT/ev_clients_node"
else
  echo "not ok - node: node and npm are installed (nodejs, npm)"; FAILURES=$((FAILURES + 1))
fi
finish
