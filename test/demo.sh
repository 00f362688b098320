#!/usr/bin/env bash
# The guided tour run by `make demo`, on the throwaway cluster test/run.sh started.
set -u
step() { printf '\n\033[1m## %s\033[0m\n' "$*"; }
sql() { psql -X -q -d everest_demo -v ON_ERROR_STOP=0 -v root="$ROOT" -e -P pager=off "$@"; }

psql -X -q -d postgres -c "DROP DATABASE IF EXISTS everest_demo" -c "CREATE DATABASE everest_demo" 2>/dev/null
step "CREATE EXTENSION everest (the server preloads it: shared_preload_libraries = 'everest')"
sql -c "CREATE EXTENSION everest"

step "Open two accounts: a batch, and single events with an expected version"
sql <<'SQL'
SELECT * FROM everest.append_events('account-42', '[
  {"type": "Opened",    "data": {"owner": "Ada"}},
  {"type": "Deposited", "data": {"amount": 100}, "metadata": {"channel": "web"}}]', -1);
SELECT * FROM everest.append_event('account-7', 'Opened', '{"owner": "Grace"}', expected_version => -1);
SELECT * FROM everest.append_event('account-42', 'Withdrawn', '{"amount": 30}', expected_version => 1);
SQL

step "Optimistic concurrency: a writer that read version 1 is too late (EV001)"
sql -c "SELECT * FROM everest.append_event('account-42', 'Withdrawn', '{\"amount\": 80}', expected_version => 1)"

step "A client retries a batch whose commit it never heard about: same ids, same answer, no duplicate"
sql <<'SQL'
SELECT * FROM everest.append_event('account-7', 'Deposited', '{"amount": 5}', id => 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11');
SELECT * FROM everest.append_event('account-7', 'Deposited', '{"amount": 5}', id => 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11');
SELECT everest.stream_version('account-7');
SQL

step "Read one stream forward and backward"
sql <<'SQL'
SELECT stream, version, position, type, data FROM everest.read_stream_forward('account-42');
SELECT stream, version, position, type FROM everest.read_stream_backward('account-42', -1, 2);
SQL

step "Read the category \$ce-account and the global \$all stream (never past safe_position)"
sql <<'SQL'
SELECT stream, version, position, type FROM everest.read_stream_forward('$ce-account', 0);
SELECT everest.safe_position();
SELECT stream, version, position, type FROM everest.read_all_forward(0, 10);
SQL

step "A handler (projection) applies events and saves its checkpoint in the same transaction"
sql <<'SQL'
CREATE TABLE balances (account text PRIMARY KEY, balance numeric NOT NULL DEFAULT 0);
SELECT everest.try_acquire_handler('balances');
\i :root/examples/sql/balances_projection.sql
SELECT * FROM balances ORDER BY account;
SELECT everest.handler_position('balances');
SELECT count(*) AS still_to_process FROM everest.read_handler_events('balances', '$ce-account');
SQL

step "A duplicate delivery cannot move the checkpoint backwards (EV004)"
sql -c "SELECT everest.save_handler_position('balances', 2)"

step "Delete a stream; with tombstone => true its name is retired (EV002)"
sql <<'SQL'
SELECT everest.delete_stream('account-7', tombstone => true);
SELECT stream, version, position, type FROM everest.read_all_forward(0, 10);
SELECT * FROM everest.append_event('account-7', 'Reopened');
SQL

step "Stored events are immutable, for their owner too"
sql -c "UPDATE everest.events SET data = '{}'"

step "A live subscriber: everest-tail follows \$all from its checkpoint, woken by LISTEN everest"
TAIL="$ROOT/build/everest-tail"
[ -x "$TAIL" ] || "$ROOT/tools/everest-tail/build.sh" >/dev/null
"$TAIL" --handler demo-tail --source '$all' --poll-ms 1000 "dbname=everest_demo" 2>/dev/null &
tail_pid=$!
sleep 1
for amount in 10 20 30; do
  echo "appending Deposited $amount to account-42 ..."
  psql -X -q -d everest_demo -c "SELECT everest.append_event('account-42', 'Deposited', '{\"amount\": $amount}')" >/dev/null
  sleep 0.5
done
kill "$tail_pid"; wait "$tail_pid" 2>/dev/null
sql -c "SELECT everest.handler_position('demo-tail')"

printf '\nDone: the cluster is removed on exit. See README.md for the full reference.\n'
