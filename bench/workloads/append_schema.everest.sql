-- An event of a type with a 10-property schema (setup.sql: 'Checked'), against the same append
-- of a type without one (append_schema.baseline.sql).
\set s random(1, 10000)
SELECT * FROM everest.append_event('schema-' || :s, 'Checked', '{"a": 5, "b": "EUR", "c": true, "d": "short note", "e": [1, 2], "f": 7.5, "g": "2026-12-01T10:00:00Z", "h": "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "i": "open", "j": {"k": 1}}');
