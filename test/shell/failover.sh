#!/usr/bin/env bash
# Failover (DESIGN.md section 9, "Failover"; docs/topologies.md): positions carry an epoch, the
# first append after a promotion starts the next one, and a read or save from a checkpoint in a
# range the new primary never completed fails with EV006 instead of silently skipping what the
# new primary writes there.
#
#   fresh  a standby made before any append and promoted at once: appends work, positions are
#          above 0, checkpoint 0 reads without EV006.
#   A      asynchronous replication loses events: the standby stops (caught up, horizon C_ok),
#          the primary appends on (a reader there gets to C_lost), the primary dies (immediate
#          stop), the standby is promoted and appends. No position is reused; C_lost gets EV006
#          ($all, $ce-, read_handler_events, save_handler_position); C_ok reads on without error
#          and sees the new events; reads past the end are EV006 on the primary, never on a
#          standby.
#   B      synchronous replication: writers record each append whose COMMIT returned; the
#          primary dies mid-traffic; the standby is promoted. Every acknowledged append is there
#          (same id, same position), new positions are above everything a reader on the primary
#          saw, and a follower whose checkpoint is within the standby's replayed horizon reads on.
set -u
ROOT=${ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
source "$ROOT/test/cluster.sh"
source "$ROOT/test/shell/lib.bash"
source "$ROOT/test/shell/topology.bash"
subscriber_suite failover
topology_trap
started=$SECONDS

PA=failover_a       # scenario A's primary (and the fresh standby's)
SA=failover_a_sb    # its standby, promoted
S0=failover_fresh   # a standby made before any append
PB=failover_b       # scenario B's primary, synchronous
SB=failover_b_sb    # its synchronous standby, promoted
EPOCH=$((1 << 40))
ALL=2147483647

on() { local c=$1; shift; topo_psql "$c" -v ON_ERROR_STOP=1 -d $DB "$@"; }
conn() { topo_conninfo "$1" $DB; }
# read_to_end CLUSTER CHECKPOINT BATCH FILE: a follower of $all on CLUSTER from CHECKPOINT, in
# batches of BATCH, until a batch is empty; positions go to FILE (in the order read), errors (with
# their SQLSTATE) to FILE.err. Prints the final checkpoint; false when a read failed.
read_to_end() {
  local c=$1 cp=$2 batch=$3 file=$4 out
  : >>"$file"
  while :; do
    out=$(topo_psql "$c" -v ON_ERROR_STOP=1 -v VERBOSITY=verbose -d $DB \
          -c "SELECT position FROM everest.read_all_forward($cp + 1, $batch)" 2>>"$file.err") || { echo "$cp"; return 1; }
    [ -z "$out" ] && break
    echo "$out" >>"$file"
    cp=$(tail -1 <<<"$out")
  done
  echo "$cp"
}
# strictly_increasing FILE: yes when FILE's numbers increase strictly (no repeat, no step back).
strictly_increasing() { sort -c -n -u "$1" 2>/dev/null && echo yes || echo no; }
# appends CLUSTER N TYPE: N events on CLUSTER in five streams of two categories; prints the
# positions, one a line.
appends() {
  on "$1" -c "SELECT e.last_position FROM generate_series(1, $2) i,
                LATERAL everest.append_event(CASE WHEN i % 2 = 0 THEN 'acct-' ELSE 'order-' END || i % 5, '$3',
                                             jsonb_build_object('i', i)) e ORDER BY 1"
}
safe_of() { on "$1" -c "SELECT everest.safe_position()" 2>/dev/null; }
same_safe() { [ "$(safe_of "$1")" = "$(safe_of "$2")" ] && [ -n "$(safe_of "$1")" ]; }
# The epoch row of the last epoch on CLUSTER: "epoch first_position lost_after system_identifier
# timeline" ("none" when there is no such table or row).
last_epoch() {
  on "$1" -c "SELECT epoch || ' ' || first_position || ' ' || coalesce(lost_after::text, 'null') || ' ' ||
                     system_identifier || ' ' || timeline FROM everest.epochs ORDER BY epoch DESC LIMIT 1" 2>/dev/null |
    grep . || echo none
}

echo "# everest $(psql -X -A -t -d postgres -c "SELECT default_version FROM pg_available_extensions WHERE name = 'everest'" 2>/dev/null) installed"
topology_primary_start $PA >"$WORK/pa.log" 2>&1 || { cat "$WORK/pa.log"; echo "not ok - a primary starts"; exit 1; }
topo_psql $PA -d postgres -c "CREATE DATABASE $DB" >/dev/null &&
  on $PA -c "CREATE EXTENSION everest" >/dev/null || { echo "not ok - setup"; exit 1; }

# ------------------------------------------------------------------------------------------------
# fresh: a standby made before any append, promoted at once
# ------------------------------------------------------------------------------------------------
if standby_start $S0 $PA >"$WORK/s0.log" 2>&1 && standby_promote $S0; then
  is "fresh: a checkpoint 0 reads \$all on the promoted standby without error" \
    "$(sqlstate_of "$(conn $S0)" "SELECT * FROM everest.read_all_forward(1, 10)")" "none"
  is "fresh: ... and read_handler_events of a new handler too" \
    "$(sqlstate_of "$(conn $S0)" "SELECT * FROM everest.read_handler_events('fresh-h')")" "none"
  fresh=$(appends $S0 5 Fresh 2>"$WORK/s0.err" | tr '\n' ' ')
  is "fresh: appends on the promoted standby work" "$(wc -w <<<"$fresh" | tr -d ' ') $(head -c 300 "$WORK/s0.err")" "5 "
  is "fresh: their positions are above 0 and distinct" \
    "$(tr ' ' '\n' <<<"$fresh" | grep . | awk '$1 > 0' | sort -u | wc -l | tr -d ' ')" "5"
  : >"$WORK/s0.pos"
  read_to_end $S0 0 2 "$WORK/s0.pos" >/dev/null
  is "fresh: a follower from checkpoint 0 reads them, in order, without error" \
    "$(tr '\n' ' ' <"$WORK/s0.pos")| $(head -c 300 "$WORK/s0.pos.err" 2>/dev/null)" "$fresh| "
  is "fresh: read_handler_events and a save from checkpoint 0 work" \
    "$(sqlstate_of "$(conn $S0)" "BEGIN; SELECT count(*) FROM everest.read_handler_events('fresh-h');
                                  SELECT everest.save_handler_position('fresh-h', max(position)) FROM everest.read_all_forward(1, 100); COMMIT")" "none"
else
  cat "$WORK/s0.log"
  echo "not ok - fresh: a standby of a primary with no append yet starts and is promoted"
fi
topology_stop $S0 immediate 2>/dev/null

# ------------------------------------------------------------------------------------------------
# A: asynchronous replication; the primary dies with events the standby never received
# ------------------------------------------------------------------------------------------------
standby_start $SA $PA >"$WORK/sa.log" 2>&1 || { cat "$WORK/sa.log"; echo "not ok - A: a hot standby starts"; exit 1; }
# ~100 events, with rolled-back appends between them (gaps in $all)
appends $PA 40 Before >/dev/null
on $PA -c "BEGIN; SELECT everest.append_event('acct-9', 'RolledBack') FROM generate_series(1, 5); ROLLBACK" >/dev/null
appends $PA 60 Before >/dev/null
standby_wait_caught_up $SA $PA 30
# The standby replays the horizon the primary's notifier publishes.
wait_for 30 same_safe $SA $PA
is "A: the standby caught up, its safe_position() is the primary's" "$(safe_of $SA)" "$(safe_of $PA)"
is "A: on a standby, a read past the end is not an error (lag)" \
  "$(sqlstate_of "$(conn $SA)" "SELECT * FROM everest.read_all_forward(everest.safe_position() + 1000, 10)")" "none"
# A follower on the primary reads to the end: C_ok. A handler saves C_ok on the primary.
: >"$WORK/a_p.pos"
C_ok=$(read_to_end $PA 0 30 "$WORK/a_p.pos")
on $PA -c "SELECT everest.reset_handler('ok-h', $C_ok)" >/dev/null
standby_wait_caught_up $SA $PA 30
is "A: the primary holds 100 events up to C_ok ($C_ok)" "$(wc -l <"$WORK/a_p.pos" | tr -d ' ')" "100"
is "A: on the primary, a read from safe_position() + 1 returns nothing, without error" \
  "$(on $PA -c "SELECT count(*) FROM everest.read_all_forward(everest.safe_position() + 1, 10)" 2>&1)" "0"
is "A: on the primary, a read from a checkpoint beyond anything assigned fails with EV006" \
  "$(sqlstate_of "$(conn $PA)" "SELECT * FROM everest.read_all_forward(everest.safe_position() + 1000, 10)")" "EV006"
is "A: on the primary, a save of a position beyond anything assigned fails with EV006" \
  "$(sqlstate_of "$(conn $PA)" "SELECT everest.save_handler_position('beyond-h', everest.safe_position() + 1000)")" "EV006"

# Replication stops; the primary appends on; a reader there gets to C_lost; the primary dies.
topology_stop $SA fast
appends $PA 25 Lost >/dev/null
on $PA -c "BEGIN; SELECT everest.append_event('order-9', 'RolledBack') FROM generate_series(1, 10); ROLLBACK" >/dev/null
appends $PA 15 Lost >/dev/null
C_lost=$(read_to_end $PA "$C_ok" 7 "$WORK/a_p.pos")
on $PA -c "BEGIN; SELECT everest.append_event('order-9', 'RolledBack') FROM generate_series(1, 3); ROLLBACK" >/dev/null
# Everything the old primary holds, and the highest position it ever drew.
on $PA -c "SELECT position || ' ' || id FROM everest.read_all_forward(0, $ALL)" | sort >"$WORK/a_p.events"
P_drawn=$(on $PA -c "SELECT CASE WHEN to_regclass('everest.position_seq') IS NULL THEN max(position)
                                 ELSE greatest(max(position), (SELECT last_value FROM everest.position_seq)) END
                       FROM everest.events")
is "A: the primary appended 40 more, up to C_lost ($C_lost); it drew positions up to $P_drawn" \
  "$(wc -l <"$WORK/a_p.events" | tr -d ' ') $([ "$P_drawn" -gt "$C_lost" ] && echo drew-more)" "140 drew-more"
topology_stop $PA immediate

# The standby comes back (its primary is gone) and is promoted.
if ! { topology_start_again $SA 2>>"$WORK/sa.log" && standby_promote $SA; }; then
  tail -20 "$(cluster_dir $SA)/server.log"
  echo "not ok - A: the standby restarts and is promoted"; exit 1
fi
is "A: the promoted standby is a primary, on a new timeline" \
  "$(on $SA -c "SELECT pg_is_in_recovery()") $([ "$(topo_timeline $SA)" -gt 1 ] && echo new-timeline)" "f new-timeline"
# Between the promotion and the first append: readers at the replayed horizon read on.
is "A: before the first append on the promoted standby, a follower from C_ok reads without error (nothing new)" \
  "$(on $SA -v VERBOSITY=verbose -c "SELECT count(*) FROM everest.read_all_forward($C_ok + 1, 100)" 2>&1 | head -1)" "0"
is "A: ... and so does read_handler_events of the handler saved at C_ok" \
  "$(on $SA -v VERBOSITY=verbose -c "SELECT count(*) FROM everest.read_handler_events('ok-h', '\$all', 100)" 2>&1 | head -1)" "0"
echo "# note: A: before the first append, read_all_forward(C_lost + 1): $(sqlstate_of "$(conn $SA)" "SELECT * FROM everest.read_all_forward($C_lost + 1, 100)")"
new=$(appends $SA 20 After 2>"$WORK/sa_append.err")
echo "$new" | grep . >"$WORK/a_new.pos"
is "A: 20 appends on the promoted standby work" "$(lines "$WORK/a_new.pos") $(head -c 300 "$WORK/sa_append.err")" "20 "
new_min=$(head -1 "$WORK/a_new.pos"); new_min=${new_min:-0}
is "A: every new position is above C_lost ($C_lost): none is reused (first $new_min)" \
  "$([ "$new_min" -gt "$C_lost" ] && echo yes || echo no)" "yes"
is "A: ... and above every position the old primary drew ($P_drawn)" \
  "$([ "$new_min" -gt "$P_drawn" ] && echo yes || echo no)" "yes"
on $SA -c "SELECT position || ' ' || id FROM everest.read_all_forward(0, $ALL)" | sort >"$WORK/a_s.events"
is "A: no position holds two different events across the old and the new primary" \
  "$(join <(sort -k1,1 "$WORK/a_p.events") <(sort -k1,1 "$WORK/a_s.events") | awk '$2 != $3' | wc -l | tr -d ' ')" "0"
is "A: the new primary holds the 100 replicated events and the 20 new ones, each position once" \
  "$(wc -l <"$WORK/a_s.events" | tr -d ' ') $(cut -d' ' -f1 "$WORK/a_s.events" | sort | uniq -d | wc -l | tr -d ' ')" "120 0"
epoch=$(last_epoch $SA)
read -r e_no e_first e_lost e_sys e_tl <<<"$epoch"
is "A: an epoch row records the new epoch: timeline $(topo_timeline $SA), lost after C_ok, first position e*2^40+1 above C_lost ($epoch)" \
  "$([ "$epoch" != none ] && [ "$e_tl" = "$(topo_timeline $SA)" ] && [ "$e_sys" = "$(topo_system_identifier $SA)" ] &&
     [ "$e_lost" = "$C_ok" ] && [ "$e_first" = $((e_no * EPOCH + 1)) ] && [ "$e_first" -gt "$C_lost" ] &&
     [ "$new_min" -ge "$e_first" ] && echo yes || echo no)" "yes"

# Readers with checkpoint C_lost: EV006 from every way in.
is "A: read_all_forward(C_lost + 1) fails with EV006" \
  "$(sqlstate_of "$(conn $SA)" "SELECT * FROM everest.read_all_forward($C_lost + 1, 100)")" "EV006"
is "A: read_stream_forward('\$ce-acct', C_lost + 1) fails with EV006" \
  "$(sqlstate_of "$(conn $SA)" "SELECT * FROM everest.read_stream_forward('\$ce-acct', $C_lost + 1, 100)")" "EV006"
reset=$(sqlstate_of "$(conn $SA)" "SELECT everest.reset_handler('lost-h', $C_lost)")
[ "$reset" = none ] || echo "# note: reset_handler('lost-h', C_lost) on the new primary: $reset"
is "A: read_handler_events of a handler whose checkpoint is C_lost fails with EV006" \
  "$(sqlstate_of "$(conn $SA)" "SELECT * FROM everest.read_handler_events('lost-h', '\$all', 100)")" "EV006"
on $SA -c "SELECT everest.reset_handler('save-h', $C_ok)" >/dev/null
is "A: save_handler_position(h, C_lost) fails with EV006" \
  "$(sqlstate_of "$(conn $SA)" "SELECT everest.save_handler_position('save-h', $C_lost)")" "EV006"

# Readers with checkpoint C_ok read on, without error.
: >"$WORK/a_ok.pos"
read_to_end $SA "$C_ok" 7 "$WORK/a_ok.pos" >/dev/null
is "A: a follower from C_ok reads every event after it, in order, the 20 new ones, without error" \
  "$(tr '\n' ' ' <"$WORK/a_ok.pos")| $(head -c 300 "$WORK/a_ok.pos.err")" "$(tr '\n' ' ' <"$WORK/a_new.pos")| "
is "A: ... the same for a \$ce-order follower" \
  "$(on $SA -c "SELECT string_agg(position::text, ' ' ORDER BY position) FROM everest.read_stream_forward('\$ce-order', $C_ok + 1, 100)" 2>&1)" \
  "$(on $SA -c "SELECT string_agg(position::text, ' ' ORDER BY position) FROM everest.events WHERE position > $C_ok AND stream LIKE 'order-%'")"
is "A: read_handler_events of a handler saved at C_ok on the old primary returns the 20 new events" \
  "$(on $SA -c "SELECT count(*) || ' ' || min(position) FROM everest.read_handler_events('ok-h', '\$all', 100)" 2>&1)" \
  "20 $new_min"
is "A: on the new primary, a read from safe_position() + 1 returns nothing, without error" \
  "$(on $SA -c "SELECT count(*) FROM everest.read_all_forward(everest.safe_position() + 1, 10)" 2>&1)" "0"
is "A: on the new primary, a read from safe_position() + 1000 fails with EV006" \
  "$(sqlstate_of "$(conn $SA)" "SELECT * FROM everest.read_all_forward(everest.safe_position() + 1000, 10)")" "EV006"
topology_stop $SA immediate
echo "# fresh + A took $((SECONDS - started)) s"

# ------------------------------------------------------------------------------------------------
# B: synchronous replication; the primary dies mid-traffic
# ------------------------------------------------------------------------------------------------
topology_primary_start $PB >"$WORK/pb.log" 2>&1 || { cat "$WORK/pb.log"; echo "not ok - B: a primary starts"; exit 1; }
topo_psql $PB -d postgres -c "CREATE DATABASE $DB" >/dev/null &&
  on $PB -c "CREATE EXTENSION everest" >/dev/null &&
  appends $PB 30 Before >/dev/null || { echo "not ok - B: setup"; exit 1; }
# The standby must not wait for a synchronous standby of its own once promoted.
standby_start $SB $PB "synchronous_standby_names = ''
cluster_name = 'failover_b_sync'" >"$WORK/sb.log" 2>&1 || { cat "$WORK/sb.log"; echo "not ok - B: a hot standby starts"; exit 1; }
topo_psql $PB -d postgres -c "ALTER SYSTEM SET synchronous_standby_names = 'failover_b_sync'" -c "SELECT pg_reload_conf()" >/dev/null
is_sync() { [ "$(topo_psql $PB -d postgres -c "SELECT sync_state FROM pg_stat_replication WHERE application_name = 'failover_b_sync'")" = sync ]; }
wait_for 30 is_sync
is "B: the standby is the primary's synchronous standby" "$(topo_psql $PB -d postgres -c "SELECT sync_state FROM pg_stat_replication")" "sync"

# sync_writer N: appends in transactions until the primary dies; after each COMMIT that returned,
# "ack ID POSITION" (line-buffered, so every line is out before the next statement runs).
sync_writer() {
  local i id
  for ((i = 0; i < 100000; i++)); do
    [ -e "$WORK/stop" ] && break
    id=$(</proc/sys/kernel/random/uuid)
    ((i % 10 == 0)) && sleep 0.01
    echo "BEGIN;"
    echo "SELECT last_position AS pos FROM everest.append_event('sync-$(( (i + $1) % 7 ))', 'Sync', '{\"w\": $1}', NULL, -2, '$id') \\gset"
    echo "COMMIT;"
    echo "\\echo ack $id :pos"
  done | stdbuf -oL psql -X -q -t -A -v ON_ERROR_STOP=1 -h "$(cluster_dir $PB)" -p "$(cluster_port $PB)" -d $DB \
           >"$WORK/acks.$1" 2>"$WORK/writer.$1.err"
}
# follow_b CLUSTER NAME: a follower of $all on CLUSTER, in one psql session, until stopped or
# CLUSTER dies; its positions in NAME.pos, its checkpoint in NAME.cp.
follow_b() {
  local c=$1 name=$2 cp=0
  : >"$WORK/$name.pos"; echo 0 >"$WORK/$name.cp"
  topo_session "$c" $DB "$WORK/$name.err"
  while [ ! -e "$WORK/stop_followers" ]; do
    if ! topo_query "SELECT position FROM everest.read_all_forward($cp + 1, 50)"; then
      [ "$QUERY_ERROR" = 2 ] && return
      sleep 0.05; continue
    fi
    if [ ${#ROWS[@]} -gt 0 ]; then
      printf '%s\n' "${ROWS[@]}" >>"$WORK/$name.pos"; cp=${ROWS[-1]}; echo "$cp" >"$WORK/$name.cp"
    else sleep 0.005; fi
  done
}
acked() { cat "$WORK"/acks.* 2>/dev/null | grep -c '^ack '; }
cp_of() { local cp; cp=$(cat "$WORK/$1.cp" 2>/dev/null); echo "${cp:-0}"; }
# Enough traffic, and both followers well into it.
enough_acks() { [ "$(acked)" -ge 400 ] && [ "$(cp_of b_primary)" -ge 250 ] && [ "$(cp_of b_standby)" -ge 250 ]; }
follow_b $PB b_primary & PIDS+=("$!"); fp=$!
follow_b $SB b_standby & PIDS+=("$!"); fs=$!
writer_pids=()
for w in 1 2 3; do sync_writer $w & writer_pids+=("$!"); PIDS+=("$!"); done
wait_for 60 enough_acks
topology_stop $PB immediate
for p in "${writer_pids[@]}"; do wait "$p" 2>/dev/null; done
touch "$WORK/stop_followers"
wait "$fp" "$fs" 2>/dev/null
cat "$WORK"/acks.* | awk '$1 == "ack" {print $3 " " $2}' | sort >"$WORK/b_acks"
cp_primary=$(cat "$WORK/b_primary.cp"); cp_standby=$(cat "$WORK/b_standby.cp")
seen_max=$(sort -n "$WORK/b_primary.pos" | tail -1); seen_max=${seen_max:-0}
echo "# B: $(lines "$WORK/b_acks") acknowledged appends; a reader on the primary got to $cp_primary, one on the standby to $cp_standby"
is "B: the writers had hundreds of acknowledged appends" "$([ "$(lines "$WORK/b_acks")" -ge 300 ] && echo yes || echo "no ($(lines "$WORK/b_acks"))")" "yes"

if ! standby_promote $SB; then
  tail -20 "$(cluster_dir $SB)/server.log"
  echo "not ok - B: the synchronous standby is promoted"; exit 1
fi
appends $SB 20 After 2>"$WORK/sb_append.err" | grep . >"$WORK/b_new.pos"
is "B: 20 appends on the promoted standby work" "$(lines "$WORK/b_new.pos") $(head -c 300 "$WORK/sb_append.err")" "20 "
on $SB -c "SELECT position || ' ' || id FROM everest.read_all_forward(0, $ALL)" | sort >"$WORK/b_s.events"
is "B: every acknowledged append is on the promoted standby, same id at the same position" \
  "$(comm -23 "$WORK/b_acks" "$WORK/b_s.events" | wc -l | tr -d ' ') of $(lines "$WORK/b_acks") missing" "0 of $(lines "$WORK/b_acks") missing"
new_min=$(head -1 "$WORK/b_new.pos"); new_min=${new_min:-0}
ack_max=$(sort -n "$WORK/b_acks" | tail -1 | cut -d' ' -f1)
is "B: new positions are above every position a reader on the old primary saw ($seen_max) and every acknowledged one ($ack_max)" \
  "$([ "$new_min" -gt "$seen_max" ] && [ "$new_min" -gt "${ack_max:-0}" ] && echo yes || echo "no (first new $new_min)")" "yes"
epoch=$(last_epoch $SB)
read -r e_no e_first e_lost e_sys e_tl <<<"$epoch"
is "B: an epoch row records the new epoch, on the new timeline, lost after a horizon at or past the standby follower's checkpoint ($epoch)" \
  "$([ "$epoch" != none ] && [ "$e_tl" = "$(topo_timeline $SB)" ] && [ "$e_lost" != null ] && [ "$e_lost" -ge "$cp_standby" ] &&
     [ "$e_first" = $((e_no * EPOCH + 1)) ] && [ "$new_min" -ge "$e_first" ] && echo yes || echo no)" "yes"
# The follower that read on the standby (checkpoint <= the horizon it replayed) reads on.
: >"$WORK/b_on.pos"
read_to_end $SB "$cp_standby" 1000 "$WORK/b_on.pos" >/dev/null
on $SB -c "SELECT position FROM everest.read_all_forward($cp_standby + 1, $ALL)" >"$WORK/b_on.expected"
is "B: the standby's follower reads on after the promotion without error, every event after its checkpoint, in order" \
  "$(cmp -s "$WORK/b_on.pos" "$WORK/b_on.expected" && echo same || echo "differs ($(lines "$WORK/b_on.pos") read, $(lines "$WORK/b_on.expected") there)") $(strictly_increasing "$WORK/b_on.pos") $(head -c 300 "$WORK/b_on.pos.err")" \
  "same yes "
is "B: ... including the 20 new events" "$(comm -12 <(sort "$WORK/b_on.pos") <(sort "$WORK/b_new.pos") | wc -l | tr -d ' ')" "20"
# The follower that read on the old primary: EV006 is allowed past the replayed horizon.
: >"$WORK/b_p_on.pos"
read_to_end $SB "$cp_primary" 1000 "$WORK/b_p_on.pos" >/dev/null
echo "# note: B: the old primary's follower (checkpoint $cp_primary, lost_after ${e_lost:-?}) on the new primary:" \
  "$(if [ -s "$WORK/b_p_on.pos.err" ]; then grep -oE 'ERROR:  [A-Z0-9]{5}' "$WORK/b_p_on.pos.err" | head -1; else echo "read $(lines "$WORK/b_p_on.pos") events, no error"; fi)"
# Checkpoints at events the new primary holds above its replayed horizon (documented as
# conservative: not asserted).
if [ "$epoch" != none ] && [ "$e_lost" != null ]; then
  above=$(on $SB -c "SELECT string_agg(position::text, ' ') FROM everest.read_all_forward($e_lost + 1, $ALL) WHERE position < $e_first")
  for x in $above; do
    echo "# note: B: checkpoint $x (an event of the new primary above lost_after $e_lost): read_all_forward($x + 1): $(sqlstate_of "$(conn $SB)" "SELECT * FROM everest.read_all_forward($x + 1, 10)")"
  done
fi

echo "# failover.sh took $((SECONDS - started)) s"
if [ "$FAILURES" -gt 0 ]; then
  # (the writers' and the old primary's follower's lost connections are expected)
  for f in "$WORK"/*.err; do
    case $(basename "$f") in writer.*|b_primary.err) continue ;; esac
    [ -s "$f" ] && { echo "# $(basename "$f"):"; tail -3 "$f" | sed 's/^/#   /'; }
  done
fi
finish
