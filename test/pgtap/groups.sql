-- everest pgTAP: consumer groups (DESIGN.md section 10; docs/groups.md): stream_partition and its
-- published test vectors.
BEGIN;
SELECT plan(6);

-- The vectors of docs/groups.md (and of the core's unit test, test/unit/handlers_test.cpp).
SELECT is((SELECT string_agg(everest.stream_partition(s, m)::text, ',' ORDER BY s, m)
             FROM unnest(ARRAY['account-1', 'account-2', 'account-42', 'order-7f3a', 'a', 'Ünïcødé-1']) s,
                  unnest(ARRAY[1, 2, 3, 4, 6, 7, 1024]) m),
          (SELECT string_agg(p, ',' ORDER BY s, m::integer) FROM (VALUES
             ('account-1', '1', '0'), ('account-1', '2', '0'), ('account-1', '3', '1'), ('account-1', '4', '2'),
             ('account-1', '6', '4'), ('account-1', '7', '4'), ('account-1', '1024', '598'),
             ('account-2', '1', '0'), ('account-2', '2', '1'), ('account-2', '3', '0'), ('account-2', '4', '3'),
             ('account-2', '6', '3'), ('account-2', '7', '1'), ('account-2', '1024', '163'),
             ('account-42', '1', '0'), ('account-42', '2', '1'), ('account-42', '3', '1'), ('account-42', '4', '1'),
             ('account-42', '6', '1'), ('account-42', '7', '1'), ('account-42', '1024', '645'),
             ('order-7f3a', '1', '0'), ('order-7f3a', '2', '1'), ('order-7f3a', '3', '2'), ('order-7f3a', '4', '3'),
             ('order-7f3a', '6', '5'), ('order-7f3a', '7', '0'), ('order-7f3a', '1024', '935'),
             ('a', '1', '0'), ('a', '2', '0'), ('a', '3', '1'), ('a', '4', '0'),
             ('a', '6', '4'), ('a', '7', '5'), ('a', '1024', '140'),
             ('Ünïcødé-1', '1', '0'), ('Ünïcødé-1', '2', '0'), ('Ünïcødé-1', '3', '0'), ('Ünïcødé-1', '4', '2'),
             ('Ünïcødé-1', '6', '0'), ('Ünïcødé-1', '7', '3'), ('Ünïcødé-1', '1024', '1010')) v(s, m, p)),
          'stream_partition gives the published test vectors');
SELECT is((SELECT count(DISTINCT everest.stream_partition('s-' || i, 4)) FROM generate_series(1, 1000) i), 4::bigint,
          'a thousand streams spread over every member of four');
SELECT throws_ok($$SELECT everest.stream_partition(NULL, 4)$$, '22004', 'stream must not be null', 'a NULL stream is 22004');
SELECT throws_ok($$SELECT everest.stream_partition('a', NULL)$$, '22004', 'members must not be null', 'NULL members is 22004');
SELECT throws_ok($$SELECT everest.stream_partition('a', 0)$$, '22023', 'members must be between 1 and 1024, got 0',
                 'members below 1 is 22023');
SELECT throws_ok($$SELECT everest.stream_partition('', 4)$$, '22023', 'stream name must not be empty',
                 'an empty stream name is 22023');

SELECT * FROM finish();
ROLLBACK;
