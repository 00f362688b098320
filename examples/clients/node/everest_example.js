#!/usr/bin/env node
// Calling everest from Node.js with node-postgres (pg), the version pinned by
// examples/node/package-lock.json: run `npm install` in examples/node first.
//
//   node everest_example.js [postgresql://user@host:port/dbname]
//
// Without an argument pg reads PGHOST, PGPORT, PGDATABASE and PGUSER. The database needs
// CREATE EXTENSION everest; the script appends to the stream account-1 (deleting it first) and
// moves the handler "example". It prints one line per step and exits 1 when a step does not
// behave as expected (test/shell/clients.sh runs it).
'use strict';
const { Client } = require('../../node/node_modules/pg');

let failed = false;
function step(label, actual, expected) {
  console.log(`${label}: ${actual}`);
  if (actual !== expected) {
    failed = true;
    console.error(`unexpected ${label}: got ${JSON.stringify(actual)}, expected ${JSON.stringify(expected)}`);
  }
}

// bigint (int8) columns arrive as strings: pg cannot know they fit in a Number. everest keeps
// positions below 2^53, so Number() is exact; BigInt() is exact for any int8.
const pos = (s) => BigInt(s);

async function main() {
  // Queries without `name:` are sent as unnamed statements: they run through PgBouncer in
  // transaction mode.
  const client = new Client(process.argv[2] ? { connectionString: process.argv[2] } : {});
  await client.connect();
  try {
    await steps(client);
  } finally {
    await client.end();   // an open connection would keep the process alive
  }
}

async function steps(client) {
  const sqlstateOf = async (sql, params) => {  // a statement that must fail: 'SQLSTATE message'
    try { await client.query(sql, params); } catch (err) { return `${err.code} ${err.message}`; }
    return 'no error';
  };
  const stream = 'account-1', handler = 'example';
  await client.query('SELECT everest.delete_stream($1)', [stream]);
  await client.query('SELECT everest.reset_handler($1)', [handler]);

  // a. jsonb: JSON.stringify the events. A JS array would be sent as a PostgreSQL array literal.
  const events = [{ type: 'Opened', data: { owner: 'Ada' } }, { type: 'Deposited', data: { amount: 100 } }];
  let r = (await client.query('SELECT * FROM everest.append_events($1, $2, $3)',
    [stream, JSON.stringify(events), -1])).rows[0];
  const p1 = pos(r.first_position);
  step('append_events', `versions ${r.first_version}..${r.last_version}, positions ${r.first_position}..${r.last_position}`,
    `versions 0..1, positions ${p1}..${p1 + 1n}`);

  // b. named arguments (a plain object is JSON.stringify'd by pg; stringify anyway, it is the habit that is safe)
  r = (await client.query(
    'SELECT * FROM everest.append_event(stream => $1, type => $2, data => $3, expected_version => $4)',
    [stream, 'Withdrawn', JSON.stringify({ amount: 30 }), 1])).rows[0];
  const p3 = pos(r.last_position);
  step('append_event (named arguments)', `version ${r.last_version}, position ${p3}`,
    `version 2, position ${p3 > p1 + 1n ? p3 : 'above the batch'}`);

  // c. version and position arrive as strings
  let rows = (await client.query('SELECT version, position FROM everest.read_stream_forward($1)', [stream])).rows;
  step('read_stream_forward', rows.map((e) => `${BigInt(e.version)}@${pos(e.position)}`).join(' '),
    `0@${p1} 1@${p1 + 1n} 2@${p3}`);

  // d. a wrong expected version: err.code is the SQLSTATE
  step('wrong expected_version',
    await sqlstateOf('SELECT * FROM everest.append_event($1, $2, expected_version => $3)', [stream, 'Closed', 1]),
    `EV001 wrong expected version for stream "${stream}": expected 1, actual 2`);

  // e. a malformed id, a NULL stream
  step('malformed id', await sqlstateOf('SELECT * FROM everest.append_events($1, $2)',
    [stream, JSON.stringify([{ type: 'X', id: 'not-a-uuid' }])]),
  '22P02 invalid event at index 0: invalid input syntax for type uuid: "not-a-uuid"');
  step('null stream', await sqlstateOf('SELECT * FROM everest.append_event($1, $2)', [null, 'X']),
    '22004 stream must not be null');

  // f. POSITION is an SQL keyword: as a named argument it must be double-quoted. (A BigInt
  // parameter is sent as its decimal text.)
  step('unquoted position =>', await sqlstateOf(
    'SELECT everest.save_handler_position(handler => $1, position => $2)', [handler, p1 + 1n]),
  '42601 syntax error at or near "=>"');
  await client.query('SELECT everest.save_handler_position(handler => $1, "position" => $2)', [handler, p1 + 1n]);
  const hp = pos((await client.query('SELECT everest.handler_position($1) AS p', [handler])).rows[0].p);
  step(`save_handler_position("position" => ${p1 + 1n})`, `handler_position ${hp}`, `handler_position ${p1 + 1n}`);
  let batch;
  await client.query('BEGIN');  // read a batch and save its checkpoint in one transaction
  try {
    batch = (await client.query(
      "SELECT * FROM everest.read_handler_events(handler => $1, source => '$all', max_count => 10)", [handler])).rows;
    await client.query('SELECT everest.save_handler_position(handler => $1, "position" => $2)',
      [handler, batch[batch.length - 1].position]);   // the string goes back as it came
    await client.query('COMMIT');
  } catch (err) {
    await client.query('ROLLBACK');
    throw err;
  }
  const last = pos(batch[batch.length - 1].position);
  step(`read_handler_events after ${p1 + 1n}`,
    `${batch.map((e) => pos(e.position)).join(' ')}; saved ${last} in the same transaction`,
    `${p3}; saved ${p3} in the same transaction`);

  // g. the position column's JavaScript type, and both safe conversions
  rows = (await client.query('SELECT position FROM everest.read_all_forward($1, 10)', [p1])).rows;
  const exact = rows.every((e) => Number.isSafeInteger(Number(e.position)) && BigInt(Number(e.position)) === BigInt(e.position));
  step('read_all_forward', `positions ${rows.map((e) => BigInt(e.position)).join(' ')} as ${
    [...new Set(rows.map((e) => typeof e.position))].join('/')}${exact ? ', exact as Number' : ''}`,
  `positions ${p1} ${p1 + 1n} ${p3} as string, exact as Number`);

  // Pitfall: a JS array as a parameter is sent as a PostgreSQL array literal, which is not JSON.
  step('pitfall: a JS array without JSON.stringify',
    await sqlstateOf('SELECT * FROM everest.append_events($1, $2)', [stream, events]),
    '22P02 invalid input syntax for type json');
}

main().then(() => { process.exitCode = failed ? 1 : 0; },
  (err) => { console.error(err); process.exitCode = 1; });
