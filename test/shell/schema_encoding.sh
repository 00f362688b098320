#!/usr/bin/env bash
# Event contracts in a database that is not UTF-8 (docs/schemas.md, "Encodings"): the core reads
# UTF-8, so keys and strings are converted on the way in and its messages on the way out. In a
# LATIN1 database, minLength/maxLength count characters (not bytes), a pattern with a non-ASCII
# letter compiles and matches, and EV007's JSON pointer and type name read right.
set -u
source "$(dirname "$0")/lib.bash"
DB=ev_latin1
q -d postgres -c "DROP DATABASE IF EXISTS $DB" \
  -c "CREATE DATABASE $DB ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0" >/dev/null
export PGCLIENTENCODING=UTF8
q -d $DB -c "CREATE EXTENSION everest" >/dev/null
msg() {  # msg SQL: the error message (first line), or "none"
  local out
  out=$(psql -X -q -t -A -v ON_ERROR_STOP=1 -d $DB -c "$1" 2>&1 >/dev/null) && { echo none; return; }
  echo "$out" | head -1 | sed 's/^ERROR:  //'
}
is "a schema whose pattern has a non-ASCII letter is set" \
  "$(sqlstate_of $DB "SELECT everest.set_event_schema('Named', '{\"type\": \"object\", \"properties\": {\"name\": {\"type\": \"string\", \"maxLength\": 3, \"pattern\": \"^ä+\$\"}, \"ü\": {\"type\": \"integer\"}}}')")" "none"
is "a matching name of 3 characters (6 bytes in UTF-8, 3 in LATIN1) is appended" \
  "$(sqlstate_of $DB "SELECT everest.append_event('n-1', 'Named', '{\"name\": \"äää\"}')")" "none"
is "4 characters are more than maxLength 3" \
  "$(msg "SELECT everest.append_event('n-1', 'Named', '{\"name\": \"ääää\"}')")" \
  'event 0 does not satisfy the schema of type "Named": /name: "ääää" has 4 characters, more than maxLength 3'
is "the pattern matches characters: aaa does not match ^ä+\$" \
  "$(msg "SELECT everest.append_event('n-1', 'Named', '{\"name\": \"aaa\"}')")" \
  'event 0 does not satisfy the schema of type "Named": /name: "aaa" does not match pattern "^ä+$"'
is "EV007's pointer names a non-ASCII key" \
  "$(msg "SELECT everest.append_event('n-1', 'Named', '{\"ü\": \"x\"}')")" \
  'event 0 does not satisfy the schema of type "Named": /ü: expected integer, got string'
q -d $DB -c "SELECT everest.set_event_schema('Typé', '{\"properties\": {\"ö\": {\"type\": \"integer\"}}}')" >/dev/null
is "... and a non-ASCII type name" \
  "$(msg "SELECT everest.append_event('t-1', 'Typé', '{\"ö\": \"x\"}')")" \
  'event 0 does not satisfy the schema of type "Typé": /ö: expected integer, got string'
is "a pattern RE2 refuses is 22023, naming where in the schema" \
  "$(msg "SELECT everest.set_event_schema('Bad', '{\"properties\": {\"ö\": {\"pattern\": \"(\"}}}')")" \
  '"pattern" "(" is not a regular expression RE2 accepts (missing ): () at /properties/ö'
is "only the valid events were written" "$(q -d $DB -c "SELECT count(*) FROM everest.read_all_forward(0, 100)")" "1"
q -d postgres -c "DROP DATABASE $DB" >/dev/null
finish
