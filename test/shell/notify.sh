#!/usr/bin/env bash
# Notifications: LISTEN everest receives {"position": N} with N = safe_position(), from the
# notifier (never from the appending session), coalesced, per database, and can be turned off.
set -u
source "$(dirname "$0")/lib.bash"
fresh_db ev_notify
q -d ev_notify -c "CREATE EXTENSION everest" >/dev/null

# listen DB SECONDS OUTFILE: a session that listens for SECONDS, printing what arrives
listen() {
  psql -X -d "$1" -c "LISTEN everest" -c "SELECT pg_sleep($2)" -c "SELECT 1" >"$3" 2>&1 &
  sleep 0.3
}
payloads() { grep -oE 'payload "[^"]*"[^"]*"[^"]*"' "$1" | grep -oE '[0-9]+' ; }

listen ev_notify 2 /tmp/everest-notify.$$
appender=$(q -d ev_notify -c "SELECT pg_backend_pid() FROM everest.append_event('n-1', 'X')")
q -d ev_notify -c "SELECT everest.append_event('n-2', 'X')" >/dev/null
wait
last=$(payloads /tmp/everest-notify.$$ | tail -1)
is "a listener is told the new safe_position" "$last" "$(q -d ev_notify -c "SELECT everest.safe_position()")"
is "the payload is JSON {\"position\": N}" "$(grep -c 'payload "{"position":[0-9]*}"' /tmp/everest-notify.$$ | awk '{print ($1 > 0)}')" "1"
is "the appending session never sends it" "$(grep -c "from server process with PID $appender\." /tmp/everest-notify.$$)" "0"

# A held append: the notification stops below it; its commit moves it on.
listen ev_notify 3 /tmp/everest-notify.$$
psql -X -q -d ev_notify -c "BEGIN" -c "SELECT everest.append_event('n-3', 'held')" -c "SELECT pg_sleep(1)" -c "COMMIT" >/dev/null &
sleep 0.3
later=$(q -d ev_notify -c "SELECT first_position FROM everest.append_event('n-4', 'later')")
wait
held_max=$(payloads /tmp/everest-notify.$$ | sort -n | tail -1)
is "after the held append commits, the notification reaches the later one" "$held_max" "$later"
never_unsafe=1
for p in $(payloads /tmp/everest-notify.$$); do [ "$p" -lt "$((later - 1))" ] || [ "$p" -eq "$later" ] || never_unsafe=0; done
is "no notification announced a position while an earlier one was in flight" "$never_unsafe" "1"

# A holder that outlasts the notifier's idle time (2 s): the notifier stays while positions are in
# flight, and announces the commit without any later append (it used to leave, and the commit
# waited for the next append to be announced, or published for standbys).
listen ev_notify 5.5 /tmp/everest-notify.$$
late=$(psql -X -q -t -A -d ev_notify -c "BEGIN" -c "SELECT first_position FROM everest.append_event('n-late', 'held')" \
  -c "SELECT pg_sleep(3.5)" -c "COMMIT" 2>/dev/null | head -1)
wait
is "a commit held past the notifier's idle time is announced with no later append" \
  "$(payloads /tmp/everest-notify.$$ | tail -1)" "$late"

# A burst is coalesced. The listener polls in short steps until it has heard the final position.
steps=(); for _ in $(seq 1 100); do steps+=(-c "SELECT pg_sleep(0.2)"); done
psql -X -d ev_notify -c "LISTEN everest" "${steps[@]}" >/tmp/everest-notify.$$ 2>&1 &
listener=$!
sleep 0.3
pgbench -n -c 4 -j 2 -t 2500 -f <(echo "SELECT everest.append_event('burst-' || (random() * 100)::int, 'X');") ev_notify >/dev/null 2>&1
final=$(q -d ev_notify -c "SELECT everest.safe_position()")
for _ in $(seq 1 50); do payloads /tmp/everest-notify.$$ | grep -qx "$final" && break; sleep 0.1; done
kill "$listener" 2>/dev/null; wait "$listener" 2>/dev/null
count=$(payloads /tmp/everest-notify.$$ | wc -l)
is "10,000 appends make far fewer notifications (got $count)" "$([ "$count" -ge 1 ] && [ "$count" -lt 2000 ] && echo yes)" "yes"
is "the last one is the final safe_position" "$(payloads /tmp/everest-notify.$$ | tail -1)" "$final"

# Turned off: no notifications.
q -d postgres -c "ALTER SYSTEM SET everest.notify = off" -c "SELECT pg_reload_conf()" >/dev/null
sleep 0.5
listen ev_notify 1.5 /tmp/everest-notify.$$
q -d ev_notify -c "SELECT everest.append_event('n-5', 'X')" >/dev/null
wait
is "everest.notify = off sends nothing" "$(payloads /tmp/everest-notify.$$ | wc -l)" "0"
published_all() { [ "$(q -d ev_notify -c "SELECT (SELECT position FROM everest.horizon) = everest.safe_position()")" = t ]; }
wait_for 10 published_all
is "... but the horizon for standbys is still published" "$(published_all && echo yes)" "yes"
q -d postgres -c "ALTER SYSTEM RESET everest.notify" -c "SELECT pg_reload_conf()" >/dev/null
sleep 0.5

# wait_for_position's wake-ups are rationed (docs/topologies.md, "What waiting costs"): 4 sessions
# re-waiting for 3 s while appends run, with everest.waiter_wakeups_per_second = 4, are each woken
# about once a second (4 waiters within 4 wake-ups a second), not after every round of the
# notifier (up to 100 a second); with the ration off, they are woken at every round. Every return
# is a position the appends reached. Counts, with wide margins either way: no timing is asserted.
printf 'SELECT everest.wait_for_position(everest.safe_position(), 5000);\n' >/tmp/everest-rewait.$$.sql
printf "SELECT everest.append_event('r-1', 'X');\n" >/tmp/everest-append.$$.sql
rewaits() {  # rewaits BUDGET: how many times 4 re-waiting sessions returned in 3 s of appends
  q -d postgres -c "ALTER SYSTEM SET everest.waiter_wakeups_per_second = $1" -c "SELECT pg_reload_conf()" >/dev/null
  sleep 0.5
  pgbench -n -R 200 -c 1 -T 4 -f /tmp/everest-append.$$.sql ev_notify >/dev/null 2>&1 &
  local ap=$!
  sleep 0.5
  pgbench -n -c 4 -j 1 -T 3 -f /tmp/everest-rewait.$$.sql ev_notify 2>/dev/null |
    awk '/number of transactions actually processed/ {print $NF + 0}'
  wait "$ap"
}
rationed=$(rewaits 4)
unrationed=$(rewaits 0)
q -d postgres -c "ALTER SYSTEM RESET everest.waiter_wakeups_per_second" -c "SELECT pg_reload_conf()" >/dev/null
is "4 waiters with 4 wake-ups a second return about 12 times in 3 s, not hundreds (got $rationed)" \
  "$([ "${rationed:-0}" -ge 4 ] && [ "${rationed:-0}" -le 40 ] && echo yes)" "yes"
is "... and with the ration off, at every round of the notifier (got $unrationed)" \
  "$([ "${unrationed:-0}" -ge 100 ] && echo yes)" "yes"
rm -f /tmp/everest-rewait.$$.sql /tmp/everest-append.$$.sql

# The database can still be dropped soon after appends: the notifier idles out.
rm -f /tmp/everest-notify.$$
if psql -X -q -d postgres -c "DROP DATABASE ev_notify" 2>/dev/null; then echo "ok - DROP DATABASE after appends is not blocked by the notifier"
else sleep 3; psql -X -q -d postgres -c "DROP DATABASE ev_notify"; echo "not ok - DROP DATABASE after appends is not blocked by the notifier"; FAILURES=$((FAILURES + 1)); fi
finish
