#!/usr/bin/env bash
# The install-time schema takeover (docs/security.md): a role that can create a schema named
# everest before a superuser installs the extension must not end up controlling what everest's
# superuser-owned functions read and write.
#   - 0.3.0 refuses a schema it did not create; the schema it creates is the superuser's and a
#     member of the extension, so a database owner can neither rename, drop nor write into it.
#   - A database installed by 0.2.0 (which adopted such a schema) refuses to run while the schema
#     is not a superuser's, and ALTER EXTENSION UPDATE refuses to take it over.
#   - A clean 0.2.0 install updates to the 0.3.0 layout, keeps its grants, dumps and restores.
set -u
source "$(dirname "$0")/lib.bash"

SUDO=
[ "$(id -u)" -ne 0 ] && SUDO=sudo
EXTDIR=$(pg_config --sharedir)/extension
BACKUP=$(mktemp -d /tmp/everest-takeover.XXXXXX)
mallory() { PGUSER=ev_mallory "$@"; }
is_super() { q -d postgres -c "SELECT rolsuper FROM pg_roles WHERE rolname = 'ev_mallory'"; }
cleanup() {
  # put the installed control file and 0.2.0 script back, whatever happened
  [ -f "$BACKUP/everest.control" ] && $SUDO cp "$BACKUP/everest.control" "$BACKUP/everest--0.2.0.sql" "$EXTDIR/"
  for db in ev_takeover ev_takeover_legacy ev_takeover_planted ev_takeover_clean ev_takeover_restored; do
    psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1
  done
  psql -X -q -d postgres -c "DROP ROLE IF EXISTS ev_mallory" -c "DROP ROLE IF EXISTS ev_takeover_app" >/dev/null 2>&1
  rm -rf "$BACKUP"
}
trap cleanup EXIT
cleanup_roles() { psql -X -q -d postgres -c "DROP ROLE IF EXISTS ev_mallory" -c "DROP ROLE IF EXISTS ev_takeover_app" >/dev/null 2>&1; }
cleanup_roles
psql -X -q -d postgres -c "CREATE ROLE ev_mallory LOGIN" -c "CREATE ROLE ev_takeover_app LOGIN" >/dev/null

# The attacker's payload: a trigger on a planted everest.handlers that makes its owner superuser
# when anyone with the right to do so inserts a checkpoint.
PLANT="CREATE TABLE everest.handlers (handler text COLLATE \"C\" PRIMARY KEY, position bigint NOT NULL DEFAULT 0,
                                       state jsonb, updated_at timestamptz NOT NULL DEFAULT now());
CREATE FUNCTION everest.escalate() RETURNS trigger LANGUAGE plpgsql AS
  \$\$BEGIN EXECUTE 'ALTER ROLE ev_mallory SUPERUSER'; RETURN NEW; END\$\$;
CREATE TRIGGER escalate BEFORE INSERT OR UPDATE ON everest.handlers FOR EACH ROW EXECUTE FUNCTION everest.escalate();"

# --- 0.3.0: a schema that exists already stops the install --------------------------------------
psql -X -q -d postgres -c "CREATE DATABASE ev_takeover OWNER ev_mallory" >/dev/null
mallory q -d ev_takeover -c "CREATE SCHEMA everest" >/dev/null
is "CREATE EXTENSION refuses a schema named everest that someone else created (42P06)" \
  "$(sqlstate_of ev_takeover "CREATE EXTENSION everest")" "42P06"
is "... and installs nothing" "$(q -d ev_takeover -c "SELECT count(*) FROM pg_extension WHERE extname = 'everest'")" "0"
mallory q -d ev_takeover -c "DROP SCHEMA everest" >/dev/null
q -d ev_takeover -c "CREATE SCHEMA everest" >/dev/null
is "... also when a superuser made it" "$(sqlstate_of ev_takeover "CREATE EXTENSION everest")" "42P06"
q -d ev_takeover -c "DROP SCHEMA everest" -c "CREATE SCHEMA everest_own" >/dev/null
is "CREATE EXTENSION ... SCHEMA of one's choosing is refused (0A000)" \
  "$(sqlstate_of ev_takeover "CREATE EXTENSION everest SCHEMA everest_own")" "0A000"

q -d ev_takeover -c "CREATE EXTENSION everest" >/dev/null
is "the install creates its schema, owned by the installing superuser" \
  "$(q -d ev_takeover -c "SELECT nspowner::regrole FROM pg_namespace WHERE nspname = 'everest'")" "postgres"
is "... as a member of the extension" \
  "$(q -d ev_takeover -c "SELECT count(*) FROM pg_depend WHERE classid = 'pg_namespace'::regclass AND objid = 'everest'::regnamespace
                            AND refobjid = (SELECT oid FROM pg_extension WHERE extname = 'everest') AND deptype = 'e'")" "1"
is "the database owner cannot rename the schema" "$(mallory sqlstate_of ev_takeover "ALTER SCHEMA everest RENAME TO everest_old")" "42501"
is "... nor drop it" "$(mallory sqlstate_of ev_takeover "DROP SCHEMA everest CASCADE")" "42501"
is "... nor create anything in it" "$(mallory sqlstate_of ev_takeover "CREATE TABLE everest.planted (x int)")" "42501"
is "... nor drop the extension" "$(mallory sqlstate_of ev_takeover "DROP EXTENSION everest")" "42501"
is "every function of the extension has search_path pinned" \
  "$(q -d ev_takeover -c "SELECT count(*) FILTER (WHERE proconfig IS DISTINCT FROM '{\"search_path=pg_catalog, pg_temp\"}') || '/' || count(*)
                            FROM pg_proc WHERE pronamespace = 'everest'::regnamespace")" "0/21"
q -d ev_takeover -c "SELECT everest.save_handler_position('h', 1)" >/dev/null
is "a checkpoint saved by the superuser makes nobody a superuser" "$(is_super)" "f"
q -d ev_takeover -c "ALTER SCHEMA everest OWNER TO ev_mallory" >/dev/null
is "a schema a superuser gave away stops every function (55000)" \
  "$(sqlstate_of ev_takeover "SELECT everest.save_handler_position('h', 2)")" "55000"
is "... reads too" "$(sqlstate_of ev_takeover "SELECT * FROM everest.read_stream_forward('a-1')")" "55000"
q -d ev_takeover -c "ALTER SCHEMA everest OWNER TO postgres" >/dev/null
is "... and they work again once it is a superuser's" \
  "$(q -d ev_takeover -c "SELECT everest.save_handler_position('h', 2)" -c "SELECT everest.handler_position('h')" | tail -1)" "2"
q -d ev_takeover -c "DROP EXTENSION everest" >/dev/null
is "DROP EXTENSION removes the schema it created" \
  "$(q -d ev_takeover -c "SELECT count(*) FROM pg_namespace WHERE nspname = 'everest'")" "0"

# --- databases installed by 0.2.0, which adopted an existing schema ---------------------------
# 0.2.0's control file named schema everest (PostgreSQL created it, or adopted one) and its
# script did not create it. Reproduce that with the installed files swapped for a moment.
cp "$EXTDIR/everest.control" "$EXTDIR/everest--0.2.0.sql" "$BACKUP/"
legacy_files() {
  sed -e "s/^default_version = .*/default_version = '0.2.0'/" -e "s/^schema = .*/schema = everest/" \
    "$BACKUP/everest.control" | $SUDO tee "$EXTDIR/everest.control" >/dev/null
  sed '/^CREATE SCHEMA everest;$/d' "$BACKUP/everest--0.2.0.sql" | $SUDO tee "$EXTDIR/everest--0.2.0.sql" >/dev/null
}
current_files() { $SUDO cp "$BACKUP/everest.control" "$BACKUP/everest--0.2.0.sql" "$EXTDIR/"; }

legacy_files
# (1) mallory's schema, adopted; (2) adopted, handed to a superuser later, with a planted function
# left in it; (3) a clean install with a grant and some data.
for db in ev_takeover_legacy ev_takeover_planted; do
  psql -X -q -d postgres -c "CREATE DATABASE $db OWNER ev_mallory" >/dev/null
  mallory q -d $db -c "CREATE SCHEMA everest" >/dev/null
  q -d $db -c "CREATE EXTENSION everest" >/dev/null
done
fresh_db ev_takeover_clean 2>/dev/null
q -d ev_takeover_clean >/dev/null <<'SQL'
CREATE EXTENSION everest;
GRANT USAGE ON SCHEMA everest TO ev_takeover_app;
GRANT EXECUTE ON FUNCTION everest.append_event(text, text, jsonb, jsonb, bigint, uuid) TO ev_takeover_app;
GRANT EXECUTE ON FUNCTION everest.read_stream_forward(text, bigint, integer) TO ev_takeover_app;
SELECT everest.append_event('acct-1', 'Opened');
SELECT everest.save_handler_position('projector', 1);
SQL
current_files
is "a 0.2.0 install adopted the attacker's schema (the old behaviour, reproduced)" \
  "$(q -d ev_takeover_legacy -c "SELECT extversion || ' ' || nspowner::regrole FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE extname = 'everest'")" \
  "0.2.0 ev_mallory"

# (1) The attack as reported: rename the schema away, plant everest.handlers with a trigger, and
# wait for a superuser-owned function to write a checkpoint.
mallory q -d ev_takeover_legacy -c "ALTER SCHEMA everest RENAME TO everest_real" >/dev/null
mallory q -d ev_takeover_legacy -c "CREATE SCHEMA everest" -c "$PLANT" >/dev/null
is "the attack: a checkpoint saved through the renamed schema is refused (55000)" \
  "$(sqlstate_of ev_takeover_legacy "SELECT everest_real.save_handler_position('victim', 1)")" "55000"
is "... and the attacker is not a superuser" "$(is_super)" "f"
is "... nothing reached the planted table" "$(q -d ev_takeover_legacy -c "SELECT count(*) FROM everest.handlers")" "0"
is "ALTER EXTENSION UPDATE refuses the renamed schema (55000)" \
  "$(sqlstate_of ev_takeover_legacy "ALTER EXTENSION everest UPDATE")" "55000"
mallory q -d ev_takeover_legacy -c "DROP SCHEMA everest CASCADE" -c "ALTER SCHEMA everest_real RENAME TO everest" >/dev/null 2>&1
is "without the rename, every function refuses the attacker's schema (55000)" \
  "$(sqlstate_of ev_takeover_legacy "SELECT everest.append_event('a-1', 'X')")" "55000"
is "ALTER EXTENSION UPDATE refuses a schema a non-superuser owns (55000)" \
  "$(sqlstate_of ev_takeover_legacy "ALTER EXTENSION everest UPDATE")" "55000"
is "... and leaves 0.2.0 as it was" "$(q -d ev_takeover_legacy -c "SELECT extversion FROM pg_extension WHERE extname = 'everest'")" "0.2.0"

# (2) Ownership fixed by a superuser, but a function the attacker planted earlier is still there.
mallory q -d ev_takeover_planted -c "CREATE FUNCTION everest.now() RETURNS timestamptz LANGUAGE sql AS 'SELECT pg_catalog.now()'" >/dev/null
q -d ev_takeover_planted -c "ALTER SCHEMA everest OWNER TO postgres" >/dev/null
is "ALTER EXTENSION UPDATE refuses a schema holding objects a non-superuser owns (55000)" \
  "$(sqlstate_of ev_takeover_planted "ALTER EXTENSION everest UPDATE")" "55000"
is "... naming them" \
  "$(q -d ev_takeover_planted -c "ALTER EXTENSION everest UPDATE" 2>&1 | grep -c 'function everest.now() (owner ev_mallory)')" "1"
q -d ev_takeover_planted -c "DROP FUNCTION everest.now()" >/dev/null
is "... and updates once they are gone" \
  "$(q -d ev_takeover_planted -c "ALTER EXTENSION everest UPDATE" -c "SELECT extversion FROM pg_extension WHERE extname = 'everest'")" "0.3.0"

# (3) A clean 0.2.0 install takes the 0.3.0 layout.
q -d ev_takeover_clean -c "ALTER EXTENSION everest UPDATE" >/dev/null
is "a clean 0.2.0 install updates" "$(q -d ev_takeover_clean -c "SELECT extversion || ' ' || extnamespace::regnamespace FROM pg_extension WHERE extname = 'everest'")" \
  "0.3.0 pg_catalog"
is "... its schema becomes a member of the extension" \
  "$(q -d ev_takeover_clean -c "SELECT count(*) FROM pg_depend WHERE classid = 'pg_namespace'::regclass AND objid = 'everest'::regnamespace AND deptype = 'e'")" "1"
is "... the extension no longer depends on it as its own schema" \
  "$(q -d ev_takeover_clean -c "SELECT count(*) FROM pg_depend WHERE classid = 'pg_extension'::regclass AND refclassid = 'pg_namespace'::regclass AND refobjid = 'everest'::regnamespace")" "0"
is "... the functions run with search_path pinned" \
  "$(q -d ev_takeover_clean -c "SELECT count(*) FROM pg_proc WHERE pronamespace = 'everest'::regnamespace AND proconfig IS DISTINCT FROM '{\"search_path=pg_catalog, pg_temp\"}'")" "0"
is "... the app role keeps its grants" \
  "$(PGUSER=ev_takeover_app q -d ev_takeover_clean -c "SELECT first_version FROM everest.append_event('acct-1', 'Deposited')" -c "SELECT count(*) FROM everest.read_stream_forward('acct-1')")" "$(printf '1\n2')"
is "... the data is there" "$(q -d ev_takeover_clean -c "SELECT everest.handler_position('projector')")" "1"
pg_dump -Fc -d ev_takeover_clean -f "$BACKUP/dump" 2>"$BACKUP/dump.log" || sed 's/^/# /' "$BACKUP/dump.log"
fresh_db ev_takeover_restored 2>/dev/null
pg_restore -d ev_takeover_restored "$BACKUP/dump" 2>"$BACKUP/restore.log" || sed 's/^/# /' "$BACKUP/restore.log"
is "a dump of the updated database restores without errors" "$(wc -l <"$BACKUP/restore.log" | tr -d ' ')" "0"
is "... with its events, checkpoints and the app role's grants" \
  "$(PGUSER=ev_takeover_app q -d ev_takeover_restored -c "SELECT count(*) FROM everest.read_stream_forward('acct-1')")/$(q -d ev_takeover_restored -c "SELECT everest.handler_position('projector')")" "2/1"
q -d ev_takeover_clean -c "DROP EXTENSION everest" >/dev/null
is "DROP EXTENSION on the updated database removes the schema" \
  "$(q -d ev_takeover_clean -c "SELECT count(*) FROM pg_namespace WHERE nspname = 'everest'")" "0"
finish
