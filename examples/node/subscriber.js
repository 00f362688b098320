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
// Groups, filters and poison events (everest 0.5.0; docs/groups.md). Each option below works
// with the others and with readFrom:
//
//   members (--members N): the process shares the handler's group of members with other
//     processes. Once per process, if the handler has no checkpoint row yet (SELECT count(*) FROM
//     everest.handler_status WHERE handler = $1 is 0) and N > 1, resize_handler(handler, N);
//     otherwise the group is used as it is (a warning when its size is not N). The process takes
//     one free member (acquire_lease with member NULL) and, after each round over the members it
//     holds, tries to take one more, until none is free (then it asks again every pollMs, so the
//     members of a process that died are taken over when their leases expire). Each member held
//     runs in its own transactions: read_handler_events(..., member => m), apply,
//     save_handler_position(..., member => m, lease => that member's token). Each lease is
//     renewed every ttl/3. A member whose lease is lost (renew_lease false, EV005, or 22023 or an
//     apply error while renew_lease says it is gone: a resize ends every lease and may leave the
//     member outside the group) is dropped; the process goes on with the others and acquires
//     again (members of the new size after a resize). Holding no member, it waits for a lease
//     as in step 1. stop() releases every lease it holds. Without members: one lease, as above.
//   types (--types A,B): read_handler_events(..., types => the array). A filtered read (types,
//     or a member of a group of more than one) moves the checkpoint past the events it does not
//     take (docs/groups.md): sp = SELECT everest.safe_position() before the read (on the reader
//     with readFrom); when fewer events than the read's max_count came back, the save goes to
//     max(last position, sp) if that is above the checkpoint the read started from (with no
//     event and sp above it, sp is still saved, in a transaction of its own).
//   maxAttempts (--max-attempts N; 0, the default, is off: an apply error ends the subscriber as
//     before). Before each batch, in autocommit, a pre-read (the same read, max_count 1, only the
//     position) finds the batch's first event p, and note_attempt(handler, p, member) counts one
//     more attempt at it, outside the batch's transaction, so that it stays counted when the
//     batch rolls back or the process crashes. The batch must then start at p (if it does not,
//     or comes back non-empty after an empty pre-read, it rolls back and starts over). A count
//     above 1 makes the batch one event, until the member is past p. An apply error rolls the
//     batch back and is retried after a backoff; when the failing event q was not the first of
//     its batch, that attempt is counted for q (note_attempt after the rollback) and the events
//     before q, which had applied, go as a batch of their own (not counted), so that q starts
//     the next batch with its own count. A one-event batch that fails with a count >= N, or a
//     count above max(N, 2) before a one-event batch (the last attempts ended without an error:
//     a crash, a lost connection or lease; a first attempt may have been a whole batch, so one
//     attempt alone comes first), parks the event in one transaction: the same read (one event,
//     which must be p), a save of p - 1 when that is above the checkpoint (park_event takes only
//     the member's next event, whatever the source or types filter), then park_event(handler, p,
//     reason, member, lease), reason the last apply error's message or "attempted N times
//     without completing (crashed or timed out)". Then it goes on with the next event.
//
// As a library:
//
//   const { subscribe } = require('./subscriber');
//   const sub = subscribe({
//     connection: { host: '/var/run/postgresql', database: 'app' },  // or a connection string
//     handler: 'balances',
//     wake: 'wait',                                  // through PgBouncer or on a standby
//     readFrom: { host: 'standby', database: 'app' },  // optional: read the events there
//     members: 4,                                    // optional: share a group of 4 members
//     types: ['Deposited', 'Withdrawn'],             // optional: only these event types
//     maxAttempts: 5,                                // optional: park an event that fails 5 times
//     apply: async (client, event) => {            // runs inside the checkpoint's transaction
//       await client.query('UPDATE ... WHERE stream = $1', [event.stream]);
//     },
//   });
//   ...
//   await sub.stop();   // finishes the batch in progress, releases the leases, closes the connection
//
// As a command (the same options as everest-tail):
//
//   node subscriber.js --handler NAME [--source '$all'] [--batch 500] [--poll-ms 1000]
//                      [--apply SQL] [--from-start] [--once] [--quiet]
//                      [--wake listen|wait] [--lease table|session] [--lease-ttl 30]
//                      [--members N] [--types TYPE,...] [--max-attempts N]
//                      [--read-from READER_CONNECTION] [CONNECTION]

const net = require('net');
const { Client, Query } = require('pg');

const EVENT_COLUMNS =
  'SELECT stream, version, position, id, type, data, metadata, ' +
  "pg_catalog.to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') AS created_at ";
// The reads, after EVENT_COLUMNS (or 'SELECT position ', the pre-read of maxAttempts). Member 0
// without types reads as before everest 0.5.0.
const FROM_READ = 'FROM everest.read_handler_events($1, $2, $3)';
// A member of a group, or a types filter (everest 0.5.0): types NULL is every type.
const FROM_READ_MEMBER =
  'FROM everest.read_handler_events($1, $2, $3, member => $4::integer, types => $5::text[])';
// readFrom: read on the reader after the checkpoint read on the primary; the save checks that
// checkpoint (the lease is NULL with lease 'session').
const FROM_READ_AFTER =
  'FROM everest.read_handler_events($1, $2, $3, member => $4::integer, types => $5::text[], after => $6::bigint)';
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
// works through PgBouncer too). Like libpq, it waits for the other side to close the socket, and
// the promise it returns settles only then (at most 10 s): PgBouncer 1.18 exits with "bad client
// state" when a cancelling client hangs up first, so nothing may exit before it settles.
function sendCancel(client) {
  if (client.processID === null || client.secretKey === null) return Promise.resolve();
  const socket = typeof client.host === 'string' && client.host.startsWith('/')
    ? net.connect(`${client.host}/.s.PGSQL.${client.port}`)
    : net.connect(client.port, client.host);
  const closed = new Promise((resolve) => socket.on('close', resolve));
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
  return closed;
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
    this.members = options.members || 0;                 // share a group of members (0: one lease)
    this.types = options.types || null;                  // only events of these types, or null
    this.maxAttempts = options.maxAttempts || 0;         // park an event after so many (0: off)
    if (!Number.isInteger(this.members) || this.members < 0 || this.members > 1024) {
      throw new Error('subscribe: options.members must be an integer from 1 to 1024');
    }
    if (this.members && this.sessionLease) {
      throw new Error("subscribe: options.members needs table leases (lease 'table', the default)");
    }
    if (this.types !== null && (!Array.isArray(this.types) || this.types.length === 0 ||
                                !this.types.every((t) => typeof t === 'string' && t !== ''))) {
      throw new Error('subscribe: options.types must be a non-empty array of event type names');
    }
    if (!Number.isInteger(this.maxAttempts) || this.maxAttempts < 0) {
      throw new Error('subscribe: options.maxAttempts must be an integer >= 0');
    }
    // The members this process runs, kept across reconnects (table leases): { member, token,
    // renewed, members (the group's size when it was taken), started, lastSafe, lastCp, prefix }.
    this.held = [];
    this.nextAcquireAt = 0;  // members: when to ask for one more member
    this.groupChecked = false;
    this.applyErrors = new Map();   // maxAttempts: position -> the message of its last apply error
    this.cancelWait = null;  // cancels a wait_for_position in progress
    this.log = options.log || ((msg) => console.error(`${new Date().toISOString()} subscriber[${this.handler}]: ${msg}`));
    this.stopping = false;
    this.wake = null;        // resolves the current wait for news (notification, connection event)
    this.stopWake = null;    // resolves the current backoff sleep
    this.client = null;      // the client in use
    this.notified = false;
    this.backoffMs = BACKOFF_MIN_MS;
    this.loggedReaderWake = false;
    this.loggedStatus = false;
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
      if ((failure === null || kind === 'fatal') && !state.broken) await this.releaseLeases(client);
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

  // What the server has: acquire_lease and wait_for_position came with everest 0.4.0, groups,
  // types and note_attempt with 0.5.0.
  async checkServer(client) {
    const { rows } = await client.query(
      "SELECT pg_catalog.to_regprocedure('everest.acquire_lease(text,interval,integer)') IS NOT NULL AS lease, " +
      "pg_catalog.to_regprocedure('everest.wait_for_position(bigint,integer)') IS NOT NULL AS wait, " +
      "pg_catalog.to_regprocedure('everest.note_attempt(text,bigint,integer)') IS NOT NULL AS groups");
    this.tableLease = rows[0].lease && !this.sessionLease;
    this.hasWait = rows[0].wait;
    this.hasGroups = rows[0].groups;
    const needGroups = [this.members && 'members', this.types && 'types', this.maxAttempts && 'maxAttempts']
      .filter(Boolean);
    if (needGroups.length > 0 && !this.hasGroups) {
      const err = new Error(`${needGroups.join(', ')}: this database's everest has no handler groups, types or ` +
                            'note_attempt (everest 0.5.0 or later is needed)');
      err.fatal = true;
      throw err;
    }
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

  // members: once per process, a handler with no checkpoint row yet becomes a group of that
  // many members; any other is used as it is.
  async setUpGroup(client) {
    const { rows } = await client.query(
      'SELECT count(*)::integer AS n, coalesce(max(members), 1) AS members FROM everest.handler_status ' +
      'WHERE handler = $1', [this.handler]);
    if (rows[0].n === 0 && this.members > 1) {
      await client.query('SELECT everest.resize_handler($1, $2::integer)', [this.handler, this.members]);
      this.log(`handler "${this.handler}" had no checkpoint: made it a group of ${this.members} members (resize_handler)`);
    } else if (rows[0].members !== this.members) {
      this.log(`warning: handler "${this.handler}" is a group of ${rows[0].members} members, not ${this.members}: ` +
               'using it as it is (resize_handler changes it)');
    }
    this.groupChecked = true;
  }

  // The size of the handler's group, read after a member was taken (a resize ends every lease,
  // so it holds as long as the lease does). Without SELECT on everest.handler_status: at least
  // member + 1.
  async groupSize(client, member) {
    if (!this.hasGroups) return 1;
    try {
      const { rows } = await client.query('SELECT max(members) AS n FROM everest.handler_status WHERE handler = $1',
        [this.handler]);
      return Math.max(rows[0].n || 1, member + 1);
    } catch (err) {
      if (err.code !== '42501') throw err;
      if (!this.loggedStatus) this.log(`cannot read everest.handler_status (${err.message}): the group's size is not known`);
      this.loggedStatus = true;
      return member + 1;
    }
  }

  ttl() { return `${this.leaseTtl} seconds`; }

  // Until the first of the table leases held is due for renewal.
  msUntilRenewal() {
    if (!this.tableLease) return Infinity;
    let ms = Infinity;
    for (const run of this.held) ms = Math.min(ms, Math.max(0, run.renewed + (this.leaseTtl * 1000) / 3 - Date.now()));
    return ms;
  }

  // One more member: acquire_lease(handler, ttl) (the lowest free member), or try_acquire_handler
  // (member 0). True if one was granted.
  async acquireOne(client) {
    let run = null;
    if (this.tableLease) {
      const asked = Date.now();
      const { rows } = await client.query(
        'SELECT granted_member AS member, lease AS token FROM everest.acquire_lease($1, $2::interval)',
        [this.handler, this.ttl()]);
      if (rows.length === 1) run = { member: rows[0].member, token: rows[0].token, renewed: asked };
    } else {
      const { rows } = await client.query('SELECT everest.try_acquire_handler($1) AS ok', [this.handler]);
      if (rows[0].ok) run = { member: 0, token: null, renewed: 0 };
    }
    if (run === null) {
      this.nextAcquireAt = Date.now() + this.pollMs;
      return false;
    }
    this.held.push(run);   // before anything else can fail: stop() releases it
    run.members = await this.groupSize(client, run.member);
    this.log(this.members
      ? `lease on handler "${this.handler}" taken (member ${run.member} of ${run.members})`
      : `lease on handler "${this.handler}" taken`);
    return true;
  }

  // Holds at least one member when it returns 'ok': the tokens kept across a reconnect are
  // renewed; without any, acquireOne every pollMs until one is granted. Returns 'ok', 'stop' or
  // 'lost'.
  async takeLease(client, state) {
    if (!this.tableLease) this.held = [];   // a session lease ended with its session
    for (const run of [...this.held]) {
      const asked = Date.now();
      const { rows } = await client.query('SELECT everest.renew_lease($1, $2::uuid, $3::interval) AS ok',
        [this.handler, run.token, this.ttl()]);
      if (rows[0].ok) {
        run.renewed = asked;
        run.started = false;
        this.log(`lease on handler "${this.handler}" kept (member ${run.member})`);
      } else {
        this.held.splice(this.held.indexOf(run), 1);
      }
    }
    if (this.held.length > 0) return 'ok';
    let waiting = false;
    for (;;) {
      if (await this.acquireOne(client)) return 'ok';
      if (!waiting) {
        this.log(this.members
          ? `waiting for the lease: other processes hold every member of handler "${this.handler}"`
          : `waiting for the lease: another process runs handler "${this.handler}"`);
      }
      waiting = true;
      this.backoffMs = BACKOFF_MIN_MS;
      await this.pause(this.pollMs);
      if (this.stopping) return 'stop';
      if (state.broken) return 'lost';
    }
  }

  // Renews each table lease held once a third of its time to live has passed; a member whose
  // lease cannot be renewed is dropped.
  async renewDue(client) {
    if (!this.tableLease) return;
    for (const run of [...this.held]) {
      if (run.renewed + (this.leaseTtl * 1000) / 3 > Date.now()) continue;
      if (!(await this.leaseLive(client, run))) this.drop(run, 'renew_lease returned false');
    }
  }

  // renew_lease: whether the member's lease is still this process's.
  async leaseLive(client, run) {
    const asked = Date.now();
    const { rows } = await client.query('SELECT everest.renew_lease($1, $2::uuid, $3::interval) AS ok',
      [this.handler, run.token, this.ttl()]);
    if (rows[0].ok) run.renewed = asked;
    return rows[0].ok;
  }

  // A member whose lease was lost: its batch rolled back; the process stops applying it.
  drop(run, why) {
    const i = this.held.indexOf(run);
    if (i < 0) return;
    this.held.splice(i, 1);
    this.nextAcquireAt = 0;
    this.log(this.members
      ? `lease on member ${run.member} of handler "${this.handler}" lost (${why}): stopped applying it, ` +
        `going on with ${this.held.length} other member(s) and acquiring again`
      : `lease on handler "${this.handler}" lost (${why}): stopped applying, acquiring it again`);
  }

  async releaseLeases(client) {
    if (!this.tableLease) return;
    const held = this.held;
    this.held = [];
    for (const run of held) {
      try {
        await client.query('SELECT everest.release_lease($1, $2::uuid)', [this.handler, run.token]);
        this.log(this.members
          ? `lease on member ${run.member} of handler "${this.handler}" released`
          : `lease on handler "${this.handler}" released`);
      } catch (err) {
        // it expires
      }
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
    let cancelled = null;
    this.cancelWait = () => { cancelled = sendCancel(client); };
    client.query(query);
    try {
      await done;
    } catch (err) {
      if (!(this.stopping && err.code === '57014')) throw err;   // cancelled by stop()
    } finally {
      this.cancelWait = null;
      if (cancelled) await cancelled;   // the cancel's socket closed: now the process may exit
    }
  }

  // One connection's life (with its reader, readFrom). Returns 'done' (once, caught up), 'stop',
  // or 'lost'.
  async session(client, state, reader) {
    await this.checkServer(client);
    if (reader) await this.checkReader(client, reader);
    if (this.members && !this.groupChecked) await this.setUpGroup(client);
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

    while (!this.stopping) {
      // A round: one batch of each member held, each in its own transaction.
      let busy = false;
      this.notified = false;   // the reads below see what they announced
      for (const run of [...this.held]) {
        if (this.stopping) break;
        try {
          await this.renewDue(client);
          if (!this.held.includes(run)) continue;
          if ((await this.round(client, state, reader, run)) !== 0) busy = true;
          this.backoffMs = BACKOFF_MIN_MS;
        } catch (err) {
          if (await this.recover(err, client, state, reader, run)) busy = true;
        }
      }
      if (this.stopping) break;
      if (this.held.length === 0) {
        taken = await this.takeLease(client, state);
        if (taken !== 'ok') return taken;
        continue;
      }
      // members: one more member after each round, while there are free ones (then every pollMs).
      if (this.members && this.tableLease && Date.now() >= this.nextAcquireAt && (await this.acquireOne(client))) continue;
      if (busy) continue;
      if (this.once) return 'done';
      const ms = Math.min(this.pollMs, this.msUntilRenewal());
      if (ms > 0 && reader) {
        // Nothing after cp shows on the reader before its horizon passes cp (a lagging reader
        // may still be below the checkpoint the primary has).
        const after = lowest(this.held.map((run) => highest([run.lastCp, run.lastSafe])));
        await this.waitForPosition(reader, after, Math.round(ms)).catch((err) => { throw readerError(err); });
      } else if (ms > 0 && this.waiting) {
        await this.waitForPosition(client, lowest(this.held.map((run) => run.lastSafe)), Math.round(ms));
      } else if (ms > 0 && !this.notified) {
        await this.pause(ms);
      }
      if (state.broken) return 'lost';
    }
    return 'stop';
  }

  // What an error of a member's batch leads to. True: go on at once, without waiting for news.
  // It throws the errors that end the session (a lost connection, a fatal error).
  async recover(err, client, state, reader, run) {
    let kind = err.fatal ? 'fatal' : classify(err, state.broken);
    const failure = err.applyFailure || null;
    // An apply error, or a member outside the group (22023), while the lease is gone (taken
    // over, or ended by a resize): the batch was no longer this process's to apply.
    if (!state.broken && this.tableLease && kind !== 'lease' && kind !== 'moved' &&
        (failure || err.code === '22023') && !(await this.leaseLive(client, run))) {
      kind = 'lease';
    }
    if (kind === 'moved') {
      this.log('the checkpoint was moved by another process (EV004): rolled back, reading again');
      return true;
    }
    if (kind === 'lease') {
      this.drop(run, err.message);
      return true;
    }
    if (failure && this.maxAttempts > 0 && !state.broken) {
      try {
        return await this.retryApply(client, reader, run, err, failure);
      } catch (again) {
        if (again.applyFailure) throw again;   // (never: parking applies nothing)
        return this.recover(again, client, state, reader, run);
      }
    }
    // Shutdowns (57P0x) and connection errors (08xxx) end the session: reconnect.
    const lost = state.broken || (isServerError(err) && /^(08|57P0)/.test(err.code));
    if (kind === 'retry' && !lost) {
      const ms = this.nextBackoff();
      this.log(`${err.code}: ${err.message}; rolled back, retrying in ${ms} ms`);
      await this.sleep(ms);
      return true;
    }
    throw err;
  }

  // maxAttempts: an apply error rolled the batch back; retry it, or park a poison event.
  async retryApply(client, reader, run, err, failure) {
    const { position, first, index, count, attempt, message } = failure;
    if (this.applyErrors.size > 1000) this.applyErrors.clear();
    this.applyErrors.set(position, message);
    if (index > 0) {
      // The events before the failing one applied: they go as a batch of their own, and this
      // attempt counts for the failing one, which then starts the next batch.
      const n = await this.noteAttempt(client, run, position);
      run.prefix = { first, count: index };
      this.log(`${err.message} (attempt ${n} of ${this.maxAttempts} at that event); rolled back, ` +
               `applying the ${index} event(s) before it first`);
      return true;
    }
    if (count === 1 && attempt >= this.maxAttempts) {
      this.log(`${err.message} (attempt ${attempt} of ${this.maxAttempts}); rolled back, parking it`);
      if ((await this.park(client, reader, run, position, message)) > 0) this.backoffMs = BACKOFF_MIN_MS;
      return true;
    }
    const ms = this.nextBackoff();
    this.log(`${err.message} (attempt ${attempt} of ${this.maxAttempts}); rolled back, retrying in ${ms} ms`);
    await this.sleep(ms);
    return true;
  }

  async noteAttempt(client, run, position) {
    const { rows } = await client.query('SELECT everest.note_attempt($1, $2, $3::integer) AS n',
      [this.handler, position, run.member]);
    return rows[0].n;
  }

  // The member's checkpoint (member 0 as before everest 0.4.0 too).
  async position(client, run) {
    const { rows } = run.member === 0
      ? await client.query('SELECT everest.handler_position($1) AS p', [this.handler])
      : await client.query('SELECT everest.handler_position($1, $2::integer) AS p', [this.handler, run.member]);
    return rows[0].p;
  }

  // The member's next events, at most limit: columns is EVENT_COLUMNS or 'SELECT position '.
  // Unnamed statements only (no `name:`): a named one would outlive the transaction, and through
  // a transaction pooler the next transaction may run on another server connection.
  async read(client, reader, run, limit, cp, columns) {
    if (reader) {
      const { rows } = await reader.query(columns + FROM_READ_AFTER,
        [this.handler, this.source, limit, run.member, this.types, cp]).catch((err) => { throw readerError(err); });
      return rows;
    }
    const { rows } = run.member === 0 && this.types === null
      ? await client.query(columns + FROM_READ, [this.handler, this.source, limit])
      : await client.query(columns + FROM_READ_MEMBER, [this.handler, this.source, limit, run.member, this.types]);
    return rows;
  }

  // The save of a member's checkpoint, in the batch's transaction.
  async save(client, reader, run, position, cp) {
    if (reader) {
      await client.query(SAVE_EXPECTED_SQL, [this.handler, position, run.member, run.token, cp]);
    } else if (this.tableLease) {
      await client.query('SELECT everest.save_handler_position($1, $2, member => $3::integer, lease => $4::uuid)',
        [this.handler, position, run.member, run.token]);
    } else {
      await client.query('SELECT everest.save_handler_position($1, $2)', [this.handler, position]);
    }
  }

  // One batch of a member, in one transaction. Returns how many events it applied (or parked),
  // 0 when there was nothing to apply, -1 when it must start again at once (maxAttempts: the
  // batch did not start where the pre-read said).
  async round(client, state, reader, run) {
    if (!run.started) {
      const p = await this.position(client, run);
      this.log(this.members ? `member ${run.member}: reading ${this.source} after position ${p}`
        : `reading ${this.source} after position ${p}`);
      run.started = true;
    }
    // Filtered (types, or one member of several): the checkpoint moves past what is not taken.
    const filtered = this.types !== null || run.members > 1;
    let limit = this.batchSize;
    let first;        // maxAttempts: the position the batch must start at (null: no event)
    let attempt = 0;  // ... and the count of attempts at it
    if (this.maxAttempts > 0) {
      if (run.prefix) {
        ({ first, count: limit } = run.prefix);
        run.prefix = null;
      } else {
        first = await this.peek(client, reader, run);
        if (first !== null) {
          attempt = await this.noteAttempt(client, run, first);
          if (attempt > 1) limit = 1;
          if (attempt > Math.max(this.maxAttempts, 2)) {
            return this.park(client, reader, run, first, this.applyErrors.get(first) ||
              `attempted ${this.maxAttempts} times without completing (crashed or timed out)`);
          }
        }
      }
    }
    await client.query('BEGIN ISOLATION LEVEL READ COMMITTED');
    try {
      let cp = null;
      if (reader) {
        // readFrom: the checkpoint comes from the primary, in this transaction; the save checks
        // that it has not moved since (expected_position).
        cp = await this.position(client, run);
        run.lastCp = cp;
      }
      let sp = null;
      if (this.waiting || filtered) {
        // Before the read: the wait after an empty batch wakes for anything the read missed, and
        // a filtered read has seen everything of its filter up to it.
        const { rows } = reader
          ? await reader.query('SELECT everest.safe_position() AS p').catch((err) => { throw readerError(err); })
          : await client.query('SELECT everest.safe_position() AS p');
        sp = rows[0].p;
        run.lastSafe = sp;
      }
      const rows = await this.read(client, reader, run, limit, cp, EVENT_COLUMNS);
      if (first !== undefined && (rows.length > 0 ? String(rows[0].position) : null) !== first) {
        await client.query('ROLLBACK');
        return -1;
      }
      if (rows.length === 0) {
        if (filtered) {
          if (cp === null) cp = await this.position(client, run);
          if (BigInt(sp) > BigInt(cp)) await this.save(client, reader, run, sp, cp);
        }
        await client.query('COMMIT');
        return 0;
      }
      const events = rows.map(toEvent);
      for (let i = 0; i < events.length && this.apply; i++) {
        try {
          await this.apply(client, events[i]);
        } catch (thrown) {
          const err = thrown instanceof Error ? thrown : new Error(String(thrown));
          // Not an SQL error (no SQLSTATE) while the connection is fine: a bug in apply.
          if (!state.broken && !isServerError(err) &&
              !/Connection terminated|ECONN|EPIPE|ETIMEDOUT/.test(`${err.message} ${err.code}`)) {
            err.fatal = true;
          }
          err.applyFailure = {
            position: String(rows[i].position), first: String(rows[0].position), index: i, count: rows.length,
            attempt, message: err.message,
          };
          err.message = `apply failed at position ${events[i].position}: ${err.message}`;
          throw err;
        }
      }
      const last = rows[rows.length - 1].position;
      // A filtered read that came back short read everything of its filter up to sp.
      const upto = filtered && rows.length < limit && BigInt(sp) > BigInt(last) ? sp : last;
      await this.save(client, reader, run, upto, cp);
      if (this.onBatch) await this.onBatch(events);   // e.g. print: at-least-once, before COMMIT
      await client.query('COMMIT');
      if (this.applyErrors.size > 0) for (const row of rows) this.applyErrors.delete(String(row.position));
      return rows.length;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {});
      throw err;
    }
  }

  // maxAttempts: the position of the member's next event (the batch's first), or null; in
  // autocommit, before the batch's transaction.
  async peek(client, reader, run) {
    const cp = reader ? await this.position(client, run) : null;
    const rows = await this.read(client, reader, run, 1, cp, 'SELECT position ');
    return rows.length > 0 ? String(rows[0].position) : null;
  }

  // Parks the member's next event, which must be at `position`, in one transaction: a filtered
  // reader (or one with gaps before it) saves up to the event before it first, since park_event
  // takes only the member's next event. Returns 1, or -1 when the next event is not there.
  async park(client, reader, run, position, reason) {
    let event;
    await client.query('BEGIN ISOLATION LEVEL READ COMMITTED');
    try {
      const cp = await this.position(client, run);
      const rows = await this.read(client, reader, run, 1, cp, EVENT_COLUMNS);
      if (rows.length === 0 || String(rows[0].position) !== position) {
        await client.query('ROLLBACK');
        return -1;
      }
      event = toEvent(rows[0]);
      const before = BigInt(position) - 1n;
      if (before > BigInt(cp)) await this.save(client, reader, run, before.toString(), cp);
      await client.query('SELECT everest.park_event($1, $2, $3, member => $4::integer, lease => $5::uuid)',
        [this.handler, position, reason, run.member, run.token]);
      await client.query('COMMIT');
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {});
      throw err;
    }
    this.applyErrors.delete(position);
    this.log(`parked the event at position ${position} (stream ${event.stream}, version ${event.version}, ` +
             `member ${run.member}): ${reason}`);
    return 1;
  }
}

// The lowest and the highest of positions (bigint text); undefined ones are left out ('0' when
// none is left).
function lowest(positions) {
  let low = null;
  for (const p of positions) if (p !== undefined && p !== null && (low === null || BigInt(p) < BigInt(low))) low = p;
  return low === null ? '0' : low;
}
function highest(positions) {
  let high = null;
  for (const p of positions) if (p !== undefined && p !== null && (high === null || BigInt(p) > BigInt(high))) high = p;
  return high === null ? '0' : high;
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
    '                          [--members N] [--types TYPE,...] [--max-attempts N]\n' +
    '                          [--read-from READER_CONNECTION] [CONNECTION]\n' +
    '--read-from reads the events on READER_CONNECTION (a hot standby or a mirror; it waits there with\n' +
    'wait_for_position); checkpoints, leases and --apply stay on CONNECTION, the primary.\n' +
    '--members N shares the handler\'s group of members with other processes: each runs the members it\n' +
    'holds a lease on, taking one more after each round while one is free (a handler with no checkpoint\n' +
    'yet becomes a group of N with resize_handler; another is used as it is).\n' +
    '--types TYPE,... applies only events of those types; the checkpoint moves past the others.\n' +
    '--max-attempts N (0: off) retries a failing --apply and parks an event (everest.park_event)\n' +
    'after N attempts at it, counted with everest.note_attempt so that crashes count too.\n';
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
    else if (a === '--members') opts.members = int(1, 1024);
    else if (a === '--types') {
      opts.types = value().split(',').map((t) => t.trim());
      if (opts.types.some((t) => t === '')) throw new Error('--types needs a comma-separated list of event types');
    } else if (a === '--max-attempts') opts.maxAttempts = int(0, 1000000);
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
