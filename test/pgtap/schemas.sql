-- everest pgTAP: event contracts (DESIGN.md section 11; docs/schemas.md): set_event_schema,
-- drop_event_schema, event_schemas, EV007 on append. The other session's view of a change is in
-- test/isolation/specs/schema_change.spec; dumps and upgrades in the shell suites.
BEGIN;
SELECT plan(38);
SELECT 'tapschema' || substr(md5(random()::text || clock_timestamp()::text), 1, 10) AS t \gset
SELECT set_config('tap.t', :'t', true) IS NOT NULL AS _ \gset
CREATE FUNCTION pg_temp.t(suffix text DEFAULT '') RETURNS text LANGUAGE sql STABLE AS $f$ SELECT current_setting('tap.t') || suffix $f$;

SELECT lives_ok(format($$SELECT everest.set_event_schema(%L, %L)$$, pg_temp.t('Deposited'), '{
    "type": "object",
    "required": ["amount", "currency"],
    "properties": {
        "amount": {"type": "integer", "minimum": 1, "maximum": 1000000},
        "currency": {"type": "string", "pattern": "^[A-Z]{3}$"},
        "note": {"type": "string", "maxLength": 20},
        "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 3}
    },
    "additionalProperties": false,
    "title": "a deposit", "$comment": "annotations are ignored"
}'), 'set_event_schema with a schema of the supported subset');
SELECT is((SELECT schema->>'title' FROM everest.event_schemas WHERE type = pg_temp.t('Deposited')), 'a deposit',
          'event_schemas shows it');
SELECT lives_ok(format($$SELECT everest.append_event(%L, %L, '{"amount": 5, "currency": "EUR", "tags": ["a"]}')$$,
                       pg_temp.t('-1'), pg_temp.t('Deposited')), 'an event that satisfies the schema is appended');
SELECT throws_ok(format($$SELECT everest.append_event(%L, %L, '{"amount": 0, "currency": "EUR"}')$$,
                        pg_temp.t('-1'), pg_temp.t('Deposited')), 'EV007', NULL, 'amount below minimum: EV007');
SELECT throws_like(format($$SELECT everest.append_event(%L, %L, '{"amount": 0, "currency": "EUR"}')$$,
                          pg_temp.t('-1'), pg_temp.t('Deposited')), '%/amount: 0 is less than minimum 1%',
                   'EV007 names the JSON pointer and the rule');
SELECT throws_like(format($$SELECT everest.append_event(%L, %L, '{"amount": 5, "currency": "eur"}')$$,
                          pg_temp.t('-1'), pg_temp.t('Deposited')), '%/currency%', 'a pattern violation names the property');
SELECT throws_ok(format($$SELECT everest.append_event(%L, %L, '{"amount": 5}')$$,
                        pg_temp.t('-1'), pg_temp.t('Deposited')), 'EV007', NULL, 'a missing required property: EV007');
SELECT throws_ok(format($$SELECT everest.append_event(%L, %L, '{"amount": 5, "currency": "EUR", "extra": 1}')$$,
                        pg_temp.t('-1'), pg_temp.t('Deposited')), 'EV007', NULL, 'additionalProperties false: EV007');
SELECT throws_ok(format($$SELECT everest.append_event(%L, %L, '{"amount": 1.5, "currency": "EUR"}')$$,
                        pg_temp.t('-1'), pg_temp.t('Deposited')), 'EV007', NULL, 'a non-integer amount: EV007');
SELECT throws_like(format($$SELECT everest.append_events(%L, jsonb_build_array(
                              jsonb_build_object('type', %L, 'data', '{"amount": 2, "currency": "EUR"}'::jsonb),
                              jsonb_build_object('type', 'Untyped'),
                              jsonb_build_object('type', %L, 'data', '{"amount": 2, "currency": "EUR", "tags": ["a", "b", 3]}'::jsonb)))$$,
                          pg_temp.t('-2'), pg_temp.t('Deposited'), pg_temp.t('Deposited')),
                   '%event 2%/tags/2%', 'in a batch, EV007 names the event''s index and the pointer into it');
SELECT is(everest.stream_version(pg_temp.t('-2')), -1::bigint, '... and nothing of the batch is written');
SELECT is(everest.stream_version(pg_temp.t('-1')), 0::bigint, 'the failed appends wrote nothing either');
SELECT lives_ok(format($$SELECT everest.append_event(%L, 'Untyped', '{"anything": [1, 2]}')$$, pg_temp.t('-3')),
                'a type without a schema is not checked');

-- bad schemas: nothing stored
SELECT throws_ok(format($$SELECT everest.set_event_schema(%L, '{"type": "object", "$ref": "#/x"}')$$, pg_temp.t('Bad')),
                 '22023', NULL, 'an unsupported keyword is 22023');
SELECT throws_like(format($$SELECT everest.set_event_schema(%L, '{"properties": {"a": {"frobnicate": 1}}}')$$, pg_temp.t('Bad')),
                   '%frobnicate%', '... naming the keyword');
SELECT throws_ok(format($$SELECT everest.set_event_schema(%L, '[1, 2]')$$, pg_temp.t('Bad')), '22023', NULL,
                 'a schema that is not an object is 22023');
SELECT throws_ok(format($$SELECT everest.set_event_schema(%L, '{"type": "string", "pattern": "(a"}')$$, pg_temp.t('Bad')),
                 '22023', NULL, 'a pattern that does not compile is 22023');
SELECT throws_ok(format($$SELECT everest.set_event_schema(%L, '{"minimum": "one"}')$$, pg_temp.t('Bad')),
                 '22023', NULL, 'a keyword of the wrong shape is 22023');
SELECT throws_ok(format($$SELECT everest.set_event_schema(%L, NULL)$$, pg_temp.t('Bad')), '22004', NULL, 'a NULL schema is 22004');
SELECT throws_ok($$SELECT everest.set_event_schema(NULL, '{}')$$, '22004', NULL, 'a NULL type is 22004');
SELECT throws_ok($$SELECT everest.set_event_schema('', '{}')$$, '22023', NULL, 'an empty type is 22023');
SELECT is((SELECT count(*) FROM everest.event_schemas WHERE type = pg_temp.t('Bad')), 0::bigint, 'no bad schema was stored');

-- dropping: the next append is not checked
SELECT is(everest.drop_event_schema(pg_temp.t('Deposited')), true, 'drop_event_schema: true when there was one');
SELECT lives_ok(format($$SELECT everest.append_event(%L, %L, '{"amount": 0}')$$, pg_temp.t('-1'), pg_temp.t('Deposited')),
                '... and the next append of the type is not checked');

-- a stored schema that does not compile here (restored from a dump of another build, or stored
-- under rules a later version narrowed): appends of that type fail with 55000 naming it, others
-- go on; dropping it (or setting a good one) ends that.
INSERT INTO everest.schemas (type, schema) VALUES (pg_temp.t('Restored'), '{"type": "string", "pattern": "(a"}');
-- (a backend loads the stored schemas when it first needs them and again after a change by
-- set_event_schema; a plain INSERT, as by a restore, is seen at the next such load)
SELECT everest.set_event_schema(pg_temp.t('Other2'), '{}');
SELECT throws_ok(format($$SELECT everest.append_event(%L, %L, '"a"')$$, pg_temp.t('-1'), pg_temp.t('Restored')),
                 '55000', NULL, 'an append of a type whose stored schema does not compile here is 55000');
SELECT throws_like(format($$SELECT everest.append_event(%L, %L, '"a"')$$, pg_temp.t('-1'), pg_temp.t('Restored')),
                   format('%%stored schema of event type "%s" does not compile%%missing )%%', pg_temp.t('Restored')),
                   '... naming the type and why');
SELECT lives_ok(format($$SELECT everest.append_event(%L, %L, '{"amount": 1}')$$, pg_temp.t('-1'), pg_temp.t('Other')),
                '... while other types append as before');
SELECT is(everest.drop_event_schema(pg_temp.t('Restored')), true, 'drop_event_schema removes it');
SELECT lives_ok(format($$SELECT everest.append_event(%L, %L, '"a"')$$, pg_temp.t('-1'), pg_temp.t('Restored')),
                '... and its type appends again');

-- The walk of an append (docs/schemas.md, "How appends are checked"): values no rule reads are
-- stepped over or given by their kind only, enum values are built whole; each path still says
-- why, with the validator's own message.
SELECT lives_ok(format($$SELECT everest.set_event_schema(%L, %L)$$, pg_temp.t('Walk'), '{
    "type": "object",
    "properties": {
        "j": {"type": "object"},
        "e": {"type": "array", "items": {"type": "integer"}},
        "n": {"type": "number"},
        "s": {"enum": ["a", {"x": [1]}]}},
    "additionalProperties": {"type": ["object", "array", "string"]}}'), 'a schema whose rules read only some values');
SELECT lives_ok(format($$SELECT everest.append_event(%L, %L, '{"j": {"deep": [1, {"x": "y"}]}, "e": [1, 2.0, 30000000000000000000],
                          "n": 1.5, "s": {"x": [1.0]}, "other": {"q": [null]}}')$$, pg_temp.t('-4'), pg_temp.t('Walk')),
                'data whose unchecked members nest, integers written 2.0 or beyond 64 bits, an enum object: appended');
SELECT throws_ok(format($$SELECT everest.append_event(%L, %L, '{"j": [{"a": 1}]}')$$, pg_temp.t('-4'), pg_temp.t('Walk')),
                 'EV007', format('event 0 does not satisfy the schema of type "%s": /j: expected object, got array', pg_temp.t('Walk')),
                 'a container stepped over is still checked for its kind');
SELECT throws_ok(format($$SELECT everest.append_event(%L, %L, '{"e": [1, 2.5]}')$$, pg_temp.t('-4'), pg_temp.t('Walk')),
                 'EV007', format('event 0 does not satisfy the schema of type "%s": /e/1: expected integer, got number', pg_temp.t('Walk')),
                 'an item that is not an integer');
SELECT throws_ok(format($$SELECT everest.append_events(%L, '[{"type": %s, "data": {}}, {"type": %s, "data": {"other": 5}}]')$$,
                        pg_temp.t('-4'), to_json(pg_temp.t('Walk')), to_json(pg_temp.t('Walk'))),
                 'EV007', format('event 1 does not satisfy the schema of type "%s": /other: expected object, array or string, got number', pg_temp.t('Walk')),
                 'a number no rule reads the value of is still checked for its type, naming its event');
SELECT throws_ok(format($$SELECT everest.append_event(%L, %L, '{"s": {"x": [2]}}')$$, pg_temp.t('-4'), pg_temp.t('Walk')),
                 'EV007', format('event 0 does not satisfy the schema of type "%s": /s: {"x":[2]} is not one of ["a",{"x":[1]}]', pg_temp.t('Walk')),
                 'an enum compares the whole value');
SELECT is(everest.stream_version(pg_temp.t('-4')), 0::bigint, 'only the valid event was appended');
SELECT lives_ok(format($$SELECT everest.append_event(%L, %L, %L)$$, pg_temp.t('-4'), pg_temp.t('Walk'),
                       '{"j": {"a": ' || repeat('[', 1500) || repeat(']', 1500) || '}}'),
                'data nested 1,500 levels where no rule looks is appended (the walk steps over it)');
SELECT throws_ok(format($$SELECT everest.append_event(%L, %L, %L)$$, pg_temp.t('-4'), pg_temp.t('Walk'),
                        '{"s": ' || repeat('[', 1500) || repeat(']', 1500) || '}'),
                 '54000', NULL, 'a value a rule reads whole (enum) nested beyond 1,000 levels is 54000');

SELECT * FROM finish();
ROLLBACK;
