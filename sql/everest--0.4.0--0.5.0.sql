-- everest 0.4.0 -> 0.5.0: a handler reader on a hot standby, and the section 10 signatures of
-- the handler reads (docs/topologies.md, "Reading on a standby").
--   * read_handler_events takes member, types and after: after reads from a checkpoint kept
--     elsewhere (the primary's), so that a subscriber reads on a standby and saves on the
--     primary with expected_position.
--   * handler_position and handler_state take member.
--   Old calls keep working; the functions are replaced (a second function with only defaulted
--   arguments added would make every old call ambiguous), and the EXECUTE grants roles had on
--   them are carried over. A function or view of yours that depends on them stops the update
--   with 2BP01 and nothing changes.
\echo Use "ALTER EXTENSION everest UPDATE TO '0.5.0'" to load this file. \quit

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

REVOKE ALL ON FUNCTION everest.stream_partition(text, integer) FROM PUBLIC;
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
