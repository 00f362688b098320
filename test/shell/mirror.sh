#!/usr/bin/env bash
# A logical-replication mirror (DESIGN.md section 9, "Logical replication mirror";
# docs/topologies.md). The publisher (wal_level = logical, everest preloaded) publishes
# everest.events, tombstones, horizon and epochs; the mirror, another cluster with everest
# preloaded and created, subscribes WHILE four writers append on the publisher (autocommit,
# transactions held open a moment, rollbacks): the initial table sync copies each table at its own
# snapshot, so a horizon row can arrive before the events it covers. Followers on the mirror read
# as subscribers do ($all from checkpoint + 1, $ce-account, a local handler that saves on the
# mirror) from before the subscription until the end. Checks: safe_position() on the mirror is 0
# until every subscribed table is ready and never above the publisher's; the followers saw every
# event of the publisher exactly once, in order; writes there fail with 25006, local handler saves
# work; the publisher's delete_stream replays there; after the cutover (drop the subscription) the
# mirror appends above every replicated position and the followers read on without error.
set -u
ROOT=${ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
source "$ROOT/test/cluster.sh"
source "$ROOT/test/shell/lib.bash"
source "$ROOT/test/shell/topology.bash"
subscriber_suite mirror
topology_trap
started=$SECONDS

PUB=mirror_pub
MIR=mirror_sub
WRITERS=4
ALL=2147483647
TABLES="everest.events everest.tombstones everest.horizon everest.epochs"

on() { local c=$1; shift; topo_psql "$c" -v ON_ERROR_STOP=1 -d $DB "$@"; }
pub() { on $PUB "$@"; }
mir() { on $MIR "$@"; }
strictly_increasing() { sort -c -n -u "$1" 2>/dev/null && echo yes || echo no; }

echo "# everest $(psql -X -A -t -d postgres -c "SELECT default_version FROM pg_available_extensions WHERE name = 'everest'" 2>/dev/null) installed"
{ topology_primary_start $PUB "wal_level = logical" && topology_primary_start $MIR; } >"$WORK/start.log" 2>&1 ||
  { cat "$WORK/start.log"; echo "not ok - a publisher and a mirror cluster start"; exit 1; }
MC="$(topo_conninfo $MIR $DB)"
for c in $PUB $MIR; do
  topo_psql $c -d postgres -c "CREATE DATABASE $DB" >/dev/null && on $c -c "CREATE EXTENSION everest" >/dev/null ||
    { echo "not ok - setup ($c)"; exit 1; }
done
is "the mirror runs the publisher's everest version" \
  "$(mir -c "SELECT extversion FROM pg_extension WHERE extname = 'everest'")" "$(pub -c "SELECT extversion FROM pg_extension WHERE extname = 'everest'")"
# The publication: every table of the list that exists (0.4.0 without epochs has three).
present=$(for t in $TABLES; do [ -n "$(pub -c "SELECT to_regclass('$t')")" ] && echo -n "$t, "; done)
present=${present%, }
pub -c "CREATE PUBLICATION p FOR TABLE $present" >/dev/null
is "the publication holds events, tombstones, horizon and epochs" \
  "$(pub -c "SELECT string_agg(schemaname || '.' || tablename, ' ' ORDER BY tablename) FROM pg_publication_tables WHERE pubname = 'p'")" \
  "everest.epochs everest.events everest.horizon everest.tombstones"
pub -c "SELECT count(*) FROM generate_series(1, 200) i,
          LATERAL everest.append_event(CASE WHEN i % 2 = 0 THEN 'account-' ELSE 'order-' END || i % 10, 'Before')" >/dev/null

# --- writers on the publisher, until $WORK/stop_writers; one stream per transaction (appends to
# several streams in random order can deadlock)
writer() {  # writer N
  local i=0 r sql
  while [ ! -e "$WORK/stop_writers" ]; do
    i=$((i + 1)); r=$((RANDOM % 10))
    sql="SELECT everest.append_event(s, 'E', jsonb_build_object('w', $1, 'i', $i))
           FROM (SELECT CASE WHEN random() < 0.5 THEN 'account-' ELSE 'order-' END || (1 + floor(random() * 10))::int AS s) s,
                generate_series(1, 1 + floor(random() * 3)::int)"
    if [ $r -lt 5 ]; then echo "$sql;"
    elif [ $r -lt 8 ]; then echo "BEGIN; $sql; SELECT pg_sleep(random() * 0.06); COMMIT;"
    else echo "BEGIN; $sql; SELECT pg_sleep(random() * 0.04); ROLLBACK;"; fi
    sleep 0.01
  done | psql -X -q -h "$(cluster_dir $PUB)" -p "$(cluster_port $PUB)" -d $DB >/dev/null 2>>"$WORK/writer.err"
}
# --- followers on the mirror, each in one psql session, until $WORK/stop: positions in NAME.pos
# (in the order read), checkpoint in NAME.cp, one line per failed read in NAME.errors (the
# messages, with SQLSTATE, in NAME.err)
follow() {  # follow NAME SQL (%s: the checkpoint)
  local name=$1 sql=$2 cp=0
  : >"$WORK/$name.pos"; echo 0 >"$WORK/$name.cp"
  topo_session $MIR $DB "$WORK/$name.err"
  while [ ! -e "$WORK/stop" ]; do
    if ! topo_query "$(printf "$sql" "$cp")"; then
      echo error >>"$WORK/$name.errors"
      [ "$QUERY_ERROR" = 2 ] && { echo "session lost" >>"$WORK/$name.err"; return; }
      sleep 0.05; continue
    fi
    if [ ${#ROWS[@]} -gt 0 ]; then
      printf '%s\n' "${ROWS[@]}" >>"$WORK/$name.pos"; cp=${ROWS[-1]}; echo "$cp" >"$WORK/$name.cp"
    else sleep 0.005; fi
  done
}
# A handler of the mirror's own: read_handler_events, then the save on the mirror, in the same
# transaction.
follow_handler() {
  local cp=0
  : >"$WORK/handler.pos"; echo 0 >"$WORK/handler.cp"
  topo_session $MIR $DB "$WORK/handler.err"
  while [ ! -e "$WORK/stop" ]; do
    topo_query "BEGIN"
    if ! topo_query "SELECT position FROM everest.read_handler_events('mirror-h', '\$all', 100)"; then
      topo_query "ROLLBACK"; echo error >>"$WORK/handler.errors"; sleep 0.05; continue
    fi
    if [ ${#ROWS[@]} -eq 0 ]; then topo_query "ROLLBACK"; sleep 0.005; continue; fi
    local batch=("${ROWS[@]}")
    if topo_query "SELECT everest.save_handler_position('mirror-h', ${batch[-1]})" && topo_query "COMMIT"; then
      printf '%s\n' "${batch[@]}" >>"$WORK/handler.pos"; cp=${batch[-1]}; echo "$cp" >"$WORK/handler.cp"
    else
      topo_query "ROLLBACK"; echo error >>"$WORK/handler.errors"; sleep 0.05
    fi
    [ "$QUERY_ERROR" = 2 ] && { echo "session lost" >>"$WORK/handler.err"; return; }
  done
}
# Samples on the mirror while a subscription exists: safe_position(), then (the next statement)
# how many subscribed tables are not ready. States only move on to 'r', so a positive position
# followed by a table not ready means the position was published before every table was ready.
sample_readiness() {
  topo_session $MIR $DB /dev/null
  while [ ! -e "$WORK/stop_sampling" ]; do
    topo_query "SELECT everest.safe_position()" && sp=${ROWS[0]} &&
      topo_query "SELECT count(*) FILTER (WHERE r.srsubstate <> 'r') || ' ' || count(*) || ' ' ||
                         coalesce(string_agg(r.srrelid::regclass::text || ':' || r.srsubstate::text, ',')
                                    FILTER (WHERE r.srsubstate <> 'r'), '-')
                    FROM pg_subscription s JOIN pg_subscription_rel r ON r.srsubid = s.oid WHERE s.subname = 's'" &&
      echo "$sp ${ROWS[0]}" >>"$WORK/readiness"
    sleep 0.005
  done
}
sample_horizons() {  # the mirror's safe_position(), then the publisher's
  local m p
  topo_session $MIR $DB /dev/null
  while [ ! -e "$WORK/stop_sampling" ]; do
    topo_query "SELECT everest.safe_position()" && m=${ROWS[0]} && p=$(pub -c "SELECT everest.safe_position()" 2>/dev/null) &&
      echo "$m $p" >>"$WORK/horizons"
    sleep 0.01
  done
}

follow all "SELECT position FROM everest.read_all_forward(%s + 1, 100)" & PIDS+=("$!")
follow ce "SELECT position FROM everest.read_stream_forward('\$ce-account', %s + 1, 100)" & PIDS+=("$!")
follow_handler & PIDS+=("$!")
sample_horizons & PIDS+=("$!")
writer_pids=()
for w in $(seq 1 $WRITERS); do writer "$w" & writer_pids+=("$!"); PIDS+=("$!"); done
sleep 1
# --- subscribe while the writers run
sample_readiness & PIDS+=("$!")
PGOPTIONS="-c client_min_messages=warning" \
  mir -c "CREATE SUBSCRIPTION s CONNECTION '$(topo_conninfo $PUB $DB) user=postgres' PUBLICATION p" >/dev/null 2>"$WORK/subscribe.err"
is "the subscription is created while the writers run" "$(head -c 300 "$WORK/subscribe.err")" ""
sleep 5
touch "$WORK/stop_writers"
for p in "${writer_pids[@]}"; do wait "$p" 2>/dev/null; done
echo "# writers stopped after $((SECONDS - started)) s"

p_safe=$(pub -c "SELECT everest.safe_position()")
caught_up() { [ "$(mir -c "SELECT everest.safe_position()" 2>/dev/null)" = "$p_safe" ]; }
wait_for 45 caught_up
caught=$?
patience=$([ $caught -eq 0 ] && echo 30 || echo 3)   # later waits, once the mirror failed to catch up
is "the mirror's safe_position() reaches the publisher's ($p_safe)" "$(mir -c "SELECT everest.safe_position()" 2>&1)" "$p_safe"
is "every subscribed table is ready" \
  "$(mir -c "SELECT string_agg(r.srrelid::regclass::text || ':' || r.srsubstate::text, ' ' ORDER BY r.srrelid::regclass::text)
               FROM pg_subscription s JOIN pg_subscription_rel r ON r.srsubid = s.oid WHERE s.subname = 's'")" \
  "everest.epochs:r everest.events:r everest.horizon:r everest.tombstones:r"
touch "$WORK/stop_sampling"
pub -c "SELECT position FROM everest.read_all_forward(0, $ALL)" >"$WORK/all.expected"
pub -c "SELECT position FROM everest.read_stream_forward('\$ce-account', 0, $ALL)" >"$WORK/ce.expected"
p_last=$(tail -1 "$WORK/all.expected"); p_last_ce=$(tail -1 "$WORK/ce.expected")
total=$(lines "$WORK/all.expected")
is "the writers' transactions all worked" "$(grep -c ERROR "$WORK/writer.err")" "0"
is "the writers appended hundreds of events ($total)" "$([ "$total" -ge 500 ] && echo yes || echo no)" "yes"
at_least() { local cp; cp=$(cat "$WORK/$1.cp" 2>/dev/null); [ "${cp:-0}" -ge "$2" ]; }
if [ $caught -eq 0 ]; then wait_for 30 at_least all "$p_last"; wait_for 30 at_least ce "$p_last_ce"; wait_for 30 at_least handler "$p_last"; fi

samples=$(lines "$WORK/readiness")
# Each sample: "SAFE_POSITION NOT_READY TABLES NOT_READY_TABLES:STATE".
early=$(awk '$1 > 0 && $2 > 0' "$WORK/readiness" | wc -l)
awk '$1 > 0 && $2 > 0 { print "# safe_position() " $1 " with " $4 " not ready" }' "$WORK/readiness" | head -3
notready=$(awk '$2 > 0' "$WORK/readiness" | wc -l)
echo "# $notready of $samples samples on the mirror were taken while a table was not ready"
is "the mirror's safe_position() is 0 until every subscribed table is ready" "$early" "0"
above=$(awk '$1 > $2' "$WORK/horizons" | wc -l)
is "the mirror's safe_position() is never above the publisher's ($(lines "$WORK/horizons") samples)" "$above" "0"
for f in all ce handler; do
  exp=$WORK/$([ $f = ce ] && echo ce || echo all).expected
  missed=$(comm -23 <(sort "$exp") <(sort -u "$WORK/$f.pos") | wc -l)
  echo "# $f follower on the mirror: missed $missed of $(lines "$exp") events"
  is "the $f follower on the mirror missed no event of the publisher" "$missed" "0"
  is "the $f follower read in order, each event once, none that is not on the publisher" \
    "$(strictly_increasing "$WORK/$f.pos") $(comm -13 <(sort "$exp") <(sort -u "$WORK/$f.pos") | wc -l)" "yes 0"
  is "the $f follower's reads never failed" "$(lines "$WORK/$f.errors")" "0"
done
is "\$all on the mirror equals the publisher's (positions and ids)" \
  "$(diff <(mir -c "SELECT position || ' ' || id FROM everest.read_all_forward(0, $ALL)") \
          <(pub -c "SELECT position || ' ' || id FROM everest.read_all_forward(0, $ALL)") >/dev/null && echo same || echo differs)" "same"
is "\$ce-account on the mirror equals the publisher's" \
  "$(diff <(mir -c "SELECT position || ' ' || id FROM everest.read_stream_forward('\$ce-account', 0, $ALL)") \
          <(pub -c "SELECT position || ' ' || id FROM everest.read_stream_forward('\$ce-account', 0, $ALL)") >/dev/null && echo same || echo differs)" "same"
is "a read past the end on the mirror is not an error (lag)" \
  "$(sqlstate_of "$MC" "SELECT * FROM everest.read_all_forward(everest.safe_position() + 1000, 10)")" "none"

# --- writes on the mirror: 25006; its own handlers: saved there
is "append_event on the mirror fails with 25006" "$(sqlstate_of "$MC" "SELECT everest.append_event('account-1', 'X')")" "25006"
is "append_events on the mirror fails with 25006" \
  "$(sqlstate_of "$MC" "SELECT everest.append_events('account-1', '[{\"type\": \"X\", \"data\": {}}]')")" "25006"
is "delete_stream on the mirror fails with 25006" "$(sqlstate_of "$MC" "SELECT everest.delete_stream('account-2')")" "25006"
is "... and the stream is still there" \
  "$(mir -c "SELECT count(*) > 0 FROM everest.read_stream_forward('account-2', 0, $ALL)")" "t"
is "a handler saves on the mirror" \
  "$(sqlstate_of "$MC" "SELECT everest.save_handler_position('local-h', $p_last)")|$(mir -c "SELECT everest.handler_position('local-h')")" "none|$p_last"
is "the mirror's handler checkpoint is its own (mirror-h at the publisher's last position; the publisher has none)" \
  "$(mir -c "SELECT everest.handler_position('mirror-h')") $(pub -c "SELECT count(*) FROM everest.handlers WHERE handler LIKE '%-h'")" "$p_last 0"

# --- delete_stream on the publisher replays to the mirror
pub -c "SELECT everest.delete_stream('order-3')" -c "SELECT everest.delete_stream('order-4', tombstone => true)" >/dev/null
gone() { [ "$(mir -c "SELECT count(*) FROM everest.read_all_forward(0, $ALL) WHERE stream IN ('order-3', 'order-4')" 2>/dev/null)" = 0 ]; }
wait_for $patience gone
is "delete_stream on the publisher replays to the mirror (the events are gone there)" \
  "$(mir -c "SELECT count(*) FROM everest.read_stream_forward('order-3', 0, $ALL)") $(mir -c "SELECT count(*) FROM everest.read_stream_forward('order-4', 0, $ALL)")" "0 0"
is "... and \$all on the mirror equals the publisher's again" \
  "$(diff <(mir -c "SELECT position || ' ' || id FROM everest.read_all_forward(0, $ALL)") \
          <(pub -c "SELECT position || ' ' || id FROM everest.read_all_forward(0, $ALL)") >/dev/null && echo same || echo differs)" "same"
p_drawn=$(pub -c "SELECT greatest(max(position), (SELECT last_value FROM everest.position_seq)) FROM everest.events")
p_safe=$(pub -c "SELECT everest.safe_position()")
wait_for $patience caught_up

# --- cutover: the mirror becomes a primary
PGOPTIONS="-c client_min_messages=warning" mir -c "ALTER SUBSCRIPTION s DISABLE" -c "ALTER SUBSCRIPTION s SET (slot_name = NONE)" -c "DROP SUBSCRIPTION s" >/dev/null 2>"$WORK/cutover.err"
is "the subscription is dropped (cutover)" "$(head -c 300 "$WORK/cutover.err")" ""
pub -c "SELECT pg_drop_replication_slot('s')" >/dev/null 2>&1
# Between the cutover and the mirror's first append, readers at the replicated horizon read on.
is "after the cutover, before any append, a read from the last replicated checkpoint works (nothing new)" \
  "$(mir -v VERBOSITY=verbose -c "SELECT count(*) FROM everest.read_all_forward($p_last + 1, 100)" 2>&1 | head -1)" "0"
is "... and read_handler_events of the mirror's handler too" \
  "$(mir -v VERBOSITY=verbose -c "SELECT count(*) FROM everest.read_handler_events('mirror-h', '\$all', 100)" 2>&1 | head -1)" "0"
mir -c "SELECT e.last_position FROM generate_series(1, 20) i,
          LATERAL everest.append_event(CASE WHEN i % 2 = 0 THEN 'account-' ELSE 'order-' END || i % 10, 'AfterCutover') e
        ORDER BY 1" 2>"$WORK/cut_append.err" | grep . >"$WORK/new.pos"
is "after the cutover, appends on the mirror work" "$(lines "$WORK/new.pos") $(head -c 300 "$WORK/cut_append.err")" "20 "
new_min=$(head -1 "$WORK/new.pos"); new_min=${new_min:-0}
is "their positions are above every replicated one ($p_last) and every position the publisher drew ($p_drawn)" \
  "$([ "$new_min" -gt "$p_last" ] && [ "$new_min" -gt "$p_drawn" ] && echo yes || echo "no (first $new_min)")" "yes"
epoch=$(mir -c "SELECT epoch || ' ' || first_position || ' ' || coalesce(lost_after::text, 'null') || ' ' || system_identifier
                  FROM everest.epochs ORDER BY epoch DESC LIMIT 1" 2>/dev/null | grep . || echo none)
read -r e_no e_first e_lost e_sys <<<"$epoch"
is "an epoch row of the mirror's own records the new epoch, lost after the replicated horizon ($epoch)" \
  "$([ "$epoch" != none ] && [ "$e_sys" = "$(topo_system_identifier $MIR)" ] && [ "$e_lost" = "$p_safe" ] &&
     [ "$e_first" = $((e_no * (1 << 40) + 1)) ] && [ "$new_min" -ge "$e_first" ] && echo yes || echo no)" "yes"
new_last=$(tail -1 "$WORK/new.pos"); new_last=${new_last:-0}
new_ce_last=$(mir -c "SELECT max(position) FROM everest.read_stream_forward('\$ce-account', 0, $ALL)" 2>/dev/null)
wait_for $patience at_least all "$new_last"; wait_for $patience at_least handler "$new_last"; wait_for $patience at_least ce "${new_ce_last:-0}"
touch "$WORK/stop"
for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
is "the \$all follower read on across the cutover: the 20 new events, in order, no error" \
  "$(comm -12 <(sort -u "$WORK/all.pos") <(sort "$WORK/new.pos") | wc -l | tr -d ' ') $(strictly_increasing "$WORK/all.pos") $(lines "$WORK/all.errors")" "20 yes 0"
is "the mirror's handler read on across the cutover: the 20 new events, in order, no error" \
  "$(comm -12 <(sort -u "$WORK/handler.pos") <(sort "$WORK/new.pos") | wc -l | tr -d ' ') $(strictly_increasing "$WORK/handler.pos") $(lines "$WORK/handler.errors")" "20 yes 0"
is "the \$ce-account follower read on across the cutover: the 10 new account events, no error" \
  "$(comm -12 <(sort -u "$WORK/ce.pos") <(sort "$WORK/new.pos") | wc -l | tr -d ' ') $(strictly_increasing "$WORK/ce.pos") $(lines "$WORK/ce.errors")" "10 yes 0"

echo "# mirror.sh took $((SECONDS - started)) s"
if [ "$FAILURES" -gt 0 ]; then
  for f in "$WORK"/*.err; do [ -s "$f" ] && { echo "# $(basename "$f"):"; sort "$f" | uniq -c | sort -rn | head -4 | sed 's/^/#   /'; }; done
  echo "# mirror log:"; grep -E 'ERROR|FATAL' "$(cluster_dir $MIR)/server.log" | sort | uniq -c | sort -rn | head -8 | sed 's/^/# /'
fi
finish
