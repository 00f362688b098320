-- everest 0.2.0 -> 0.3.0: the schema becomes the install's own, and every function runs with a
-- pinned search_path (docs/security.md).
--
-- Up to 0.2.0, CREATE EXTENSION adopted a schema named everest that already existed, whoever
-- owned it. Its owner could then rename it, plant an everest.handlers of their own with a
-- trigger, and have the next save_handler_position run that trigger as the superuser. From 0.3.0
-- the install script creates the schema (an existing one stops the install), so it belongs to the
-- installing superuser and is a member of the extension.
--
-- A database installed by 0.2.0 or earlier has the schema as the extension's own schema
-- (pg_extension.extnamespace), not as a member. This update takes it over only when it is safe:
--   * the schema named everest is the one the extension was installed in (not renamed away),
--   * it is owned by a superuser, and grants CREATE to no role that is not a superuser (nor PUBLIC),
--   * nothing in it is owned by a role that is not a superuser (a planted table, function, type,
--     operator, ...), and nothing in it belongs to another extension.
-- Otherwise it stops with 55000 and changes nothing; the HINT says what to check. Then the
-- extension is moved to pg_catalog (what 0.3.0's control file names) and the schema becomes a
-- member. Privileges users granted on the schema stay, and pg_dump keeps dumping them.
-- PL/pgSQL here is one-time migration logic on catalogs; nothing on the store's paths uses it.
\echo Use "ALTER EXTENSION everest UPDATE TO '0.3.0'" to load this file. \quit

DO $takeover$
DECLARE
    ext   oid := (SELECT e.oid FROM pg_catalog.pg_extension e WHERE e.extname OPERATOR(pg_catalog.=) 'everest');
    nsp   oid := (SELECT n.oid FROM pg_catalog.pg_namespace n WHERE n.nspname OPERATOR(pg_catalog.=) 'everest');
    owner text;
    found text;
    planted text;
BEGIN
    IF EXISTS (SELECT FROM pg_catalog.pg_depend d
                WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_namespace'::pg_catalog.regclass
                  AND d.objid OPERATOR(pg_catalog.=) nsp
                  AND d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_extension'::pg_catalog.regclass
                  AND d.refobjid OPERATOR(pg_catalog.=) ext AND d.deptype OPERATOR(pg_catalog.=) 'e') THEN
        RETURN;  -- installed by a 0.3.0-era script: the schema is already the install's own
    END IF;

    IF nsp IS NULL OR (SELECT e.extnamespace FROM pg_catalog.pg_extension e WHERE e.oid OPERATOR(pg_catalog.=) ext)
                      IS DISTINCT FROM nsp THEN
        RAISE EXCEPTION 'the schema named everest is not the schema extension everest was installed in'
            USING ERRCODE = '55000',
                  DETAIL = pg_catalog.format('The extension is in schema %s.',
                      (SELECT e.extnamespace::pg_catalog.regnamespace FROM pg_catalog.pg_extension e
                        WHERE e.oid OPERATOR(pg_catalog.=) ext)),
                  HINT = 'Someone renamed the schema. Inspect both schemas before you rename anything back.';
    END IF;

    SELECT r.rolname INTO owner
      FROM pg_catalog.pg_namespace n JOIN pg_catalog.pg_roles r ON r.oid OPERATOR(pg_catalog.=) n.nspowner
     WHERE n.oid OPERATOR(pg_catalog.=) nsp AND NOT r.rolsuper;
    IF owner IS NOT NULL THEN
        RAISE EXCEPTION 'schema everest is owned by role %, which is not a superuser', owner
            USING ERRCODE = '55000',
                  DETAIL = 'Its owner can rename it and plant tables that everest''s functions would use as a superuser.',
                  HINT = 'Check every object in schema everest, then run ALTER SCHEMA everest OWNER TO a superuser and update again.';
    END IF;

    -- Whoever may CREATE in the schema can plant overloads of the functions superusers call.
    SELECT pg_catalog.string_agg(CASE WHEN a.grantee OPERATOR(pg_catalog.=) 0 THEN 'PUBLIC' ELSE r.rolname::text END, ', ')
      INTO found
      FROM pg_catalog.pg_namespace n, LATERAL pg_catalog.aclexplode(n.nspacl) a
      LEFT JOIN pg_catalog.pg_roles r ON r.oid OPERATOR(pg_catalog.=) a.grantee
     WHERE n.oid OPERATOR(pg_catalog.=) nsp AND a.privilege_type OPERATOR(pg_catalog.=) 'CREATE'
       AND (a.grantee OPERATOR(pg_catalog.=) 0 OR NOT r.rolsuper);
    IF found IS NOT NULL THEN
        RAISE EXCEPTION 'schema everest grants CREATE to roles that are not superusers'
            USING ERRCODE = '55000',
                  DETAIL = pg_catalog.format('CREATE is granted to: %s. They can plant overloads of everest''s functions that superusers would call.', found),
                  HINT = 'Check every object in schema everest, REVOKE CREATE ON SCHEMA everest FROM them, and update again.';
    END IF;

    SELECT pg_catalog.string_agg(o.what, ', ' ORDER BY o.what) INTO planted
      FROM (SELECT pg_catalog.format('%s %s (owner %s)', o.kind, o.name, r.rolname) AS what
              FROM (SELECT 'relation' AS kind, c.oid::pg_catalog.regclass::text AS name, c.relowner AS owner
                      FROM pg_catalog.pg_class c WHERE c.relnamespace OPERATOR(pg_catalog.=) nsp
                    UNION ALL
                    SELECT 'function', p.oid::pg_catalog.regprocedure::text, p.proowner
                      FROM pg_catalog.pg_proc p WHERE p.pronamespace OPERATOR(pg_catalog.=) nsp
                    UNION ALL
                    SELECT 'type', t.oid::pg_catalog.regtype::text, t.typowner
                      FROM pg_catalog.pg_type t WHERE t.typnamespace OPERATOR(pg_catalog.=) nsp
                    UNION ALL
                    SELECT 'operator', o.oid::pg_catalog.regoperator::text, o.oprowner
                      FROM pg_catalog.pg_operator o WHERE o.oprnamespace OPERATOR(pg_catalog.=) nsp
                    UNION ALL
                    SELECT 'collation', c.collname::text, c.collowner
                      FROM pg_catalog.pg_collation c WHERE c.collnamespace OPERATOR(pg_catalog.=) nsp
                    UNION ALL
                    SELECT 'conversion', c.conname::text, c.conowner
                      FROM pg_catalog.pg_conversion c WHERE c.connamespace OPERATOR(pg_catalog.=) nsp
                    UNION ALL
                    SELECT 'operator family', f.opfname::text, f.opfowner
                      FROM pg_catalog.pg_opfamily f WHERE f.opfnamespace OPERATOR(pg_catalog.=) nsp
                    UNION ALL
                    SELECT 'operator class', c.opcname::text, c.opcowner
                      FROM pg_catalog.pg_opclass c WHERE c.opcnamespace OPERATOR(pg_catalog.=) nsp
                    UNION ALL
                    SELECT 'text search configuration', c.cfgname::text, c.cfgowner
                      FROM pg_catalog.pg_ts_config c WHERE c.cfgnamespace OPERATOR(pg_catalog.=) nsp
                    UNION ALL
                    SELECT 'text search dictionary', d.dictname::text, d.dictowner
                      FROM pg_catalog.pg_ts_dict d WHERE d.dictnamespace OPERATOR(pg_catalog.=) nsp
                    UNION ALL
                    SELECT 'statistics object', s.stxname::text, s.stxowner
                      FROM pg_catalog.pg_statistic_ext s WHERE s.stxnamespace OPERATOR(pg_catalog.=) nsp) o
              JOIN pg_catalog.pg_roles r ON r.oid OPERATOR(pg_catalog.=) o.owner
             WHERE NOT r.rolsuper) o;
    -- Objects superusers own but that another extension put there (a database owner can install
    -- a trusted extension into any schema): not the install's either.
    SELECT pg_catalog.string_agg(pg_catalog.format('%s (extension %s)', pg_catalog.pg_describe_object(d.classid, d.objid, 0), e.extname),
                                 ', ' ORDER BY d.objid) INTO found
      FROM pg_catalog.pg_depend d JOIN pg_catalog.pg_extension e ON e.oid OPERATOR(pg_catalog.=) d.refobjid
     WHERE d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_extension'::pg_catalog.regclass
       AND d.deptype OPERATOR(pg_catalog.=) 'e' AND e.oid OPERATOR(pg_catalog.<>) ext
       AND ((d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_proc'::pg_catalog.regclass
             AND d.objid IN (SELECT p.oid FROM pg_catalog.pg_proc p WHERE p.pronamespace OPERATOR(pg_catalog.=) nsp))
         OR (d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass
             AND d.objid IN (SELECT c.oid FROM pg_catalog.pg_class c WHERE c.relnamespace OPERATOR(pg_catalog.=) nsp))
         OR (d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_type'::pg_catalog.regclass
             AND d.objid IN (SELECT t.oid FROM pg_catalog.pg_type t WHERE t.typnamespace OPERATOR(pg_catalog.=) nsp))
         OR (d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_operator'::pg_catalog.regclass
             AND d.objid IN (SELECT o.oid FROM pg_catalog.pg_operator o WHERE o.oprnamespace OPERATOR(pg_catalog.=) nsp)));
    IF found IS NOT NULL THEN
        planted := pg_catalog.concat_ws(', ', planted, found);
    END IF;
    IF planted IS NOT NULL THEN
        RAISE EXCEPTION 'schema everest holds objects owned by roles that are not superusers'
            USING ERRCODE = '55000',
                  DETAIL = pg_catalog.format('Found: %s.', planted),
                  HINT = 'These were not made by the install. Find out who made them and why, drop them, and update again.';
    END IF;

    -- The extension leaves the schema (its dependency on it goes) for pg_catalog, as a 0.3.0
    -- install has it; then the schema joins the extension. ALTER EXTENSION ... ADD records the
    -- schema's current privileges as its initial ones, which pg_dump would then leave out: forget
    -- them, so that grants users made stay in dumps (a fresh install records none either).
    DELETE FROM pg_catalog.pg_depend d
     WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_extension'::pg_catalog.regclass
       AND d.objid OPERATOR(pg_catalog.=) ext
       AND d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_namespace'::pg_catalog.regclass
       AND d.refobjid OPERATOR(pg_catalog.=) nsp;
    UPDATE pg_catalog.pg_extension e SET extnamespace = 'pg_catalog'::pg_catalog.regnamespace
     WHERE e.oid OPERATOR(pg_catalog.=) ext;
    EXECUTE 'ALTER EXTENSION everest ADD SCHEMA everest';
    DELETE FROM pg_catalog.pg_init_privs i
     WHERE i.classoid OPERATOR(pg_catalog.=) 'pg_catalog.pg_namespace'::pg_catalog.regclass
       AND i.objoid OPERATOR(pg_catalog.=) nsp;
END
$takeover$;

-- Every function runs with search_path pinned (pg_temp last: no temporary object stands in).
ALTER FUNCTION everest.forbid_event_changes() SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION everest.append_events(text, jsonb, bigint) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION everest.append_event(text, text, jsonb, jsonb, bigint, uuid) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION everest.read_event(text, bigint) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION everest.read_stream_forward(text, bigint, integer) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION everest.read_stream_backward(text, bigint, integer) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION everest.read_all_forward(bigint, integer) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION everest.read_all_backward(bigint, integer) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION everest.stream_version(text) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION everest.delete_stream(text, bigint, boolean) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION everest.safe_position() SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION everest.handler_position(text) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION everest.handler_state(text) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION everest.save_handler_position(text, bigint) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION everest.save_handler_state(text, bigint, jsonb) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION everest.reset_handler(text, bigint) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION everest.read_handler_events(text, text, integer) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION everest.try_acquire_handler(text) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION everest.release_handler(text) SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION everest.in_flight_appends() SET search_path = pg_catalog, pg_temp;
ALTER FUNCTION everest.notifiers() SET search_path = pg_catalog, pg_temp;
