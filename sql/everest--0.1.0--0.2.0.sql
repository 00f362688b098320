-- everest 0.1.0 -> 0.2.0: everest.events takes the column order of everest.recorded_event
-- (stream, version, position, ...; 0.1.0 had position first), so that reads hand stored rows on
-- as they are instead of rearranging every row. Nothing else changes.
--
-- The table is rewritten: one pass over the events, then its indexes are built. Appends and reads
-- wait for the upgrade's lock until it commits; a failure leaves 0.1.0 as it was.
-- Carried over from the old table: every event, the constraints and index names, the
-- immutability triggers, pg_dump registration, privileges granted on it, and its publications.
-- Your own indexes on everest.events are recreated. Views of yours that use everest.events stop
-- the upgrade (PostgreSQL will not drop the table under them): drop them first, recreate them
-- after.
\echo Use "ALTER EXTENSION everest UPDATE TO '0.2.0'" to load this file. \quit

LOCK TABLE everest.events IN ACCESS EXCLUSIVE MODE;

-- What the old table had that is not part of the extension: privileges, publications, indexes.
-- Kept for the end of this transaction in a setting (a table made here would join the extension).
SELECT pg_catalog.set_config('everest_upgrade.replay', COALESCE(pg_catalog.jsonb_agg(statement), '[]')::text, true)
  FROM (
SELECT pg_catalog.format('GRANT %s ON everest.events TO %s%s', a.privilege_type,
                         CASE WHEN a.grantee OPERATOR(pg_catalog.=) 0 THEN 'PUBLIC'
                              ELSE pg_catalog.quote_ident(r.rolname) END,
                         CASE WHEN a.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END) AS statement
  FROM pg_catalog.pg_class AS c,
       LATERAL pg_catalog.aclexplode(c.relacl) AS a
       LEFT JOIN pg_catalog.pg_roles AS r ON r.oid OPERATOR(pg_catalog.=) a.grantee
 WHERE c.oid OPERATOR(pg_catalog.=) 'everest.events'::pg_catalog.regclass
   AND a.grantee OPERATOR(pg_catalog.<>) c.relowner
UNION ALL
SELECT pg_catalog.format('ALTER PUBLICATION %I ADD TABLE everest.events', p.pubname)
  FROM pg_catalog.pg_publication_rel AS pr
  JOIN pg_catalog.pg_publication AS p ON p.oid OPERATOR(pg_catalog.=) pr.prpubid
 WHERE pr.prrelid OPERATOR(pg_catalog.=) 'everest.events'::pg_catalog.regclass
UNION ALL
SELECT pg_catalog.pg_get_indexdef(i.indexrelid)
  FROM pg_catalog.pg_index AS i
  JOIN pg_catalog.pg_class AS ic ON ic.oid OPERATOR(pg_catalog.=) i.indexrelid
 WHERE i.indrelid OPERATOR(pg_catalog.=) 'everest.events'::pg_catalog.regclass
   AND ic.relname OPERATOR(pg_catalog.<>) ALL (ARRAY['events_pkey', 'events_id_key',
                                                    'events_stream_version_key',
                                                    'events_category_position']::pg_catalog.name[])
       ) AS replay;

-- The old table steps aside, with its index names.
ALTER TABLE everest.events RENAME TO events_0_1_0;
ALTER INDEX everest.events_pkey RENAME TO events_0_1_0_pkey;
ALTER INDEX everest.events_id_key RENAME TO events_0_1_0_id_key;
ALTER INDEX everest.events_stream_version_key RENAME TO events_0_1_0_stream_version_key;
ALTER INDEX everest.events_category_position RENAME TO events_0_1_0_category_position;

-- As in everest--0.2.0.sql. The rows first, then the indexes (a bulk build each).
CREATE TABLE everest.events (
    stream     text        COLLATE "C" NOT NULL,  -- names compare byte by byte
    version    bigint      NOT NULL,
    position   bigint      NOT NULL,
    id         uuid        NOT NULL,
    type       text        NOT NULL,
    data       jsonb       NOT NULL,
    metadata   jsonb,
    created_at timestamptz NOT NULL DEFAULT pg_catalog.now()
);
INSERT INTO everest.events (stream, version, position, id, type, data, metadata, created_at)
SELECT stream, version, position, id, type, data, metadata, created_at
  FROM everest.events_0_1_0
 ORDER BY position;
ALTER TABLE everest.events
    ADD CONSTRAINT events_pkey PRIMARY KEY (position),
    ADD CONSTRAINT events_id_key UNIQUE (id),
    ADD CONSTRAINT events_stream_version_key UNIQUE (stream, version);
CREATE INDEX events_category_position
    ON everest.events (pg_catalog.split_part(stream, '-', 1), position);

ALTER EXTENSION everest DROP TABLE everest.events_0_1_0;  -- also leaves pg_dump's list
DROP TABLE everest.events_0_1_0;

SELECT pg_catalog.pg_extension_config_dump('everest.events', '');

CREATE TRIGGER events_are_immutable
    BEFORE UPDATE OR DELETE ON everest.events
    FOR EACH STATEMENT EXECUTE FUNCTION everest.forbid_event_changes();
CREATE TRIGGER events_are_not_truncated
    BEFORE TRUNCATE ON everest.events
    FOR EACH STATEMENT EXECUTE FUNCTION everest.forbid_event_changes();
ALTER TABLE everest.events ENABLE ALWAYS TRIGGER events_are_immutable;
ALTER TABLE everest.events ENABLE ALWAYS TRIGGER events_are_not_truncated;

REVOKE ALL ON everest.events FROM PUBLIC;

DO $replay$
DECLARE
    s text;
BEGIN
    FOR s IN SELECT pg_catalog.jsonb_array_elements_text(
                        pg_catalog.current_setting('everest_upgrade.replay')::pg_catalog.jsonb) LOOP
        EXECUTE s;
    END LOOP;
END
$replay$;

ANALYZE everest.events;
