-- everest pgTAP: appends (DESIGN.md sections 2 "Append" and 3 "Errors").
-- Everything happens inside one transaction that is rolled back; streams are named tapappend-*.
BEGIN;
SELECT plan(178);

-- The SQLSTATE a statement raises, NULL when it succeeds (its effects are rolled back either way).
CREATE FUNCTION pg_temp.sqlstate_of(q text) RETURNS text LANGUAGE plpgsql AS $f$
BEGIN
    EXECUTE q;
    RAISE EXCEPTION USING ERRCODE = 'P0004', MESSAGE = 'succeeded';
EXCEPTION
    WHEN assert_failure THEN RETURN NULL;
    WHEN OTHERS THEN RETURN SQLSTATE;
END
$f$;
-- Every stored event (as superuser): to show that bad input wrote nothing anywhere.
CREATE FUNCTION pg_temp.total_events() RETURNS bigint LANGUAGE sql AS
    $f$ SELECT count(*) FROM everest.events $f$;

-- =============================================================================================
-- A rolled-back append does not hold $all back (checked before this transaction appends anything
-- that stays in flight; the other files run one after another, so nothing else is in flight)
-- =============================================================================================
SAVEPOINT horizon;
SELECT first_position AS hp0, last_position AS hp1
  FROM everest.append_events('tapappend-horizon', '[{"type": "A"}, {"type": "B"}]') \gset
SELECT ok(everest.safe_position() < :hp0, 'an append in flight holds safe_position() below its positions');
ROLLBACK TO SAVEPOINT horizon;
SELECT ok(everest.safe_position() >= :hp1,
          'after ROLLBACK TO SAVEPOINT its positions count as rolled back: safe_position() passes them');
SELECT is(everest.stream_version('tapappend-horizon'), -1::bigint, '... and the append is gone');

-- =============================================================================================
-- A single event with append_event: version 0, defaults, generated id
-- =============================================================================================
CREATE TEMP TABLE r_single AS
    SELECT * FROM everest.append_event('tapappend-single', 'Opened');

SELECT is((SELECT count(*) FROM r_single), 1::bigint, 'append_event returns one row');
SELECT is((SELECT (first_version, last_version)::text FROM r_single), '(0,0)',
          'the first event of a new stream has version 0');
SELECT ok((SELECT first_position = last_position AND first_position >= 1 FROM r_single),
          'one event: first_position = last_position, a 1-based position');
SELECT is((SELECT type FROM everest.read_event('tapappend-single', 0)), 'Opened', 'type is stored');
SELECT is((SELECT data FROM everest.read_event('tapappend-single', 0)), '{}'::jsonb,
          'append_event: data defaults to {}');
SELECT ok((SELECT metadata IS NULL FROM everest.read_event('tapappend-single', 0)),
          'append_event: metadata defaults to NULL');
SELECT ok((SELECT id IS NOT NULL FROM everest.read_event('tapappend-single', 0)),
          'append_event: an id is generated when absent');
SELECT is((SELECT position FROM everest.read_event('tapappend-single', 0)),
          (SELECT first_position FROM r_single), 'the stored position is the returned one');
SELECT ok((SELECT stream = 'tapappend-single' AND version = 0 AND created_at IS NOT NULL
             FROM everest.read_event('tapappend-single', 0)),
          'stream, version and created_at are stored');
SELECT is(everest.stream_version('tapappend-single'), 0::bigint, 'stream_version is 0 after one event');

-- append_event with every argument
CREATE TEMP TABLE r_full AS
    SELECT * FROM everest.append_event('tapappend-single', 'Deposited', '{"amount": 10}',
                                       '{"user": "ann"}', 0, 'a0000000-0000-4000-8000-000000000001');
SELECT is((SELECT (first_version, last_version)::text FROM r_full), '(1,1)',
          'append_event with expected_version 0 appends version 1');
SELECT ok((SELECT f.first_position > s.last_position FROM r_full f, r_single s),
          'a later append gets a higher position');
SELECT is((SELECT (id, data, metadata)::text FROM everest.read_event('tapappend-single', 1)),
          ('a0000000-0000-4000-8000-000000000001'::uuid, '{"amount": 10}'::jsonb,
           '{"user": "ann"}'::jsonb)::text,
          'append_event keeps the given id, data and metadata');
SELECT ok((SELECT metadata IS NULL FROM everest.append_event('tapappend-nullmeta', 'T', '{}', 'null'::jsonb)
             CROSS JOIN LATERAL everest.read_event('tapappend-nullmeta', 0)),
          'append_event: metadata JSON null is stored as NULL');

-- =============================================================================================
-- A batch with append_events: consecutive versions, increasing positions, defaults
-- =============================================================================================
CREATE TEMP TABLE r_batch AS
    SELECT * FROM everest.append_events('tapappend-batch', $j$[
        {"type": "A"},
        {"type": "B", "data": [1, 2, 3], "metadata": {"k": "v"}},
        {"type": "C", "data": "text", "metadata": null, "id": "b0000000-0000-4000-8000-00000000000c"},
        {"type": "D", "data": null},
        {"type": "E", "data": 42, "id": "B0000000000040008000-00000000000E"}
    ]$j$);
SELECT is((SELECT (first_version, last_version)::text FROM r_batch), '(0,4)',
          'a batch of 5 on a new stream gets versions 0..4');
SELECT ok((SELECT last_position - first_position >= 4 FROM r_batch),
          'a batch of 5 spans at least 5 positions');
SELECT results_eq($q$SELECT version FROM everest.read_stream_forward('tapappend-batch')$q$,
                  ARRAY[0, 1, 2, 3, 4]::bigint[], 'batch events get consecutive versions');
SELECT results_eq($q$SELECT type FROM everest.read_stream_forward('tapappend-batch')$q$,
                  ARRAY['A', 'B', 'C', 'D', 'E'], 'batch events are stored in array order');
SELECT ok((SELECT bool_and(position > prev) FROM (
              SELECT position, lag(position) OVER (ORDER BY version) AS prev
                FROM everest.read_stream_forward('tapappend-batch')) t WHERE prev IS NOT NULL),
          'positions increase with versions inside the batch');
SELECT is((SELECT min(position) FROM everest.read_stream_forward('tapappend-batch')),
          (SELECT first_position FROM r_batch), 'first_position is the first event''s position');
SELECT is((SELECT max(position) FROM everest.read_stream_forward('tapappend-batch')),
          (SELECT last_position FROM r_batch), 'last_position is the last event''s position');
SELECT is((SELECT data FROM everest.read_event('tapappend-batch', 0)), '{}'::jsonb,
          'append_events: data defaults to {}');
SELECT ok((SELECT metadata IS NULL FROM everest.read_event('tapappend-batch', 0)),
          'append_events: metadata defaults to NULL');
SELECT is((SELECT (data, metadata)::text FROM everest.read_event('tapappend-batch', 1)),
          ('[1, 2, 3]'::jsonb, '{"k": "v"}'::jsonb)::text, 'array data and object metadata are kept');
SELECT ok((SELECT data = '"text"'::jsonb AND metadata IS NULL FROM everest.read_event('tapappend-batch', 2)),
          'string data is kept; metadata null is stored as NULL');
SELECT is((SELECT data FROM everest.read_event('tapappend-batch', 3)), 'null'::jsonb,
          'data JSON null is kept as JSON null (any JSON is allowed)');
SELECT is((SELECT id FROM everest.read_event('tapappend-batch', 2)),
          'b0000000-0000-4000-8000-00000000000c'::uuid, 'a given id is kept');
SELECT is((SELECT id FROM everest.read_event('tapappend-batch', 4)),
          'b0000000-0000-4000-8000-00000000000e'::uuid, 'a given id in another text form uuid_in accepts is kept');
SELECT is((SELECT count(DISTINCT id) FROM everest.read_stream_forward('tapappend-batch')), 5::bigint,
          'generated ids are present and distinct');
SELECT is(everest.stream_version('tapappend-batch'), 4::bigint, 'stream_version is the last version');

-- A second batch continues the stream
CREATE TEMP TABLE r_batch2 AS
    SELECT * FROM everest.append_events('tapappend-batch', '[{"type": "F"}, {"type": "G"}]');
SELECT is((SELECT (first_version, last_version)::text FROM r_batch2), '(5,6)',
          'the next batch continues after the stream''s current version');
SELECT ok((SELECT b2.first_position > b1.last_position AND b2.last_position > b2.first_position
             FROM r_batch b1, r_batch2 b2), 'the next batch gets higher, increasing positions');

-- Stream names are case-sensitive
SELECT is((SELECT first_version FROM everest.append_event('TapAppend-Batch', 'X')), 0::bigint,
          'stream names are case-sensitive: TapAppend-Batch is a new stream');
SELECT is(everest.stream_version('tapappend-batch'), 6::bigint, '... and tapappend-batch is untouched');

-- Names that share a prefix, or differ by a trailing space, are different streams
SELECT is((SELECT last_version FROM everest.append_events('tapappend-p', '[{"type": "A"}, {"type": "A"}, {"type": "A"}]')),
          2::bigint, 'setup: tapappend-p at version 2');
SELECT is((SELECT last_version FROM everest.append_events('tapappend-p ', '[{"type": "A"}]')), 0::bigint,
          '"tapappend-p " (trailing space) is a new stream');
SELECT is((SELECT last_version FROM everest.append_events('tapappend-p2', '[{"type": "A"}, {"type": "A"}]')), 1::bigint,
          '"tapappend-p2" is a new stream');
SELECT is((SELECT last_version FROM everest.append_events('tapappend-', '[{"type": "A"}]')), 0::bigint,
          '"tapappend-" is a new stream');
SELECT is(ARRAY[everest.stream_version('tapappend-p'), everest.stream_version('tapappend-p '),
                everest.stream_version('tapappend-p2'), everest.stream_version('tapappend-'),
                everest.stream_version('tapappend')],
          ARRAY[2, 0, 1, 0, -1]::bigint[], 'each of the similar names has its own version');
SELECT is(everest.delete_stream('tapappend-p', 2, true), 3::bigint, 'tombstoning tapappend-p');
SELECT is((SELECT first_version FROM everest.append_events('tapappend-p ', '[{"type": "B"}]', 0)), 1::bigint,
          '... leaves "tapappend-p " appendable');
SELECT is((SELECT first_version FROM everest.append_events('tapappend-p2', '[{"type": "B"}]', 1)), 2::bigint,
          '... and "tapappend-p2"');

-- =============================================================================================
-- Expected versions: -2 any, -1 no stream, -4 stream exists, N exact
-- =============================================================================================
SELECT is((SELECT first_version FROM everest.append_event('tapappend-ev-any', 'T', expected_version => -2)),
          0::bigint, '-2 (any) on a new stream succeeds');
SELECT is((SELECT first_version FROM everest.append_event('tapappend-ev-any', 'T', expected_version => -2)),
          1::bigint, '-2 (any) on an existing stream succeeds');
SELECT is((SELECT first_version FROM everest.append_events('tapappend-ev-any', '[{"type": "T"}]')),
          2::bigint, 'append_events defaults expected_version to -2 (any)');

SELECT is((SELECT first_version FROM everest.append_events('tapappend-ev-new', '[{"type": "T"}]', -1)),
          0::bigint, '-1 (no stream) on a new stream succeeds');
SELECT throws_ok($q$SELECT * FROM everest.append_events('tapappend-ev-new', '[{"type": "T"}]', -1)$q$,
                 'EV001', NULL, '-1 (no stream) on an existing stream: EV001');
SELECT throws_matching($q$SELECT * FROM everest.append_events('tapappend-ev-new', '[{"type": "T"}]', -1)$q$,
                       'tapappend-ev-new.*expected.*-1.*actual\D*\m0\M',
                       'EV001 message names the stream, expected -1 and actual 0');

SELECT throws_ok($q$SELECT * FROM everest.append_events('tapappend-ev-exists', '[{"type": "T"}]', -4)$q$,
                 'EV001', NULL, '-4 (stream exists) on a new stream: EV001');
SELECT throws_matching($q$SELECT * FROM everest.append_events('tapappend-ev-exists', '[{"type": "T"}]', -4)$q$,
                       'tapappend-ev-exists.*expected.*-4.*actual\D*-1\M',
                       'EV001 message names the stream, expected -4 and actual -1 (absent)');
SELECT is(everest.stream_version('tapappend-ev-exists'), -1::bigint, 'the failed -4 append created nothing');
SELECT is((SELECT count(*) FROM everest.read_stream_forward('tapappend-ev-exists')), 0::bigint,
          '... and the stream still reads empty');
SELECT is((SELECT first_version FROM everest.append_event('tapappend-ev-new', 'T', expected_version => -4)),
          1::bigint, '-4 (stream exists) on an existing stream succeeds');

SELECT is((SELECT first_version FROM everest.append_events('tapappend-ev-exact', '[{"type": "T"}, {"type": "T"}]', -1)),
          0::bigint, 'setup: a stream at version 1');
SELECT is((SELECT (first_version, last_version)::text
             FROM everest.append_events('tapappend-ev-exact', '[{"type": "T"}, {"type": "T"}]', 1)),
          '(2,3)', 'N = current version succeeds and continues at N+1');
SELECT throws_ok($q$SELECT * FROM everest.append_events('tapappend-ev-exact', '[{"type": "T"}]', 2)$q$,
                 'EV001', NULL, 'N lower than the current version: EV001');
SELECT throws_ok($q$SELECT * FROM everest.append_events('tapappend-ev-exact', '[{"type": "T"}]', 7)$q$,
                 'EV001', NULL, 'N higher than the current version: EV001');
SELECT throws_matching($q$SELECT * FROM everest.append_events('tapappend-ev-exact', '[{"type": "T"}]', 7)$q$,
                       'tapappend-ev-exact.*expected\D*\m7\M.*actual\D*\m3\M',
                       'EV001 message names the stream, expected 7 and actual 3');
SELECT throws_ok($q$SELECT * FROM everest.append_events('tapappend-ev-absent', '[{"type": "T"}]', 0)$q$,
                 'EV001', NULL, 'N = 0 on a new stream: EV001');
SELECT throws_matching($q$SELECT * FROM everest.append_events('tapappend-ev-absent', '[{"type": "T"}]', 0)$q$,
                       'tapappend-ev-absent.*expected\D*\m0\M.*actual\D*-1\M',
                       'EV001 message for an absent stream says actual -1');
SELECT throws_ok($q$SELECT * FROM everest.append_event('tapappend-ev-exact', 'T', '{}', NULL, 0)$q$,
                 'EV001', NULL, 'append_event checks expected_version too');
SELECT is(everest.stream_version('tapappend-ev-exact'), 3::bigint, 'failed appends wrote nothing: version still 3');
SELECT is((SELECT count(*) FROM everest.read_stream_forward('tapappend-ev-exact')), 4::bigint,
          'failed appends wrote nothing: still 4 events');

-- =============================================================================================
-- Idempotent retries
-- =============================================================================================
SELECT is((SELECT first_version FROM everest.append_event('tapappend-idem', 'Before')), 0::bigint,
          'setup: tapappend-idem has one event');
CREATE TEMP TABLE r_idem AS
    SELECT * FROM everest.append_events('tapappend-idem', $j$[
        {"type": "A", "id": "c0000000-0000-4000-8000-00000000000a"},
        {"type": "B", "id": "c0000000-0000-4000-8000-00000000000b"}]$j$, 0);
SELECT is((SELECT (first_version, last_version)::text FROM r_idem), '(1,2)', 'setup: the batch is at versions 1..2');
SELECT pg_temp.total_events() AS idem_total \gset

SELECT results_eq(
    $q$SELECT * FROM everest.append_events('tapappend-idem', '[
        {"type": "A", "id": "c0000000-0000-4000-8000-00000000000a"},
        {"type": "B", "id": "c0000000-0000-4000-8000-00000000000b"}]', 0)$q$,
    $q$SELECT * FROM r_idem$q$,
    'retry with the same expected version returns the original versions and positions');
SELECT results_eq(
    $q$SELECT * FROM everest.append_events('tapappend-idem', '[
        {"type": "A", "id": "c0000000-0000-4000-8000-00000000000a"},
        {"type": "B", "id": "c0000000-0000-4000-8000-00000000000b"}]', -2)$q$,
    $q$SELECT * FROM r_idem$q$,
    'retry with -2 (any) returns the original result');
SELECT is(everest.stream_version('tapappend-idem'), 2::bigint, 'retries wrote nothing: version still 2');
SELECT is(pg_temp.total_events(), :idem_total::bigint, 'retries wrote nothing anywhere');

-- The stream moves on; a retry is still recognised
SELECT is((SELECT first_version FROM everest.append_event('tapappend-idem', 'After')), 3::bigint,
          'setup: the stream moves on to version 3');
SELECT results_eq(
    $q$SELECT * FROM everest.append_events('tapappend-idem', '[
        {"type": "A", "id": "c0000000-0000-4000-8000-00000000000a"},
        {"type": "B", "id": "c0000000-0000-4000-8000-00000000000b"}]', 0)$q$,
    $q$SELECT * FROM r_idem$q$,
    'a retry after the stream moved on still returns the original result');
SELECT results_eq(
    $q$SELECT * FROM everest.append_events('tapappend-idem', '[
        {"type": "A", "id": "c0000000-0000-4000-8000-00000000000a"},
        {"type": "B", "id": "c0000000-0000-4000-8000-00000000000b"}]')$q$,
    $q$SELECT * FROM r_idem$q$,
    'a retry with -2 after the stream moved on returns the original result');
SELECT is(everest.stream_version('tapappend-idem'), 3::bigint, '... and writes nothing');

-- -4 (stream exists): a retry of a batch that was appended to an existing stream succeeds; a
-- batch stored at version 0 was not appended to an existing stream, so -4 does not retry it
SELECT results_eq(
    $q$SELECT * FROM everest.append_events('tapappend-idem', '[
        {"type": "A", "id": "c0000000-0000-4000-8000-00000000000a"},
        {"type": "B", "id": "c0000000-0000-4000-8000-00000000000b"}]', -4)$q$,
    $q$SELECT * FROM r_idem$q$,
    'retry with -4 of a batch stored after an existing version returns the original result');
SELECT is((SELECT first_version FROM everest.append_events('tapappend-idem4',
              '[{"type": "A", "id": "c4000000-0000-4000-8000-000000000001"}]', -1)), 0::bigint,
          'setup: a batch that created its stream (version 0)');
SELECT throws_ok($q$SELECT * FROM everest.append_events('tapappend-idem4',
                      '[{"type": "A", "id": "c4000000-0000-4000-8000-000000000001"}]', -4)$q$,
                 'EV003', NULL, 'the batch at version 0 reused with -4 (stream exists): EV003, not a retry');
SELECT is(everest.stream_version('tapappend-idem4'), 0::bigint, '... and nothing was written');

-- Retry of a single event through append_event
CREATE TEMP TABLE r_idem1 AS
    SELECT * FROM everest.append_event('tapappend-idem1', 'One', '{"n": 1}', NULL, -1,
                                       'c1000000-0000-4000-8000-000000000001');
SELECT results_eq(
    $q$SELECT * FROM everest.append_event('tapappend-idem1', 'One', '{"n": 1}', NULL, -1,
                                          'c1000000-0000-4000-8000-000000000001')$q$,
    $q$SELECT * FROM r_idem1$q$, 'append_event retry (-1) returns the original result');
SELECT results_eq(
    $q$SELECT * FROM everest.append_event('tapappend-idem1', 'One', '{"n": 1}', NULL, -2,
                                          'c1000000-0000-4000-8000-000000000001')$q$,
    $q$SELECT * FROM r_idem1$q$, 'append_event retry (-2) returns the original result');
SELECT is(everest.stream_version('tapappend-idem1'), 0::bigint, 'append_event retries wrote nothing');

-- Every other reuse of a stored id: EV003, nothing written
SELECT pg_temp.total_events() AS idem_total \gset
SELECT throws_ok($q$SELECT * FROM everest.append_events('tapappend-idem-other',
                      '[{"type": "A", "id": "c0000000-0000-4000-8000-00000000000a"}]')$q$,
                 'EV003', NULL, 'an id stored in another stream: EV003');
SELECT throws_ok($q$SELECT * FROM everest.append_event('tapappend-idem-other', 'A', '{}', NULL, -2,
                      'c0000000-0000-4000-8000-00000000000a')$q$,
                 'EV003', NULL, 'append_event with an id stored in another stream: EV003');
SELECT throws_ok($q$SELECT * FROM everest.append_events('tapappend-idem', '[
                      {"type": "A", "id": "c0000000-0000-4000-8000-00000000000a"},
                      {"type": "B", "id": "c0000000-0000-4000-8000-0000000000ff"}]')$q$,
                 'EV003', NULL, 'partial overlap (stored id then a new id): EV003');
SELECT throws_ok($q$SELECT * FROM everest.append_events('tapappend-idem', '[
                      {"type": "Z", "id": "c0000000-0000-4000-8000-0000000000fe"},
                      {"type": "B", "id": "c0000000-0000-4000-8000-00000000000b"}]')$q$,
                 'EV003', NULL, 'partial overlap (a new id then a stored id): EV003');
SELECT throws_ok($q$SELECT * FROM everest.append_events('tapappend-idem', '[
                      {"type": "B", "id": "c0000000-0000-4000-8000-00000000000b"},
                      {"type": "A", "id": "c0000000-0000-4000-8000-00000000000a"}]')$q$,
                 'EV003', NULL, 'the same ids in a different order: EV003');
SELECT throws_ok($q$SELECT * FROM everest.append_events('tapappend-idem', '[
                      {"type": "A", "id": "c0000000-0000-4000-8000-00000000000a"},
                      {"type": "B", "id": "c0000000-0000-4000-8000-00000000000b"},
                      {"type": "C"}]')$q$,
                 'EV003', NULL, 'the stored batch plus an extra event without id: EV003');
SELECT throws_ok($q$SELECT * FROM everest.append_events('tapappend-idem', '[
                      {"type": "C"},
                      {"type": "A", "id": "c0000000-0000-4000-8000-00000000000a"},
                      {"type": "B", "id": "c0000000-0000-4000-8000-00000000000b"}]')$q$,
                 'EV003', NULL, 'an extra event without id before the stored batch: EV003');
SELECT throws_ok($q$SELECT * FROM everest.append_events('tapappend-idem', '[
                      {"type": "A", "id": "c0000000-0000-4000-8000-00000000000a"},
                      {"type": "B", "id": "c0000000-0000-4000-8000-00000000000b"}]', 1)$q$,
                 'EV003', NULL, 'the stored batch, but not right after expected_version (1): EV003');
SELECT throws_ok($q$SELECT * FROM everest.append_events('tapappend-idem', '[
                      {"type": "A", "id": "c0000000-0000-4000-8000-00000000000a"},
                      {"type": "B", "id": "c0000000-0000-4000-8000-00000000000b"}]', -1)$q$,
                 'EV003', NULL, 'the stored batch, but expected -1 while it starts at version 1: EV003');
SELECT throws_ok($q$SELECT * FROM everest.append_events('tapappend-idem', '[
                      {"type": "A", "id": "c0000000-0000-4000-8000-00000000000a"},
                      {"type": "B", "id": "c0000000-0000-4000-8000-00000000000b"}]', 3)$q$,
                 'EV003', NULL, 'the stored batch with the current version as expected: EV003, not a new append');
SELECT throws_ok($q$SELECT * FROM everest.append_events('tapappend-idem', '[
                      {"type": "B", "id": "c0000000-0000-4000-8000-00000000000b"}]', 0)$q$,
                 'EV003', NULL, 'a stored id that is not right after expected_version: EV003');
SELECT is(everest.stream_version('tapappend-idem'), 3::bigint, 'EV003 wrote nothing to the stream');
SELECT is(everest.stream_version('tapappend-idem-other'), -1::bigint, 'EV003 did not create the other stream');
SELECT is(pg_temp.total_events(), :idem_total::bigint, 'EV003 wrote nothing anywhere');
SELECT ok(pg_temp.sqlstate_of($q$SELECT * FROM everest.append_events('tapappend-idem-dup', '[
              {"type": "A", "id": "c2000000-0000-4000-8000-000000000001"},
              {"type": "B", "id": "c2000000-0000-4000-8000-000000000001"}]')$q$) IN ('EV003', '22023'),
          'one id twice in a new batch fails (EV003 or 22023)');
SELECT is(everest.stream_version('tapappend-idem-dup'), -1::bigint, '... and writes nothing');

-- =============================================================================================
-- Batch atomicity and event shape errors (22023, naming the element's index)
-- =============================================================================================
SELECT pg_temp.total_events() AS shape_total \gset
SELECT throws_ok($q$SELECT * FROM everest.append_events('tapappend-atomic',
                      '[{"type": "A"}, {"type": "B"}, {"type": "C", "bogus": 1}]')$q$,
                 '22023', NULL, 'an invalid 3rd element fails the batch with 22023');
SELECT throws_matching($q$SELECT * FROM everest.append_events('tapappend-atomic',
                      '[{"type": "A"}, {"type": "B"}, {"type": "C", "bogus": 1}]')$q$,
                       '\m2\M', 'the message names the offending index (2)');
SELECT is(everest.stream_version('tapappend-atomic'), -1::bigint, 'batch atomicity: the stream was not created');
SELECT is((SELECT count(*) FROM everest.read_stream_forward('tapappend-atomic')), 0::bigint,
          'batch atomicity: no event of the batch was stored');
SELECT throws_ok($q$SELECT * FROM everest.append_events('tapappend-batch',
                      '[{"type": "A"}, {"type": "B"}, 7]')$q$,
                 '22023', NULL, 'an invalid 3rd element on an existing stream fails');
SELECT is(everest.stream_version('tapappend-batch'), 6::bigint, 'batch atomicity: the existing stream did not move');

SELECT throws_ok($q$SELECT * FROM everest.append_events('tapappend-shape', '{"type": "A"}')$q$,
                 '22023', NULL, 'events as an object, not an array: 22023');
SELECT throws_ok($q$SELECT * FROM everest.append_events('tapappend-shape', '"A"')$q$,
                 '22023', NULL, 'events as a string: 22023');
SELECT throws_ok($q$SELECT * FROM everest.append_events('tapappend-shape', '42')$q$,
                 '22023', NULL, 'events as a number: 22023');
SELECT throws_ok($q$SELECT * FROM everest.append_events('tapappend-shape', 'null')$q$,
                 '22023', NULL, 'events as JSON null: 22023');
SELECT throws_ok($q$SELECT * FROM everest.append_events('tapappend-shape', '[]')$q$,
                 '22023', NULL, 'an empty array: 22023');
SELECT throws_ok($q$SELECT * FROM everest.append_events('tapappend-shape', '[1]')$q$,
                 '22023', NULL, 'a number element: 22023');
SELECT throws_ok($q$SELECT * FROM everest.append_events('tapappend-shape', '["A"]')$q$,
                 '22023', NULL, 'a string element: 22023');
SELECT throws_ok($q$SELECT * FROM everest.append_events('tapappend-shape', '[null]')$q$,
                 '22023', NULL, 'a null element: 22023');
SELECT throws_ok($q$SELECT * FROM everest.append_events('tapappend-shape', '[[{"type": "A"}]]')$q$,
                 '22023', NULL, 'an array element: 22023');
SELECT throws_ok($q$SELECT * FROM everest.append_events('tapappend-shape', '[{"type": "A"}, 1]')$q$,
                 '22023', NULL, 'a non-object second element: 22023');
SELECT throws_matching($q$SELECT * FROM everest.append_events('tapappend-shape', '[{"type": "A"}, 1]')$q$,
                       '\m1\M', '... naming index 1');
SELECT throws_matching($q$SELECT * FROM everest.append_events('tapappend-shape',
                           '[{"type": "A"}, {"type": "B"}, {"type": "C"}, {"data": {}}]')$q$,
                       'index\D*\m3\M', 'a missing type in the 4th element names index 3');
SELECT throws_matching($q$SELECT * FROM everest.append_events('tapappend-shape',
                           '[{"type": "A"}, {"type": "B", "metadata": [1]}]')$q$,
                       'index\D*\m1\M', 'bad metadata in the 2nd element names index 1');
SELECT throws_matching($q$SELECT * FROM everest.append_events('tapappend-shape',
                           '[{"type": "A"}, {"type": "B"}, {"type": ""}]')$q$,
                       'index\D*\m2\M', 'an empty type in the 3rd element names index 2');
SELECT throws_ok($q$SELECT * FROM everest.append_events('tapappend-shape', '[{}]')$q$,
                 '22023', NULL, 'an element without type: 22023');
SELECT throws_ok($q$SELECT * FROM everest.append_events('tapappend-shape', '[{"data": {}}]')$q$,
                 '22023', NULL, 'an element with data but no type: 22023');
SELECT throws_ok($q$SELECT * FROM everest.append_events('tapappend-shape', '[{"type": ""}]')$q$,
                 '22023', NULL, 'an empty type: 22023');
SELECT throws_ok($q$SELECT * FROM everest.append_events('tapappend-shape', '[{"type": 1}]')$q$,
                 '22023', NULL, 'a number type: 22023');
SELECT throws_ok($q$SELECT * FROM everest.append_events('tapappend-shape', '[{"type": null}]')$q$,
                 '22023', NULL, 'a null type: 22023');
SELECT throws_ok($q$SELECT * FROM everest.append_events('tapappend-shape', '[{"type": true}]')$q$,
                 '22023', NULL, 'a boolean type: 22023');
SELECT throws_ok($q$SELECT * FROM everest.append_events('tapappend-shape', '[{"type": {"x": 1}}]')$q$,
                 '22023', NULL, 'an object type: 22023');
SELECT throws_ok($q$SELECT * FROM everest.append_events('tapappend-shape', '[{"type": ["A"]}]')$q$,
                 '22023', NULL, 'an array type: 22023');
SELECT throws_ok($q$SELECT * FROM everest.append_events('tapappend-shape', '[{"type": "A", "extra": 1}]')$q$,
                 '22023', NULL, 'an unknown key: 22023');
SELECT throws_ok($q$SELECT * FROM everest.append_events('tapappend-shape', '[{"type": "A", "Type": "B"}]')$q$,
                 '22023', NULL, 'keys are case-sensitive: "Type" is unknown: 22023');
SELECT throws_ok($q$SELECT * FROM everest.append_events('tapappend-shape', '[{"type": "A", "metadata": [1]}]')$q$,
                 '22023', NULL, 'array metadata: 22023');
SELECT throws_ok($q$SELECT * FROM everest.append_events('tapappend-shape', '[{"type": "A", "metadata": "m"}]')$q$,
                 '22023', NULL, 'string metadata: 22023');
SELECT throws_ok($q$SELECT * FROM everest.append_events('tapappend-shape', '[{"type": "A", "metadata": 1}]')$q$,
                 '22023', NULL, 'number metadata: 22023');
SELECT throws_ok($q$SELECT * FROM everest.append_events('tapappend-shape', '[{"type": "A", "metadata": false}]')$q$,
                 '22023', NULL, 'boolean metadata: 22023');
SELECT throws_ok($q$SELECT * FROM everest.append_event('tapappend-shape', 'A', '{}', '[1]')$q$,
                 '22023', NULL, 'append_event: array metadata: 22023');
SELECT throws_ok($q$SELECT * FROM everest.append_event('tapappend-shape', 'A', '{}', '"m"')$q$,
                 '22023', NULL, 'append_event: string metadata: 22023');
SELECT throws_ok($q$SELECT * FROM everest.append_event('tapappend-shape', '')$q$,
                 '22023', NULL, 'append_event: an empty type: 22023');
SELECT throws_ok($q$SELECT * FROM everest.append_events('tapappend-shape', '[{"type": "A", "id": 5}]')$q$,
                 '22023', NULL, 'an id that is not a string: 22023');

-- malformed ids: 22P02
SELECT throws_ok($q$SELECT * FROM everest.append_events('tapappend-shape', '[{"type": "A", "id": "nope"}]')$q$,
                 '22P02', NULL, 'a malformed id: 22P02');
SELECT throws_ok($q$SELECT * FROM everest.append_events('tapappend-shape', '[{"type": "A", "id": "c0000000-0000-4000-8000-00000000000"}]')$q$,
                 '22P02', NULL, 'an id one digit short: 22P02');
SELECT throws_ok($q$SELECT * FROM everest.append_events('tapappend-shape', '[{"type": "A", "id": "c0000000-0000-4000-8000-00000000000g"}]')$q$,
                 '22P02', NULL, 'an id with a non-hex digit: 22P02');
SELECT throws_ok($q$SELECT * FROM everest.append_events('tapappend-shape', '[{"type": "A"}, {"type": "B", "id": ""}]')$q$,
                 '22P02', NULL, 'an empty id in the 2nd element: 22P02');
SELECT throws_ok($q$SELECT * FROM everest.append_event('tapappend-shape', 'A', id => 'zzz')$q$,
                 '22P02', NULL, 'append_event: a malformed id: 22P02');

SELECT is(everest.stream_version('tapappend-shape'), -1::bigint, 'shape errors created no stream');
SELECT is(pg_temp.total_events(), :shape_total::bigint, 'shape errors wrote no event anywhere');

-- =============================================================================================
-- NULL arguments, expected_version values, stream names
-- =============================================================================================
SELECT throws_ok($q$SELECT * FROM everest.append_events(NULL, '[{"type": "A"}]')$q$,
                 '22004', NULL, 'append_events: NULL stream: 22004');
SELECT throws_ok($q$SELECT * FROM everest.append_events('tapappend-null', NULL)$q$,
                 '22004', NULL, 'append_events: NULL events: 22004');
SELECT throws_ok($q$SELECT * FROM everest.append_event(NULL, 'A')$q$,
                 '22004', NULL, 'append_event: NULL stream: 22004');
SELECT throws_ok($q$SELECT * FROM everest.append_event('tapappend-null', NULL)$q$,
                 '22004', NULL, 'append_event: NULL type: 22004');
SELECT throws_ok($q$SELECT * FROM everest.append_events('tapappend-null', '[{"type": "A"}]', NULL)$q$,
                 '22023', NULL, 'append_events: NULL expected_version: 22023');
SELECT throws_ok($q$SELECT * FROM everest.append_event('tapappend-null', 'A', expected_version => NULL)$q$,
                 '22023', NULL, 'append_event: NULL expected_version: 22023');
SELECT throws_ok($q$SELECT * FROM everest.append_events('tapappend-null', '[{"type": "A"}]', -3)$q$,
                 '22023', NULL, 'expected_version -3: 22023');
SELECT throws_ok($q$SELECT * FROM everest.append_events('tapappend-null', '[{"type": "A"}]', -5)$q$,
                 '22023', NULL, 'expected_version -5: 22023');
SELECT throws_ok($q$SELECT * FROM everest.append_events('tapappend-null', '[{"type": "A"}]', -9223372036854775808)$q$,
                 '22023', NULL, 'expected_version minimum bigint: 22023');
SELECT throws_ok($q$SELECT * FROM everest.append_event('tapappend-null', 'A', expected_version => -3)$q$,
                 '22023', NULL, 'append_event: expected_version -3: 22023');
SELECT is(everest.stream_version('tapappend-null'), -1::bigint, 'NULL and invalid arguments wrote nothing');

SELECT throws_ok($q$SELECT * FROM everest.append_events('$all', '[{"type": "A"}]')$q$,
                 '22023', NULL, 'appending to $all: 22023');
SELECT throws_ok($q$SELECT * FROM everest.append_events('$ce-tapappend', '[{"type": "A"}]')$q$,
                 '22023', NULL, 'appending to $ce-tapappend: 22023');
SELECT throws_ok($q$SELECT * FROM everest.append_events('$foo', '[{"type": "A"}]')$q$,
                 '22023', NULL, 'appending to $foo (reserved): 22023');
SELECT throws_ok($q$SELECT * FROM everest.append_events('$', '[{"type": "A"}]')$q$,
                 '22023', NULL, 'appending to $ (reserved): 22023');
SELECT throws_ok($q$SELECT * FROM everest.append_event('$all', 'A')$q$,
                 '22023', NULL, 'append_event to $all: 22023');
SELECT throws_ok($q$SELECT * FROM everest.append_event('$ce-x', 'A')$q$,
                 '22023', NULL, 'append_event to $ce-x: 22023');
SELECT throws_ok($q$SELECT * FROM everest.append_events('', '[{"type": "A"}]')$q$,
                 '22023', NULL, 'an empty stream name: 22023');
SELECT throws_ok($q$SELECT * FROM everest.append_event('', 'A')$q$,
                 '22023', NULL, 'append_event: an empty stream name: 22023');
SELECT throws_ok(format('SELECT * FROM everest.append_events(%L, %L)',
                        'tapappend-' || repeat('x', 503), '[{"type": "A"}]'),
                 '22023', NULL, 'a 513-byte stream name: 22023');
SELECT throws_ok(format('SELECT * FROM everest.append_events(%L, %L)',
                        'tapappend-' || repeat('é', 251) || 'x', '[{"type": "A"}]'),
                 '22023', NULL, 'a 513-byte name of 262 characters: 22023 (the limit is in bytes)');
SELECT is((SELECT first_version FROM everest.append_events('tapappend-' || repeat('y', 502), '[{"type": "A"}]')),
          0::bigint, 'a 512-byte stream name works');
SELECT is((SELECT stream FROM everest.read_event('tapappend-' || repeat('y', 502), 0)),
          'tapappend-' || repeat('y', 502), '... and reads back whole');
SELECT is((SELECT first_version FROM everest.append_events('tapappend-' || repeat('é', 251), '[{"type": "A"}]')),
          0::bigint, 'a 512-byte name of multibyte characters works');
SELECT is((SELECT first_version FROM everest.append_event('tapappend-a$b', 'A')), 0::bigint,
          'a $ that is not the first character is allowed');
SELECT is((SELECT first_version FROM everest.append_event('all', 'A')), 0::bigint,
          '"all" (without $) is an ordinary stream');

-- =============================================================================================
-- Several appends in one transaction are atomic together
-- =============================================================================================
SAVEPOINT several;
SELECT is((SELECT first_version FROM everest.append_event('tapappend-tx-a', 'A')), 0::bigint,
          'in a savepoint: append to tapappend-tx-a');
SELECT is((SELECT first_version FROM everest.append_events('tapappend-tx-b', '[{"type": "B"}, {"type": "B"}]')),
          0::bigint, 'in a savepoint: append to tapappend-tx-b');
SELECT is((SELECT first_version FROM everest.append_event('tapappend-tx-a', 'A2')), 1::bigint,
          'in a savepoint: a second append to tapappend-tx-a');
ROLLBACK TO SAVEPOINT several;
SELECT ok(everest.stream_version('tapappend-tx-a') = -1 AND everest.stream_version('tapappend-tx-b') = -1,
          'after ROLLBACK TO SAVEPOINT every append of it is gone');
SELECT is((SELECT count(*) FROM everest.read_stream_forward('tapappend-tx-a'))
          + (SELECT count(*) FROM everest.read_stream_forward('tapappend-tx-b')), 0::bigint,
          '... and both streams read empty');
SELECT is((SELECT first_version FROM everest.append_event('tapappend-tx-a', 'A', expected_version => -1)),
          0::bigint, 'the names are free again: -1 (no stream) succeeds');
SAVEPOINT several2;
SELECT is((SELECT first_version FROM everest.append_event('tapappend-tx-b', 'B')), 0::bigint,
          'a second savepoint: append to tapappend-tx-b');
RELEASE SAVEPOINT several2;
SELECT ok(everest.stream_version('tapappend-tx-a') = 0 AND everest.stream_version('tapappend-tx-b') = 0,
          'released savepoints keep their appends');

SELECT * FROM finish();
ROLLBACK;
