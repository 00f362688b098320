-- everest 0.3.0 -> 0.4.0: the store keeps its promise on hot standbys and through poolers
-- (docs/topologies.md).
--   * everest.horizon: the primary publishes safe_position() there for standbys and mirrors.
--   * everest.epochs: positions continue in a new epoch after a promotion or cutover (EV006).
--   * everest.leases with acquire_lease, renew_lease, release_lease (EV005).
--   * wait_for_position.
--   * save_handler_position and save_handler_state take member, lease and expected_position.
--     Old calls keep working; the functions are replaced (a second function with only defaulted
--     arguments added would make every old call ambiguous), and the EXECUTE grants roles had on
--     them are carried over. A function or view of yours that depends on them stops the update
--     with 2BP01 and nothing changes.
\echo Use "ALTER EXTENSION everest UPDATE TO '0.4.0'" to load this file. \quit

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
REVOKE ALL ON everest.horizon, everest.epochs, everest.leases FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('everest.horizon', '');
SELECT pg_catalog.pg_extension_config_dump('everest.epochs', '');

-- The grants roles have on the two save functions, replayed on their replacements below.
SELECT pg_catalog.set_config('everest_upgrade.grants', COALESCE(pg_catalog.jsonb_agg(g), '[]')::text, true)
  FROM (SELECT pg_catalog.format('GRANT EXECUTE ON FUNCTION %s TO %s%s',
                                 CASE p.oid WHEN 'everest.save_handler_position(text, bigint)'::pg_catalog.regprocedure
                                   THEN 'everest.save_handler_position(text, bigint, integer, uuid, bigint)'
                                   ELSE 'everest.save_handler_state(text, bigint, jsonb, integer, uuid, bigint)' END,
                                 CASE WHEN a.grantee OPERATOR(pg_catalog.=) 0 THEN 'PUBLIC'
                                      ELSE pg_catalog.quote_ident(r.rolname) END,
                                 CASE WHEN a.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END) AS g
          FROM pg_catalog.pg_proc AS p,
               LATERAL pg_catalog.aclexplode(p.proacl) AS a
               LEFT JOIN pg_catalog.pg_roles AS r ON r.oid OPERATOR(pg_catalog.=) a.grantee
         WHERE p.oid OPERATOR(pg_catalog.=) ANY (ARRAY['everest.save_handler_position(text, bigint)'::pg_catalog.regprocedure,
                                                       'everest.save_handler_state(text, bigint, jsonb)'::pg_catalog.regprocedure])
           AND a.grantee OPERATOR(pg_catalog.<>) p.proowner) AS grants;

DROP FUNCTION everest.save_handler_position(text, bigint);
DROP FUNCTION everest.save_handler_state(text, bigint, jsonb);

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

CREATE FUNCTION everest.wait_for_position(after bigint, timeout_ms integer DEFAULT 1000) RETURNS bigint
    AS 'MODULE_PATHNAME', 'everest_wait_for_position' LANGUAGE C VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp;

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

REVOKE ALL ON FUNCTION everest.save_handler_position(text, bigint, integer, uuid, bigint),
                       everest.save_handler_state(text, bigint, jsonb, integer, uuid, bigint),
                       everest.wait_for_position(bigint, integer),
                       everest.acquire_lease(text, interval, integer),
                       everest.renew_lease(text, uuid, interval),
                       everest.release_lease(text, uuid) FROM PUBLIC;

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
