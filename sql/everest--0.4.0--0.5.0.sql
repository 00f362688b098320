-- everest 0.4.0 -> 0.5.0: consumer groups, filters and poison events (docs/groups.md), $et-
-- reads and event contracts (docs/schemas.md), and a handler reader on a hot standby
-- (docs/topologies.md, "Reading on a standby, saving on the primary").
--   * read_handler_events takes member, types and after: after reads from a checkpoint kept
--     elsewhere (the primary's), so that a subscriber reads on a standby and saves on the
--     primary with expected_position.
--   * handler_position and handler_state take member.
--   Old calls keep working; the functions are replaced (a second function with only defaulted
--   arguments added would make every old call ambiguous), and the EXECUTE grants roles had on
--   them are carried over. A function or view of yours that depends on them stops the update
--   with 2BP01 and nothing changes.
\echo Use "ALTER EXTENSION everest UPDATE TO '0.5.0'" to load this file. \quit

-- $et-<type> reads and handlers filtered by type. Built here, which locks everest.events against
-- writes while it runs (CREATE INDEX CONCURRENTLY cannot run in an extension script).
CREATE INDEX events_type_position ON everest.events (type, position);

-- Groups: a row per handler member, with the group's size (docs/groups.md).
ALTER TABLE everest.handlers ADD COLUMN member integer NOT NULL DEFAULT 0,
                             ADD COLUMN members integer NOT NULL DEFAULT 1,
                             DROP CONSTRAINT handlers_pkey,
                             ADD CONSTRAINT handlers_pkey PRIMARY KEY (handler, member),
                             ADD CONSTRAINT handlers_member_check
                                 CHECK (members >= 1 AND members <= 1024 AND member >= 0 AND member < members);

CREATE TABLE everest.handler_floors (
    handler    text    COLLATE "C" NOT NULL,
    generation integer NOT NULL,
    members    integer NOT NULL,
    member     integer NOT NULL,
    position   bigint  NOT NULL,
    CONSTRAINT handler_floors_pkey PRIMARY KEY (handler, generation, member)
);

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
REVOKE ALL ON everest.handler_floors, everest.parked, everest.attempts, everest.schemas FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('everest.handler_floors', '');
SELECT pg_catalog.pg_extension_config_dump('everest.parked', '');
SELECT pg_catalog.pg_extension_config_dump('everest.schemas', '');

-- The grants roles have on the three functions, replayed on their replacements below.
SELECT pg_catalog.set_config('everest_upgrade.grants', COALESCE(pg_catalog.jsonb_agg(g), '[]')::text, true)
  FROM (SELECT pg_catalog.format('GRANT EXECUTE ON FUNCTION %s TO %s%s',
                                 CASE p.oid
                                   WHEN 'everest.handler_position(text)'::pg_catalog.regprocedure
                                     THEN 'everest.handler_position(text, integer)'
                                   WHEN 'everest.handler_state(text)'::pg_catalog.regprocedure
                                     THEN 'everest.handler_state(text, integer)'
                                   ELSE 'everest.read_handler_events(text, text, integer, integer, text[], bigint)' END,
                                 CASE WHEN a.grantee OPERATOR(pg_catalog.=) 0 THEN 'PUBLIC'
                                      ELSE pg_catalog.quote_ident(r.rolname) END,
                                 CASE WHEN a.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END) AS g
          FROM pg_catalog.pg_proc AS p,
               LATERAL pg_catalog.aclexplode(p.proacl) AS a
               LEFT JOIN pg_catalog.pg_roles AS r ON r.oid OPERATOR(pg_catalog.=) a.grantee
         WHERE p.oid OPERATOR(pg_catalog.=) ANY (ARRAY['everest.handler_position(text)'::pg_catalog.regprocedure,
                                                       'everest.handler_state(text)'::pg_catalog.regprocedure,
                                                       'everest.read_handler_events(text, text, integer)'::pg_catalog.regprocedure])
           AND a.grantee OPERATOR(pg_catalog.<>) p.proowner) AS grants;

DROP FUNCTION everest.handler_position(text);
DROP FUNCTION everest.handler_state(text);
DROP FUNCTION everest.read_handler_events(text, text, integer);

CREATE FUNCTION everest.handler_position(handler text, member integer DEFAULT 0) RETURNS bigint
    AS 'MODULE_PATHNAME', 'everest_handler_position' LANGUAGE C VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp;

CREATE FUNCTION everest.handler_state(handler text, member integer DEFAULT 0) RETURNS jsonb
    AS 'MODULE_PATHNAME', 'everest_handler_state' LANGUAGE C VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp;

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

REVOKE ALL ON everest.parked_events, everest.handler_status, everest.event_schemas FROM PUBLIC;
REVOKE ALL ON FUNCTION everest.stream_partition(text, integer), everest.resize_handler(text, integer),
                       everest.drop_handler(text), everest.park_event(text, bigint, text, integer, uuid),
                       everest.unpark_event(text, bigint), everest.note_attempt(text, bigint, integer),
                       everest.set_event_schema(text, jsonb), everest.drop_event_schema(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION everest.handler_position(text, integer),
                       everest.handler_state(text, integer),
                       everest.read_handler_events(text, text, integer, integer, text[], bigint) FROM PUBLIC;

-- One-time replay of the grants collected above (PL/pgSQL only in this update script).
DO $replay$
DECLARE
    statement text;
BEGIN
    FOR statement IN SELECT pg_catalog.jsonb_array_elements_text(
                        pg_catalog.current_setting('everest_upgrade.grants')::pg_catalog.jsonb) LOOP
        EXECUTE statement;
    END LOOP;
END
$replay$;
