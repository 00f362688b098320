-- everest pgTAP: limits and refusals from the hardening audit (issue 11): the table's shape,
-- error codes outside the table, stream and category names that could never be read, handler
-- name bounds. Every change below is undone by rolling back to a savepoint or the transaction.
BEGIN;
SELECT plan(23);

-- =============================================================================================
-- everest.events keeps the shape appends write (55000 otherwise, nothing written)
-- =============================================================================================
SELECT lives_ok($$SELECT everest.append_event('taphard-1', 'A')$$, 'setup: appends work on the table as installed');
SAVEPOINT shape;
ALTER TABLE everest.events ADD COLUMN extra integer;
SELECT throws_ok($$SELECT everest.append_event('taphard-1', 'B')$$, '55000',
                 'everest.events was altered: it has a column "extra" the store does not fill',
                 'an added column stops appends with 55000 (it crashed the server in 0.2.0)');
SELECT throws_ok($$SELECT * FROM everest.read_stream_forward('taphard-1')$$, '55000', NULL, '... and reads');
ROLLBACK TO shape;
SAVEPOINT shape;
ALTER TABLE everest.events ALTER COLUMN type TYPE varchar(20);
SELECT throws_ok($$SELECT everest.append_event('taphard-1', 'B')$$, '55000',
                 'everest.events was altered: column "type" has type character varying',
                 'a changed column type: 55000');
ROLLBACK TO shape;
SAVEPOINT shape;
ALTER TABLE everest.events ADD CONSTRAINT small CHECK (pg_catalog.length(type) < 3);
SELECT throws_ok($$SELECT everest.append_event('taphard-1', 'LONGTYPE')$$, '55000',
                 'everest.events was altered: it has CHECK constraints, which appends would not run',
                 'a CHECK constraint appends would skip: 55000');
ROLLBACK TO shape;
SAVEPOINT shape;
CREATE FUNCTION pg_temp.noop() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NEW; END$$;
CREATE TRIGGER audit BEFORE INSERT ON everest.events FOR EACH ROW EXECUTE FUNCTION pg_temp.noop();
SELECT throws_ok($$SELECT everest.append_event('taphard-1', 'B')$$, '55000',
                 'everest.events was altered: it has a trigger "audit", which appends would not run',
                 'an insert trigger appends would skip: 55000');
ROLLBACK TO shape;
SAVEPOINT shape;
ALTER TABLE everest.events ALTER COLUMN data DROP NOT NULL;
SELECT throws_ok($$SELECT everest.append_event('taphard-1', 'B')$$, '55000',
                 'everest.events was altered: column "data" has NOT NULL removed', 'a NOT NULL removed: 55000');
ROLLBACK TO shape;
SELECT lives_ok($$SELECT everest.append_event('taphard-1', 'C')$$, 'appends work again once the change is undone');
SELECT is((SELECT string_agg(type, ',' ORDER BY version) FROM everest.read_stream_forward('taphard-1')), 'A,C',
          '... and nothing was written meanwhile');

-- =============================================================================================
-- Error codes outside the table
-- =============================================================================================
SELECT throws_ok($$SELECT everest.forbid_event_changes()$$, '39P01',
                 'everest.forbid_event_changes() can only be called as a trigger',
                 'calling the trigger function directly: 39P01, not XX000');
SELECT throws_ok(format($$SELECT everest.save_handler_position(%L, 1)$$, repeat('h', 513)), '22023',
                 'handler name is too long', 'a handler name over 512 bytes: 22023 on save');
SELECT throws_ok(format($$SELECT everest.handler_position(%L)$$, repeat('h', 513)), '22023',
                 'handler name is too long', '... and on handler_position, which accepted it');
SELECT throws_ok(format($$SELECT everest.acquire_lease(%L)$$, repeat('h', 513)), '22023', NULL, '... and on acquire_lease');
SELECT throws_ok(format($$SELECT everest.try_acquire_handler(%L)$$, repeat('h', 513)), '22023', NULL, '... and on try_acquire_handler');
SELECT lives_ok(format($$SELECT everest.handler_position(%L)$$, repeat('h', 512)), 'a handler name of 512 bytes is fine');

-- =============================================================================================
-- Names whose category could never be read
-- =============================================================================================
SELECT throws_ok($$SELECT everest.append_event('-x', 'A')$$, '22023', 'stream name "-x" begins with "-"',
                 'a stream name beginning with "-" (its category would be empty): 22023');
SELECT throws_ok($$SELECT everest.append_event('--', 'A')$$, '22023', NULL, '... "--"');
SELECT throws_ok($$SELECT everest.append_event('-', 'A')$$, '22023', NULL, '... "-"');
SELECT throws_ok($$SELECT everest.delete_stream('-x')$$, '22023', NULL, '... delete_stream too');
SELECT is((SELECT count(*) FROM everest.read_stream_forward('-x')), 0::bigint,
          'reading such a name is not an error (stores from before 0.4.0 may hold one)');
SELECT throws_ok($$SELECT * FROM everest.read_stream_forward('$ce-a-b')$$, '22023', 'category "a-b" contains "-"',
                 '$ce-a-b (no category contains "-"): 22023 instead of an empty read');
SELECT throws_ok($$SELECT * FROM everest.read_handler_events('h', '$ce-a-b')$$, '22023', NULL,
                 '... as a handler source too');
SELECT lives_ok($$SELECT * FROM everest.read_stream_forward('$ce-taphard')$$, 'a plain category reads');

SELECT * FROM finish();
ROLLBACK;
