-- Data for the benchmarks: everest and a plain-SQL baseline with the same columns and indexes.
CREATE EXTENSION IF NOT EXISTS everest;
DROP SCHEMA IF EXISTS baseline CASCADE;
CREATE SCHEMA baseline;
CREATE SEQUENCE baseline.position_seq;
CREATE TABLE baseline.events (  -- the columns and indexes of everest.events, in its order
    stream     text        COLLATE "C" NOT NULL,
    version    bigint      NOT NULL,
    position   bigint      PRIMARY KEY,
    id         uuid        NOT NULL UNIQUE,
    type       text        NOT NULL,
    data       jsonb       NOT NULL,
    metadata   jsonb,
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (stream, version)
);
CREATE INDEX ON baseline.events (split_part(stream, '-', 1), position);
CREATE INDEX ON baseline.events (type, position);
-- 100 events in each of 100 streams, in both stores, for the read workloads
SELECT everest.append_events('read-' || s,
       (SELECT jsonb_agg(jsonb_build_object('type', 'T', 'data', jsonb_build_object('n', v))) FROM generate_series(0, 99) v))
  FROM generate_series(1, 100) s;
INSERT INTO baseline.events (position, stream, version, id, type, data)
SELECT position, stream, version, id, type, data FROM everest.read_all_forward(0, 100000);
SELECT setval('baseline.position_seq', (SELECT max(position) FROM baseline.events));
ANALYZE;
-- Event contracts (workloads append_schema, batch_schema): a 10-property schema with types,
-- required, bounds and one pattern.
SELECT everest.set_event_schema('Checked', '{
  "type": "object", "required": ["a", "b", "c"], "additionalProperties": false,
  "properties": {
    "a": {"type": "integer", "minimum": 1, "maximum": 1000000},
    "b": {"type": "string", "pattern": "^[A-Z]{3}$"},
    "c": {"type": "boolean"},
    "d": {"type": "string", "maxLength": 200},
    "e": {"type": "array", "items": {"type": "integer"}, "maxItems": 10},
    "f": {"type": "number", "exclusiveMinimum": 0},
    "g": {"type": "string", "format": "date-time"},
    "h": {"type": "string", "format": "uuid"},
    "i": {"enum": ["open", "closed"]},
    "j": {"type": "object"}}}');
