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
drop_all() {
  for db in ev_takeover ev_takeover_legacy ev_takeover_planted ev_takeover_granted ev_takeover_ext ev_takeover_clean ev_takeover_restored; do
    psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1
  done
  psql -X -q -d postgres -c "DROP ROLE IF EXISTS ev_mallory" -c "DROP ROLE IF EXISTS ev_takeover_app" >/dev/null 2>&1
}
cleanup() {
  # put the installed control file and 0.2.0 script back, whatever happened
  [ -f "$BACKUP/everest.control" ] && $SUDO cp "$BACKUP/everest.control" "$BACKUP/everest--0.2.0.sql" "$EXTDIR/"
  drop_all
  rm -rf "$BACKUP"
}
trap cleanup EXIT
drop_all
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
# positions to save checkpoints at (a save beyond anything assigned is EV006)
q -d ev_takeover -c "SELECT everest.append_events('acct-1', '[{\"type\":\"A\"},{\"type\":\"B\"},{\"type\":\"C\"},{\"type\":\"D\"},{\"type\":\"E\"}]')" >/dev/null
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
  "$(q -d ev_takeover -c "SELECT count(*) FILTER (WHERE proconfig IS DISTINCT FROM '{\"search_path=pg_catalog, pg_temp\"}') || ' of ' || (count(*) > 20)
                            FROM pg_proc WHERE pronamespace = 'everest'::regnamespace")" "0 of true"
q -d ev_takeover -c "SELECT everest.save_handler_position('h', 1)" >/dev/null
is "a checkpoint saved by the superuser makes nobody a superuser" "$(is_super)" "f"
q -d ev_takeover -c "GRANT CREATE ON SCHEMA everest TO ev_takeover_app" >/dev/null
is "a schema that grants CREATE to a non-superuser stops every function (55000)" \
  "$(sqlstate_of ev_takeover "SELECT everest.handler_position('h')")" "55000"
q -d ev_takeover -c "REVOKE CREATE ON SCHEMA everest FROM ev_takeover_app" -c "GRANT CREATE ON SCHEMA everest TO PUBLIC" >/dev/null
is "... to PUBLIC too" "$(sqlstate_of ev_takeover "SELECT everest.handler_position('h')")" "55000"
q -d ev_takeover -c "REVOKE CREATE ON SCHEMA everest FROM PUBLIC" >/dev/null
is "... and they work again once it is revoked" "$(q -d ev_takeover -c "SELECT everest.handler_position('h')")" "1"

# A session that checked the schema earlier in its transaction must see a change made meanwhile
# (the catalog reads make it hold cached catalog entries, as a long transaction would).
echo "$PLANT" >"$BACKUP/plant.sql"
session=$(q -d ev_takeover 2>&1 <<SQL
BEGIN;
SELECT (SELECT count(*) FROM pg_catalog.pg_proc) + (SELECT count(*) FROM pg_catalog.pg_namespace)
     + (SELECT count(*) FROM pg_catalog.pg_cast) + (SELECT count(*) FROM pg_catalog.pg_type)
     + (SELECT count(*) FROM pg_catalog.pg_class) + (SELECT count(*) FROM pg_catalog.pg_roles) > 0 AS primed;
SELECT everest.handler_position('h');
\! psql -X -q -d ev_takeover -c "ALTER SCHEMA everest OWNER TO ev_mallory"
\! PGUSER=ev_mallory psql -X -q -d ev_takeover -c "ALTER SCHEMA everest RENAME TO everest_real" -c "CREATE SCHEMA everest" -c "GRANT USAGE ON SCHEMA everest TO PUBLIC" -f "$BACKUP/plant.sql"
SELECT everest.save_handler_position('h', 5);
COMMIT;
SQL
)
is "a change made during a transaction that already used the store is seen by its next call (55000)" \
  "$(echo "$session" | grep -c 'schema everest is owned by role ev_mallory')" "1"
is "... and the attacker is not a superuser" "$(is_super)" "f"
mallory q -d ev_takeover -c "DROP SCHEMA everest CASCADE" -c "ALTER SCHEMA everest_real RENAME TO everest" >/dev/null 2>&1
q -d ev_takeover -c "ALTER SCHEMA everest OWNER TO postgres" >/dev/null

q -d ev_takeover -c "ALTER SCHEMA everest OWNER TO ev_mallory" >/dev/null
is "a schema a superuser gave away stops every function (55000)" \
  "$(sqlstate_of ev_takeover "SELECT everest.save_handler_position('h', 2)")" "55000"
is "... reads too" "$(sqlstate_of ev_takeover "SELECT * FROM everest.read_stream_forward('a-1')")" "55000"
q -d ev_takeover -c "ALTER SCHEMA everest OWNER TO postgres" >/dev/null
is "... and they work again once it is a superuser's" \
  "$(q -d ev_takeover -c "SELECT everest.save_handler_position('h', 2)" -c "SELECT everest.handler_position('h')" | tail -1)" "2"
is "a database owner can install a trusted extension into the schema (PostgreSQL allows it; docs/security.md)" \
  "$(mallory sqlstate_of ev_takeover "CREATE EXTENSION citext SCHEMA everest")" "none"
is "... which changes nothing the store uses" "$(q -d ev_takeover -c "SELECT everest.save_handler_position('h', 3)" -c "SELECT everest.handler_position('h')" | tail -1)" "3"
mallory q -d ev_takeover -c "DROP EXTENSION citext" >/dev/null
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
for db in ev_takeover_legacy ev_takeover_planted ev_takeover_granted ev_takeover_ext; do
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
  "$(q -d ev_takeover_planted -c "ALTER EXTENSION everest UPDATE TO '0.3.0'" -c "SELECT extversion FROM pg_extension WHERE extname = 'everest'")" "0.3.0"

# (3) Ownership fixed by a superuser, but the attacker left CREATE granted to PUBLIC first: any
# role could then plant overloads of everest's functions (found by review).
mallory q -d ev_takeover_granted -c "GRANT ALL ON SCHEMA everest TO PUBLIC" >/dev/null
q -d ev_takeover_granted -c "ALTER SCHEMA everest OWNER TO postgres" >/dev/null
is "ALTER EXTENSION UPDATE refuses a schema that grants CREATE to PUBLIC (55000)" \
  "$(sqlstate_of ev_takeover_granted "ALTER EXTENSION everest UPDATE")" "55000"
is "... and every function refuses it meanwhile" "$(sqlstate_of ev_takeover_granted "SELECT everest.handler_position('h')")" "55000"
q -d ev_takeover_granted -c "REVOKE ALL ON SCHEMA everest FROM PUBLIC" >/dev/null
is "... and updates once it is revoked" \
  "$(q -d ev_takeover_granted -c "ALTER EXTENSION everest UPDATE TO '0.3.0'" -c "SELECT extversion FROM pg_extension WHERE extname = 'everest'")" "0.3.0"

# (4) Another extension's objects in the schema (superuser-owned, yet not the install's).
q -d ev_takeover_ext -c "ALTER SCHEMA everest OWNER TO postgres" >/dev/null
mallory q -d ev_takeover_ext -c "CREATE EXTENSION citext SCHEMA everest" >/dev/null
is "ALTER EXTENSION UPDATE refuses a schema holding another extension's objects (55000)" \
  "$(sqlstate_of ev_takeover_ext "ALTER EXTENSION everest UPDATE")" "55000"

# (5) A clean 0.2.0 install takes the 0.3.0 layout.
q -d ev_takeover_clean -c "ALTER EXTENSION everest UPDATE" >/dev/null
is "a clean 0.2.0 install updates" "$(q -d ev_takeover_clean -c "SELECT extversion || ' ' || extnamespace::regnamespace FROM pg_extension WHERE extname = 'everest'")" \
  "$(q -d postgres -c "SELECT default_version FROM pg_available_extensions WHERE name = 'everest'") pg_catalog"
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
