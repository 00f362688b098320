-- Reads: one stream, $all, categories, single events.
SELECT first_position AS p0 FROM everest.append_events('cart-1',
  '[{"type": "A"}, {"type": "B"}, {"type": "C"}, {"type": "D"}]') \gset
SELECT last_position FROM everest.append_events('cart-2', '[{"type": "A"}, {"type": "B"}]');
SELECT last_position FROM everest.append_event('cart', 'A');
SELECT last_position FROM everest.append_event('cartography-1', 'A');

SELECT version, type FROM everest.read_stream_forward('cart-1');
SELECT version, type FROM everest.read_stream_forward('cart-1', 1, 2);
SELECT version, type FROM everest.read_stream_forward('cart-1', 3);
SELECT version, type FROM everest.read_stream_forward('cart-1', 9);
SELECT version, type FROM everest.read_stream_forward('cart-1', 0, 0);
SELECT version, type FROM everest.read_stream_backward('cart-1');
SELECT version, type FROM everest.read_stream_backward('cart-1', 2, 2);
SELECT version, type FROM everest.read_stream_backward('cart-1', 0);
SELECT version, type FROM everest.read_stream_forward('no-such-stream');
SELECT version, type FROM everest.read_stream_backward('no-such-stream');

-- $all: positions, inclusive starts, never past safe_position()
SELECT stream, version, position - :p0 AS rel FROM everest.read_all_forward(:p0);
SELECT stream, version, position - :p0 AS rel FROM everest.read_all_forward(:p0 + 2, 3);
SELECT stream, version, position - :p0 AS rel FROM everest.read_all_backward(-1, 3);
SELECT stream, version, position - :p0 AS rel FROM everest.read_all_backward(:p0 + 1, 2);
SELECT (SELECT array_agg(position) FROM everest.read_all_forward(:p0, 5))
     = (SELECT array_agg(position) FROM everest.read_stream_forward('$all', :p0, 5)) AS same;
SELECT (SELECT array_agg(position) FROM everest.read_all_backward(-1, 5))
     = (SELECT array_agg(position) FROM everest.read_stream_backward('$all', -1, 5)) AS same;
SELECT everest.safe_position() = (SELECT max(position) FROM everest.read_all_forward(0, 100000)) AS horizon_at_last;

-- categories: the part before the first '-', the whole name without one
SELECT stream, version FROM everest.read_stream_forward('$ce-cart', :p0);
SELECT stream, version FROM everest.read_stream_backward('$ce-cart', -1, 2);
SELECT stream, version FROM everest.read_stream_forward('$ce-cartography', 0);
SELECT stream, version FROM everest.read_stream_forward('$ce-nothing', 0);

-- single events
SELECT version, type FROM everest.read_event('cart-1', 2);
SELECT version, type FROM everest.read_event('cart-1', -1);
SELECT version, type FROM everest.read_event('cart-1', 7);
SELECT version, type FROM everest.read_event('no-such-stream', -1);
SELECT stream, version FROM everest.read_event('$all', :p0 + 4);
SELECT stream, version FROM everest.read_event('$ce-cart', :p0 + 4);
SELECT stream, version FROM everest.read_event('$ce-cart', :p0 + 7);
SELECT stream, version FROM everest.read_event('$all', -1);
