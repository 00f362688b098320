-- The same append as append_schema.everest.sql, of a type without a schema.
\set s random(1, 10000)
SELECT * FROM everest.append_event('schema-' || :s, 'Unchecked', '{"a": 5, "b": "EUR", "c": true, "d": "short note", "e": [1, 2], "f": 7.5, "g": "2026-12-01T10:00:00Z", "h": "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "i": "open", "j": {"k": 1}}');
