\set p random(1, 5000)
SELECT * FROM everest.read_stream_forward('$et-T', :p, 1000);
