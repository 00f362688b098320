#!/usr/bin/env bash
# Stress (DESIGN.md sections 4 and 7): concurrent writers with random rollbacks and savepoints,
# followers of $all that must see every committed event exactly once, in order, at the position
# its writer was told, and none of the rolled-back ones. The work and the checks are in
# test/stress/stress.cpp; this script builds it when needed, gives it a fresh database and
# passes its "ok - ..." / "not ok - ..." lines on.
#
#   PGHOST/PGPORT/PGUSER: a cluster with everest preloaded; ROOT: the repository (optional)
#   EVEREST_STRESS_SECONDS (default 30), EVEREST_STRESS_WRITERS (6), EVEREST_STRESS_FOLLOWERS (2)
set -u
ROOT=${ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
# Self-contained helpers (the same conventions as test/shell/lib.bash).
q() { psql -X -q -t -A -v ON_ERROR_STOP=1 "$@"; }
fresh_db() { psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $1 WITH (FORCE)" -c "CREATE DATABASE $1" >/dev/null 2>&1; }

BIN="$ROOT/build/everest-stress"
DB=ev_stress
OUT=$(mktemp /tmp/everest-stress-out.XXXXXX)
trap 'rm -f "$OUT"' EXIT

if [ ! -x "$BIN" ] || [ "$ROOT/test/stress/stress.cpp" -nt "$BIN" ] || [ "$ROOT/test/stress/build.sh" -nt "$BIN" ]; then
  if ! bash "$ROOT/test/stress/build.sh" >"$OUT" 2>&1; then
    cat "$OUT"
    echo "not ok - the stress test builds"
    exit 1
  fi
fi

fresh_db "$DB" 2>/dev/null
if ! q -d "$DB" -c "CREATE EXTENSION everest" >/dev/null; then
  echo "not ok - CREATE EXTENSION everest in a fresh database"
  exit 1
fi

"$BIN" --dbname "$DB" --seconds "${EVEREST_STRESS_SECONDS:-30}" --writers "${EVEREST_STRESS_WRITERS:-6}" \
  --followers "${EVEREST_STRESS_FOLLOWERS:-2}" --streams 50 2>&1 | tee "$OUT"
rc=${PIPESTATUS[0]}
# A crash of the program after some "ok" lines must not pass for success.
if [ "$rc" -ne 0 ] && ! grep -q '^not ok ' "$OUT"; then
  echo "not ok - everest-stress finished (exit status $rc)"
fi
if ! grep -qE '^(ok|not ok) ' "$OUT"; then
  echo "not ok - everest-stress reported its checks"
  rc=1
fi

psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1
exit $((rc != 0))
