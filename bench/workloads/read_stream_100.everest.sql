\set s random(1, 100)
SELECT * FROM everest.read_stream_forward('read-' || :s, 0, 100);
