-- everest 0.6.0: an event store inside PostgreSQL.
-- This script declares objects only; the logic is C++ behind the C entry points in src/pg/.
\echo Use "CREATE EXTENSION everest" to load this file. \quit

-- The schema is the install's own (docs/security.md): created here, so it belongs to the
-- superuser who installs and is a member of the extension (DROP EXTENSION removes it, pg_dump
-- recreates it with the extension). A schema named everest that already exists, whoever made it,
-- stops the install with 42P06: adopting it would let its owner rename it and plant tables that
-- the functions below then use as the installing superuser. The control file therefore names
-- pg_catalog as the extension's schema; every object is created with its schema spelled out.
CREATE SCHEMA everest;

-- ---------------------------------------------------------------------------------------------
-- Tables
-- ---------------------------------------------------------------------------------------------

-- $all positions. Drawn by the append path under the horizon lock (src/pg/horizon.c), never by
-- hand; a drawn position is never drawn again, even after a crash (sequences are WAL-logged).
CREATE SEQUENCE everest.position_seq AS bigint MINVALUE 1 NO CYCLE;

-- Streams retired by delete_stream(..., tombstone => true). A stream has no other row: its
-- version is its last event's, and writers queue on a lock in memory (src/pg/streams.c).
CREATE TABLE everest.tombstones (
    stream     text        COLLATE "C" PRIMARY KEY,
    deleted_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);

-- The columns are in the order of everest.recorded_event, so a read hands stored rows on as they
-- are, without rearranging them (0.1.0 had position first; everest--0.1.0--0.2.0.sql).
CREATE TABLE everest.events (
    stream     text        COLLATE "C" NOT NULL,  -- names compare byte by byte
    version    bigint      NOT NULL,
    position   bigint      NOT NULL,
    id         uuid        NOT NULL,
    type       text        NOT NULL,
    data       jsonb       NOT NULL,
    metadata   jsonb,
    created_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    CONSTRAINT events_pkey PRIMARY KEY (position),
    CONSTRAINT events_id_key UNIQUE (id),                          -- names known to src/pg/
    CONSTRAINT events_stream_version_key UNIQUE (stream, version)
);
-- $ce-<category> reads: the category is the part of the name before the first '-'.
CREATE INDEX events_category_position
    ON everest.events (pg_catalog.split_part(stream, '-', 1), position);

-- $et-<type> reads and handlers filtered by type (docs/schemas.md, docs/groups.md).
CREATE INDEX events_type_position ON everest.events (type, position);

-- One row per handler member (docs/groups.md): its checkpoint and state, and the group's size in
-- every row (resize_handler rewrites them all). A handler with no row is a group of 1 at 0.
CREATE TABLE everest.handlers (
    handler    text        COLLATE "C" NOT NULL,
    position   bigint      NOT NULL DEFAULT 0,
    state      jsonb,
    updated_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    member     integer     NOT NULL DEFAULT 0,
    members    integer     NOT NULL DEFAULT 1,
    CONSTRAINT handlers_pkey PRIMARY KEY (handler, member),
    CONSTRAINT handlers_member_check CHECK (members >= 1 AND members <= 1024 AND member >= 0 AND member < members)
);

-- The checkpoints of a group's members before a resize (docs/groups.md, "Resizing"): an event of
-- a stream that member `member` of the group of `members` had applied (position <= its
-- checkpoint) is not delivered again. A generation goes once every member has passed it.
CREATE TABLE everest.handler_floors (
    handler    text    COLLATE "C" NOT NULL,
    generation integer NOT NULL,
    members    integer NOT NULL,
    member     integer NOT NULL,
    position   bigint  NOT NULL,
    CONSTRAINT handler_floors_pkey PRIMARY KEY (handler, generation, member)
);

-- How many times a runner tried a member's next event (note_attempt), outside the transactions
-- that apply it, so that a runner that crashes on a poison event still reaches its limit and
-- parks it (docs/groups.md, "Poison events"). One row per member: the position it is stuck at.
CREATE TABLE everest.attempts (
    handler    text        COLLATE "C" NOT NULL,
    member     integer     NOT NULL,
    position   bigint      NOT NULL,
    attempts   integer     NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    CONSTRAINT attempts_pkey PRIMARY KEY (handler, member)
);

-- Event contracts (docs/schemas.md): a JSON Schema per event type, enforced on every append of
-- that type. Written only by set_event_schema and drop_event_schema, which tell every backend
-- to drop its compiled copies (a relcache invalidation of this table, at commit).
CREATE TABLE everest.schemas (
    type       text        COLLATE "C" PRIMARY KEY,
    schema     jsonb       NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);

-- Parked (poison) events: park_event records one and moves the member's checkpoint to it.
CREATE TABLE everest.parked (
    handler   text        COLLATE "C" NOT NULL,
    member    integer     NOT NULL,
    position  bigint      NOT NULL,
    stream    text        NOT NULL,
    version   bigint      NOT NULL,
    type      text        NOT NULL,
    reason    text        NOT NULL,
    parked_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    CONSTRAINT parked_pkey PRIMARY KEY (handler, position)
);

-- The $all horizon as the primary last published it, for hot standbys and logical mirrors,
-- which have no positions in flight of their own (docs/topologies.md). At most one row (none: 0),
-- written only by the primary's notifier worker (src/pg/notify.c) in its own transaction; a
-- reader on a standby or mirror never goes past it. Dumped: a dump's horizon is consistent with
-- its events, and a restore elsewhere starts a new epoch from it.
CREATE TABLE everest.horizon (
    singleton    boolean     PRIMARY KEY DEFAULT true CHECK (singleton),
    position     bigint      NOT NULL,
    published_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);

-- Position epochs (docs/topologies.md, "Failover"): epoch e hands out positions from
-- e * 2^40 + 1. The first append on a node other than the one that appended last (a promoted
-- standby, a mirror after cutover, a restore into another cluster) starts the next epoch, above
-- everything assigned before, and records (lost_after, first_position) as never completed here:
-- reads and saves from a checkpoint inside it fail with EV006.
CREATE TABLE everest.epochs (
    epoch             integer     PRIMARY KEY CHECK (epoch >= 0 AND epoch < 8192),
    first_position    bigint      NOT NULL,
    lost_after        bigint,
    system_identifier bigint      NOT NULL,
    timeline          integer     NOT NULL,
    started_at        timestamptz NOT NULL DEFAULT pg_catalog.now()
);

-- Leases that work through poolers and across sessions (acquire_lease): one row per handler
-- member, with a time to live and a token that saves must name (EV005 otherwise). Saves lock the
-- row, so a holder that paused past its lease cannot commit once someone else took it. Leases are
-- transient and not dumped.
CREATE TABLE everest.leases (
    handler     text        COLLATE "C" NOT NULL,
    member      integer     NOT NULL,
    lease       uuid        NOT NULL,
    acquired_at timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL,
    holder_pid  integer,
    holder_user name,
    holder_application text,
    holder_address inet,
    CONSTRAINT leases_pkey PRIMARY KEY (handler, member)
);

-- pg_dump keeps the rows of extension tables only when they are registered.
SELECT pg_catalog.pg_extension_config_dump('everest.tombstones', '');
SELECT pg_catalog.pg_extension_config_dump('everest.events', '');
SELECT pg_catalog.pg_extension_config_dump('everest.handlers', '');
SELECT pg_catalog.pg_extension_config_dump('everest.position_seq', '');
SELECT pg_catalog.pg_extension_config_dump('everest.horizon', '');
SELECT pg_catalog.pg_extension_config_dump('everest.epochs', '');
SELECT pg_catalog.pg_extension_config_dump('everest.handler_floors', '');
SELECT pg_catalog.pg_extension_config_dump('everest.parked', '');
SELECT pg_catalog.pg_extension_config_dump('everest.schemas', '');

-- ---------------------------------------------------------------------------------------------
-- Immutability: only delete_stream removes events, and nothing changes them.
-- ---------------------------------------------------------------------------------------------

CREATE FUNCTION everest.forbid_event_changes() RETURNS trigger
    AS 'MODULE_PATHNAME', 'everest_forbid_event_changes' LANGUAGE C
    SET search_path = pg_catalog, pg_temp;

CREATE TRIGGER events_are_immutable
    BEFORE UPDATE OR DELETE ON everest.events
    FOR EACH STATEMENT EXECUTE FUNCTION everest.forbid_event_changes();
CREATE TRIGGER events_are_not_truncated
    BEFORE TRUNCATE ON everest.events
    FOR EACH STATEMENT EXECUTE FUNCTION everest.forbid_event_changes();
-- Also with session_replication_role = replica (the trigger lets logical replication apply
-- workers replay a publisher's delete_stream).
ALTER TABLE everest.events ENABLE ALWAYS TRIGGER events_are_immutable;
ALTER TABLE everest.events ENABLE ALWAYS TRIGGER events_are_not_truncated;

-- ---------------------------------------------------------------------------------------------
-- Types
-- ---------------------------------------------------------------------------------------------

CREATE TYPE everest.recorded_event AS (
    stream     text,
    version    bigint,
    position   bigint,
    id         uuid,
    type       text,
    data       jsonb,
    metadata   jsonb,
    created_at timestamptz
);

-- ---------------------------------------------------------------------------------------------
-- Functions. All are C, SECURITY DEFINER (the tables are not granted to anyone: the functions
-- are the only way in) and immune to search_path: every query inside is fully qualified, and
-- each function runs with search_path pinned to pg_catalog, pg_temp (pg_temp last, so that no
-- temporary object can stand in for a catalog one).
-- ---------------------------------------------------------------------------------------------

CREATE FUNCTION everest.append_events(stream text, events jsonb, expected_version bigint DEFAULT -2)
    RETURNS TABLE (first_version bigint, last_version bigint, first_position bigint, last_position bigint)
    AS 'MODULE_PATHNAME', 'everest_append_events' LANGUAGE C VOLATILE SECURITY DEFINER ROWS 1
    SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION everest.append_event(stream text, type text, data jsonb DEFAULT '{}',
                                     metadata jsonb DEFAULT NULL, expected_version bigint DEFAULT -2,
                                     id uuid DEFAULT NULL)
    RETURNS TABLE (first_version bigint, last_version bigint, first_position bigint, last_position bigint)
    AS 'MODULE_PATHNAME', 'everest_append_event' LANGUAGE C VOLATILE SECURITY DEFINER ROWS 1
    SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION everest.read_event(stream text, version bigint)
    RETURNS SETOF everest.recorded_event
    AS 'MODULE_PATHNAME', 'everest_read_event' LANGUAGE C VOLATILE SECURITY DEFINER ROWS 1
    SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION everest.read_stream_forward(stream text, from_version bigint DEFAULT 0,
                                            max_count integer DEFAULT 1000)
    RETURNS SETOF everest.recorded_event
    AS 'MODULE_PATHNAME', 'everest_read_stream_forward' LANGUAGE C VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION everest.read_stream_backward(stream text, from_version bigint DEFAULT -1,
                                             max_count integer DEFAULT 1000)
    RETURNS SETOF everest.recorded_event
    AS 'MODULE_PATHNAME', 'everest_read_stream_backward' LANGUAGE C VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION everest.read_all_forward(from_position bigint DEFAULT 0, max_count integer DEFAULT 1000)
    RETURNS SETOF everest.recorded_event
    AS 'MODULE_PATHNAME', 'everest_read_all_forward' LANGUAGE C VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION everest.read_all_backward(from_position bigint DEFAULT -1, max_count integer DEFAULT 1000)
    RETURNS SETOF everest.recorded_event
    AS 'MODULE_PATHNAME', 'everest_read_all_backward' LANGUAGE C VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION everest.stream_version(stream text) RETURNS bigint
    AS 'MODULE_PATHNAME', 'everest_stream_version' LANGUAGE C VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION everest.delete_stream(stream text, expected_version bigint DEFAULT -2,
                                      tombstone boolean DEFAULT false) RETURNS bigint
    AS 'MODULE_PATHNAME', 'everest_delete_stream' LANGUAGE C VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION everest.safe_position() RETURNS bigint
    AS 'MODULE_PATHNAME', 'everest_safe_position' LANGUAGE C VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp;

-- member: a handler's group member (DESIGN.md section 10); a handler has one member, 0, until
-- groups come (docs/topologies.md).
CREATE FUNCTION everest.handler_position(handler text, member integer DEFAULT 0) RETURNS bigint
    AS 'MODULE_PATHNAME', 'everest_handler_position' LANGUAGE C VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION everest.handler_state(handler text, member integer DEFAULT 0) RETURNS jsonb
    AS 'MODULE_PATHNAME', 'everest_handler_state' LANGUAGE C VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp;

-- Saves check the checkpoint the saved events were read from (a read_handler_events earlier in
-- the transaction, or expected_position) and the member's lease (docs/topologies.md).
CREATE FUNCTION everest.save_handler_position(handler text, "position" bigint, member integer DEFAULT 0,
                                              lease uuid DEFAULT NULL, expected_position bigint DEFAULT NULL)
    RETURNS void
    AS 'MODULE_PATHNAME', 'everest_save_handler_position' LANGUAGE C VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION everest.save_handler_state(handler text, "position" bigint, state jsonb, member integer DEFAULT 0,
                                           lease uuid DEFAULT NULL, expected_position bigint DEFAULT NULL)
    RETURNS void
    AS 'MODULE_PATHNAME', 'everest_save_handler_state' LANGUAGE C VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION everest.reset_handler(handler text, "position" bigint DEFAULT 0) RETURNS void
    AS 'MODULE_PATHNAME', 'everest_reset_handler' LANGUAGE C VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp;

-- types: only events of these types; after: read after this position instead of the stored
-- checkpoint (a reader on a standby, whose saves go to the primary with expected_position).
CREATE FUNCTION everest.read_handler_events(handler text, source text DEFAULT '$all',
                                            max_count integer DEFAULT 1000, member integer DEFAULT 0,
                                            types text[] DEFAULT NULL, after bigint DEFAULT NULL)
    RETURNS SETOF everest.recorded_event
    AS 'MODULE_PATHNAME', 'everest_read_handler_events' LANGUAGE C VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp;

-- The member of a group of `members` that receives a stream's events (docs/groups.md): FNV-1a 64
-- of the name's bytes modulo members, the same in every client language.
CREATE FUNCTION everest.stream_partition(stream text, members integer) RETURNS integer
    AS 'MODULE_PATHNAME', 'everest_stream_partition' LANGUAGE C IMMUTABLE PARALLEL SAFE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp;

-- Session leases (advisory locks): direct or session-pooled connections only; through a
-- transaction pooler use acquire_lease.
CREATE FUNCTION everest.try_acquire_handler(handler text) RETURNS boolean
    AS 'MODULE_PATHNAME', 'everest_try_acquire_handler' LANGUAGE C VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION everest.release_handler(handler text) RETURNS boolean
    AS 'MODULE_PATHNAME', 'everest_release_handler' LANGUAGE C VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp;

-- Waking up without LISTEN (standbys, transaction poolers): safe_position() once it is > after.
CREATE FUNCTION everest.wait_for_position(after bigint, timeout_ms integer DEFAULT 1000) RETURNS bigint
    AS 'MODULE_PATHNAME', 'everest_wait_for_position' LANGUAGE C VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp;

-- Leases in a table: work through poolers; saves that name a lost lease fail with EV005.
CREATE FUNCTION everest.acquire_lease(handler text, ttl interval DEFAULT '30 seconds', member integer DEFAULT NULL)
    RETURNS TABLE (granted_member integer, lease uuid)
    AS 'MODULE_PATHNAME', 'everest_acquire_lease' LANGUAGE C VOLATILE SECURITY DEFINER ROWS 1
    SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION everest.renew_lease(handler text, lease uuid, ttl interval DEFAULT '30 seconds') RETURNS boolean
    AS 'MODULE_PATHNAME', 'everest_renew_lease' LANGUAGE C VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION everest.release_lease(handler text, lease uuid) RETURNS boolean
    AS 'MODULE_PATHNAME', 'everest_release_lease' LANGUAGE C VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp;

-- Which sessions hold the $all horizon back: their lowest in-flight position.
CREATE FUNCTION everest.in_flight_appends(OUT pid integer, OUT "position" bigint)
    RETURNS SETOF record
    AS 'MODULE_PATHNAME', 'everest_in_flight_appends' LANGUAGE C VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp;

-- The notifier worker of this database (none when it had no recent appends).
CREATE FUNCTION everest.notifiers(OUT database oid, OUT pid integer)
    RETURNS SETOF record
    AS 'MODULE_PATHNAME', 'everest_notifiers' LANGUAGE C VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp;

-- Consumer groups, filters, poison events (docs/groups.md).
CREATE FUNCTION everest.resize_handler(handler text, members integer) RETURNS void
    AS 'MODULE_PATHNAME', 'everest_resize_handler' LANGUAGE C VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION everest.drop_handler(handler text) RETURNS boolean
    AS 'MODULE_PATHNAME', 'everest_drop_handler' LANGUAGE C VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION everest.park_event(handler text, "position" bigint, reason text, member integer DEFAULT 0,
                                   lease uuid DEFAULT NULL) RETURNS void
    AS 'MODULE_PATHNAME', 'everest_park_event' LANGUAGE C VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION everest.unpark_event(handler text, "position" bigint) RETURNS boolean
    AS 'MODULE_PATHNAME', 'everest_unpark_event' LANGUAGE C VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION everest.note_attempt(handler text, "position" bigint, member integer DEFAULT 0) RETURNS integer
    AS 'MODULE_PATHNAME', 'everest_note_attempt' LANGUAGE C VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp;

CREATE VIEW everest.parked_events AS
    SELECT handler, member, position, stream, version, type, reason, parked_at
      FROM everest.parked;

CREATE VIEW everest.handler_status AS
    SELECT h.handler, h.member, h.members, h.position,
           everest.safe_position() OPERATOR(pg_catalog.-) h.position AS lag,
           l.holder_pid AS lease_holder_pid, l.holder_user AS lease_holder_user,
           l.holder_application AS lease_holder_application, l.holder_address AS lease_holder_address,
           l.expires_at AS lease_expires_at,
           (SELECT pg_catalog.count(*) FROM everest.parked AS p
             WHERE p.handler OPERATOR(pg_catalog.=) h.handler AND p.member OPERATOR(pg_catalog.=) h.member) AS parked,
           h.updated_at
      FROM everest.handlers AS h
      LEFT JOIN everest.leases AS l
        ON l.handler OPERATOR(pg_catalog.=) h.handler AND l.member OPERATOR(pg_catalog.=) h.member
       AND l.expires_at OPERATOR(pg_catalog.>) pg_catalog.clock_timestamp();

CREATE FUNCTION everest.set_event_schema(type text, schema jsonb) RETURNS void
    AS 'MODULE_PATHNAME', 'everest_set_event_schema' LANGUAGE C VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION everest.drop_event_schema(type text) RETURNS boolean
    AS 'MODULE_PATHNAME', 'everest_drop_event_schema' LANGUAGE C VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp;

CREATE VIEW everest.event_schemas AS
    SELECT type, schema, updated_at FROM everest.schemas;

CREATE VIEW everest.horizon_holders AS
    SELECT f.pid, f.position, a.usename, a.application_name, a.state, a.xact_start,
           a.state_change, a.query
      FROM everest.in_flight_appends() AS f
      LEFT JOIN pg_catalog.pg_stat_activity AS a ON a.pid OPERATOR(pg_catalog.=) f.pid
     ORDER BY f.position;

-- ---------------------------------------------------------------------------------------------
-- Metrics (0.6.0; README, "Metrics"; docs/operations.md): counters in shared memory for this
-- database since the server started or since reset_stats(). Not transactional, not dumped.
-- Readable by the admin set and the optional monitor set of examples/sql/grants.sql; reset by
-- the admin set only.
-- ---------------------------------------------------------------------------------------------

CREATE FUNCTION everest.stats_counters(
    OUT database name,
    OUT appends bigint, OUT events_appended bigint, OUT idempotent_retries bigint,
    OUT reads bigint, OUT events_read bigint, OUT notifications bigint,
    OUT ev001_conflicts bigint, OUT ev002_rejections bigint, OUT ev003_rejections bigint,
    OUT ev004_rejections bigint, OUT ev005_rejections bigint, OUT ev006_rejections bigint,
    OUT ev007_rejections bigint,
    OUT horizon_holders integer, OUT oldest_holder_seconds double precision,
    OUT standby_trail_events bigint, OUT standby_horizon_age_seconds double precision,
    OUT stats_reset timestamptz)
    RETURNS record
    AS 'MODULE_PATHNAME', 'everest_stats_counters' LANGUAGE C VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION everest.reset_stats() RETURNS void
    AS 'MODULE_PATHNAME', 'everest_reset_stats' LANGUAGE C VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp;

CREATE VIEW everest.stats AS
    SELECT database, appends, events_appended, idempotent_retries, reads, events_read, notifications,
           ev001_conflicts, ev002_rejections, ev003_rejections, ev004_rejections, ev005_rejections,
           ev006_rejections, ev007_rejections, horizon_holders, oldest_holder_seconds,
           standby_trail_events, standby_horizon_age_seconds, stats_reset
      FROM everest.stats_counters();

-- ---------------------------------------------------------------------------------------------
-- Privileges: nothing to PUBLIC; grant the role that uses the store
--   GRANT USAGE ON SCHEMA everest TO app;
--   GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA everest TO app;
-- ---------------------------------------------------------------------------------------------

REVOKE ALL ON ALL TABLES IN SCHEMA everest FROM PUBLIC;
REVOKE ALL ON SEQUENCE everest.position_seq FROM PUBLIC;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA everest FROM PUBLIC;
