#!/usr/bin/env node
'use strict';
// An everest subscriber in Node.js with node-postgres ("pg"). It follows the subscriber protocol
// of everest-tail (tools/everest-tail/everest_tail.cpp), which works on direct connections and
// through transaction poolers (PgBouncer pool_mode = transaction): no named prepared statement
// and no session state outlives a transaction (apart from LISTEN with wake 'listen').
//
//   1. connect; SELECT * FROM everest.acquire_lease(handler, ttl) until it returns a row (member,
//      lease token); renew it every ttl/3 (renew_lease). renew_lease false, or EV005 from a save:
//      the lease is lost; roll back, stop applying, acquire it again. After a reconnect the token
//      is renewed, not acquired again. (lease 'session', and servers before everest 0.4.0:
//      try_acquire_handler, a session lease for direct connections only.)
//   2. wake 'listen': LISTEN everest (where it fails with 25006, on a hot standby, it wakes with
//      wait_for_position instead);
//   3. repeat: BEGIN ISOLATION LEVEL READ COMMITTED; (wake 'wait': SELECT safe_position());
//      read_handler_events(handler, source, batch); apply each event;
//      save_handler_position(handler, last position, member => m, lease => token); COMMIT. After
//      an empty batch, wait for a notification on "everest" or pollMs, whichever comes first
//      ('listen'), or SELECT everest.wait_for_position(that safe_position, pollMs) ('wait');
//   EV004 on save (someone else moved the checkpoint): roll back, read again. Lost connections:
//   reconnect with backoff (100 ms doubling to 5 s, reset after a successful round), resume from
//   the stored checkpoint. stop() and once release the lease (release_lease).
//
// With readFrom (--read-from READER, a hot standby or a mirror; everest 0.5.0 on both) the events
// are read on READER and everything else stays on the main connection, the primary: leases,
// fromStart, apply, saves and COMMIT. The reader gets single autocommit statements (unnamed), no
// session state. Step 3 becomes: BEGIN (primary); cp = SELECT everest.handler_position(handler,
// m) (primary, in that transaction); SELECT everest.safe_position() and SELECT * FROM
// everest.read_handler_events(handler, source, batch, member => m, after => cp) (reader); apply
// each event (primary); save_handler_position(handler, last position, member => m, lease =>
// token, expected_position => cp) (primary; no lease with lease 'session'); COMMIT. A read with
// `after` records nothing for the save to check, so expected_position is what keeps each event
// applied once; EV004 from it: roll back, read again. After an empty batch it waits with
// SELECT everest.wait_for_position(the larger of cp and that safe_position, pollMs) on the
// reader, whatever wake says (LISTEN cannot work on a standby). A reader that lags or whose
// replay is paused only delays, never errors. A lost reader connection is handled like a lost
// primary one: both are closed and opened again, with backoff.
//
// As a library:
//
//   const { subscribe } = require('./subscriber');
//   const sub = subscribe({
//     connection: { host: '/var/run/postgresql', database: 'app' },  // or a connection string
//     handler: 'balances',
//     wake: 'wait',                                  // through PgBouncer or on a standby
//     readFrom: { host: 'standby', database: 'app' },  // optional: read the events there
//     apply: async (client, event) => {            // runs inside the checkpoint's transaction
//       await client.query('UPDATE ... WHERE stream = $1', [event.stream]);
//     },
//   });
//   ...
//   await sub.stop();   // finishes the batch in progress, releases the lease, closes the connection
//
// As a command (the same options as everest-tail):
//
//   node subscriber.js --handler NAME [--source '$all'] [--batch 500] [--poll-ms 1000]
//                      [--apply SQL] [--from-start] [--once] [--quiet]
//                      [--wake listen|wait] [--lease table|session] [--lease-ttl 30]
//                      [--read-from READER_CONNECTION] [CONNECTION]

const net = require('net');
const { Client, Query } = require('pg');

const READ_SQL =
  'SELECT stream, version, position, id, type, data, metadata, ' +
  "pg_catalog.to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') AS created_at " +
  'FROM everest.read_handler_events($1, $2, $3)';
// readFrom: read on the reader after the checkpoint read on the primary; the save checks that
// checkpoint (the lease is NULL with lease 'session').
const READ_AFTER_SQL =
  'SELECT stream, version, position, id, type, data, metadata, ' +
  "pg_catalog.to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') AS created_at " +
  'FROM everest.read_handler_events($1, $2, $3, member => $4::integer, after => $5::bigint)';
const SAVE_EXPECTED_SQL =
  'SELECT everest.save_handler_position($1, $2, member => $3::integer, lease => $4::uuid, ' +
  'expected_position => $5::bigint)';
const BACKOFF_MIN_MS = 100;
const BACKOFF_MAX_MS = 5000;

// An error the server sent (with an SQLSTATE in .code), as opposed to a client-side one such as
// ECONNREFUSED or EPIPE (whose .code is an errno name).
function isServerError(err) {
  return !!err && typeof err.code === 'string' && typeof err.severity === 'string';
}

// What to do with an error: 'moved' (EV004), 'retry' (transient: back off, try again) or
// 'fatal' (retrying cannot help).
function classify(err, connectionBroken) {
  if (connectionBroken) return 'retry';
  const code = err && err.code;
  if (isServerError(err)) {
    if (code === 'EV004') return 'moved';
    if (code === 'EV005') return 'lease';
    if (code === '08P01') return 'fatal';
    if (/^(08|40|53|57|58)/.test(code) || code === '55P03' || code === '25P03') return 'retry';
    return 'fatal';
  }
  // Network errors (ECONNREFUSED, ENOENT, ECONNRESET, "Connection terminated ...") carry no
  // SQLSTATE; an error of the caller's own code (a TypeError in apply, say) is marked fatal
  // where it is caught.
  return 'retry';
}

// A CancelRequest for the statement that client is running (what libpq's PQcancel sends; it
// works through PgBouncer too). Like libpq, it waits for the other side to close the socket:
// PgBouncer 1.18 exits with "bad client state" when a cancelling client hangs up first.
function sendCancel(client) {
  if (client.processID === null || client.secretKey === null) return;
  const socket = typeof client.host === 'string' && client.host.startsWith('/')
    ? net.connect(`${client.host}/.s.PGSQL.${client.port}`)
    : net.connect(client.port, client.host);
  socket.setTimeout(10000, () => socket.destroy());
  socket.on('error', () => {});
  socket.on('end', () => socket.end());
  socket.on('connect', () => {
    const request = Buffer.alloc(16);
    request.writeInt32BE(16, 0);
    request.writeInt32BE(80877102, 4);
    request.writeInt32BE(client.processID, 8);
    request.writeInt32BE(client.secretKey, 12);
    socket.write(request);
  });
}

// Errors of the reader's connection (readFrom) say so in the log.
function readerError(err) {
  if (err && typeof err.message === 'string' && !err.message.startsWith('reader: ')) err.message = `reader: ${err.message}`;
  return err;
}

function toEvent(row) {
  const number = (text) => {
    const n = Number(text);
    if (!Number.isSafeInteger(n)) throw new Error(`position or version ${text} is beyond 2^53`);
    return n;
  };
  return {
    stream: row.stream,
    version: number(row.version),
    position: number(row.position),
    id: row.id,
    type: row.type,
    data: row.data,
    metadata: row.metadata,
    created_at: row.created_at,
  };
}

class Subscriber {
  constructor(options) {
    if (!options || !options.handler) throw new Error('subscribe: options.handler is required');
    this.handler = options.handler;
    this.source = options.source || '$all';
    this.batchSize = options.batchSize || 500;
    this.pollMs = options.pollMs || 1000;
    this.connection = options.connection;
    this.readFrom = options.readFrom || null;    // the reader's connection (a hot standby), or null
    this.apply = options.apply || null;          // async (client, event) => void, in the transaction
    this.onBatch = options.onBatch || null;      // async (events) => void, before COMMIT
    this.once = !!options.once;
    this.fromStart = !!options.fromStart;
    this.wakeWait = options.wake === 'wait';             // 'listen' (default) or 'wait'
    this.sessionLease = options.lease === 'session';     // 'table' (default) or 'session'
    this.leaseTtl = options.leaseTtl || 30;              // seconds
    this.lease = null;       // { member, token, renewed } of the table lease, kept across reconnects
    this.cancelWait = null;  // cancels a wait_for_position in progress
    this.log = options.log || ((msg) => console.error(`${new Date().toISOString()} subscriber[${this.handler}]: ${msg}`));
    this.stopping = false;
    this.wake = null;        // resolves the current wait for news (notification, connection event)
    this.stopWake = null;    // resolves the current backoff sleep
    this.client = null;      // the client in use
    this.notified = false;
    this.backoffMs = BACKOFF_MIN_MS;
    this.loggedReaderWake = false;
  }

  stop() {
    this.stopping = true;
    this.poke();
    if (this.cancelWait) this.cancelWait();
    if (this.stopWake) this.stopWake();
    return this.done;
  }

  // Sleeps for a backoff delay; only stop() cuts it short.
  sleep(ms) {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      const self = this;
      function done() {
        clearTimeout(timer);
        if (self.stopWake === done) self.stopWake = null;
        resolve();
      }
      this.stopWake = done;
    });
  }

  poke() {
    if (this.wake) this.wake();
  }

  // Resolves after ms, or earlier on a notification, an error of the connection, or stop().
  pause(ms) {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      const self = this;
      function done() {
        clearTimeout(timer);
        if (self.wake === done) self.wake = null;
        resolve();
      }
      this.wake = done;
    });
  }

  nextBackoff() {
    const ms = this.backoffMs;
    this.backoffMs = Math.min(this.backoffMs * 2, BACKOFF_MAX_MS);
    return ms;
  }

  async run() {
    let connectedOnce = false;
    while (!this.stopping) {
      const client = new Client(this.connection);
      const state = { broken: false, error: null };
      // Events of a client that is no longer ours (it is ending after a failure) wake nothing.
      const current = () => this.client === client;
      client.on('error', (err) => { state.broken = true; state.error = err; if (current()) this.poke(); });
      client.on('end', () => { state.broken = true; if (current()) this.poke(); });
      client.on('notification', (msg) => {
        if (msg.channel === 'everest' && current()) { this.notified = true; this.poke(); }
      });
      this.client = client;
      // readFrom: the reader's connection; its loss ends the session as the primary's does.
      const reader = this.readFrom ? new Client(this.readFrom) : null;
      if (reader) {
        reader.on('error', (err) => { state.broken = true; state.error = readerError(err); if (current()) this.poke(); });
        reader.on('end', () => { state.broken = true; if (current()) this.poke(); });
      }
      let outcome;
      let failure = null;
      let kind = null;
      try {
        await client.connect();
        if (reader) {
          try {
            await reader.connect();
          } catch (err) {
            err.message = `cannot connect to the reader (readFrom): ${err.message}`;
            throw err;
          }
        }
        this.log(connectedOnce ? 'reconnected' : 'connected');
        if (reader) this.log(`reading events on the reader: database ${reader.database} on ${reader.host} port ${reader.port} (readFrom)`);
        connectedOnce = true;
        outcome = await this.session(client, state, reader);
        if (outcome === 'lost') failure = state.error || new Error('connection lost');
      } catch (err) {
        failure = err;
      }
      if (failure !== null) kind = failure.fatal ? 'fatal' : classify(failure, state.broken);   // before end()
      if ((failure === null || kind === 'fatal') && !state.broken) await this.releaseLease(client);
      this.client = null;
      // Ends the session, and with it the lease (bounded: end() of a half-open client may never
      // settle).
      await Promise.race([client.end().catch(() => {}), new Promise((r) => setTimeout(r, 1000).unref())]);
      if (reader) await Promise.race([reader.end().catch(() => {}), new Promise((r) => setTimeout(r, 1000).unref())]);
      if (outcome === 'done') return;
      if (failure === null) break;   // stopped
      const text = `${failure.code ? failure.code + ': ' : ''}${failure.message}`;
      if (kind === 'fatal') {
        this.log(`stopping: ${text}`);
        throw failure;
      }
      if (this.stopping) break;
      const ms = this.nextBackoff();
      this.log(`${text}; reconnecting in ${ms} ms`);
      await this.sleep(ms);
    }
    this.log('stopped');
  }

  // What the server has: acquire_lease and wait_for_position came with everest 0.4.0.
  async checkServer(client) {
    const { rows } = await client.query(
      "SELECT pg_catalog.to_regprocedure('everest.acquire_lease(text,interval,integer)') IS NOT NULL AS lease, " +
      "pg_catalog.to_regprocedure('everest.wait_for_position(bigint,integer)') IS NOT NULL AS wait");
    this.tableLease = rows[0].lease && !this.sessionLease;
    this.hasWait = rows[0].wait;
    if (!rows[0].lease && !this.sessionLease) {
      this.log('everest.acquire_lease is not available (everest before 0.4.0): using the session lease ' +
               '(try_acquire_handler), which works on direct connections only');
    }
    if (this.wakeWait && !this.hasWait) {
      this.log(`everest.wait_for_position is not available (everest before 0.4.0): polling every ${this.pollMs} ms`);
    }
  }

  // readFrom: the reader reads with `after` and waits, the primary saves with expected_position
  // (everest 0.5.0). Without them: a fatal error.
  async checkReader(client, reader) {
    const fatal = (message) => { const err = new Error(message); err.fatal = true; return err; };
    let { rows } = await reader.query(
      "SELECT pg_catalog.to_regprocedure('everest.read_handler_events(text,text,integer,integer,text[],bigint)') " +
      "IS NOT NULL AND pg_catalog.to_regprocedure('everest.wait_for_position(bigint,integer)') IS NOT NULL AS ok");
    if (!rows[0].ok) {
      throw fatal("readFrom: the reader's database has no everest.read_handler_events(..., after) " +
                  '(everest 0.5.0 or later is needed there)');
    }
    ({ rows } = await client.query(
      "SELECT pg_catalog.to_regprocedure('everest.save_handler_position(text,bigint,integer,uuid,bigint)') " +
      "IS NOT NULL AND pg_catalog.to_regprocedure('everest.handler_position(text,integer)') IS NOT NULL AS ok"));
    if (!rows[0].ok) {
      throw fatal('readFrom: the primary\'s everest has no save_handler_position(..., expected_position) ' +
                  '(everest 0.5.0 or later is needed)');
    }
  }

  ttl() { return `${this.leaseTtl} seconds`; }

  msUntilRenewal() {
    if (!this.tableLease || !this.lease) return Infinity;
    return Math.max(0, this.lease.renewed + (this.leaseTtl * 1000) / 3 - Date.now());
  }

  // Takes the lease: a kept token is renewed; otherwise acquire_lease (or try_acquire_handler)
  // every pollMs until granted. Returns 'ok', 'stop' or 'lost'.
  async takeLease(client, state) {
    let waiting = false;
    for (;;) {
      if (this.tableLease && this.lease) {
        const asked = Date.now();
        const { rows } = await client.query('SELECT everest.renew_lease($1, $2::uuid, $3::interval) AS ok',
          [this.handler, this.lease.token, this.ttl()]);
        if (rows[0].ok) {
          this.lease.renewed = asked;
          this.log(`lease on handler "${this.handler}" kept (member ${this.lease.member})`);
          return 'ok';
        }
        this.lease = null;
        continue;
      }
      let taken;
      if (this.tableLease) {
        const asked = Date.now();
        const { rows } = await client.query(
          'SELECT granted_member AS member, lease AS token FROM everest.acquire_lease($1, $2::interval)',
          [this.handler, this.ttl()]);
        if (rows.length === 1) this.lease = { member: rows[0].member, token: rows[0].token, renewed: asked };
        taken = rows.length === 1;
      } else {
        const { rows } = await client.query('SELECT everest.try_acquire_handler($1) AS ok', [this.handler]);
        taken = rows[0].ok;
      }
      if (taken) {
        this.log(`lease on handler "${this.handler}" taken`);
        return 'ok';
      }
      if (!waiting) this.log(`waiting for the lease: another process runs handler "${this.handler}"`);
      waiting = true;
      this.backoffMs = BACKOFF_MIN_MS;
      await this.pause(this.pollMs);
      if (this.stopping) return 'stop';
      if (state.broken) return 'lost';
    }
  }

  // Renews the table lease when a third of its time to live has passed. False: lost.
  async renewIfDue(client) {
    if (this.msUntilRenewal() > 0) return true;
    const asked = Date.now();
    const { rows } = await client.query('SELECT everest.renew_lease($1, $2::uuid, $3::interval) AS ok',
      [this.handler, this.lease.token, this.ttl()]);
    if (!rows[0].ok) return false;
    this.lease.renewed = asked;
    return true;
  }

  async releaseLease(client) {
    if (!this.tableLease || !this.lease) return;
    const lease = this.lease;
    this.lease = null;
    try {
      await client.query('SELECT everest.release_lease($1, $2::uuid)', [this.handler, lease.token]);
      this.log(`lease on handler "${this.handler}" released`);
    } catch (err) {
      // it expires
    }
  }

  // SELECT everest.wait_for_position(after, ms); stop() cancels it. The wait holds a server
  // connection (through a pooler too) for at most ms.
  async waitForPosition(client, after, ms) {
    const query = new Query('SELECT everest.wait_for_position($1, $2) AS p', [after, ms]);
    const done = new Promise((resolve, reject) => {
      query.on('end', resolve);
      query.on('error', reject);
    });
    this.cancelWait = () => sendCancel(client);
    client.query(query);
    try {
      await done;
    } catch (err) {
      if (!(this.stopping && err.code === '57014')) throw err;   // cancelled by stop()
    } finally {
      this.cancelWait = null;
    }
  }

  // One connection's life (with its reader, readFrom). Returns 'done' (once, caught up), 'stop',
  // or 'lost'.
  async session(client, state, reader) {
    await this.checkServer(client);
    if (reader) await this.checkReader(client, reader);
    let taken = await this.takeLease(client, state);
    if (taken !== 'ok') return taken;
    if (this.fromStart) {
      await client.query('SELECT everest.reset_handler($1, 0)', [this.handler]);
      this.fromStart = false;   // once per process, not after every reconnect
      this.log('fromStart: handler rewound to position 0');
    }
    this.waiting = this.wakeWait && this.hasWait;
    if (reader) {
      if (!this.wakeWait && !this.loggedReaderWake) {
        this.log('readFrom: LISTEN cannot wake a reader on a hot standby; waking with wait_for_position on the reader');
      }
      this.loggedReaderWake = true;
      this.waiting = true;
    } else if (!this.wakeWait) {
      try {
        await client.query('LISTEN everest');
      } catch (err) {
        if (err.code !== '25006' || !this.hasWait) throw err;
        this.log('LISTEN is not available here (25006: a hot standby?); waking with wait_for_position');
        this.waiting = true;
      }
    }
    const { rows } = await client.query('SELECT everest.handler_position($1) AS p', [this.handler]);
    this.log(`reading ${this.source} after position ${rows[0].p}`);

    while (!this.stopping) {
      let count;
      try {
        if (!(await this.renewIfDue(client))) {
          const err = new Error('renew_lease returned false');
          err.code = 'EV005';
          err.severity = 'ERROR';
          throw err;
        }
        count = await this.round(client, state, reader);
      } catch (err) {
        const kind = err.fatal ? 'fatal' : classify(err, state.broken);
        if (kind === 'moved') {
          this.log('the checkpoint was moved by another process (EV004): rolled back, reading again');
          continue;
        }
        if (kind === 'lease') {
          this.log(`lease on handler "${this.handler}" lost (${err.message}): stopped applying, acquiring it again`);
          this.lease = null;
          taken = await this.takeLease(client, state);
          if (taken !== 'ok') return taken;
          continue;
        }
        // Shutdowns (57P0x) and connection errors (08xxx) end the session: reconnect.
        const lost = state.broken || (isServerError(err) && /^(08|57P0)/.test(err.code));
        if (kind === 'retry' && !lost) {
          const ms = this.nextBackoff();
          this.log(`${err.code}: ${err.message}; rolled back, retrying in ${ms} ms`);
          await this.sleep(ms);
          continue;
        }
        throw err;
      }
      this.backoffMs = BACKOFF_MIN_MS;
      if (count > 0) continue;
      if (this.once) return 'done';
      const ms = Math.min(this.pollMs, this.msUntilRenewal());
      if (ms > 0 && reader) {
        // Nothing after cp shows on the reader before its horizon passes cp (a lagging reader
        // may still be below the checkpoint the primary has).
        const after = BigInt(this.lastCp) > BigInt(this.lastSafe) ? this.lastCp : this.lastSafe;
        await this.waitForPosition(reader, after, Math.round(ms)).catch((err) => { throw readerError(err); });
      } else if (ms > 0 && this.waiting) {
        await this.waitForPosition(client, this.lastSafe, Math.round(ms));
      } else if (ms > 0 && !this.notified) {
        await this.pause(ms);
      }
      if (state.broken) return 'lost';
    }
    return 'stop';
  }

  // One transaction. Returns how many events it applied.
  async round(client, state, reader) {
    this.notified = false;   // the read below sees what they announced
    await client.query('BEGIN ISOLATION LEVEL READ COMMITTED');
    try {
      const member = this.tableLease ? this.lease.member : 0;
      if (reader) {
        // readFrom: the checkpoint comes from the primary, in this transaction; the save checks
        // that it has not moved since (expected_position).
        const { rows } = await client.query('SELECT everest.handler_position($1, $2::integer) AS p',
          [this.handler, member]);
        this.lastCp = rows[0].p;
      }
      if (this.waiting) {
        // Before the read: the wait after an empty batch wakes for anything the read missed.
        const { rows } = reader
          ? await reader.query('SELECT everest.safe_position() AS p').catch((err) => { throw readerError(err); })
          : await client.query('SELECT everest.safe_position() AS p');
        this.lastSafe = rows[0].p;
      }
      // Unnamed statements only (no `name:`): a named one would outlive the transaction, and
      // through a transaction pooler the next transaction may run on another server connection.
      const { rows } = reader
        ? await reader.query(READ_AFTER_SQL, [this.handler, this.source, this.batchSize, member, this.lastCp])
          .catch((err) => { throw readerError(err); })
        : await client.query(READ_SQL, [this.handler, this.source, this.batchSize]);
      if (rows.length === 0) {
        await client.query('COMMIT');
        return 0;
      }
      const events = rows.map(toEvent);
      for (const event of events) {
        if (!this.apply) continue;
        try {
          await this.apply(client, event);
        } catch (err) {
          // Not an SQL error (no SQLSTATE) while the connection is fine: a bug in apply.
          if (!state.broken && !isServerError(err) &&
              !/Connection terminated|ECONN|EPIPE|ETIMEDOUT/.test(`${err.message} ${err.code}`)) {
            err.fatal = true;
          }
          err.message = `apply failed at position ${event.position}: ${err.message}`;
          throw err;
        }
      }
      const last = rows[rows.length - 1].position;
      if (reader) {
        await client.query(SAVE_EXPECTED_SQL,
          [this.handler, last, member, this.tableLease ? this.lease.token : null, this.lastCp]);
      } else if (this.tableLease) {
        await client.query(
          'SELECT everest.save_handler_position($1, $2, member => $3::integer, lease => $4::uuid)',
          [this.handler, last, this.lease.member, this.lease.token]);
      } else {
        await client.query('SELECT everest.save_handler_position($1, $2)', [this.handler, last]);
      }
      if (this.onBatch) await this.onBatch(events);   // e.g. print: at-least-once, before COMMIT
      await client.query('COMMIT');
      return rows.length;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {});
      throw err;
    }
  }
}

// Starts a subscriber. Returns { done, stop }: done settles when it stops (stop(), or once and
// caught up) and rejects on a fatal error; stop() finishes the batch in progress and returns done.
function subscribe(options) {
  const sub = new Subscriber(options);
  sub.done = sub.run();
  return { done: sub.done, stop: () => sub.stop(), subscriber: sub };
}

// ----------------------------------------------------------------------------------------------
// Command line
// ----------------------------------------------------------------------------------------------

// CONNECTION: a postgres:// URI, "key=value ..." (host, port, user, password, dbname), or a
// database name. PGHOST, PGPORT, PGUSER, PGDATABASE apply as usual.
function parseConnection(arg) {
  if (!arg) return {};
  if (arg.includes('://')) return { connectionString: arg };
  if (!arg.includes('=')) return { database: arg };
  const config = {};
  const names = { dbname: 'database', host: 'host', port: 'port', user: 'user', password: 'password' };
  for (const pair of arg.trim().split(/\s+/)) {
    const i = pair.indexOf('=');
    const key = pair.slice(0, i);
    if (!names[key]) throw new Error(`unsupported connection keyword ${key}`);
    config[names[key]] = pair.slice(i + 1);
  }
  return config;
}

function usage() {
  return "usage: node subscriber.js --handler NAME [--source '$all'|STREAM|'$ce-CATEGORY'] [--batch 500]\n" +
    '                          [--poll-ms 1000] [--apply SQL] [--from-start] [--once] [--quiet]\n' +
    '                          [--wake listen|wait] [--lease table|session] [--lease-ttl 30]\n' +
    '                          [--read-from READER_CONNECTION] [CONNECTION]\n' +
    '--read-from reads the events on READER_CONNECTION (a hot standby or a mirror; it waits there with\n' +
    'wait_for_position); checkpoints, leases and --apply stay on CONNECTION, the primary.\n';
}

function main(argv) {
  const opts = { source: '$all', batchSize: 500, pollMs: 1000 };
  let applySql = null;
  let quiet = false;
  let connection = null;
  let readFrom = null;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    const int = (lo, hi) => {
      const v = value();
      const n = Number(v);
      if (!Number.isInteger(n) || n < lo || n > hi) throw new Error(`${a} must be an integer from ${lo} to ${hi}`);
      return n;
    };
    if (a === '--handler') opts.handler = value();
    else if (a === '--source') opts.source = value();
    else if (a === '--batch') opts.batchSize = int(1, 100000);
    else if (a === '--poll-ms') opts.pollMs = int(10, 3600000);
    else if (a === '--apply') applySql = value();
    else if (a === '--from-start') opts.fromStart = true;
    else if (a === '--once') opts.once = true;
    else if (a === '--quiet') quiet = true;
    else if (a === '--wake') {
      opts.wake = value();
      if (!['listen', 'wait'].includes(opts.wake)) throw new Error('--wake must be listen or wait');
    } else if (a === '--lease') {
      opts.lease = value();
      if (!['table', 'session'].includes(opts.lease)) throw new Error('--lease must be table or session');
    } else if (a === '--lease-ttl') opts.leaseTtl = int(1, 86400);
    else if (a === '--read-from') readFrom = value();
    else if (a === '-h' || a === '--help') { process.stdout.write(usage()); return; }
    else if (a.startsWith('-')) throw new Error(`unknown option ${a}`);
    else if (connection === null) connection = a;
    else throw new Error('only one CONNECTION argument is allowed');
  }
  if (!opts.handler) throw new Error('--handler NAME is required');
  opts.connection = parseConnection(connection);
  if (readFrom !== null) opts.readFrom = parseConnection(readFrom);
  if (applySql) opts.apply = (client, event) => client.query(applySql, [JSON.stringify(event)]);
  if (!quiet) {
    opts.onBatch = (events) => new Promise((resolve, reject) => {
      const text = events.map((e) => JSON.stringify(e) + '\n').join('');
      process.stdout.write(text, (err) => (err ? reject(err) : resolve()));
    });
  }
  const sub = subscribe(opts);
  let signals = 0;
  const onSignal = () => {
    signals += 1;
    if (signals > 1) process.exit(1);
    sub.stop();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  sub.done.then(
    () => process.exit(0),
    () => process.exit(1),
  );
}

if (require.main === module) {
  try {
    main(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`subscriber: ${err.message}\n${usage()}`);
    process.exit(2);
  }
}

module.exports = { subscribe, Subscriber, parseConnection };
