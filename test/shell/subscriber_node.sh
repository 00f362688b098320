#!/usr/bin/env bash
# The Node.js example subscriber (examples/node) as a projection into a balances table while
# events are appended: a second one waits for the lease and takes over when the first is killed
# with SIGKILL; then the cluster restarts under it and it reconnects. At the end the projection
# equals a recomputation from the events.
set -u
ROOT=${ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
source "$ROOT/test/shell/lib.bash"
subscriber_suite sub_node
EXAMPLE="$ROOT/examples/node"

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "not ok - node subscriber (cannot run: node and npm are not installed)"
  exit 0
fi
if [ ! -d "$EXAMPLE/node_modules/pg" ]; then
  (cd "$EXAMPLE" && timeout 300 npm install --no-audit --no-fund) >"$WORK/npm.log" 2>&1 ||
    { sed 's/^/# /' "$WORK/npm.log"; echo "not ok - npm install in examples/node"; exit 1; }
fi
is "the example's dependencies are installed" "$(cd "$EXAMPLE" && node -e "require('pg'); require('./subscriber'); console.log('yes')")" "yes"

psql -X -q -d postgres -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" \
  -c "CREATE DATABASE $DB" >/dev/null || exit 1
q -d $DB >/dev/null <<'SQL' || { echo "not ok - setup"; exit 1; }
CREATE EXTENSION everest;
CREATE TABLE balances (stream text PRIMARY KEY, balance bigint NOT NULL, events bigint NOT NULL);
CREATE TABLE applied (position bigint NOT NULL);   -- no key: a duplicate must show, not fail
SQL

# The projection, through the example's exported subscribe().
cat >"$WORK/projection.js" <<'JS'
const { subscribe } = require(process.env.EXAMPLE + '/subscriber.js');
const sub = subscribe({
  connection: { database: process.env.DB },
  handler: 'node-balances',
  batchSize: 25,
  pollMs: 200,
  leaseTtl: 2,
  apply: async (client, event) => {
    const sign = event.type === 'Deposited' ? 1 : -1;
    await client.query(
      `INSERT INTO balances AS b (stream, balance, events) VALUES ($1, $2, 1)
       ON CONFLICT (stream) DO UPDATE SET balance = b.balance + excluded.balance, events = b.events + 1`,
      [event.stream, sign * event.data.amount]);
    await client.query('INSERT INTO applied (position) VALUES ($1)', [event.position]);
    await client.query('SELECT pg_sleep(0.002)');   // keeps it busy enough to be killed mid-batch
  },
});
process.on('SIGTERM', () => sub.stop());
sub.done.then(() => process.exit(0), () => process.exit(1));
JS
export EXAMPLE DB
start_projection() {  # start_projection NAME
  node "$WORK/projection.js" >>"$WORK/$1.out" 2>>"$WORK/$1.err" &
  PIDS+=("$!")
  eval "${1}_pid=$!"
}
APPEND_SQL="SELECT everest.append_event('account-' || (1 + floor(random() * 20))::int,
                     CASE WHEN random() < 0.6 THEN 'Deposited' ELSE 'Withdrawn' END,
                     jsonb_build_object('amount', 1 + floor(random() * 100)::int))
              FROM generate_series(1, 1 + floor(random() * 4)::int)"
appender() {  # one session at a time, replaced when the restart ends it
  local i=0
  while [ ! -e "$WORK/stop" ]; do
    while [ ! -e "$WORK/stop" ]; do
      i=$((i + 1))
      if [ $((i % 7)) -eq 0 ]; then echo "BEGIN; $APPEND_SQL; ROLLBACK;"; else echo "$APPEND_SQL;"; fi
      sleep 0.02
    done | psql -X -q -v ON_ERROR_STOP=1 -d $DB >/dev/null 2>&1
    sleep 0.1
  done
}
pos() { q -d $DB -c "SELECT everest.handler_position('node-balances')" 2>/dev/null || echo 0; }
up() { psql -X -q -d $DB -c "SELECT 1" >/dev/null 2>&1; }
progressed() { [ "$(pos)" -gt "$1" ]; }

q -d $DB -c "SELECT count(*) FROM generate_series(1, 200) i,
  LATERAL everest.append_event('account-' || (1 + i % 20), CASE WHEN i % 3 = 0 THEN 'Withdrawn' ELSE 'Deposited' END,
                               jsonb_build_object('amount', i))" >/dev/null
appender &
appender_pid=$!
PIDS+=("$appender_pid")
start_projection first
wait_for 20 progressed 0
is "the node subscriber applies events" "$(progressed 0 && echo yes)" "yes"
start_projection second
wait_for 20 grep -q "waiting for the lease" "$WORK/second.err"
is "a second one waits for the lease" "$(grep -c "waiting for the lease" "$WORK/second.err")" "1"
sleep 1
kill -9 "$first_pid"
wait "$first_pid" 2>/dev/null
wait_for 20 grep -q 'lease on handler "node-balances" taken' "$WORK/second.err"
before=$(pos)
wait_for 20 progressed "$before"
is "after kill -9 of the first, the second takes over" \
  "$(grep -c 'lease on handler "node-balances" taken' "$WORK/second.err") $(progressed "$before" && echo moved)" "1 moved"
if [ -n "${CLUSTER_BASE:-}" ] && [ -d "$CLUSTER_BASE/main/data" ]; then
  source "$ROOT/test/cluster.sh"
  cluster_restart main
  wait_for 30 up
  wait_for 20 grep -q 'reconnected' "$WORK/second.err"
  before=$(pos)
  wait_for 20 progressed "$before"
  is "after a cluster restart it reconnects and goes on" \
    "$(grep -c 'reconnected' "$WORK/second.err") $(progressed "$before" && echo moved)" "1 moved"
else
  echo "not ok - after a cluster restart it reconnects and goes on (cannot run: no throwaway cluster, CLUSTER_BASE)"
fi
sleep 0.5
touch "$WORK/stop"
wait "$appender_pid"

last=$(q -d $DB -c "SELECT position FROM everest.read_all_backward(-1, 1)")
caught_up() { [ "$(pos)" = "$last" ]; }
wait_for 30 caught_up
is "it catches up with the last event" "$(pos)" "$last"
projection_checks "$DB"
kill -TERM "$second_pid"
stopped=none
for _ in $(seq 1 50); do kill -0 "$second_pid" 2>/dev/null || { wait "$second_pid"; stopped=$?; break; }; sleep 0.1; done
is "it exits 0 on SIGTERM" "$stopped" "0"

# The command line: every event as one JSON line, then exit with --once.
timeout 30 node "$EXAMPLE/subscriber.js" --handler node-cli --once --batch 100 "dbname=$DB" >"$WORK/cli.out" 2>"$WORK/cli.err"
is "node subscriber.js --once exits 0" "$?" "0"
is "... having printed every event once" "$(grep -oE '"position":[0-9]+' "$WORK/cli.out" | sort -u | wc -l | tr -d ' ')" \
  "$(q -d $DB -c "SELECT count(*) FROM everest.read_all_forward(0, 2147483647)")"
CLI_APPLY="INSERT INTO applied (position) SELECT ((\$1::jsonb)->>'position')::bigint"
is "... and --from-start --apply applies every event once more" "$(timeout 30 node "$EXAMPLE/subscriber.js" --handler node-cli \
  --from-start --once --quiet --apply "$CLI_APPLY" "dbname=$DB" 2>>"$WORK/cli.err"; echo $?
  q -d $DB -c "SELECT count(*) - 2 * count(DISTINCT position) FROM applied")" "0
0"
# Errors that retrying cannot fix stop it with status 1, the checkpoint where it was.
timeout 30 node "$EXAMPLE/subscriber.js" --handler node-bad --once --quiet \
  --apply 'SELECT 1 / 0 WHERE $1::text IS NOT NULL' "dbname=$DB" 2>>"$WORK/cli.err"
is "an --apply that fails (division by zero) stops it with status 1" "$?" "1"
(cd "$WORK" && timeout 30 node -e "
  const { subscribe } = require(process.env.EXAMPLE + '/subscriber.js');
  subscribe({ connection: { database: process.env.DB }, handler: 'node-bug', once: true, log: () => {},
              apply: async () => { null.boom(); } }).done.then(() => process.exit(0), () => process.exit(1));")
is "an apply function that throws stops it (done rejects)" "$?" "1"
is "... and neither moved its checkpoint" \
  "$(q -d $DB -c "SELECT everest.handler_position('node-bad') + everest.handler_position('node-bug')")" "0"
if [ "$FAILURES" -gt 0 ]; then for f in first second cli; do echo "# $f.err:"; tail -8 "$WORK/$f.err" | sed 's/^/# /'; done; fi
finish
