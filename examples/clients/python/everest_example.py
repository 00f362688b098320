#!/usr/bin/python3
"""Calling everest from Python with psycopg 3 (Debian 12: python3-psycopg).

    /usr/bin/python3 everest_example.py ["host=... dbname=..." | postgresql://...]

Without an argument libpq's PGHOST, PGPORT, PGDATABASE and PGUSER apply. The database needs
CREATE EXTENSION everest; the script appends to the stream account-1 (deleting it first) and moves
the handler "example". It prints one line per step and exits 1 when a step does not behave as
expected (test/shell/clients.sh runs it).
"""
import sys

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Json, Jsonb

failed = False


def step(label, actual, expected):
    global failed
    print(f"{label}: {actual}")
    if actual != expected:
        failed = True
        print(f"unexpected {label}: got {actual!r}, expected {expected!r}", file=sys.stderr)


def sqlstate_of(sql, params):
    """Runs a statement that must fail; returns 'SQLSTATE message' (psycopg 3: e.sqlstate)."""
    try:
        conn.execute(sql, params)
    except psycopg.Error as e:  # EVnnn has no class of its own: it is a psycopg.DatabaseError
        return f"{e.sqlstate} {e.diag.message_primary}"
    return "no error"


# autocommit: each statement is its own transaction unless inside conn.transaction().
# prepare_threshold=None: never a named prepared statement, so the same code runs through
# PgBouncer in transaction mode.
conn = psycopg.connect(sys.argv[1] if len(sys.argv) > 1 else "", autocommit=True,
                       prepare_threshold=None, row_factory=dict_row)
stream, handler = "account-1", "example"
conn.execute("SELECT everest.delete_stream(%s)", (stream,))
conn.execute("SELECT everest.reset_handler(%s)", (handler,))

# a. jsonb: wrap the Python value in Jsonb (Json sends type json, which no everest function takes).
events = [{"type": "Opened", "data": {"owner": "Ada"}},
          {"type": "Deposited", "data": {"amount": 100}}]
r = conn.execute("SELECT * FROM everest.append_events(%s, %s, %s)",
                 (stream, Jsonb(events), -1)).fetchone()
p1 = r["first_position"]
step("append_events", f"versions {r['first_version']}..{r['last_version']}, "
     f"positions {r['first_position']}..{r['last_position']}", f"versions 0..1, positions {p1}..{p1 + 1}")

# b. named arguments
r = conn.execute("SELECT * FROM everest.append_event(stream => %s, type => %s, data => %s, expected_version => %s)",
                 (stream, "Withdrawn", Jsonb({"amount": 30}), 1)).fetchone()
p3 = r["last_position"]
step("append_event (named arguments)", f"version {r['last_version']}, position {p3}",
     f"version 2, position {p3 if p3 > p1 + 1 else 'above the batch'}")

# c. bigint columns arrive as Python int (arbitrary precision: no 2^53 concern as in JavaScript)
rows = conn.execute("SELECT version, position FROM everest.read_stream_forward(%s)", (stream,)).fetchall()
step("read_stream_forward", " ".join(f"{e['version']}@{e['position']}" for e in rows),
     f"0@{p1} 1@{p1 + 1} 2@{p3}")

# d. a wrong expected version
step("wrong expected_version",
     sqlstate_of("SELECT * FROM everest.append_event(%s, %s, expected_version => %s)", (stream, "Closed", 1)),
     f'EV001 wrong expected version for stream "{stream}": expected 1, actual 2')

# e. a malformed id, a NULL stream
step("malformed id",
     sqlstate_of("SELECT * FROM everest.append_events(%s, %s)", (stream, Jsonb([{"type": "X", "id": "not-a-uuid"}]))),
     '22P02 invalid event at index 0: invalid input syntax for type uuid: "not-a-uuid"')
step("null stream", sqlstate_of("SELECT * FROM everest.append_event(%s, %s)", (None, "X")),
     "22004 stream must not be null")

# f. POSITION is an SQL keyword: as a named argument it must be double-quoted.
step("unquoted position =>",
     sqlstate_of("SELECT everest.save_handler_position(handler => %s, position => %s)", (handler, p1 + 1)),
     '42601 syntax error at or near "=>"')
conn.execute('SELECT everest.save_handler_position(handler => %s, "position" => %s)', (handler, p1 + 1))
hp = conn.execute("SELECT everest.handler_position(%s) AS p", (handler,)).fetchone()["p"]
step(f'save_handler_position("position" => {p1 + 1})', f"handler_position {hp}", f"handler_position {p1 + 1}")
with conn.transaction():  # read a batch and save its checkpoint in one transaction
    batch = conn.execute("SELECT * FROM everest.read_handler_events(handler => %s, source => '$all', max_count => 10)",
                         (handler,)).fetchall()
    conn.execute('SELECT everest.save_handler_position(handler => %s, "position" => %s)',
                 (handler, batch[-1]["position"]))
step(f"read_handler_events after {p1 + 1}",
     " ".join(str(e["position"]) for e in batch) + f"; saved {batch[-1]['position']} in the same transaction",
     f"{p3}; saved {p3} in the same transaction")

# g. the position column's Python type
rows = conn.execute("SELECT position FROM everest.read_all_forward(%s, 10)", (p1,)).fetchall()
step("read_all_forward", "positions " + " ".join(str(e["position"]) for e in rows)
     + " as " + "/".join(sorted({type(e["position"]).__name__ for e in rows})),
     f"positions {p1} {p1 + 1} {p3} as int")

# Pitfalls: a list of dicts is not adapted to jsonb, and Json() is json, not jsonb.
try:
    conn.execute("SELECT * FROM everest.append_events(%s, %s)", (stream, events))
    got = "no error"
except psycopg.ProgrammingError as e:
    got = f"{type(e).__name__} {str(e).split(' using ')[0]}"
step("pitfall: a list without Jsonb", got, "ProgrammingError cannot adapt type 'dict'")
step("pitfall: Json instead of Jsonb",
     sqlstate_of("SELECT * FROM everest.append_events(%s, %s)", (stream, Json(events))),
     "42883 function everest.append_events(unknown, json) does not exist")

conn.close()
sys.exit(1 if failed else 0)
