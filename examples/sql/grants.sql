-- Least-privilege grant sets for everest (README, "Installing"; docs/security.md). Run as a
-- superuser, naming your roles:
--   psql -v reader=app_ro -v writer=app_rw -v subscriber=app_proj -v admin=app_admin -f grants.sql
-- (add -v monitor=ROLE for the optional monitor set: everest.stats and handler_status, read-only)
-- Every function is SECURITY DEFINER and the tables are granted to nobody, so EXECUTE on a
-- function is exactly the right to do what it does. Roles inherit nothing from each other here:
-- grant several sets to one role if it needs them (GRANT :"reader" TO :"writer", for example).

-- reader: read streams, categories and $all; wait for new events
GRANT USAGE ON SCHEMA everest TO :"reader";
GRANT EXECUTE ON FUNCTION
    everest.read_event(text, bigint),
    everest.read_stream_forward(text, bigint, integer),
    everest.read_stream_backward(text, bigint, integer),
    everest.read_all_forward(bigint, integer),
    everest.read_all_backward(bigint, integer),
    everest.stream_version(text),
    everest.safe_position(),
    everest.wait_for_position(bigint, integer)
TO :"reader";

-- writer: append (with optimistic concurrency and idempotent retries); no deletes
GRANT USAGE ON SCHEMA everest TO :"writer";
GRANT EXECUTE ON FUNCTION
    everest.append_events(text, jsonb, bigint),
    everest.append_event(text, text, jsonb, jsonb, bigint, uuid),
    everest.stream_version(text)
TO :"writer";

-- subscriber: run handlers and group members (read their events, checkpoints and state, leases,
-- park poison events and count attempts); no rewinds, no resizes
GRANT USAGE ON SCHEMA everest TO :"subscriber";
GRANT EXECUTE ON FUNCTION
    everest.read_handler_events(text, text, integer, integer, text[], bigint),
    everest.handler_position(text, integer),
    everest.handler_state(text, integer),
    everest.stream_partition(text, integer),
    everest.park_event(text, bigint, text, integer, uuid),
    everest.note_attempt(text, bigint, integer),
    everest.save_handler_position(text, bigint, integer, uuid, bigint),
    everest.save_handler_state(text, bigint, jsonb, integer, uuid, bigint),
    everest.acquire_lease(text, interval, integer),
    everest.renew_lease(text, uuid, interval),
    everest.release_lease(text, uuid),
    everest.try_acquire_handler(text),
    everest.release_handler(text),
    everest.safe_position(),
    everest.wait_for_position(bigint, integer)
TO :"subscriber";

-- admin: what rewrites history, rewinds or reshapes handlers, and what operators watch
GRANT USAGE ON SCHEMA everest TO :"admin";
GRANT EXECUTE ON FUNCTION
    everest.delete_stream(text, bigint, boolean),
    everest.reset_handler(text, bigint),
    everest.resize_handler(text, integer),
    everest.drop_handler(text),
    everest.unpark_event(text, bigint),
    everest.set_event_schema(text, jsonb),
    everest.drop_event_schema(text),
    everest.safe_position(),
    everest.in_flight_appends(),
    everest.notifiers(),
    everest.stats_counters(),
    everest.reset_stats()
TO :"admin";
GRANT SELECT ON everest.horizon_holders, everest.handler_status, everest.parked_events, everest.event_schemas,
    everest.stats
    TO :"admin";

-- monitor (optional: -v monitor=ROLE): what a metrics scraper reads (README, "Metrics"), and
-- nothing else; it cannot reset the counters. For the Prometheus exporter's role.
\if :{?monitor}
GRANT USAGE ON SCHEMA everest TO :"monitor";
GRANT EXECUTE ON FUNCTION everest.stats_counters(), everest.safe_position() TO :"monitor";
GRANT SELECT ON everest.stats, everest.handler_status TO :"monitor";
\endif
-- writers may read the contracts they must meet (optional)
GRANT SELECT ON everest.event_schemas TO :"writer";
